#!/usr/bin/env bash
# End-to-end on DistilBERT (model_type distilbert, DistilBertConfig's keys): the golden fixture
# through inspect/eval/predict; then init -> pretrain (MLM head vocab_*) -> train -> importance ->
# moefy -> distill -> export (HDF5 int8, safetensors) -> eval / predict / serve of the exports ->
# ONNX export checked in ONNX Runtime (that part only where Node.js and onnxruntime-node are).
# Usage: e2e_distilbert.sh MOEKIT_BINARY TEST_DATA_DIR
set -u
moekit=$1
data=$2
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
run() { "$moekit" --threads 1 --quiet "$@"; }
source "$(dirname "$0")/keyword_task.sh"

# The golden DistilBERT: inspect names it; predict from text gives the fixture's logits (texts and
# logits of golden.json's three sequences, the first a pair).
golden=$data/golden/distilbert_tiny
run inspect "$golden" --json >"$work/inspect.json" || fail "inspect"
grep -q '"model_type": "distilbert"' "$work/inspect.json" || fail "inspect: $(head -c 300 "$work/inspect.json")"
printf 'label\ttext\ttext_pair\nneg\tThe Movie was GREAT!\tWe watched twice\nneg\tthis film is not very fun\t\npos\tso boring.\t\n' \
  >"$work/golden.tsv"
run predict --model "$golden" --data "$work/golden.tsv" --out "$work/golden.jsonl" 2>/dev/null || fail "predict golden"
sed -n 's/.*"logits":\[\(.*\)\]}$/\1/p' "$work/golden.jsonl" >"$work/got.txt"
sed -n '/"logits": \[/,/\]$/p' "$golden/golden.json" | sed -n 's/^ *\[\(.*\)\],\{0,1\}$/\1/p' >"$work/want.txt"
paste -d, "$work/got.txt" "$work/want.txt" | awk -F, '
  NF != 6 { bad = 1 } { for (i = 1; i <= 3; i++) { d = $i - $(i + 3); if (d < 0) d = -d; if (d > 1e-5) bad = 1 } }
  END { exit !(NR == 3 && !bad) }' || fail "predict on the golden fixture: $(cat "$work/golden.jsonl") vs $(cat "$work/want.txt")"

# A DistilBERT from its own config keys; written back with them.
keyword_vocab "$work/vocab.txt"
keyword_data 800 1 >"$work/train.tsv"
keyword_data 200 2 >"$work/dev.tsv"
printf '{"model_type": "distilbert", "dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 64, "max_position_embeddings": 32, "seq_classif_dropout": 0.1}\n' \
  >"$work/config.json"
run init --config "$work/config.json" --vocab "$work/vocab.txt" --labels-from "$work/train.tsv" --out "$work/init" >/dev/null ||
  fail "init"
grep -q '"dim": 32' "$work/init/config.json" && ! grep -q '"hidden_size"' "$work/init/config.json" ||
  fail "init: config.json should use DistilBERT's keys: $(cat "$work/init/config.json")"
grep -q '"DistilBertTokenizer"' "$work/init/tokenizer_config.json" || fail "init: tokenizer_config.json"

run pretrain --model "$work/init" --train "$work/train.tsv" --dev "$work/dev.tsv" --max-steps 10 --batch-size 16 \
  --max-seq-len 24 --out "$work/pretrained" >/dev/null 2>&1 || fail "pretrain"
"$moekit" inspect "$work/pretrained" --json 2>/dev/null | grep -q '"model_type": "distilbert"' || fail "inspect pretrained"
common=(--train "$work/train.tsv" --dev "$work/dev.tsv" --batch-size 16 --lr 1e-3 --warmup-ratio 0.1 --max-seq-len 24
        --eval-every 100)
"$moekit" --threads 1 train --model "$work/pretrained" "${common[@]}" --max-steps 300 --out "$work/teacher" \
  >"$work/teacher.txt" 2>"$work/teacher.err" || fail "train: $(tail -3 "$work/teacher.err")"
grep -q "dropped its MLM head (vocab_\*)" "$work/teacher.err" || fail "train from the pretrained model: $(head -5 "$work/teacher.err")"
acc=$(awk '/best dev accuracy/ {print $4}' "$work/teacher.txt")
awk -v a="$acc" 'BEGIN { exit !(a >= 0.9) }' || fail "teacher dev accuracy '$acc' below 0.9 (chance 0.33)"

run importance --model "$work/teacher" --data "$work/train.tsv" --max-seq-len 24 --out "$work/imp.h5" >/dev/null || fail "importance"
run moefy --model "$work/teacher" --importance "$work/imp.h5" --experts 2 --expert-size 32 --shared 8 --out "$work/student" \
  >/dev/null || fail "moefy"
grep -q '"dim": 32' "$work/student/config.json" && grep -q '"moe"' "$work/student/config.json" || fail "moefy: config.json"
run distill --teacher "$work/teacher" --student "$work/student" "${common[@]}" --max-steps 200 --out "$work/moe" \
  >"$work/distill.txt" || fail "distill"
acc_moe=$(awk '/best dev accuracy/ {print $4}' "$work/distill.txt")
awk -v a="$acc_moe" 'BEGIN { exit !(a >= 0.85) }' || fail "distilled MoE dev accuracy '$acc_moe' below 0.85"

run export --model "$work/moe" --dtype int8 --out "$work/moe-int8.h5" >/dev/null || fail "export int8"
run export --model "$work/moe" --format safetensors --dtype fp32 --out "$work/moe.safetensors" >/dev/null || fail "export safetensors"
for m in moe-int8.h5 moe.safetensors; do
  run eval --model "$work/$m" --data "$work/dev.tsv" --json >"$work/eval.json" || fail "eval $m"
  acc_export=$(grep -o '"accuracy": [0-9.]*' "$work/eval.json" | awk '{print $2}')
  awk -v a="$acc_export" -v b="$acc_moe" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.02) }' ||
    fail "eval $m: accuracy '$acc_export' is not within 2 points of the MoE's $acc_moe"
done
run predict --model "$work/moe-int8.h5" --data "$work/dev.tsv" --out "$work/pred.jsonl" 2>/dev/null || fail "predict"
[ "$(grep -c '"label":' "$work/pred.jsonl")" -eq 200 ] || fail "predict: not one label per example"

"$moekit" --threads 1 serve --model "$work/moe-int8.h5" --port 0 --log-level info 2>"$work/serve.log" &
pid=$!
port=""
for _ in $(seq 300); do
  port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/serve.log" 2>/dev/null)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ -n "$port" ]; then
  out=$(curl -s --max-time 20 "http://127.0.0.1:$port/predict" -H 'Content-Type: application/json' -d '{"inputs": "w1 green w2 w3"}')
  echo "$out" | grep -q '"label":"green"' || fail "serve /predict: $out"
else
  fail "serve did not start: $(cat "$work/serve.log")"
fi
kill -TERM "$pid" 2>/dev/null
wait "$pid" || fail "serve exited non-zero after SIGTERM"
pid=""

# A config moekit cannot run: one line naming the file.
sed 's/"sinusoidal_pos_embds": false/"sinusoidal_pos_embds": true/' "$work/teacher/config.json" >"$work/bad.json"
mkdir -p "$work/bad" && cp "$work/teacher/model.safetensors" "$work/bad/" && mv "$work/bad.json" "$work/bad/config.json"
"$moekit" eval --model "$work/bad" --data "$work/dev.tsv" >/dev/null 2>"$work/err"
[ $? -eq 1 ] && [ "$(wc -l <"$work/err")" -eq 1 ] &&
  grep -q "^moekit: error: .*bad/config.json: sinusoidal_pos_embds: true is not supported" "$work/err" ||
  fail "sinusoidal config: $(cat "$work/err")"

# ONNX: a graph without token_type_ids, held to moekit's logits by ONNX Runtime.
npm_dir=${MOEKIT_NPM_DIR:-$HOME/.cache/moekit-npm}
if "$moekit" export --model "$work/moe" --format onnx --dtype fp32 --out "$work/moe.onnx" >/dev/null 2>"$work/err"; then
  if command -v node >/dev/null && [ -d "$npm_dir/node_modules/onnxruntime-node" ]; then
    run onnx-check --model "$work/moe" --onnx "$work/moe.onnx" --data "$work/dev.tsv" --json >"$work/onnx.json" ||
      fail "onnx-check"
    grep -q '"passed": true' "$work/onnx.json" && grep -q '"label_agreement": 1.0' "$work/onnx.json" ||
      fail "onnx-check: $(cat "$work/onnx.json")"
  else
    echo "SKIP (ONNX Runtime part): node or onnxruntime-node ($npm_dir) missing; tests/install_deps.sh installs them"
  fi
else
  echo "SKIP (ONNX part): this moekit cannot export ONNX: $(cat "$work/err")"
fi

[ "$failures" -eq 0 ] && echo "e2e distilbert: all passed" || exit 1
