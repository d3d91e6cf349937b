#!/usr/bin/env bash
# End-to-end issue-19 options on a tiny untrained model (seconds): moefy --shared-mode tied with a
# fitted gate (--fit-router), --method upcycle and --router gate-sentence; distill with
# --capacity-factor and --router-jitter (drop_rate in metrics.jsonl); export --merge-experts and
# --prune-experts; bench's batch-1 latency; the tied model's tensors stored once.
# Usage: e2e_beyond.sh MOEKIT_BINARY TEST_DATA_DIR
set -u
moekit=$1
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT; echo "work $work"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

source "$(dirname "$0")/keyword_task.sh"
keyword_vocab "$work/vocab.txt"
keyword_data 200 1 >"$work/train.tsv"
keyword_data 60 2 >"$work/dev.tsv"
cat >"$work/config.json" <<JSON
{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
 "max_position_embeddings": 64}
JSON
run() { "$moekit" --threads 1 --quiet "$@"; }
run init --config "$work/config.json" --vocab "$work/vocab.txt" --labels-from "$work/train.tsv" --out "$work/dense" >/dev/null || fail "init"
run importance --model "$work/dense" --data "$work/train.tsv" --max-seq-len 32 --out "$work/imp.h5" >/dev/null || fail "importance"

run moefy --model "$work/dense" --importance "$work/imp.h5" --experts 4 --expert-size 16 --shared 8 --shared-mode tied \
  --router gate --top-k 2 --fit-router "$work/train.tsv" --out "$work/tied" >"$work/moefy.txt" || fail "moefy tied"
grep -q "8 shared, tied" "$work/moefy.txt" || fail "moefy tied: $(cat "$work/moefy.txt")"
grep -q "router fit: layer 1" "$work/moefy.txt" || fail "moefy --fit-router: $(cat "$work/moefy.txt")"
grep -q '"shared_mode": "tied"' "$work/tied/config.json" || fail "config without shared_mode"
names=$(grep -ao '"bert\.encoder\.layer\.0\.moe\.shared_expert\.[^"]*"' "$work/tied/model.safetensors" | sort -u | wc -l)
[ "$names" -eq 5 ] || fail "expected the shared FFN's 4 tensors + neuron_index once, found $names names"

common=(--train "$work/train.tsv" --dev "$work/dev.tsv" --batch-size 16 --max-seq-len 32 --max-steps 6 --log-every 2)
run distill --teacher "$work/dense" --student "$work/tied" "${common[@]}" --capacity-factor 0.5 --router-jitter 0.1 \
  --out "$work/tied-moe" >/dev/null || fail "distill with capacity"
grep -q '"drop_rate"' "$work/tied-moe/metrics.jsonl" || fail "metrics.jsonl without drop_rate"
run distill --teacher "$work/dense" --student "$work/tied" "${common[@]}" --capacity-factor -1 --out "$work/bad" \
  >/dev/null 2>"$work/bad.txt" && fail "a negative --capacity-factor was accepted"
grep -q "capacity-factor" "$work/bad.txt" || fail "capacity error: $(cat "$work/bad.txt")"

run moefy --model "$work/dense" --method upcycle --router gate --top-k 2 --experts 2 --out "$work/up" >/dev/null || fail "moefy upcycle"
run moefy --model "$work/dense" --method random --shared 0 --expert-size 16 --router gate-sentence --out "$work/sent" \
  >/dev/null || fail "moefy gate-sentence"
run bench --model "$work/dense" --model "$work/sent" --batch-size 4 --seq-len 16 --reps 1 --json >"$work/bench.json" || fail "bench"
grep -q '"batch1_latency_ms"' "$work/bench.json" || fail "bench without batch-1 latency"

run export --model "$work/tied-moe" --data "$work/dev.tsv" --merge-experts 2 --out "$work/merged.h5" >"$work/merge.txt" \
  || fail "export --merge-experts"
grep -q "merged (MC-SMoE) to 2 experts" "$work/merge.txt" || fail "merge: $(cat "$work/merge.txt")"
run export --model "$work/tied-moe" --data "$work/dev.tsv" --prune-experts 2 --criterion usage --out "$work/pruned.h5" \
  >"$work/prune.txt" || fail "export --prune-experts"
grep -q "pruned by usage to 2 experts" "$work/prune.txt" || fail "prune: $(cat "$work/prune.txt")"
for f in merged.h5 pruned.h5; do
  run eval --model "$work/$f" --data "$work/dev.tsv" --json | grep -q '"accuracy"' || fail "eval of $f"
done

[ "$failures" -eq 0 ] && echo "e2e beyond MoEBERT: all passed" || exit 1
