#!/usr/bin/env bash
# The whole test suite, as `.ci/run` and the README run it:
#   1. the Release build (-Werror) and every test (unit + end-to-end), in build/;
#   2. a clang ASan + UBSan build in build-asan/ (MOEKIT_SANITIZE, plus MOEKIT_FUZZ so the same
#      instrumented libraries give the fuzz targets): the unit tests under the sanitizers, then
#      each fuzz target over its committed corpus for a few seconds (fuzz/run.sh).
# The end-to-end scripts run only in step 1: they measure nothing a sanitizer adds to, and one of
# them runs under a memory ulimit that ASan's shadow memory cannot fit in.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install_deps.sh
# ctest -j2 runs two multi-threaded tests at once on 2 cores: OpenMP threads that spin at barriers
# would burn the time slices their partners need (the moekit binary itself spins only briefly).
export OMP_WAIT_POLICY=passive
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMOEKIT_WERROR=ON
cmake --build build -j2
ctest --test-dir build -j2 --output-on-failure

# -O1 and line tables: the usual fuzzing build, and it compiles in half the time of -O2 -g.
# No CLI in it (MOEKIT_CLI=OFF): only the unit tests and fuzz targets run there, and the serve
# test's reference predictions come from the Release binary.
CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" -DMOEKIT_SANITIZE=ON -DMOEKIT_FUZZ=ON \
  -DMOEKIT_CLI=OFF -DMOEKIT_BINARY="$PWD/build/cli/moekit"
cmake --build build-asan -j2
ctest --test-dir build-asan -j2 --output-on-failure -E '^e2e_'
fuzz/run.sh all "${MOEKIT_FUZZ_SECONDS:-5}" build-asan
