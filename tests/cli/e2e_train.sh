#!/usr/bin/env bash
# End-to-end: init -> train from scratch on a generated task, then the same run killed with
# SIGKILL part-way and resumed must end with byte-identical weights.
# Usage: e2e_train.sh MOEKIT_BINARY TEST_DATA_DIR
set -u
moekit=$1
source "$(dirname "$0")/lib.sh"  # $work (removed at exit), $failures, fail()
SECONDS=0

# The keyword task: the one colour word in each line is the label.
source "$(dirname "$0")/keyword_task.sh"
keyword_vocab "$work/vocab.txt"
keyword_data 800 1 >"$work/train.tsv"
keyword_data 200 2 >"$work/dev.tsv"
cat >"$work/config.json" <<JSON
{"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128,
 "max_position_embeddings": 64}
JSON
"$moekit" init --config "$work/config.json" --vocab "$work/vocab.txt" --labels-from "$work/train.tsv" --out "$work/init" >/dev/null || fail "init"

args=(--model "$work/init" --train "$work/train.tsv" --dev "$work/dev.tsv" --max-steps 400 --batch-size 16 --lr 1e-3
      --warmup-ratio 0.1 --save-every 10 --eval-every 50 --max-seq-len 32)
"$moekit" --threads 1 --quiet train "${args[@]}" --out "$work/straight" >"$work/straight.txt" || fail "train"
acc=$(awk '/best dev accuracy/ {print $4}' "$work/straight.txt")
awk -v a="$acc" 'BEGIN { exit !(a >= 0.9) }' || fail "dev accuracy $acc below 0.9 (chance 0.33)"

# bf16 (--precision bf16: bf16 matrix products, fp32 master weights): the same run reaches the
# fp32 run's dev accuracy within 1 point; a bf16 export runs on bf16 kernels in eval and bench.
"$moekit" --threads 1 --quiet train "${args[@]}" --precision bf16 --out "$work/bf16" >"$work/bf16.txt" || fail "train bf16"
acc16=$(awk '/best dev accuracy/ {print $4}' "$work/bf16.txt")
awk -v a="$acc" -v b="$acc16" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.01) }' \
  || fail "bf16 dev accuracy $acc16 is not within 1 point of fp32's $acc"
"$moekit" --quiet export --model "$work/straight" --dtype bf16 --out "$work/bf16.h5" >/dev/null || fail "export bf16"
"$moekit" --threads 1 eval --model "$work/bf16.h5" --data "$work/dev.tsv" --json >"$work/eval16.json" 2>/dev/null || fail "eval bf16"
acc_export=$(grep -o '"accuracy": [0-9.]*' "$work/eval16.json" | awk '{print $2}')
awk -v a="$acc" -v b="$acc_export" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.01) }' \
  || fail "the bf16 export's accuracy $acc_export is not within 1 point of $acc"
env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$moekit" --threads 1 bench --model "$work/straight" --model "$work/bf16.h5" --batch-size 4 --seq-len 16 --reps 1 --json \
  >"$work/bench.json" 2>/dev/null || fail "bench"
[ "$(grep -c '"precision": "bf16"' "$work/bench.json")" -eq 1 ] || fail "bench: the bf16 export should run bf16: $(cat "$work/bench.json")"
grep -q '"isa": ' "$work/bench.json" && grep -q '"gflops": ' "$work/bench.json" || fail "bench: no ISA or GFLOP/s"
# Idle OpenMP threads sleep by default (cli/omp_wait_policy.cpp); a user's choice is kept.
grep -q '"omp_wait_policy": "spin 10000"' "$work/bench.json" || fail "bench: OpenMP waiting should default to a 10000-iteration spin"
OMP_WAIT_POLICY=active "$moekit" --threads 1 bench --model "$work/straight" --batch-size 2 --seq-len 8 --reps 1 --json 2>/dev/null \
  | grep -q '"omp_wait_policy": "active"' || fail "bench: OMP_WAIT_POLICY=active was not kept"
"$moekit" --threads 1 bench --model "$work/straight" --precision bf16 --train --batch-size 4 --seq-len 16 --reps 1 --json \
  >"$work/bench16.json" 2>/dev/null && grep -q '"precision": "bf16"' "$work/bench16.json" || fail "bench --train --precision bf16"

# Kill at a few moments, each time resuming; at least one kill must land mid-run (a checkpoint
# exists and is not the last), or the test proves nothing.
latest_step() { ls "$work/killed/checkpoints" 2>/dev/null | grep '^step-' | sort | tail -1 | sed 's/step-0*//'; }
mid_run_kills=0
resume=()
for delay in 0.15 0.3 0.3 0.5 0.8; do
  "$moekit" --threads 1 --quiet train "${args[@]}" --out "$work/killed" "${resume[@]}" >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  step=$(latest_step)
  if [ -n "$step" ]; then
    resume=(--resume "$work/killed")
    [ "$step" -lt 400 ] && mid_run_kills=$((mid_run_kills + 1))
  fi
done
[ "$mid_run_kills" -ge 1 ] || fail "no kill landed mid-run (the run is too fast for this test)"
"$moekit" --threads 1 --quiet train "${args[@]}" --out "$work/killed" --resume "$work/killed" >/dev/null 2>"$work/resume.err" \
  || fail "resume: $(cat "$work/resume.err")"
grep -q "resuming from" "$work/resume.err" || fail "the last run did not resume"
cmp -s "$work/straight/checkpoints/step-00000400/params.safetensors" "$work/killed/checkpoints/step-00000400/params.safetensors" \
  || fail "final weights differ after kill + resume"
cmp -s "$work/straight/model.safetensors" "$work/killed/model.safetensors" || fail "best model differs after kill + resume"
cmp -s "$work/straight/metrics.jsonl" "$work/killed/metrics.jsonl" >/dev/null
[ "$(cut -d, -f1 "$work/straight/metrics.jsonl")" = "$(cut -d, -f1 "$work/killed/metrics.jsonl")" ] \
  || fail "metrics.jsonl steps differ after resume"

# Bad options fail before any work, with one line.
"$moekit" train "${args[@]}" --out "$work/bad" --lr -1 2>"$work/err" >/dev/null
[ $? -eq 1 ] && grep -q "lr must be" "$work/err" || fail "negative lr not refused: $(cat "$work/err")"
"$moekit" train "${args[@]}" --out "$work/bad" --dev "$work/none.tsv" 2>"$work/err" >/dev/null
[ $? -eq 1 ] && grep -q "none.tsv: no such file" "$work/err" || fail "missing dev not refused: $(cat "$work/err")"

[ "$failures" -eq 0 ] && echo "e2e_train: all checks passed"
exit $((failures > 0))
