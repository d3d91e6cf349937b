#!/usr/bin/env bash
# End-to-end: `moekit run` on a tiny recipe with every step kind (inline init + pretrain, train
# from the pretrained model, importance, moefy, distill, export, eval, bench, report); the report holds the eval's numbers; a second run
# skips everything. Usage: e2e_recipe.sh MOEKIT_BINARY TEST_DATA_DIR
set -u
moekit=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")  # the runs below cd
source "$(dirname "$0")/lib.sh"  # $work (removed at exit), $failures, fail()

# The keyword task: the one colour word in each line is the label.
source "$(dirname "$0")/keyword_task.sh"
keyword_vocab "$work/vocab.txt"
keyword_data 800 1 >"$work/train.tsv"
keyword_data 100 2 >"$work/dev.tsv"
keyword_data 100 3 >"$work/test.tsv"
# Exported files join eval and bench once the loaders read them (io/exported_model.h is landing).
exported=""
"$moekit" export --model "$2/golden/bert_tiny" --out "$work/probe.h5" >/dev/null 2>&1 \
  && "$moekit" inspect "$work/probe.h5" >/dev/null 2>&1 && exported=", moe-int8.h5"
cat >"$work/recipe.yaml" <<YAML
name: tiny
workdir: run
data: {train: train.tsv, dev: dev.tsv, test: test.tsv}
vocab: vocab.txt
vars: {seq: 24}
steps:
  - pretrain: {init: {hidden: 32, layers: 2, heads: 4, ffn: 64}, train: train.tsv, dev: dev.tsv, max-steps: 12, batch-size: 16, lr: 1e-3, max-seq-len: "\${seq}", out: pretrained}
  - train:
      model: pretrained
      epochs: 3
      batch-size: 16
      lr: 1e-3
      warmup-ratio: 0.1
      max-seq-len: \${seq}
      out: teacher
  - importance: {model: teacher, max-seq-len: "\${seq}", out: importance.h5}
  - moefy: {model: teacher, importance: importance.h5, experts: 4, expert-size: 16, shared: 8, router: hash, out: student}
  - distill: {teacher: teacher, student: student, max-steps: 60, batch-size: 16, lr: 1e-3, max-seq-len: "\${seq}", log-every: 5, out: moe}
  - export: {model: moe, dtype: int8, out: moe-int8.h5}
  - eval: {models: [teacher, moe$exported], data: test}
  - bench: {models: [teacher, moe$exported], seq-len: 16, batch-size: 4, warmup: 0, reps: 1}
  - report: {out: report.html, title: tiny recipe}
YAML

SECONDS=0
(cd "$work" && "$moekit" --threads 1 run recipe.yaml) >"$work/out1.txt" 2>&1 || { fail "first run: $(tail -5 "$work/out1.txt")"; exit 1; }
first=$SECONDS
run=$work/run
for f in report.html summary.json run.log eval.json bench.json moe-int8.h5 teacher/model.safetensors moe/metrics.jsonl; do
  [ -e "$run/$f" ] || fail "missing $run/$f"
done

# The report's table shows the eval's accuracy for each model (4 decimals), the bench's speed,
# and has the charts: loss curves, expert load, importance histograms. No scripts, no links out.
models="teacher moe"
[ -n "$exported" ] && models="$models moe-int8.h5"
for m in $models; do
  # eval.json keys are sorted: each model's "eval" (with "accuracy") precedes its "name".
  acc=$(awk -v m="$m" '/^        "accuracy": / { a = $2; sub(/,$/, "", a) }
    /^      "name": / { n = $2; gsub(/[",]/, "", n); if (n == m) { printf "%.4f\n", a; exit } }' "$run/eval.json")
  [ -n "$acc" ] || fail "no accuracy for $m in eval.json"
  grep -q "<td>$m</td><td class=\"accuracy\">$acc</td>" "$run/report.html" || fail "report lacks $m accuracy $acc"
done
teacher_acc=$(grep -o '<td>teacher</td><td class="accuracy">[0-9.]*' "$run/report.html" | sed 's/.*>//')
awk -v a="$teacher_acc" 'BEGIN { exit !(a >= 0.5) }' || fail "teacher test accuracy $teacher_acc below 0.5 (chance 0.33)"
grep -q "<td>moe</td><td class=\"accuracy\">[0-9.]*</td><td class=\"macro_f1\">[0-9.]*</td><td>[0-9]" "$run/report.html" \
  || fail "report lacks the bench speed of moe"
grep -q "expert load" "$run/report.html" || fail "report lacks the expert load heatmap"
grep -q "importance.h5 layer 1" "$run/report.html" || grep -q "importance layer 1" "$run/report.html" || fail "report lacks importance histograms"
grep -q "loss_" "$run/report.html" || fail "report lacks the distillation loss terms"
grep -q "pretrained: MLM loss" "$run/report.html" || fail "report lacks the MLM loss curve"
grep -q "dev_mlm_loss" "$run/pretrained/metrics.jsonl" || fail "pretrain metrics lack dev_mlm_loss"
grep -q '<table id="claims">' "$run/report.html" || fail "report lacks the teacher/MoE comparison"
grep -q "moe scores [0-9.]*% test accuracy, [-+][0-9.]* points against teacher" "$run/report.html" \
  || fail "report lacks the computed claim sentence"
[ "$(grep -c '<svg' "$run/report.html")" -ge 6 ] || fail "report has fewer charts than expected"
grep -qi "<script\|http://\|https://" <(sed 's#xmlns="http://www.w3.org/2000/svg"##g' "$run/report.html") && fail "report is not self-contained"
grep -q "report: $run/report.html" "$work/out1.txt" || fail "run did not print the table and report path"
grep -q '"status": "done"' "$run/summary.json" || fail "summary.json lacks step statuses"

# Second run: every step skipped, nothing rewritten.
before=$(stat -c %Y "$run/report.html")
(cd "$work" && "$moekit" --threads 1 run recipe.yaml) >"$work/out2.txt" 2>&1 || fail "second run failed"
[ "$(grep -c 'skipped, up to date' "$work/out2.txt")" -eq 10 ] || fail "second run did not skip all 10 steps: $(cat "$work/out2.txt")"
[ "$(stat -c %Y "$run/report.html")" = "$before" ] || fail "second run rewrote the report"

# A bad recipe fails before running anything, with file:line.
sed 's/epochs: 3/epoch: 3/' "$work/recipe.yaml" >"$work/bad.yaml"
(cd "$work" && "$moekit" run bad.yaml) >/dev/null 2>"$work/err"
[ $? -eq 1 ] && grep -qx 'moekit: error: bad.yaml:10: unknown key "epoch" in step train (did you mean "epochs"?)' "$work/err" \
  || fail "bad recipe: $(cat "$work/err")"

echo "e2e_recipe: first run ${first}s, total ${SECONDS}s"
[ "$failures" -eq 0 ] && echo "e2e_recipe: all checks passed"
exit $((failures > 0))
