#!/usr/bin/env bash
# How much of a data-parallel training step waits on the allreduce, with the gradient buckets
# started during the backward (the default) and after it (MOEKIT_ALLREDUCE_OVERLAP=0): 2 ranks x
# 1 thread, bench/README.md's "small" and "base" shapes (random weights, full 128-token examples).
# The two modes alternate, REPS times each, so a busy machine hits both alike. Per run: the median
# over the steps after the first of metrics.jsonl's allreduce_wait (share of the step time blocked
# in the step's allreduces), of its gradient_wait (the part after the ranks met, i.e. without
# waiting for a slower rank: the reduction the backward did not hide) and of tokens/s.
# Prints numbers; it does not pass or fail.
# Usage: bench/allreduce_overlap.sh MOEKIT [STEPS] [SHAPES] [REPS]   e.g. ... build/cli/moekit 8 "small base" 2
# Shape overrides: SMALL_BATCH (default 16) and BASE_BATCH (default 2) examples per rank.
set -eu
moekit=$(realpath "$1")
steps=${2:-8}
shapes=${3:-small base}
reps=${4:-2}
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
data 4 2 >"$work/dev.tsv"
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
field() { grep -o "\"$2\":[0-9.e+-]*" "$1" | sed 1d | cut -d: -f2 | median; }  # FILE KEY: median after step 1
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; Open MPI $(mpirun --version | head -1 | grep -o '[0-9.]*$')"
for shape in $shapes; do
  case $shape in
    small) cfg='"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024'; batch=${SMALL_BATCH:-16} ;;
    base) cfg='"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072'; batch=${BASE_BATCH:-2} ;;
  esac
  echo "{$cfg, \"max_position_embeddings\": 512}" >"$work/$shape.json"
  "$moekit" --quiet init --config "$work/$shape.json" --vocab "$work/vocab.txt" --labels a,b --out "$work/$shape-init" >/dev/null
  args=(--model "$work/$shape-init" --train "$work/train.tsv" --dev "$work/dev.tsv" --max-steps "$steps"
        --batch-size "$batch" --eval-every 100000 --save-every 100000 --log-every 1 --max-seq-len 128)
  for rep in $(seq "$reps"); do
    for overlap in 0 1; do
      out=$work/$shape-$overlap-$rep
      mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -x MOEKIT_ALLREDUCE_OVERLAP=$overlap \
        "$moekit" --threads 1 --quiet train "${args[@]}" --out "$out" >/dev/null 2>"$out.err"
      echo "$shape (batch $batch x 128 per rank, $steps steps) overlap=$overlap run $rep:" \
        "allreduce_wait $(field "$out/metrics.jsonl" allreduce_wait), of it after the ranks met" \
        "$(field "$out/metrics.jsonl" gradient_wait), tokens/s $(field "$out/metrics.jsonl" tokens_per_second)"
      echo "  $(grep '^data-parallel' "$out.err")"
      rm -rf "$out"  # base: 1.3 GB of checkpoint per run
    done
  done
done
