#!/usr/bin/env bash
# End-to-end: models whose tokenizer is a tokenizer.json (byte-level BPE, Unigram) or RoBERTa's
# vocab.json + merges.txt go through predict, train, importance, moefy and tokenize with that
# tokenizer, and the models they write keep it. Usage: e2e_tokenizer_models.sh MOEKIT_BINARY TEST_DATA_DIR
set -u
moekit=$1
data=$2
toks=$data/tokenizers
source "$(dirname "$0")/lib.sh"  # $work (removed at exit), $failures, fail()

printf 'label\ttext\ttext_pair\npos\tThe Movie was GREAT!\tWe watched twice\nneg\tso boring, 中文 😀\tyes\nneg\tnaïve café\tx\n' >"$work/data.tsv"
cat >"$work/config.json" <<JSON
{"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
 "max_position_embeddings": 64, "vocab_size": 2600}
JSON
"$moekit" init --config "$work/config.json" --vocab "$data/golden/bert_tiny/vocab.txt" --labels-from "$work/data.tsv" \
  --out "$work/base" --seed 1 >/dev/null || fail "init"

for kind in bpe unigram bpe-slow; do
  m=$work/$kind
  cp -r "$work/base" "$m"
  rm "$m/vocab.txt" "$m/tokenizer_config.json"
  cp "$toks/$kind"/*.json "$m/"
  [ -f "$toks/$kind/merges.txt" ] && cp "$toks/$kind/merges.txt" "$m/"
  # The model directory tokenizes as its tokenizer files do alone.
  "$moekit" tokenize --model "$m" --data "$work/data.tsv" --pairs >"$work/$kind.model.jsonl" 2>/dev/null || fail "$kind: tokenize"
  "$moekit" tokenize --model "$toks/$kind" --data "$work/data.tsv" --pairs >"$work/$kind.files.jsonl" 2>/dev/null
  cmp -s "$work/$kind.model.jsonl" "$work/$kind.files.jsonl" || fail "$kind: model dir and tokenizer files tokenize differently"
  "$moekit" predict --model "$m" --data "$work/data.tsv" --out "$work/$kind.pred" 2>/dev/null || fail "$kind: predict"
  [ "$(wc -l <"$work/$kind.pred")" -eq 3 ] || fail "$kind: predict wrote $(wc -l <"$work/$kind.pred") lines"
  "$moekit" --quiet --threads 1 train --model "$m" --train "$work/data.tsv" --dev "$work/data.tsv" --max-steps 2 \
    --batch-size 2 --out "$work/$kind.trained" >/dev/null 2>"$work/err" || fail "$kind: train: $(cat "$work/err")"
  for f in "$toks/$kind"/*.json "$toks/$kind"/merges.txt; do
    [ -f "$f" ] || continue
    cmp -s "$f" "$work/$kind.trained/$(basename "$f")" || fail "$kind: train did not keep $(basename "$f")"
  done
  [ ! -f "$work/$kind.trained/vocab.txt" ] || fail "$kind: train wrote a vocab.txt the model never had"
  "$moekit" tokenize --model "$work/$kind.trained" --data "$work/data.tsv" --pairs >"$work/$kind.trained.jsonl" 2>/dev/null
  cmp -s "$work/$kind.trained.jsonl" "$work/$kind.files.jsonl" || fail "$kind: the trained model tokenizes differently"
  "$moekit" importance --model "$work/$kind.trained" --data "$work/data.tsv" --out "$work/$kind.imp.h5" >/dev/null 2>&1 ||
    fail "$kind: importance"
  "$moekit" moefy --model "$work/$kind.trained" --importance "$work/$kind.imp.h5" --experts 2 --expert-size 16 --shared 0 \
    --out "$work/$kind.moe" >/dev/null 2>&1 || fail "$kind: moefy"
  "$moekit" predict --model "$work/$kind.moe" --data "$work/data.tsv" >"$work/$kind.moe.pred" 2>/dev/null ||
    fail "$kind: predict on the MoE model"
  # Exports embed the tokenizer files: a single file still reads text, as its directory did.
  "$moekit" export --model "$work/$kind.moe" --format safetensors --dtype fp32 --out "$work/$kind.safetensors"     >/dev/null 2>&1 || fail "$kind: export safetensors"
  "$moekit" export --model "$work/$kind.moe" --dtype int8 --out "$work/$kind.h5" >/dev/null 2>&1 || fail "$kind: export int8"
  "$moekit" export --model "$work/$kind.h5" --format hdf5 --dtype int8 --out "$work/$kind.again.h5" >/dev/null 2>&1 ||
    fail "$kind: export of an export"
  for f in "$work/$kind.safetensors" "$work/$kind.h5" "$work/$kind.again.h5"; do
    "$moekit" tokenize --model "$f" --data "$work/data.tsv" --pairs >"$work/$kind.exp.jsonl" 2>"$work/err" ||
      fail "$kind: tokenize $(basename "$f"): $(cat "$work/err")"
    cmp -s "$work/$kind.exp.jsonl" "$work/$kind.files.jsonl" || fail "$kind: $(basename "$f") tokenizes differently"
  done
  "$moekit" predict --model "$work/$kind.safetensors" --data "$work/data.tsv" >"$work/$kind.st.pred" 2>/dev/null ||
    fail "$kind: predict on the safetensors export"
  cmp -s "$work/$kind.st.pred" "$work/$kind.moe.pred" || fail "$kind: the fp32 export predicts differently"
  "$moekit" predict --model "$work/$kind.h5" --data "$work/data.tsv" >/dev/null 2>&1 || fail "$kind: predict on int8"
done

# A tokenizer with ids past the embedding table is refused with one line.
sed 's/"vocab_size": 2600/"vocab_size": 1000/' "$work/config.json" >"$work/config1000.json"
"$moekit" init --config "$work/config1000.json" --vocab "$data/golden/bert_tiny/vocab.txt" --labels-from "$work/data.tsv" \
  --out "$work/small" --seed 1 >/dev/null || fail "init small"
cp "$toks/unigram/tokenizer.json" "$work/small/"
"$moekit" predict --model "$work/small" --data "$work/data.tsv" >/dev/null 2>"$work/err" && fail "small vocab: predict succeeded"
grep -qF 'config.json vocab_size is 1000' "$work/err" || fail "small vocab: message: $(cat "$work/err")"
[ "$(wc -l <"$work/err")" -eq 1 ] || fail "small vocab: expected one error line, got: $(cat "$work/err")"

# Unsupported components: one error line naming the file and the component.
mkdir "$work/bad"
sed 's/"BertPreTokenizer"/"UnicodeScripts"/' "$toks/wordpiece/tokenizer.json" >"$work/bad/tokenizer.json"
"$moekit" tokenize --model "$work/bad" --data "$work/data.tsv" >/dev/null 2>"$work/err" && fail "bad: tokenize succeeded"
grep -qF 'tokenizer.json: unsupported pre_tokenizer "UnicodeScripts"' "$work/err" || fail "bad: message: $(cat "$work/err")"
[ "$(wc -l <"$work/err")" -eq 1 ] || fail "bad: expected one error line"
mkdir "$work/none"
"$moekit" tokenize --model "$work/none" --data "$work/data.tsv" >/dev/null 2>"$work/err" && fail "none: tokenize succeeded"
grep -qF 'no tokenizer' "$work/err" || fail "none: message: $(cat "$work/err")"
"$moekit" tokenize --model "$toks/bpe" --data "$work/data.tsv" --pairs --max-seq-len 2 >/dev/null 2>"$work/err" &&
  fail "max-seq-len 2 with pairs succeeded"
grep -qF 'no room for the 4 special tokens' "$work/err" || fail "max-seq-len 2: message: $(cat "$work/err")"

[ "$failures" -eq 0 ] && echo "e2e_tokenizer_models: all checks passed"
exit $((failures > 0))
