#!/usr/bin/env bash
# Small generated data for the regression and multi-label heads (the recipes regression-demo.yaml
# and multilabel-demo.yaml, and tests/cli/e2e_regression.sh, e2e_multi_label.sh). Each line is
# 4-13 filler words w0..w39 with 0-3 colour words (red, green, blue) at random places:
#   regression   label = the number of colour words + 0.5 per "blue" (0 .. 4.5)
#   multi_label  label = the set of colours present, comma-separated ("" is no colour: written
#                as the JSON list [] in the .jsonl files this kind writes)
# Writes OUTDIR/{train,dev,test}.{tsv|jsonl} and OUTDIR/vocab.txt. Seeded: the same files every run.
# Usage: task_heads_data.sh regression|multi_label OUTDIR [TRAIN_EXAMPLES]
set -euo pipefail
kind=${1:?usage: task_heads_data.sh regression|multi_label OUTDIR [TRAIN_EXAMPLES]}
out=${2:?usage: task_heads_data.sh regression|multi_label OUTDIR [TRAIN_EXAMPLES]}
n_train=${3:-800}
case "$kind" in regression|multi_label) ;; *) echo "task_heads_data.sh: unknown kind $kind" >&2; exit 2 ;; esac
export LC_ALL=C
mkdir -p "$out"
{ printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nred\ngreen\nblue\n'; for i in $(seq 0 39); do echo "w$i"; done; } >"$out/vocab.txt"
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
