# Sourced by the data scripts: wordpiece_vocab WORDS reads text lines on stdin and writes a BERT-style
# WordPiece vocabulary on stdout: specials, then the WORDS most frequent lower-cased words split
# like BERT's basic tokenizer (runs of letters/digits; each punctuation character its own token),
# then every character seen alone and as a "##" continuation, so every word has a WordPiece
# split. awk + sort only, under LC_ALL=C (set by the caller): the same output everywhere.
wordpiece_vocab() {
  awk '
    {
      t = tolower($0)
      gsub(/[^a-z0-9]/, " & ", t)
      n = split(t, w, " ")
      for (i = 1; i <= n; i++) count[w[i]]++
    }
    END { for (word in count) printf "%d\t%s\n", count[word], word }' |
    sort -t "$(printf '\t')" -k1,1nr -k2,2 | awk -F '\t' -v words="$1" '
    BEGIN { n = split("[PAD] [UNK] [CLS] [SEP] [MASK]", sp, " "); for (i = 1; i <= n; i++) add(sp[i]) }
    function add(tok) { if (!(tok in seen)) { seen[tok] = 1; print tok } }
    { if (NR <= words) add($2); for (i = 1; i <= length($2); i++) chars[substr($2, i, 1)] = 1 }
    END {
      m = 0
      for (c in chars) list[++m] = c
      for (i = 2; i <= m; i++) for (j = i; j > 1 && list[j - 1] > list[j]; j--) { t = list[j]; list[j] = list[j - 1]; list[j - 1] = t }
      for (i = 1; i <= m; i++) add(list[i])
      for (i = 1; i <= m; i++) add("##" list[i])
    }'
}
