#!/usr/bin/env bash
# Small generated data for the regression and multi-label heads (the recipes regression-demo.yaml
# and multilabel-demo.yaml, and tests/cli/e2e_regression.sh, e2e_multi_label.sh). Each line is
# 4-13 filler words w0..w39 with 0-3 colour words (red, green, blue) at random places:
#   regression   label = the number of colour words + 0.5 per "blue" (0 .. 4.5)
#   multi_label  label = the set of colours present, comma-separated ("" is no colour: written
#                as the JSON list [] in the .jsonl files this kind writes)
#   token        named entities (CoNLL files, one "word tag" per line, a blank line between
#                sentences): 0-3 names of 1-2 words n0..n19 among the fillers, each after a cue
#                word that gives its type: "mr" PER, "in" LOC, "at" ORG (IOB2: B- on the first
#                name word, I- on the second; cues and fillers O). The same name word takes any
#                type, so only the context tells it.
# Writes OUTDIR/{train,dev,test}.{tsv|jsonl} and OUTDIR/vocab.txt. Seeded: the same files every run.
# Usage: task_heads_data.sh regression|multi_label|token OUTDIR [TRAIN_EXAMPLES]
set -euo pipefail
usage="usage: task_heads_data.sh regression|multi_label|token OUTDIR [TRAIN_EXAMPLES]"
kind=${1:?$usage}
out=${2:?$usage}
n_train=${3:-800}
case "$kind" in regression|multi_label|token) ;; *) echo "task_heads_data.sh: unknown kind $kind" >&2; exit 2 ;; esac
export LC_ALL=C
mkdir -p "$out"
{
  printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nred\ngreen\nblue\n'
  for i in $(seq 0 39); do echo "w$i"; done
  if [ "$kind" = token ]; then printf 'mr\nin\nat\n'; for i in $(seq 0 19); do echo "n$i"; done; fi
} >"$out/vocab.txt"
gen_token() {  # gen_token N SEED FILE
  awk -v n="$1" -v seed="$2" 'BEGIN {
    srand(seed); split("mr in at", cue, " "); split("PER LOC ORG", type, " ");
    for (e = 0; e < n; e++) {
      len = 4 + int(rand() * 8); k = int(rand() * 4); t = 0;
      for (i = 0; i < len || k > 0; i++) {
        if (k > 0 && rand() < 0.3) {
          c = int(rand() * 3) + 1; print cue[c] " O";
          print "n" int(rand() * 20) " B-" type[c];
          if (rand() < 0.4) print "n" int(rand() * 20) " I-" type[c];
          k--;
        } else {
          print "w" int(rand() * 40) " O";
        }
      }
      print "";
    } }' >"$3"
}
if [ "$kind" = token ]; then
  gen_token "$n_train" 1 "$out/train.conll"
  gen_token 200 2 "$out/dev.conll"
  gen_token 200 3 "$out/test.conll"
  exit 0
fi
gen() {  # gen N SEED FILE
  awk -v n="$1" -v seed="$2" -v kind="$kind" 'BEGIN {
    srand(seed); split("red green blue", kw, " ");
    if (kind == "regression") print "text\tlabel";
    for (e = 0; e < n; e++) {
      len = 4 + int(rand() * 10); k = int(rand() * 4); delete at; delete has;
      for (i = 0; i < k; i++) at[int(rand() * len)] = kw[int(rand() * 3) + 1];
      line = ""; value = 0;
      for (t = 0; t < len; t++) {
        w = (t in at) ? at[t] : "w" int(rand() * 40);
        if (t in at) { value += (w == "blue") ? 1.5 : 1; has[w] = 1 }
        line = line (t ? " " : "") w;
      }
      if (kind == "regression") { print line "\t" value; continue }
      set = "";
      for (c = 1; c <= 3; c++) if (kw[c] in has) set = set (set == "" ? "" : ", ") "\"" kw[c] "\"";
      print "{\"text\": \"" line "\", \"label\": [" set "]}";
    } }' >"$3"
}
ext=$([ "$kind" = regression ] && echo tsv || echo jsonl)
gen "$n_train" 1 "$out/train.$ext"
gen 200 2 "$out/dev.$ext"
gen 200 3 "$out/test.$ext"
