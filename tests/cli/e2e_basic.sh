#!/usr/bin/env bash
# End-to-end: the CLI on a tiny fixture model. Usage: e2e_basic.sh MOEKIT_BINARY TEST_DATA_DIR
set -u
moekit=$1
data=$2
source "$(dirname "$0")/lib.sh"  # $work (removed at exit), $failures, fail()

# expect_error EXIT_CODE PHRASE -- command...: exit code, exactly one stderr line, phrase in it.
expect_error() {
  local code=$1 phrase=$2
  shift 3
  "$@" >"$work/out" 2>"$work/err"
  local got=$?
  [ "$got" -eq "$code" ] || fail "$*: exit $got, expected $code ($(cat "$work/err"))"
  [ "$(wc -l <"$work/err")" -eq 1 ] || fail "$*: expected one stderr line, got: $(cat "$work/err")"
  grep -qF -- "$phrase" "$work/err" || fail "$*: stderr lacks '$phrase': $(cat "$work/err")"
}

tiny=$data/golden/bert_tiny
printf 'label\ttext\ttext_pair\npos\tThe Movie was GREAT!\tWe watched twice\nneu\tthis film is not very fun\t\nneg\tso boring.\t\n' >"$work/data.tsv"

# init -> inspect -> predict -> eval
cat >"$work/config.json" <<JSON
{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
 "max_position_embeddings": 64, "hidden_act": "gelu"}
JSON
"$moekit" init --config "$work/config.json" --vocab "$tiny/vocab.txt" --labels-from "$work/data.tsv" --out "$work/m" --seed 3 >/dev/null \
  || fail "init"
[ -f "$work/m/model.safetensors" ] && [ -f "$work/m/config.json" ] && [ -f "$work/m/vocab.txt" ] || fail "init wrote no model"
"$moekit" inspect --json "$work/m" >"$work/inspect.json" || fail "inspect"
grep -q '"hidden_size": 32' "$work/inspect.json" || fail "inspect: hidden_size missing"
grep -q '"neg"' "$work/inspect.json" || fail "inspect: labels from data missing"

"$moekit" predict --model "$tiny" --data "$work/data.tsv" --out "$work/pred.jsonl" 2>/dev/null || fail "predict"
[ "$(wc -l <"$work/pred.jsonl")" -eq 3 ] || fail "predict: expected 3 lines"
# The golden logits of bert_tiny (PyTorch reference) for these three texts: labels pos, neu, neu.
[ "$(grep -o '"label":"[a-z]*"' "$work/pred.jsonl" | tr '\n' ' ')" = '"label":"pos" "label":"neu" "label":"neu" ' ] \
  || fail "predict: labels differ from the reference: $(cat "$work/pred.jsonl")"
"$moekit" --threads 1 eval --model "$tiny" --data "$work/data.tsv" --json >"$work/eval.json" 2>/dev/null || fail "eval"
grep -q '"accuracy": 0.6666' "$work/eval.json" || fail "eval: accuracy should be 2/3: $(cat "$work/eval.json")"

# Bad input: one line on stderr, exit 1; bad usage: exit 2.
expect_error 1 "no such model directory" -- "$moekit" inspect "$work/none"
expect_error 2 "--model is required" -- "$moekit" predict --data "$work/data.tsv"
expect_error 2 "" -- "$moekit" eval --model "$tiny" --data "$work/data.tsv" --batch-size 0
printf 'label\ttext\nbogus\thello\n' >"$work/bad.tsv"
expect_error 1 "bad.tsv: line 2: unknown label" -- "$moekit" eval --model "$tiny" --data "$work/bad.tsv"
mkdir "$work/trunc" && cp "$tiny"/config.json "$tiny"/vocab.txt "$work/trunc/"
head -c 20000 "$tiny/model.safetensors" >"$work/trunc/model.safetensors"
expect_error 1 "model.safetensors" -- "$moekit" inspect "$work/trunc"
echo '{"hidden_size": 16' >"$work/trunc/config.json"
expect_error 1 "config.json: malformed JSON" -- "$moekit" inspect "$work/trunc"
expect_error 1 "exceeds the model's position table" -- "$moekit" predict --model "$tiny" --data "$work/data.tsv" --max-seq-len 1000

[ "$failures" -eq 0 ] && echo "e2e_basic: all checks passed"
exit $((failures > 0))
