#!/usr/bin/env bash
# A recipe step with `launcher: {mpirun: {np: 2}}` really runs on 2 ranks (not only in a dry run):
# `moekit run` starts the train step under mpirun, the step reports 2 ranks and its checkpoint
# records world size 2, and its weights and losses equal the same step run without a launcher
# and with --grad-accum 2 (the same global batch), bit for bit.
# Usage: e2e_mpi_launcher.sh MOEKIT_BINARY TEST_DATA_DIR COMPARE_FILES; exits 77 (skipped) without MPI.
set -u
moekit=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")  # the run below cd's
compare=$3
if ! command -v mpirun >/dev/null; then echo "SKIP: no mpirun (apt-get install openmpi-bin libopenmpi-dev)"; exit 77; fi
if ! "$moekit" --version | grep -q "MPI ("; then echo "SKIP: moekit was built without MPI (MOEKIT_MPI=OFF)"; exit 77; fi
# Open MPI refuses root unless told (containers, CI): the runner passes its environment on to mpirun.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
unset MOEKIT_LAUNCHER  # only the step's own launcher
source "$(dirname "$0")/lib.sh"  # $work (removed at exit), $failures, fail()

source "$(dirname "$0")/keyword_task.sh"
keyword_vocab "$work/vocab.txt"
keyword_data 96 1 >"$work/train.tsv"
keyword_data 24 2 >"$work/dev.tsv"
cat >"$work/config.json" <<JSON
{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
 "max_position_embeddings": 32, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}
JSON
"$moekit" init --config "$work/config.json" --vocab "$work/vocab.txt" --labels-from "$work/train.tsv" --out "$work/init" >/dev/null \
  || { echo "FAIL: init"; exit 1; }
cat >"$work/recipe.yaml" <<YAML
name: launched
workdir: run
data: {train: train.tsv, dev: dev.tsv}
steps:
  - train: {model: init, max-steps: 6, batch-size: 8, lr: 2e-3, eval-every: 3, log-every: 2, max-seq-len: 24, out: two,
            launcher: {mpirun: {np: 2, args: [--oversubscribe, --bind-to, none]}}}
  - train: {model: init, max-steps: 6, batch-size: 8, lr: 2e-3, eval-every: 3, log-every: 2, max-seq-len: 24, out: one,
            grad-accum: 2}
YAML

(cd "$work" && "$moekit" --threads 1 run recipe.yaml) >"$work/out.txt" 2>&1 || fail "moekit run: $(tail -5 "$work/out.txt")"
run=$work/run
grep -q '^    \$ mpirun -np 2 .* train ' "$work/out.txt" || fail "the step was not started under mpirun: $(grep '\$ ' "$work/out.txt")"
# One data-parallel summary (rank 0's, of the launched step; the other step runs alone).
[ "$(grep -c "data-parallel: 2 ranks" "$run/run.log")" -eq 1 ] || fail "expected one 2-rank step in run.log: $(grep -i "data-parallel\|\\$ " "$run/run.log")"
two=$run/two/checkpoints/step-00000006
one=$run/one/checkpoints/step-00000006
grep -q '"world_size": 2' "$two/state.json" || fail "the launched step's checkpoint does not say world size 2: $(cat "$two/state.json")"
grep -q '"world_size": 1' "$one/state.json" || fail "the step without a launcher does not say world size 1"
r=$("$compare" safetensors "$one/params.safetensors" "$two/params.safetensors" 0) || fail "weights differ: $r"
echo "launched on 2 ranks vs 1 process x --grad-accum 2: $r"
# The same losses and dev metrics, line by line (timings and allreduce_wait aside).
losses() { grep -oE '"(step|loss[a-z_]*|dev_[a-z_0-9]*)":[-0-9.e+]*' "$1"; }
[ "$(losses "$run/one/metrics.jsonl" | wc -l)" -ge 6 ] || fail "too few metrics logged: $(cat "$run/one/metrics.jsonl")"
[ "$(losses "$run/one/metrics.jsonl")" = "$(losses "$run/two/metrics.jsonl")" ] || fail "metrics.jsonl losses differ"
grep -q allreduce_wait "$run/two/metrics.jsonl" || fail "no allreduce_wait in the 2-rank metrics.jsonl"

[ "$failures" -eq 0 ] && echo "e2e_mpi_launcher: all checks passed"
exit $((failures > 0))
