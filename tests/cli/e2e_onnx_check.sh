#!/usr/bin/env bash
# End-to-end: `moekit onnx-check` runs an exported ONNX graph in ONNX Runtime (Node.js + npm
# onnxruntime-node) and holds its logits to moekit's; the recipe step of the same name puts the
# result in the report. Without Node.js it fails clearly, or warns and passes with
# --skip-if-missing; the rest skips (exit 77) where ONNX Runtime is absent.
# Usage: e2e_onnx_check.sh MOEKIT_BINARY TEST_DATA_DIR
set -u
moekit=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")  # the recipe run below cds
data=$2
source "$(dirname "$0")/lib.sh"  # $work (removed at exit), $failures, fail()

# bert_tiny (a Hugging Face model, logits of order 0.1-1) and an MoE split of it; texts in its
# vocabulary, of mixed lengths so batches pad.
tiny=$data/golden/bert_tiny
words=(the a movie film good bad great awful not very and but i we love hate fun boring story plot acting so)
labels=(neg neu pos)
{
  printf 'label\ttext\n'
  for i in $(seq 1 60); do
    line=""
    for j in $(seq 0 $((i % 11 + 1))); do line+="${words[$(((i * 7 + j * 13) % ${#words[@]}))]} "; done
    printf '%s\t%s\n' "${labels[$((i % 3))]}" "$line"
  done
} >"$work/test.tsv"
cp "$work/test.tsv" "$work/train.tsv"
cp "$tiny/vocab.txt" "$work/vocab.txt"
cp -r "$tiny" "$work/dense"
"$moekit" moefy --model "$work/dense" --experts 2 --expert-size 16 --router hash --method random \
  --out "$work/moe" >/dev/null 2>&1 || fail "moefy"

# Without node: one clear error, or with --skip-if-missing a warning, exit 0 and {"skipped": ...}.
"$moekit" export --model "$work/moe" --format onnx --dtype fp32 --out "$work/moe.onnx" >/dev/null 2>"$work/err" ||
  { echo "SKIP: this moekit cannot export ONNX: $(cat "$work/err")"; exit 77; }
no_node=(env PATH=/nonexistent "$moekit" onnx-check --model "$work/moe" --onnx "$work/moe.onnx" --data "$work/test.tsv")
"${no_node[@]}" >"$work/out" 2>"$work/err"
[ $? -eq 1 ] || fail "no node: expected exit 1"
grep -qx "moekit: error: onnx-check: node (Node.js) not found on PATH" "$work/err" || fail "no node: $(cat "$work/err")"
"${no_node[@]}" --skip-if-missing --json >"$work/out" 2>"$work/err" || fail "no node, --skip-if-missing: exit $?"
grep -q '"skipped": "node (Node.js) not found on PATH"' "$work/out" || fail "no node, --skip-if-missing: $(cat "$work/out")"
grep -q "warning: onnx-check skipped" "$work/err" || fail "no node, --skip-if-missing: no warning"

npm_dir=${MOEKIT_NPM_DIR:-$HOME/.cache/moekit-npm}
if ! command -v node >/dev/null || [ ! -d "$npm_dir/node_modules/onnxruntime-node" ]; then
  echo "SKIP: node or onnxruntime-node ($npm_dir) missing; tests/install_deps.sh installs them"
  [ $failures -eq 0 ] || exit 1
  exit 77
fi

# The MoE graph (hash routing in the graph) and the dense one each match their own model.
"$moekit" export --model "$work/dense" --format onnx --dtype fp32 --out "$work/dense.onnx" >/dev/null 2>&1 || fail "export dense"
for m in moe dense; do
  "$moekit" --threads 1 onnx-check --model "$work/$m" --onnx "$work/$m.onnx" --data "$work/test.tsv" --batch-size 7 \
    --json >"$work/$m.json" 2>"$work/err" || fail "$m: onnx-check: $(cat "$work/err")"
  grep -q '"passed": true' "$work/$m.json" || fail "$m: not passed: $(cat "$work/$m.json")"
  grep -q '"label_agreement": 1.0' "$work/$m.json" || fail "$m: labels disagree: $(cat "$work/$m.json")"
  grep -q '"examples": 60' "$work/$m.json" || fail "$m: example count: $(cat "$work/$m.json")"
done
# An int8 graph: logits are not compared (--tolerance 0), labels are.
"$moekit" export --model "$work/moe" --format onnx --dtype int8 --out "$work/moe-int8.onnx" >/dev/null 2>&1 || fail "export int8"
"$moekit" onnx-check --model "$work/moe" --onnx "$work/moe-int8.onnx" --data "$work/test.tsv" --tolerance 0 \
  --min-agreement 0.9 >/dev/null 2>"$work/err" || fail "int8: $(cat "$work/err")"
grep -q "tolerance off), labels agree" "$work/err" || fail "int8: $(cat "$work/err")"
# The wrong model for a graph: its logits differ, named with the tolerance.
"$moekit" onnx-check --model "$work/dense" --onnx "$work/moe.onnx" --data "$work/test.tsv" >/dev/null 2>"$work/err"
[ $? -eq 1 ] || fail "wrong model: expected exit 1"
grep -qE "^moekit: error: .*moe.onnx: differs from .*dense by .* in a logit, over --tolerance 0.0001$" "$work/err" ||
  fail "wrong model: $(cat "$work/err")"
# A file that is no ONNX model: ONNX Runtime's own error, on one line.
head -c 300 "$work/moe.onnx" >"$work/cut.onnx"
"$moekit" onnx-check --model "$work/moe" --onnx "$work/cut.onnx" --data "$work/test.tsv" >/dev/null 2>"$work/err"
[ $? -eq 1 ] || fail "truncated onnx: expected exit 1"
grep -q "cut.onnx: ONNX Runtime failed on it (exit 1)" "$work/err" || fail "truncated onnx: $(cat "$work/err")"

# The recipe step: export, check, then a report that shows the check.
cat >"$work/recipe.yaml" <<YAML
name: onnx
workdir: run
data: {train: train.tsv, dev: test.tsv, test: test.tsv}
vocab: vocab.txt
steps:
  - train: {model: dense, max-steps: 4, batch-size: 8, max-seq-len: 24, out: teacher}
  - moefy: {model: teacher, experts: 2, expert-size: 16, method: random, router: hash, out: moe}
  - export: {model: moe, format: onnx, dtype: fp32, out: moe.onnx}
  - onnx-check: {model: moe, onnx: moe.onnx, max-seq-len: 24}
  - report: {out: report.html}
YAML
(cd "$work" && "$moekit" --threads 1 run recipe.yaml >"$work/out" 2>"$work/err") || fail "recipe: $(tail -5 "$work/err")"
grep -q '"label_agreement": 1.0' "$work/run/onnx-check.json" || fail "recipe: check result: $(cat "$work/run/onnx-check.json")"
grep -q "<h2>ONNX Runtime: onnx-check</h2>" "$work/run/report.html" || fail "recipe: the report has no ONNX Runtime section"
grep -q "labels agree with moekit&#39;s on 100.00%\|labels agree with moekit's on 100.00%" "$work/run/report.html" ||
  fail "recipe: the report lacks the agreement: $(grep -A2 'ONNX Runtime:' "$work/run/report.html")"

[ $failures -eq 0 ] && echo "e2e_onnx_check: all checks passed"
[ $failures -eq 0 ]
