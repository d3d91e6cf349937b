#!/usr/bin/env bash
# End-to-end Go-Wider: a 4-layer teacher trained on a keyword task, moefy'd into 2 sharing groups
# (one MoE FFN and one attention per group, LayerNorms per layer), then distilled. inspect must
# report fewer unique than as-unshared parameters, the checkpoint must store no tensor of a
# group's later layer except its LayerNorms, the student must learn the task, and its int8
# export must predict.
# Usage: e2e_sharing.sh MOEKIT_BINARY TEST_DATA_DIR
set -u
moekit=$1
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT; echo "work $work"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# The keyword task: the one colour word in each line is the label.
source "$(dirname "$0")/keyword_task.sh"
keyword_vocab "$work/vocab.txt"
keyword_data 800 1 >"$work/train.tsv"
keyword_data 200 2 >"$work/dev.tsv"
cat >"$work/config.json" <<JSON
{"hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 128,
 "max_position_embeddings": 64}
JSON
run() { "$moekit" --threads 1 --quiet "$@"; }
run init --config "$work/config.json" --vocab "$work/vocab.txt" --labels-from "$work/train.tsv" --out "$work/init" >/dev/null || fail "init"
common=(--train "$work/train.tsv" --dev "$work/dev.tsv" --batch-size 16 --lr 1e-3 --warmup-ratio 0.1 --max-seq-len 32)
run train --model "$work/init" "${common[@]}" --max-steps 400 --out "$work/teacher" >"$work/teacher.txt" || fail "train teacher"
run importance --model "$work/teacher" --data "$work/train.tsv" --max-seq-len 32 --out "$work/imp.h5" >/dev/null || fail "importance"
run moefy --model "$work/teacher" --importance "$work/imp.h5" --experts 4 --expert-size 32 --shared 16 \
  --share-groups 0-1,2-3 --share-attention mean --top-k 2 --out "$work/student" >"$work/moefy.txt" || fail "moefy"
grep -q "shared: 2 groups" "$work/moefy.txt" || fail "moefy did not report the groups: $(cat "$work/moefy.txt")"

run inspect --json "$work/student" >"$work/inspect.json" || fail "inspect"
unique=$(grep -o '"total": [0-9]*' "$work/inspect.json" | head -1 | grep -o '[0-9]*$')
unshared=$(grep -o '"as_unshared": [0-9]*' "$work/inspect.json" | grep -o '[0-9]*$')
[ -n "$unique" ] && [ -n "$unshared" ] && [ "$unique" -lt "$unshared" ] || fail "inspect: unique $unique, as unshared $unshared"
run inspect "$work/student" | grep -q "layers 0+1 2+3: one MoE FFN and one attention per group" || fail "inspect: no sharing row"
# Stored once: nothing of layers 1 and 3 but their LayerNorms.
names=$(head -c 8 "$work/student/model.safetensors" >/dev/null; grep -ao '"bert\.encoder\.layer\.[13]\.[^"]*"' "$work/student/model.safetensors" | sort -u)
[ -n "$names" ] || fail "no tensors of layers 1 and 3 found"
echo "$names" | grep -v 'LayerNorm' && fail "a shared tensor of layer 1 or 3 is stored twice"

run distill --teacher "$work/teacher" --student "$work/student" "${common[@]}" --max-steps 400 --out "$work/moe" >"$work/distill.txt" || fail "distill"
acc=$(awk '/best dev accuracy/ {print $4}' "$work/distill.txt")
awk -v a="$acc" 'BEGIN { exit !(a >= 0.9) }' || fail "distilled shared student: dev accuracy '$acc' below 0.9 (chance 0.33)"
run export --model "$work/moe" --dtype int8 --out "$work/moe-int8.h5" >/dev/null || fail "export"
run eval --model "$work/moe-int8.h5" --data "$work/dev.tsv" --json >"$work/eval.json" || fail "eval of the int8 export"
# --prune with data: the shared FFNs' usage is reported and unused experts (if any) removed.
run export --model "$work/moe" --prune --data "$work/dev.tsv" --out "$work/pruned.h5" >"$work/prune.txt" || fail "export --prune"
grep -Eq "pruned (no expert|[0-9]+ parameters)" "$work/prune.txt" || fail "export --prune: $(cat "$work/prune.txt")"
run predict --model "$work/pruned.h5" --data "$work/dev.tsv" --out "$work/pred.jsonl" >/dev/null || fail "predict with the pruned export"
grep -q '"accuracy"' "$work/eval.json" || fail "eval json: $(cat "$work/eval.json")"

[ "$failures" -eq 0 ] && echo "e2e sharing: all passed" || exit 1
