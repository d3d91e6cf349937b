#!/usr/bin/env bash
# Data-parallel scaling on one machine (README "Data parallelism over MPI"): training tokens/s of
# 1 rank x 2 threads (--grad-accum 2) against 2 ranks x 1 thread (same global batch), and the
# share of the step in the gradient allreduce, for bench/README.md's "small" and "base" shapes
# (random weights, full 128-token examples). Prints numbers; it does not pass or fail.
# Usage: bench/mpi_scaling.sh MOEKIT [STEPS] [SHAPES]     e.g. bench/mpi_scaling.sh build/cli/moekit 6 "small base"
set -eu
moekit=$(realpath "$1")
steps=${2:-6}
shapes=${3:-small base}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
vocab_size=30522
{ printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n'; seq 0 $((vocab_size - 6)) | sed 's/^/w/'; } >"$work/vocab.txt"
data() {  # N SEED: two labels, 130 words per text (truncated to 128 tokens)
  awk -v n="$1" -v seed="$2" -v v=$((vocab_size - 5)) 'BEGIN { srand(seed); print "label\ttext";
    for (e = 0; e < n; e++) { line = ""; for (t = 0; t < 130; t++) line = line (t ? " " : "") "w" int(rand() * v);
      print (rand() < 0.5 ? "a" : "b") "\t" line } }'
}
data 512 1 >"$work/train.tsv"
data 8 2 >"$work/dev.tsv"
# Median tokens/s of the metrics.jsonl lines after the first (each line = one step: no evaluation
# or checkpoint inside those windows).
median_tps() {
  grep -o '"tokens_per_second":[0-9.e+]*' "$1" | sed 1d | cut -d: -f2 | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}
for shape in $shapes; do
  case $shape in
    small) cfg='"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024'; batch=32 ;;
    base) cfg='"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072'; batch=8 ;;
  esac
  echo "{$cfg, \"max_position_embeddings\": 512}" >"$work/$shape.json"
  "$moekit" --quiet init --config "$work/$shape.json" --vocab "$work/vocab.txt" --labels a,b --out "$work/$shape-init" >/dev/null
  args=(--model "$work/$shape-init" --train "$work/train.tsv" --dev "$work/dev.tsv" --max-steps "$steps"
        --batch-size $((batch / 2)) --eval-every 100000 --save-every 100000 --log-every 1 --max-seq-len 128)
  OMP_NUM_THREADS=2 "$moekit" --threads 2 --quiet train "${args[@]}" --grad-accum 2 --out "$work/$shape-1x2" >/dev/null
  mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 "$moekit" --threads 1 --quiet train "${args[@]}" \
    --out "$work/$shape-2x1" >/dev/null 2>"$work/$shape-2x1.err"
  one=$(median_tps "$work/$shape-1x2/metrics.jsonl")
  two=$(median_tps "$work/$shape-2x1/metrics.jsonl")
  echo "$shape: global batch $batch x 128 tokens, $steps steps; 1 rank x 2 threads: $one tokens/s; 2 ranks x 1 thread: $two tokens/s; ratio $(awk -v a="$two" -v b="$one" 'BEGIN { printf "%.2f", a / b }')"
  echo "$shape: $(grep '^data-parallel' "$work/$shape-2x1.err")"
done
