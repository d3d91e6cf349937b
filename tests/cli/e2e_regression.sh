#!/usr/bin/env bash
# End-to-end regression head (problem_type regression, MSE): init -> train -> importance ->
# moefy -> distill (MSE to the teacher's outputs) -> int8 export -> eval (Pearson/Spearman),
# predict ("score") and serve /predict, on generated data (recipes/task_heads_data.sh).
# Usage: e2e_regression.sh MOEKIT_BINARY TEST_DATA_DIR
set -u
moekit=$1
source "$(dirname "$0")/task_head_pipeline.sh"  # $work, fail(), run(), task_head_pipeline

task_head_pipeline regression regression tsv pearson
# The value is a count of colour words: a trained model correlates far above chance (0).
at_least "$teacher_metric" 0.8 || fail "teacher: best dev pearson '$teacher_metric' below 0.8: $(cat "$work/teacher.txt")"
at_least "$student_metric" 0.7 || fail "distilled MoE: best dev pearson '$student_metric' below 0.7"
at_least "$(metric_at "$work/eval.json" spearman)" 0.6 || fail "eval of the int8 export: $(cat "$work/eval.json")"
grep -q '"mse": ' "$work/eval.json" || fail "eval: no mse"
[ "$(grep -c '"score":' "$work/pred.jsonl")" -eq 200 ] || fail "predict: not one score per example: $(head -2 "$work/pred.jsonl")"
grep -q '"label":"LABEL_0","score":' "$work/serve.json" || fail "serve /predict: $(cat "$work/serve.json")"
grep -q '"/predict_tokens needs a token-classification model; this one is regression' "$work/serve_tokens.json" ||
  fail "/predict_tokens on a regression model: $(cat "$work/serve_tokens.json")"
# The first text (two colour words, one blue: 2.5) must score above the second (none: 0).
awk -F'"score":' '{ split($2, a, "}"); split($3, b, "}"); exit !(a[1] > b[1]) }' "$work/serve.json" \
  || fail "serve: 'w1 blue w2 red' should score above 'w3 w4': $(cat "$work/serve.json")"

printf 'text\tlabel\nw1 red\tmany\n' >"$work/bad.tsv"
"$moekit" eval --model "$work/teacher" --data "$work/bad.tsv" 2>"$work/err" >/dev/null
[ $? -eq 1 ] && grep -q "bad.tsv: line 2: label 'many' is not a number" "$work/err" || fail "bad value: $(cat "$work/err")"
"$moekit" distill --teacher "$work/teacher" --student "$work/student" --train "$work/train.tsv" --dev "$work/dev.tsv" \
  --temperature 2 --max-steps 1 --out "$work/bad" 2>"$work/err" >/dev/null
[ $? -eq 1 ] && grep -q "no distribution to soften" "$work/err" || fail "regression KD at T=2: $(cat "$work/err")"

[ "$failures" -eq 0 ] && echo "e2e regression: all passed" || exit 1
