#!/usr/bin/env bash
# Runs one libFuzzer target (or all) for a fixed time over its committed seed corpus.
#   fuzz/run.sh TARGET|all SECONDS [BUILD_DIR]      e.g. fuzz/run.sh safetensors 600
# TARGET: safetensors config vocab dataset recipe compact importance tokenizer. BUILD_DIR (default build-asan,
# the sanitizer build of tests/run_all.sh) is configured and built here when it has no fuzz
# binaries yet: CC=clang CXX=clang++ cmake -S . -B BUILD_DIR -DMOEKIT_FUZZ=ON -DMOEKIT_TESTS=OFF
# New inputs go to BUILD_DIR/corpus/TARGET (fuzz/corpus/TARGET, the seeds, is only read), crashes
# to BUILD_DIR/crashes/TARGET/. Exit status: non-zero when a target found a crash, leak or timeout.
# Limits: 10 s per input, 2 GB RSS, 1 GB per allocation (a bigger one is a finding).
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(safetensors config vocab dataset recipe compact importance tokenizer)
[ $# -ge 2 ] || { echo "usage: fuzz/run.sh TARGET|all SECONDS [BUILD_DIR]" >&2; exit 2; }
which=$1 seconds=$2 build=${3:-build-asan}
[ "$which" = all ] && list=("${targets[@]}") || list=("$which")
if [ ! -x "$build/fuzz/fuzz_${list[0]}" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" -DMOEKIT_FUZZ=ON -DMOEKIT_TESTS=OFF >/dev/null
  cmake --build "$build" -j2 --target "${targets[@]/#/fuzz_}"
fi
status=0
for t in "${list[@]}"; do
  [ -d "fuzz/corpus/$t" ] || { echo "unknown fuzz target '$t' (${targets[*]})" >&2; exit 2; }
  mkdir -p "$build/corpus/$t" "$build/crashes/$t"
  echo "== fuzz_$t for ${seconds}s"
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    "$build/fuzz/fuzz_$t" "$build/corpus/$t" "fuzz/corpus/$t" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -artifact_prefix="$build/crashes/$t/" -print_final_stats=1 \
    2>"$build/fuzz_$t.log" || { status=1; echo "fuzz_$t: FOUND A PROBLEM, see $build/fuzz_$t.log"; tail -30 "$build/fuzz_$t.log"; }
  grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$build/fuzz_$t.log" | tr '\n' ' '
  echo "corpus: $(ls "$build/corpus/$t" | wc -l) new + $(ls "fuzz/corpus/$t" | wc -l) seeds"
done
exit $status
