#!/usr/bin/env bash
# Data parallelism over MPI (mpirun -np 2, one thread per rank, on one machine):
# - train and distill on 2 ranks equal one process with --grad-accum 2 (same global batch):
#   final weights within 1e-6 relative, the same dev metrics, metrics.jsonl losses to round-off;
# - a rank killed mid-run ends the job non-zero within a bounded time, the last checkpoint stays
#   intact, and --resume completes to the uninterrupted run's weights (also on 1 rank with
#   --grad-accum 2, which keeps the global batch; a different global batch is refused);
# - importance on 2 ranks equals 1 rank within 1e-5 relative.
# Usage: e2e_mpi.sh MOEKIT_BINARY TEST_DATA_DIR COMPARE_FILES; exits 77 (skipped) without MPI.
set -u
moekit=$1
compare=$3
if ! command -v mpirun >/dev/null; then echo "SKIP: no mpirun (apt-get install openmpi-bin libopenmpi-dev)"; exit 77; fi
if ! "$moekit" --version | grep -q "MPI ("; then echo "SKIP: moekit was built without MPI (MOEKIT_MPI=OFF)"; exit 77; fi
# Open MPI refuses root unless told (containers, CI); one thread per rank on the 2-core machine.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
mpi=(mpirun -np 2 --oversubscribe --bind-to none)
source "$(dirname "$0")/lib.sh"  # $work (removed at exit), $failures, fail()
same_weights() {  # A B what: within 1e-6 relative; says whether bit-identical
  local r
  r=$("$compare" safetensors "$1" "$2" 1e-6) || fail "$3: weights differ: $r"
  echo "$3: $r"
}
# The loss columns of two metrics.jsonl files agree to float round-off (1e-6 relative), the dev
# metrics exactly, and the steps are the same.
same_metrics() {
  local keys='"(step|loss[a-z_]*|dev_[a-z_0-9]*)":[-0-9.e+]*'
  paste -d' ' <(grep -oE "$keys" "$1" | sed -E 's/"([a-z_0-9]+)":/\1 /') <(grep -oE "$keys" "$2" | sed -E 's/"([a-z_0-9]+)":/\1 /') |
    awk -v what="$3" '
    $1 != $3 { print "FAIL: " what ": metrics.jsonl keys differ: " $1 " vs " $3; bad = 1; exit }
    { d = $2 - $4; if (d < 0) d = -d; m = ($2 < 0 ? -$2 : $2);
      if ($1 ~ /^dev_|^step/ ? d != 0 : d > 1e-6 * m + 1e-12) { print "FAIL: " what ": " $1 " " $2 " vs " $4; bad = 1 } n++ }
    END { if (!bad && n < 4) { print "FAIL: " what ": too few metrics compared"; bad = 1 } exit bad }' || failures=$((failures + 1))
  [ "$(grep -c . "$1")" -eq "$(grep -c . "$2")" ] || fail "$3: metrics.jsonl line counts differ"
}

source "$(dirname "$0")/keyword_task.sh"
keyword_vocab "$work/vocab.txt"
keyword_data 160 1 >"$work/train.tsv"
keyword_data 50 2 >"$work/dev.tsv"
cat >"$work/config.json" <<JSON
{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
 "max_position_embeddings": 32, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}
JSON
"$moekit" init --config "$work/config.json" --vocab "$work/vocab.txt" --labels-from "$work/train.tsv" --out "$work/init" >/dev/null || fail "init"

# train: 2 ranks x --grad-accum 1 == 1 process x --grad-accum 2 (batches and dropout alike).
args=(--model "$work/init" --train "$work/train.tsv" --dev "$work/dev.tsv" --max-steps 24 --batch-size 8 --lr 2e-3
      --eval-every 8 --log-every 4 --save-every 4 --max-seq-len 24 --eval-batch-size 16)
"$moekit" --threads 1 --quiet train "${args[@]}" --grad-accum 2 --out "$work/one" >"$work/one.txt" 2>&1 || fail "train, 1 process: $(cat "$work/one.txt")"
"${mpi[@]}" "$moekit" --threads 1 --quiet train "${args[@]}" --out "$work/two" >"$work/two.txt" 2>"$work/two.err" \
  || fail "train, 2 ranks: $(cat "$work/two.err")"
grep -q "data-parallel: 2 ranks" "$work/two.err" || fail "train, 2 ranks: no data-parallel summary: $(cat "$work/two.err")"
same_weights "$work/one/checkpoints/step-00000024/params.safetensors" "$work/two/checkpoints/step-00000024/params.safetensors" "train"
same_metrics "$work/one/metrics.jsonl" "$work/two/metrics.jsonl" "train"
[ "$(grep -c '^steps' "$work/two.txt")" -eq 1 ] || fail "train, 2 ranks: stdout should hold rank 0's summary once: $(cat "$work/two.txt")"
grep -q '"world_size": 2' "$work/two/checkpoints/step-00000024/state.json" || fail "the checkpoint does not record the world size"

# distill: a gate-routed MoE student (load-balance loss, expert load in metrics.jsonl).
"$moekit" --quiet moefy --model "$work/one" --out "$work/student" --experts 2 --method random --router gate >/dev/null || fail "moefy"
dargs=(--teacher "$work/one" --student "$work/student" --train "$work/train.tsv" --dev "$work/dev.tsv" --max-steps 12
       --batch-size 8 --lr 1e-3 --eval-every 6 --log-every 3 --max-seq-len 24 --eval-batch-size 16)
"$moekit" --threads 1 --quiet distill "${dargs[@]}" --grad-accum 2 --out "$work/d1" >/dev/null 2>"$work/d1.err" || fail "distill, 1 process: $(cat "$work/d1.err")"
"${mpi[@]}" "$moekit" --threads 1 --quiet distill "${dargs[@]}" --out "$work/d2" >/dev/null 2>"$work/d2.err" \
  || fail "distill, 2 ranks: $(cat "$work/d2.err")"
same_weights "$work/d1/checkpoints/step-00000012/params.safetensors" "$work/d2/checkpoints/step-00000012/params.safetensors" "distill"
same_metrics "$work/d1/metrics.jsonl" "$work/d2/metrics.jsonl" "distill"
grep -q expert_load "$work/d2/metrics.jsonl" || fail "distill, 2 ranks: no expert load in metrics.jsonl"
[ "$(grep -o '"expert_load":[^a-z]*' "$work/d1/metrics.jsonl")" = "$(grep -o '"expert_load":[^a-z]*' "$work/d2/metrics.jsonl")" ] \
  || fail "distill: expert load differs"

# importance: 2 ranks == 1 rank (batches split over the ranks, scores summed).
"$moekit" --threads 1 --quiet importance --model "$work/one" --data "$work/train.tsv" --batch-size 8 --out "$work/imp1.h5" >/dev/null \
  || fail "importance, 1 process"
"${mpi[@]}" "$moekit" --threads 1 --quiet importance --model "$work/one" --data "$work/train.tsv" --batch-size 8 \
  --out "$work/imp2.h5" >"$work/imp2.txt" 2>&1 || fail "importance, 2 ranks: $(cat "$work/imp2.txt")"
r=$("$compare" importance "$work/imp1.h5" "$work/imp2.h5" 1e-5) || fail "importance: 2 ranks differ from 1: $r"
echo "importance: $r"

# Kill rank 1 mid-run (SIGKILL, as the OOM killer would): the job ends non-zero within 60 s, and
# the last checkpoint stays complete.
long=(--model "$work/init" --train "$work/train.tsv" --dev "$work/dev.tsv" --max-steps 400 --batch-size 8 --lr 2e-3
      --eval-every 100 --save-every 2 --max-seq-len 24)
"${mpi[@]}" "$moekit" --threads 1 --quiet train "${long[@]}" --out "$work/full" >/dev/null 2>&1 || fail "train 400 steps, 2 ranks"
"${mpi[@]}" "$moekit" --threads 1 --quiet train "${long[@]}" --out "$work/killed" >/dev/null 2>"$work/killed.err" &
launcher=$!
rank1=""
for _ in $(seq 600); do  # up to 60 s for rank 1 to write... its first steps (rank 0 writes checkpoints)
  if [ -z "$rank1" ]; then
    for p in $(pgrep -P "$launcher"); do grep -qz '^OMPI_COMM_WORLD_RANK=1$' "/proc/$p/environ" 2>/dev/null && rank1=$p; done
  fi
  [ -n "$rank1" ] && ls "$work/killed/checkpoints" 2>/dev/null | grep -q '^step-' && break
  sleep 0.1
done
if [ -n "$rank1" ]; then kill -9 "$rank1"; else fail "kill: rank 1 not found"; fi
ended=0
for _ in $(seq 600); do kill -0 "$launcher" 2>/dev/null || { ended=1; break; }; sleep 0.1; done
if [ "$ended" -eq 0 ]; then
  fail "the job still runs 60 s after rank 1 was killed"
  kill -9 "$launcher"
fi
wait "$launcher"
code=$?
last=$(ls "$work/killed/checkpoints" 2>/dev/null | grep '^step-' | sort | tail -1)
[ -n "$last" ] && [ -f "$work/killed/checkpoints/$last/DONE" ] || fail "no complete checkpoint after the kill"
if [ "$code" -eq 0 ]; then
  [ "$last" = step-00000400 ] && fail "the run ended before the kill (too fast for this test)" || fail "a killed rank left exit code 0"
fi
echo "killed rank 1: job exit code $code, last checkpoint $last"
# Resuming under 1 rank x --grad-accum 1 changes the global batch: refused with a hint.
"$moekit" --threads 1 --quiet train "${long[@]}" --out "$work/killed" --resume "$work/killed" >/dev/null 2>"$work/refused.err"
[ $? -eq 1 ] && grep -q "global batch must stay the same; hint: --grad-accum 2" "$work/refused.err" \
  || fail "a resume with another global batch was not refused: $(cat "$work/refused.err")"
# 1 rank x --grad-accum 2 keeps the global batch: continues for a few steps and says so...
cp -r "$work/killed" "$work/killed1"
"$moekit" --threads 1 --quiet train "${long[@]}" --grad-accum 2 --out "$work/killed1" --resume "$work/killed1" >/dev/null 2>"$work/one_rank.err" \
  || fail "resume on 1 rank x --grad-accum 2: $(cat "$work/one_rank.err")"
grep -q "the global batch is the same" "$work/one_rank.err" || fail "the world-size change was not reported: $(cat "$work/one_rank.err")"
same_weights "$work/full/checkpoints/step-00000400/params.safetensors" "$work/killed1/checkpoints/step-00000400/params.safetensors" \
  "resumed on 1 rank x --grad-accum 2"
# ...and the same world size continues exactly.
"${mpi[@]}" "$moekit" --threads 1 --quiet train "${long[@]}" --out "$work/killed" --resume "$work/killed" >/dev/null 2>"$work/resume.err" \
  || fail "resume on 2 ranks: $(cat "$work/resume.err")"
grep -q "resuming from" "$work/resume.err" || fail "the 2-rank run did not resume"
cmp -s "$work/full/checkpoints/step-00000400/params.safetensors" "$work/killed/checkpoints/step-00000400/params.safetensors" \
  || fail "kill + resume on 2 ranks: final weights are not the uninterrupted run's"
cmp -s "$work/full/model.safetensors" "$work/killed/model.safetensors" || fail "kill + resume on 2 ranks: best model differs"

# A rank that fails (here every rank: a file that is not a model) ends the job with its rank named.
"${mpi[@]}" "$moekit" --quiet train "${args[@]}" --model "$work/train.tsv" --out "$work/bad" >/dev/null 2>"$work/bad.err"
# Both ranks fail at once and their stderr lines may interleave, so look for the pieces, not one line.
status=$?
[ $status -ne 0 ] && grep -q "rank [01] of" "$work/bad.err" && grep -q "expected a model directory" "$work/bad.err" \
  || fail "a failing rank: $(cat "$work/bad.err")"
# A stuck rank (stopped, never reaching the collective) trips the watchdog instead of hanging.
MOEKIT_MPI_TIMEOUT=2 "${mpi[@]}" -x MOEKIT_MPI_TIMEOUT "$moekit" --threads 1 --quiet train "${long[@]}" --out "$work/stuck" >/dev/null 2>"$work/stuck.err" &
launcher=$!
# Stopped once training runs (its first checkpoint), so rank 0 waits in a collective, not in MPI_Init.
for _ in $(seq 600); do
  if ls "$work/stuck/checkpoints" 2>/dev/null | grep -q '^step-'; then
    for p in $(pgrep -P "$launcher"); do grep -qz '^OMPI_COMM_WORLD_RANK=1$' "/proc/$p/environ" 2>/dev/null && { kill -STOP "$p"; break 2; }; done
  fi
  sleep 0.05
done
ended=0
for _ in $(seq 600); do kill -0 "$launcher" 2>/dev/null || { ended=1; break; }; sleep 0.1; done
if [ "$ended" -eq 0 ]; then
  fail "a stopped rank hung the job for 60 s"
  for p in $(pgrep -P "$launcher"); do kill -9 "$p"; done
  kill -9 "$launcher"
fi
wait "$launcher"
code=$?
[ "$code" -ne 0 ] && grep -q "rank 0 of 2: MPI_.* waited .* for the other ranks" "$work/stuck.err" \
  || fail "a stuck rank: exit $code, $(cat "$work/stuck.err")"

[ "$failures" -eq 0 ] && echo "e2e_mpi: all checks passed"
exit $((failures > 0))
