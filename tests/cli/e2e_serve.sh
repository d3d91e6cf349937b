#!/usr/bin/env bash
# End-to-end: `moekit serve` as a process: the port opens after the model loads, curl gets
# answers and TEI errors, SIGTERM answers what was sent and exits 0. Bounded: every wait is a loop
# of at most ~30 s and every curl has a timeout. Usage: e2e_serve.sh MOEKIT_BINARY TEST_DATA_DIR
set -u
moekit=$1
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
source "$(dirname "$0")/keyword_task.sh"

keyword_vocab "$work/vocab.txt"
keyword_data 8 1 >"$work/data.tsv"
printf '{"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 32}\n' >"$work/config.json"
"$moekit" init --config "$work/config.json" --vocab "$work/vocab.txt" --labels red,green,blue --out "$work/m" >/dev/null || fail "init"

"$moekit" --threads 1 serve --model "$work/m" --port 0 --log-level info 2>"$work/log" &
pid=$!
port=""
for _ in $(seq 300); do
  port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/log" 2>/dev/null)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || { fail "serve did not start: $(cat "$work/log")"; exit 1; }
url=http://127.0.0.1:$port
c() { curl -s --max-time 20 "$@"; }

[ "$(c -o /dev/null -w '%{http_code}' "$url/health")" = 200 ] || fail "/health"
out=$(c "$url/predict" -H 'Content-Type: application/json' -d '{"inputs": "w1 red w2"}')
echo "$out" | grep -q '"label":"red"' && echo "$out" | grep -q '"label":"blue"' || fail "/predict answer: $out"
code=$(c -o "$work/err.json" -w '%{http_code}' "$url/predict" -d '{"inputs": ')
[ "$code" = 422 ] && grep -q '"error_type":"validation"' "$work/err.json" || fail "malformed JSON: $code $(cat "$work/err.json")"
grep -q 'POST /predict 200' "$work/log" || fail "no request log line: $(cat "$work/log")"

# Requests in flight when SIGTERM arrives are still answered; then the process exits 0.
for i in 1 2 3 4; do
  c -o "$work/late$i" -w '%{http_code}' "$url/predict" -d '{"inputs": ["w3 green", "w4 w5 blue"]}' >"$work/code$i" &
done
sleep 0.2
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[ "$status" -eq 0 ] || fail "serve exited $status after SIGTERM: $(tail -3 "$work/log")"
grep -q "stopped" "$work/log" || fail "no stop line in the log"
wait
for i in 1 2 3 4; do
  code=$(cat "$work/code$i")
  # A request that reached the server before the port closed must be answered (000: refused).
  [ "$code" = 200 ] || [ "$code" = 000 ] || fail "request $i during shutdown: $code"
done
[ "$(c -o /dev/null -w '%{http_code}' "$url/health")" = 000 ] || fail "port still open after exit"

"$moekit" serve --model "$work/nope" --port 0 2>"$work/err" && fail "serve on a missing model succeeded"
grep -q "moekit: error:" "$work/err" || fail "missing model: $(cat "$work/err")"

[ "$failures" -eq 0 ] && echo "e2e_serve: all checks passed"
exit "$failures"
