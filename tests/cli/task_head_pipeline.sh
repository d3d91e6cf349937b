# Sourced by e2e_regression.sh and e2e_multi_label.sh: the whole pipeline on one task head, on
# data from recipes/task_heads_data.sh. After
# `task_head_pipeline KIND PROBLEM_TYPE EXT METRIC [TEACHER_STEPS [SERVE_BODY]]` (defaults 300 and
# two texts; the distillation runs 2/3 of the teacher's steps):
#   $work/{teacher,student,moe} model directories, $work/moe-int8.h5, their printed outputs
#   $work/{teacher,distill}.txt, $work/eval.json (eval of the int8 export on test), $work/pred.jsonl,
#   $work/serve.json (POST /predict of two texts to the served int8 export), $work/serve_tokens.json
#   (the same to /predict_tokens);
#   teacher_metric / student_metric: the best dev METRIC of train and distill.
# $moekit comes from the caller; this file makes (through lib.sh) $work (removed at exit) and
# fail(), which counts into $failures.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
run() { "$moekit" --threads 1 --quiet "$@"; }
task_head_pipeline() {
  local kind=$1 problem=$2 ext=$3 metric=$4 steps=${5:-300}
  local serve_body=${6:-'{"inputs": ["w1 blue w2 red", "w3 w4"]}'}
  bash "$(dirname "${BASH_SOURCE[0]}")/../../recipes/task_heads_data.sh" "$kind" "$work" 600 || fail "data"
  printf '{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 32}\n' \
    >"$work/config.json"
  run init --config "$work/config.json" --vocab "$work/vocab.txt" --labels-from "$work/train.$ext" \
    --problem-type "$problem" --out "$work/init" >/dev/null || fail "init"
  # Token classification has no problem_type in HF's config: its architectures name says it.
  [ "$problem" = token_classification ] || grep -q "\"problem_type\": \"$problem\"" "$work/init/config.json" ||
    fail "init: no problem_type $problem in config.json"
  local common=(--train "$work/train.$ext" --dev "$work/dev.$ext" --batch-size 16 --lr 2e-3 --warmup-ratio 0.1
                --max-seq-len 24 --eval-every 100)
  run train --model "$work/init" "${common[@]}" --max-steps "$steps" --out "$work/teacher" >"$work/teacher.txt" || fail "train"
  teacher_metric=$(awk -v m="$metric" '$1 == "best" && $3 == m {print $4}' "$work/teacher.txt")
  run importance --model "$work/teacher" --data "$work/train.$ext" --max-seq-len 24 --out "$work/imp.h5" >/dev/null \
    || fail "importance"
  run moefy --model "$work/teacher" --importance "$work/imp.h5" --experts 2 --expert-size 32 --shared 8 \
    --out "$work/student" >/dev/null || fail "moefy"
  run distill --teacher "$work/teacher" --student "$work/student" "${common[@]}" --max-steps $((steps * 2 / 3)) --out "$work/moe" \
    >"$work/distill.txt" || fail "distill"
  student_metric=$(awk -v m="$metric" '$1 == "best" && $3 == m {print $4}' "$work/distill.txt")
  run export --model "$work/moe" --dtype int8 --out "$work/moe-int8.h5" >/dev/null || fail "export"
  run eval --model "$work/moe-int8.h5" --data "$work/test.$ext" --json >"$work/eval.json" || fail "eval"
  run predict --model "$work/moe-int8.h5" --data "$work/test.$ext" --out "$work/pred.jsonl" 2>/dev/null || fail "predict"
  "$moekit" --threads 1 serve --model "$work/moe-int8.h5" --port 0 --log-level info 2>"$work/serve.log" &
  local pid=$! port=""
  for _ in $(seq 300); do
    port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/serve.log" 2>/dev/null)
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -n "$port" ]; then
    curl -s --max-time 20 "http://127.0.0.1:$port/predict" -H 'Content-Type: application/json' \
      -d "$serve_body" >"$work/serve.json" || fail "serve: /predict"
    curl -s --max-time 20 "http://127.0.0.1:$port/predict_tokens" -H 'Content-Type: application/json' \
      -d "$serve_body" >"$work/serve_tokens.json" || fail "serve: /predict_tokens"
  else
    fail "serve did not start: $(cat "$work/serve.log")"
  fi
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" || fail "serve exited non-zero after SIGTERM"
}
# metric_at FILE KEY: the number after "KEY": in a JSON file.
metric_at() { grep -o "\"$2\": [-0-9.e]*" "$1" | head -1 | awk '{print $2}'; }
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a >= b) }'; }
