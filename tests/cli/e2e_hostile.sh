#!/usr/bin/env bash
# End-to-end: hostile and broken input files (issue 14). Each case must give exactly one clear
# stderr line and exit 1: never a crash, a hang, raw bytes on the terminal or a huge allocation.
# Usage: e2e_hostile.sh MOEKIT_BINARY TEST_DATA_DIR
set -u
moekit=$1
data=$2
source "$(dirname "$0")/lib.sh"  # $work (removed at exit), $failures, fail()

# expect_error PHRASE -- command...: exit 1, exactly one stderr line, phrase in it.
expect_error() {
  local phrase=$1
  shift 2
  "$@" >"$work/out" 2>"$work/err"
  local got=$?
  [ "$got" -eq 1 ] || fail "$*: exit $got, expected 1 ($(head -c 300 "$work/err"))"
  [ "$(wc -l <"$work/err")" -eq 1 ] || fail "$*: expected one stderr line, got: $(head -c 600 "$work/err")"
  grep -qF -- "$phrase" "$work/err" || fail "$*: stderr lacks '$phrase': $(head -c 300 "$work/err")"
}
# The last stderr is printable ASCII/valid UTF-8 without control bytes (tab and newline aside).
expect_clean_stderr() {
  LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$work/err" && fail "$1: control bytes reached stderr"
  iconv -f UTF-8 -t UTF-8 "$work/err" >/dev/null 2>&1 || fail "$1: stderr is not valid UTF-8"
}
# set_byte FILE OFFSET OCTAL: overwrites one byte in place.
set_byte() { printf "\\$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

tiny=$data/golden/bert_tiny

# 1. Bytes of a corrupt file are escaped in the message: the safetensors header's first tensor
#    name (byte 45, inside "bert.embeddings...") set to 0x82 (invalid UTF-8), then to ESC.
mkdir "$work/flip" && cp "$tiny"/* "$work/flip/"
set_byte "$work/flip/model.safetensors" 45 202
expect_error '\x82'"'"'; expected string literal' -- "$moekit" inspect "$work/flip"
expect_clean_stderr "flipped safetensors byte 0x82"
set_byte "$work/flip/model.safetensors" 45 033
expect_error "malformed JSON header" -- "$moekit" inspect "$work/flip"
expect_clean_stderr "flipped safetensors byte ESC"

# 2. Absurd sizes in config.json are refused by name before any large allocation. The commands
#    run under a 2 GB address-space limit: had moekit allocated first it would die of "out of
#    memory" (the issue's symptom) instead of naming the field. The unmodified model passes
#    under the same limit, so the limit alone does not make the checks fail.
limited() { (ulimit -v 2000000 && "$@"); }
limited "$moekit" inspect "$tiny" >/dev/null 2>"$work/err" || fail "inspect of the tiny model under the memory limit: $(cat "$work/err")"
config_case() {  # config_case NAME SED-EXPRESSION PHRASE
  mkdir -p "$work/$1" && cp "$tiny"/* "$work/$1/"
  sed -i "$2" "$work/$1/config.json"
  expect_error "$3" -- limited "$moekit" inspect "$work/$1"
}
config_case layers 's/"num_hidden_layers": 2/"num_hidden_layers": 100000000/' \
  "config.json: num_hidden_layers = 100000000 is larger than moekit allows"
config_case hidden 's/"hidden_size": 16/"hidden_size": 1048576/' "config.json: hidden_size = 1048576 is larger than moekit allows"
config_case vocab 's/"vocab_size": 64/"vocab_size": 3000000/' \
  "config.json: vocab_size = 3000000, but model.safetensors stores embeddings.word_embeddings.weight as [64, 16]"
config_case deep 's/"num_hidden_layers": 2/"num_hidden_layers": 1000/' \
  "config.json: num_hidden_layers = 1000, but model.safetensors holds tensors of 2 layers"
config_case ffn 's/"intermediate_size": 32/"intermediate_size": 200000/' "config.json: the config needs at least"

# 3. A recipe of nested aliases ("billion laughs", 9 levels of 9) stops at the node budget.
{
  echo "name: laughs"
  echo "workdir: w"
  echo "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"
  for i in 1 2 3 4 5 6 7 8; do
    p=$((i - 1))
    echo "l$i: &l$i [*l$p, *l$p, *l$p, *l$p, *l$p, *l$p, *l$p, *l$p, *l$p]"
  done
  echo "steps: [report]"
} >"$work/laughs.yaml"
expect_error "laughs.yaml:3: more than 100000 YAML nodes once aliases are expanded" -- limited "$moekit" run "$work/laughs.yaml" --dry-run
# 3b. An alias inside its own anchor makes a cycle (found by fuzz_recipe: a stack overflow before
#     the node budget ran out). The minimal form, then the fuzzer's input as it was found.
printf 'name: cycle\nworkdir: w\na: &a [x, *a]\nsteps: [report]\n' >"$work/cycle.yaml"
expect_error "cycle.yaml:3: YAML nested more than 64 levels deep (an alias inside its own anchor?)" -- \
  "$moekit" run "$work/cycle.yaml" --dry-run
expect_error "YAML nested more than 64 levels deep" -- "$moekit" run "$data/hostile/recipe-self-alias-fuzz.yaml" --dry-run
expect_clean_stderr "fuzz_recipe's self-alias input"
# Plain deep nesting (no alias) is refused the same way, or by yaml-cpp's own depth guard.
{ printf 'name: deep\nworkdir: w\nx: '; head -c 20000 /dev/zero | tr '\0' '['; printf '\nsteps: [report]\n'; } >"$work/deep.yaml"
expect_error "deep.yaml" -- "$moekit" run "$work/deep.yaml" --dry-run

# 4. Two runs on one work directory: the second says who holds it. flock(1) holds the lock here
#    (as a first run would) while the second run starts; the pid is the one written in the file.
mkdir -p "$work/locked/w"
printf 'name: lock\nworkdir: w\nsteps: [report]\n' >"$work/locked/r.yaml"
echo 4242 >"$work/locked/w/.lock"
(cd "$work/locked" && flock w/.lock "$moekit" run r.yaml >"$work/out" 2>"$work/err"; echo $? >"$work/code")
[ "$(cat "$work/code")" -eq 1 ] || fail "second run on a locked workdir: exit $(cat "$work/code")"
grep -qE '^moekit: error: another moekit run \(pid 4242\) is using (.*/)?w$' "$work/err" || fail "lock message: $(cat "$work/err")"
[ ! -e "$work/locked/w/run.log" ] || fail "the second run touched the locked workdir"
# The lock file left behind (pid 4242, no holder: a killed run) is taken over.
(cd "$work/locked" && "$moekit" run r.yaml >"$work/out" 2>"$work/err") || fail "stale lock not taken over: $(cat "$work/err")"

# 5. An export is checksummed: a flipped byte of an int8 export (the issue's crash: 27% of such
#    flips killed inspect inside libhdf5) is refused before libhdf5 reads it; an older file
#    without the block loads with a warning. tests/io/test_compact.cpp flips 500 times.
"$moekit" export --model "$tiny" --dtype int8 --out "$work/tiny.h5" >/dev/null 2>&1 || fail "export"
head -c 21 "$work/tiny.h5" | grep -q "moekit-hdf5-checksum" || fail "export has no checksum block"
"$moekit" inspect "$work/tiny.h5" >/dev/null 2>"$work/err" || fail "inspect of a sealed export: $(cat "$work/err")"
[ ! -s "$work/err" ] || fail "a sealed export gave warnings: $(cat "$work/err")"
cp "$work/tiny.h5" "$work/flipped.h5"
set_byte "$work/flipped.h5" 2000 377
expect_error "flipped.h5: file is corrupt or truncated (checksum" -- "$moekit" inspect "$work/flipped.h5"
tail -c +513 "$work/tiny.h5" >"$work/legacy.h5"  # the HDF5 file without the user block
"$moekit" inspect "$work/legacy.h5" >/dev/null 2>"$work/err" || fail "inspect of an unsealed file: $(cat "$work/err")"
grep -qF "legacy.h5: HDF5 file without a checksum" "$work/err" || fail "no unverified warning: $(cat "$work/err")"

# 6. NaN/Inf weights in an input model are reported by inspect: the first F32 value of the
#    first tensor's data (byte 8 + header length) set to NaN (0x7fc00000, little-endian).
mkdir "$work/nan" && cp "$tiny"/* "$work/nan/"
hlen=$(od -An -tu8 -N8 "$work/nan/model.safetensors" | tr -d ' ')
printf '\000\000\300\177' | dd of="$work/nan/model.safetensors" bs=1 seek=$((8 + hlen)) conv=notrunc status=none
"$moekit" inspect "$work/nan" >"$work/out" 2>"$work/err" || fail "inspect of a NaN model: $(cat "$work/err")"
grep -q "NaN/Inf weights *1 values in 1 tensors" "$work/out" || fail "inspect does not report the NaN: $(cat "$work/out")"
grep -qF "moekit: warning: $work/nan: 1 NaN/Inf weight values" "$work/err" || fail "no NaN warning: $(cat "$work/err")"
"$moekit" inspect "$tiny" | grep -q "NaN/Inf weights *none" || fail "inspect of a clean model"

# 7. A dataset without line breaks is refused at the line limit, not read whole.
printf 'label\ttext\npos\t' >"$work/long.tsv"
head -c 1100000 /dev/zero | tr '\0' a >>"$work/long.tsv"
expect_error "long.tsv: line 2: longer than 1048576 bytes" -- "$moekit" eval --model "$tiny" --data "$work/long.tsv"

[ "$failures" -eq 0 ] && echo "e2e_hostile: all checks passed"
exit $((failures > 0))
