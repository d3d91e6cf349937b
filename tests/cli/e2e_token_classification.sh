#!/usr/bin/env bash
# End-to-end token classification (NER, BertForTokenClassification): init from CoNLL tags ->
# train -> importance -> moefy -> distill (per-token KD) -> int8 export -> eval (strict IOB2
# entity F1), predict (a tag per word) and serve /predict (entities with offsets), on generated
# data (recipes/task_heads_data.sh token: a name's type is given only by the cue word before it).
# Also: an ONNX export of the MoE model held to ONNX Runtime token by token (skipped without
# Node.js), and errors on bad tag files.
# Usage: e2e_token_classification.sh MOEKIT_BINARY TEST_DATA_DIR
set -u
moekit=$1
source "$(dirname "$0")/task_head_pipeline.sh"  # $work, fail(), run(), task_head_pipeline

task_head_pipeline token token_classification conll entity_f1 2500 \
  '{"inputs": ["w1 mr n3 n4 w2 in n5", "w3 at n6 w4"]}'
grep -q '"BertForTokenClassification"' "$work/init/config.json" || fail "init: architectures $(head -5 "$work/init/config.json")"
grep -q '"B-PER"' "$work/init/config.json" || fail "init: no B-PER tag in id2label"
# A model that ignores the cue gets the type right by chance (1/3): entity F1 well under 0.5.
at_least "$teacher_metric" 0.85 || fail "teacher: best dev entity_f1 '$teacher_metric' below 0.85: $(cat "$work/teacher.txt")"
at_least "$student_metric" 0.8 || fail "distilled MoE: best dev entity_f1 '$student_metric' below 0.8"
at_least "$(metric_at "$work/eval.json" entity_f1)" 0.8 || fail "eval of the int8 export: $(cat "$work/eval.json")"
grep -q '"token_accuracy": ' "$work/eval.json" || fail "eval: no token_accuracy"
[ "$(grep -c '"tags":\[' "$work/pred.jsonl")" -eq 200 ] || fail "predict: not one tag list per sentence: $(head -2 "$work/pred.jsonl")"
# Words and tags line up: every sentence has as many tags as tokens.
awk -F'"tags":\\[' '{ split($2, t, "]"); split($0, w, "\"tokens\":\\["); split(w[2], u, "]");
  if (gsub(",", ",", t[1]) != gsub(",", ",", u[1])) bad++ } END { exit bad > 0 }' "$work/pred.jsonl" \
  || fail "predict: tags and tokens differ in count"
# Serve: "mr n3 n4" is a person at code points 6..11 and "in n5" a place; "at n6" an organisation.
grep -q '"end":11,"entity_group":"PER","score":[0-9.e-]*,"start":6,"word":"n3 n4"' "$work/serve.json" \
  || fail "serve /predict: no PER 'n3 n4' at 6..11: $(cat "$work/serve.json")"
grep -q '"entity_group":"LOC","score":[0-9.e-]*,"start":18,"word":"n5"' "$work/serve.json" || fail "serve: no LOC n5"
grep -q '"entity_group":"ORG","score":[0-9.e-]*,"start":6,"word":"n6"' "$work/serve.json" || fail "serve: no ORG n6"
cmp -s "$work/serve.json" "$work/serve_tokens.json" || fail "/predict_tokens differs from /predict: $(cat "$work/serve_tokens.json")"

# JSONL (HF datasets' tokens / ner_tags, here as indices into the model's tags) reads like CoNLL.
awk 'BEGIN { RS = ""; FS = "\n" } NR <= 50 { printf "{\"tokens\": ["; for (i = 1; i <= NF; i++) {
  split($i, c, " "); printf "%s\"%s\"", (i > 1 ? ", " : ""), c[1] } printf "], \"tags\": [";
  for (i = 1; i <= NF; i++) { split($i, c, " "); printf "%s\"%s\"", (i > 1 ? ", " : ""), c[2] } print "]}" }' \
  "$work/test.conll" >"$work/test50.jsonl"
awk 'BEGIN { RS = ""; ORS = "\n\n" } NR <= 50' "$work/test.conll" >"$work/test50.conll"
run eval --model "$work/moe" --data "$work/test50.jsonl" --json >"$work/eval_jsonl.json" || fail "eval jsonl"
run eval --model "$work/moe" --data "$work/test50.conll" --json >"$work/eval_conll.json" || fail "eval conll"
[ "$(metric_at "$work/eval_jsonl.json" entity_f1)" = "$(metric_at "$work/eval_conll.json" entity_f1)" ] \
  || fail "the same 50 sentences as JSONL and CoNLL: $(cat "$work/eval_jsonl.json") vs $(cat "$work/eval_conll.json")"

# The MoE model's ONNX graph gives logits per token: ONNX Runtime agrees on every real token.
run export --model "$work/moe" --format onnx --dtype fp32 --out "$work/moe.onnx" >/dev/null || fail "onnx export"
"$moekit" --threads 1 onnx-check --model "$work/moe" --onnx "$work/moe.onnx" --data "$work/test.conll" --skip-if-missing \
  2>"$work/onnx.err" >/dev/null || fail "onnx-check: $(cat "$work/onnx.err")"
grep -qE "skipped|labels agree 100.00% \([0-9]+ of [0-9]+ tokens\)" "$work/onnx.err" || fail "onnx-check: $(cat "$work/onnx.err")"

expect_error() {  # expect_error FILE CONTENT MESSAGE
  printf "$2" >"$work/$1"
  "$moekit" eval --model "$work/teacher" --data "$work/$1" 2>"$work/err" >/dev/null
  [ $? -eq 1 ] && grep -qF "$work/$1: $3" "$work/err" || fail "$1: $(cat "$work/err")"
}
expect_error bad_tag.conll 'mr O\nn1 X-PER\n\n' "line 2: unknown tag 'X-PER'"
expect_error no_tag.conll 'mr O\nn1\n\n' "line 2: a word without a tag"
expect_error count.jsonl '{"tokens": ["mr", "n1"], "tags": ["O"]}\n' "line 1: 1 tags for 2 tokens"
expect_error index.jsonl '{"tokens": ["mr"], "ner_tags": [99]}\n' "line 1: unknown tag '99'"
printf 'mr O\nn1 PER\n\n' >"$work/not_iob2.conll"
"$moekit" init --config "$work/config.json" --vocab "$work/vocab.txt" --labels-from "$work/not_iob2.conll" \
  --problem-type token_classification --out "$work/bad_init" 2>"$work/err" >/dev/null
[ $? -eq 1 ] && grep -q "not_iob2.conll: line 2: tag 'PER' is not IOB2" "$work/err" || fail "not IOB2: $(cat "$work/err")"

[ "$failures" -eq 0 ] && echo "e2e token classification: all passed" || exit 1
