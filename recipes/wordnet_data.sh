#!/usr/bin/env bash
# The demo's data, from Debian's `wordnet-base` package (no network). Every WordNet synset has a
# gloss (its definition) and a lexicographer file, its broad category (noun.animal, noun.plant...).
#   task: classify a noun gloss into one of CLASSES (its lexicographer file); at most PER_CLASS
#         training examples per class, so the classes are balanced.
#   pretraining text: the glosses of all synsets (nouns, verbs, adjectives, adverbs) outside the
#         dev and test splits, one per line: unlabelled text for `moekit pretrain`.
# Writes OUTDIR/{train,dev,test}.tsv (label<TAB>text), OUTDIR/{pretrain,pretrain-dev}.txt and
# OUTDIR/vocab.txt (WordPiece vocabulary built from the pretraining text).
# Usage: wordnet_data.sh OUTDIR [WORDNET_DIR]. bash + awk + sort only; the same files every run.
set -euo pipefail
out=${1:?usage: wordnet_data.sh OUTDIR [WORDNET_DIR]}
src=${2:-/usr/share/wordnet}
classes="animal artifact person plant"  # well separated, each with 7,500-11,600 synsets
per_class=2500    # training examples per class
vocab_words=8000  # most frequent pretraining words kept whole
export LC_ALL=C   # byte semantics: the same output under every locale and awk
for pos in noun verb adj adv; do
  [ -r "$src/data.$pos" ] || { echo "wordnet_data.sh: $src/data.$pos: missing; hint: apt-get install wordnet-base" >&2; exit 1; }
done
mkdir -p "$out"
tmp="$out/.wordnet.tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT

# One line per synset: hash, split, category, gloss. Data lines start with an 8-digit offset
# (the licence header lines start with spaces); field 2 is the lexicographer file number (the
# order of WordNet's lexnames file); the gloss follows "| ", example sentences after `; "` are
# dropped. The split comes from a hash of the gloss (not rand(): mawk and gawk differ).
awk '
  BEGIN {
    n = split("adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body " \
              "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location " \
              "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process " \
              "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change " \
              "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation " \
              "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl", lex, " ")
    for (i = 1; i < 256; i++) ord[sprintf("%c", i)] = i
  }
  /^[0-9]/ {
    g = $0
    if ((i = index(g, "| ")) == 0) next
    g = substr(g, i + 2)
    if ((i = index(g, "; \"")) > 0) g = substr(g, 1, i - 1)
    gsub(/[^ -~]/, " ", g); gsub(/  +/, " ", g); sub(/^ /, "", g); sub(/ $/, "", g)
    if (g == "") next
    h = 17
    for (i = 1; i <= length(g); i++) h = (h * 31 + ord[substr(g, i, 1)]) % 2147483647
    part = h % 10 == 0 ? "test" : h % 10 == 1 ? "dev" : "train"
    print h "\t" part "\t" lex[$2 + 1] "\t" g
  }' "$src/data.noun" "$src/data.verb" "$src/data.adj" "$src/data.adv" | sort -t "$(printf '\t')" -k1,1n -k4,4 >"$tmp/all"

# Labelled splits: the chosen noun categories, in hash order, training capped per class.
awk -F '\t' -v classes="$classes" -v cap="$per_class" -v dir="$tmp" '
  BEGIN {
    n = split(classes, c, " "); for (i = 1; i <= n; i++) want["noun." c[i]] = c[i]
    for (s = 0; s < 3; s++) print "label\ttext" > (dir "/" (s == 0 ? "train" : s == 1 ? "dev" : "test") ".tsv")
  }
  ($3 in want) && ($2 != "train" || taken[$3]++ < cap) { print want[$3] "\t" $4 > (dir "/" $2 ".tsv") }
' "$tmp/all"
# Pretraining text: every gloss of the training split; its dev text: 2000 glosses of the dev split.
awk -F '\t' '$2 == "train" { print $4 }' "$tmp/all" >"$tmp/pretrain.txt"
awk -F '\t' '$2 == "dev" && n++ < 2000 { print $4 }' "$tmp/all" >"$tmp/pretrain-dev.txt"

# Vocabulary from the pretraining text (recipes/wordpiece_vocab.sh).
source "$(dirname "$0")/wordpiece_vocab.sh"
wordpiece_vocab "$vocab_words" <"$tmp/pretrain.txt" >"$tmp/vocab.txt"

# Each file renamed into place whole (rename is atomic), the vocabulary last.
for f in train.tsv dev.tsv test.tsv pretrain.txt pretrain-dev.txt vocab.txt; do mv "$tmp/$f" "$out/$f"; done
for f in train dev test; do echo "$f: $(($(wc -l <"$out/$f.tsv") - 1)) examples"; done
echo "pretrain: $(wc -l <"$out/pretrain.txt") texts, pretrain-dev: $(wc -l <"$out/pretrain-dev.txt")"
echo "vocab: $(wc -l <"$out/vocab.txt") tokens"
