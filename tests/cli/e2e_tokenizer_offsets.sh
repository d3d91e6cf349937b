#!/usr/bin/env bash
# Token offsets against Hugging Face's Rust tokenizers (npm `tokenizers`, its Node.js binding):
# `moekit tokenize --offsets` must give the reference's offsets (and ids, tokens) line for line,
# for every tokenizer in tests/data/tokenizers, on single texts and pairs, and for BERT's
# vocab.txt against BertTokenizerFast built from the same vocabulary. The binding counts offsets
# in code points; tests/support/tokenizer_reference.js turns them into the byte offsets moekit
# (and TEI) use. Exits 77 (CTest: skipped) with a message when Node.js or the package is absent.
# Usage: e2e_tokenizer_offsets.sh MOEKIT_BINARY TEST_DATA_DIR
set -euo pipefail
moekit=$1
data=$2/tokenizers
npm_dir=${MOEKIT_NPM_DIR:-${HOME:-/nonexistent}/.cache/moekit-npm}
reference="$(dirname "$0")/../support/tokenizer_reference.js"
if ! command -v node >/dev/null; then echo "skipped: node is not installed"; exit 77; fi
if [ ! -d "$npm_dir/node_modules/tokenizers" ]; then
  echo "skipped: npm package tokenizers is not in $npm_dir (tests/install_deps.sh installs it)"; exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run() {  # run NAME DIR DATA [options...]: writes $work/NAME.moekit and $work/NAME.ref
  local name=$1 dir=$2 file=$3
  shift 3
  "$moekit" tokenize --model "$dir" --data "$file" --offsets "$@" > "$work/$name.moekit" 2> "$work/$name.err" ||
    { echo "FAIL $name: moekit tokenize failed: $(cat "$work/$name.err")"; return 1; }
  NODE_PATH="$npm_dir/node_modules" node "$reference" "$dir" "$file" --offsets "$@" > "$work/$name.ref"
  [ -s "$work/$name.ref" ] || { echo "FAIL $name: the reference printed nothing"; return 1; }
  grep -q '"offsets":\[\[' "$work/$name.moekit" || { echo "FAIL $name: moekit printed no offsets"; return 1; }
}

compare() {  # compare NAME DIR DATA [options...]: every line equal
  local name=$1
  run "$@" || return 1
  if ! cmp -s "$work/$name.moekit" "$work/$name.ref"; then
    echo "FAIL $name: moekit and the reference differ; first difference:"
    diff <(nl -ba "$work/$name.moekit") <(nl -ba "$work/$name.ref") | head -6
    return 1
  fi
  echo "ok $name: $(wc -l < "$work/$name.ref") examples equal, offsets included"
}

status=0
for t in wordpiece wordpiece-seq wordpiece-ws bpe bpe-slow bpe-split unigram unigram-bf; do
  compare "$t" "$data/$t" "$data/texts.jsonl" || status=1
  compare "$t-pairs" "$data/$t" "$data/pairs.jsonl" --pairs || status=1
done

# vocab.txt (the wordpiece file's vocabulary in id order): the slow BertTokenizer moekit follows
# differs from the fast one on a few texts (NFC first; CJK block bounds), so offsets are held to
# the reference wherever the ids agree, which must be nearly every text.
mkdir "$work/vocab"
NODE_PATH="$npm_dir/node_modules" node -e '
  const v = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).model.vocab;
  const t = []; for (const [k, id] of Object.entries(v)) t[id] = k;
  process.stdout.write(t.join("\n") + "\n");' "$data/wordpiece/tokenizer.json" > "$work/vocab/vocab.txt"
for f in texts pairs; do
  opt=(); [ $f = pairs ] && opt=(--pairs)
  run "vocab-$f" "$work/vocab" "$data/$f.jsonl" "${opt[@]}" || { status=1; continue; }
  node -e '
    const fs = require("fs");
    const a = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
    const b = fs.readFileSync(process.argv[2], "utf8").trim().split("\n").map(JSON.parse);
    let same = 0, bad = [];
    a.forEach((x, i) => {
      if (JSON.stringify(x.ids) !== JSON.stringify(b[i].ids)) return;
      same++;
      if (JSON.stringify(x.offsets) !== JSON.stringify(b[i].offsets)) bad.push(i + 1);
    });
    if (bad.length) { console.log("FAIL " + process.argv[3] + ": offsets differ on lines " + bad.slice(0, 10).join(", ")); process.exit(1); }
    if (same < 0.9 * a.length) { console.log("FAIL " + process.argv[3] + ": ids agree on only " + same + " of " + a.length); process.exit(1); }
    console.log("ok " + process.argv[3] + ": offsets equal on the " + same + " of " + a.length + " examples whose ids agree");
  ' "$work/vocab-$f.moekit" "$work/vocab-$f.ref" "vocab-$f" || status=1
done
exit $status
