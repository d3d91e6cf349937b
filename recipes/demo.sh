#!/usr/bin/env bash
# Interim demo until the recipe runner lands: a small end-to-end run of the CLI.
# Usage: recipes/demo.sh MOEKIT_BINARY
set -euo pipefail
moekit=${1:-build/cli/moekit}
here=$(cd "$(dirname "$0")/.." && pwd)
work=${MOEKIT_DEMO_DIR:-runs/demo}
mkdir -p "$work"
model=$here/tests/data/golden/bert_tiny
printf 'label\ttext\ttext_pair\npos\tThe Movie was GREAT!\tWe watched twice\nneu\tthis film is not very fun\t\nneg\tso boring.\t\n' >"$work/data.tsv"
"$moekit" inspect "$model"
"$moekit" predict --model "$model" --data "$work/data.tsv" --out "$work/predictions.jsonl"
"$moekit" eval --model "$model" --data "$work/data.tsv"
echo "predictions: $work/predictions.jsonl"
