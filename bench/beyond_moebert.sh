#!/usr/bin/env bash
# Demo-sized measurements of issue 19 (README "Beyond MoEBERT"): WORKDIR holds a demo run's teacher,
# data and importance.h5 (runs/demo after `moekit run recipes/demo.yaml`). Every student: 4 experts,
# distilled 1 epoch; results in WORKDIR/eval.txt and bench.txt.
set -u
mk=$(cd "$(dirname "$0")/.." && pwd)/build/cli/moekit
cd "${1:?usage: beyond_moebert.sh WORKDIR (holding teacher/, data/, importance.h5 of a demo run)}"
run() { nice -n 19 "$mk" --threads 2 --quiet "$@"; }
D=(--train data/train.tsv --dev data/dev.tsv --epochs 1 --max-seq-len 48 --lr 5e-4)
base=(--model teacher --importance importance.h5 --experts 4 --expert-size 128)
students() {
  run moefy "${base[@]}" --shared 64 --router hash --out s-copy
  run moefy "${base[@]}" --shared 64 --router hash --shared-mode tied --out s-tied
  run moefy "${base[@]}" --shared 64 --router gate --top-k 2 --out s-gate2
  run moefy "${base[@]}" --shared 64 --router gate --top-k 2 --fit-router data/train.tsv --out s-gate2-fit
  run moefy "${base[@]}" --method upcycle --router hash --out s-upcycle
  run moefy "${base[@]}" --shared 64 --router gate-sentence --out s-sentence
}
students > moefy.txt 2>&1
for s in copy tied gate2 gate2-fit upcycle sentence; do
  [ -f m-$s/DONE ] || run distill --teacher teacher --student s-$s "${D[@]}" --out m-$s > distill-$s.txt 2>&1
done
[ -f m-gate2-cap/DONE ] || run distill --teacher teacher --student s-gate2 "${D[@]}" --capacity-factor 1.0 --router-jitter 0.01 --out m-gate2-cap > distill-gate2-cap.txt 2>&1
run export --model m-copy --data data/dev.tsv --prune-experts 2 --criterion usage --dtype fp32 --out e-prune-usage.h5 > e-prune-usage.txt 2>&1
run export --model m-copy --data data/dev.tsv --prune-experts 2 --criterion reap --dtype fp32 --out e-prune-reap.h5 > e-prune-reap.txt 2>&1
run export --model m-copy --data data/dev.tsv --merge-experts 2 --dtype fp32 --out e-merge.h5 > e-merge.txt 2>&1
for m in teacher m-copy m-tied m-gate2 m-gate2-fit m-upcycle m-sentence m-gate2-cap e-prune-usage.h5 e-prune-reap.h5 e-merge.h5; do
  echo "== $m"; run eval --model $m --data data/test.tsv --json | tr -d '\n '; echo
  run inspect --json $m | grep -o '"total": [0-9]*' | head -1
done > eval.txt 2>&1
run bench --model teacher --model m-copy --model m-tied --model m-gate2 --model m-upcycle --model m-sentence --seq-len 48 --batch-size 32 --reps 5 > bench.txt 2>&1
echo done > measure.done
