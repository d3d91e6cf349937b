#!/usr/bin/env bash
# The demo's data, from Debian's `fortunes` package (no network): topic classification with the
# fortune's category as its label. Writes OUTDIR/{train,dev,test}.tsv (label<TAB>text) and
# OUTDIR/vocab.txt (BERT-style WordPiece vocabulary built from the training split).
# Usage: fortunes_data.sh OUTDIR [FORTUNES_DIR]. bash + awk + sort only; the same files every run.
set -euo pipefail
out=${1:?usage: fortunes_data.sh OUTDIR [FORTUNES_DIR]}
src=${2:-/usr/share/games/fortunes}
max_chars=400     # longer fortunes are dropped (they would be truncated anyway)
vocab_words=6000  # most frequent training words kept whole
export LC_ALL=C   # byte semantics: the same output under every locale and awk
categories=(computers definitions politics science songs-poems work)
files=()
for c in "${categories[@]}"; do
  [ -r "$src/$c" ] || { echo "fortunes_data.sh: $src/$c: missing; hint: apt-get install fortunes" >&2; exit 1; }
  files+=("$src/$c")
done
mkdir -p "$out"

# One example per fortune (records end at a line holding only "%"). The split comes from a hash
# of the text, not rand(): mawk and gawk seed rand() differently, a hash is the same everywhere.
awk -v max="$max_chars" -v dir="$out" '
  BEGIN {
    for (i = 1; i < 256; i++) ord[sprintf("%c", i)] = i
    bs = sprintf("%c", 8)
    for (s = 0; s < 3; s++) print "label\ttext" > (dir "/" (s == 0 ? "train" : s == 1 ? "dev" : "test") ".tsv.tmp")
  }
  function emit(   t, h, i, part) {
    t = text; text = ""
    while ((i = index(t, bs)) > 0)  # overstrike "X^H": keep what was struck over
      t = (i > 1 ? substr(t, 1, i - 2) : "") substr(t, i + 1)
    gsub(/[^ -~]/, " ", t)          # tabs and other control bytes
    gsub(/  +/, " ", t); sub(/^ /, "", t); sub(/ $/, "", t)
    if (t == "" || length(t) > max) return
    h = 17
    for (i = 1; i <= length(t); i++) h = (h * 31 + ord[substr(t, i, 1)]) % 2147483647
    part = h % 10 == 0 ? "test" : h % 10 == 1 ? "dev" : "train"
    print label "\t" t > (dir "/" part ".tsv.tmp")
  }
  FNR == 1 { if (text != "") emit(); n = split(FILENAME, p, "/"); label = p[n] }
  /^%$/ { emit(); next }
  { text = text " " $0 }
  END { emit() }
' "${files[@]}"

# Vocabulary from the training split's texts (recipes/wordpiece_vocab.sh).
source "$(dirname "$0")/wordpiece_vocab.sh"
awk -F '\t' 'NR > 1 { print $2 }' "$out/train.tsv.tmp" | wordpiece_vocab "$vocab_words" >"$out/vocab.txt.tmp"

for f in train dev test; do mv "$out/$f.tsv.tmp" "$out/$f.tsv"; done
mv "$out/vocab.txt.tmp" "$out/vocab.txt"
for f in train dev test; do echo "$f: $(($(wc -l <"$out/$f.tsv") - 1)) examples"; done
echo "vocab: $(wc -l <"$out/vocab.txt") tokens"
