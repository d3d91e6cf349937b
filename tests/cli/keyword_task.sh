# Sourced by the e2e scripts: a keyword task where the one colour word in each line is the label.
# keyword_vocab FILE      writes the WordPiece vocabulary (specials, red/green/blue, w0..w39)
# keyword_data N SEED     prints a TSV of N examples (header label<TAB>text), seeded
keyword_vocab() {
  { printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nred\ngreen\nblue\n'; for i in $(seq 0 39); do echo "w$i"; done; } >"$1"
}
keyword_data() {
  awk -v n="$1" -v seed="$2" 'BEGIN {
    srand(seed); split("red green blue", kw, " "); print "label\ttext";
    for (e = 0; e < n; e++) {
      k = kw[int(rand() * 3) + 1]; len = 4 + int(rand() * 10); at = int(rand() * len); line = "";
      for (t = 0; t < len; t++) line = line (t ? " " : "") (t == at ? k : "w" int(rand() * 40));
      print k "\t" line;
    } }'
}
