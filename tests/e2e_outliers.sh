#!/usr/bin/env bash
# `outlier_demo --save`, the model of the tutorial's SmoothQuant lesson: the checkpoint loads
# and evaluates to the accuracy the demo printed, W8A8 with max calibration collapses on its
# outlier channels, SmoothQuant (alpha 0.5) recovers, and at W4A4 alpha 0.5 beats both ends
# (0 leaves the outliers to the activations, 1 moves them all into the weights).
#   tests/e2e_outliers.sh TINYQAT [MAKE_BARS]
set -euo pipefail
tq=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
demo=$(dirname "$tq")/outlier_demo
[ -x "$demo" ] || { echo "e2e_outliers: $demo not built"; exit 1; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
cd "$dir"
export OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive
fail() { echo "e2e_outliers: $*"; exit 1; }
acc() { sed -n 's/^accuracy: //p' | tail -1; }
# awk's exit status says whether a comparison of decimal fractions holds.
holds() { awk "BEGIN { exit !($1) }"; }

said=$("$demo" --save outliers 300)
float=$(printf '%s\n' "$said" | sed -n 's/.*float accuracy \([0-9.]*\)$/\1/p')
[ -n "$float" ] || fail "no float accuracy in: $said"
[ -f outliers/train-images-idx3-ubyte ] && [ -f outliers/t10k-labels-idx1-ubyte ] ||
  fail "the data set was not written beside the checkpoint"
got=$("$tq" eval --model-file outliers/mlp.tqc | acc)
[ "$got" = "$float" ] || fail "eval of the saved checkpoint gives $got, the demo printed $float"
"$tq" info outliers/mlp.tqc | grep -q "data mnist:outliers" || fail "the checkpoint does not name its data"

int8=$("$tq" ptq --model-file outliers/mlp.tqc --recipe int8 --out a.tqc | acc)
sq=$("$tq" ptq --model-file outliers/mlp.tqc --recipe int8-sq --out b.tqc | acc)
holds "$int8 < $float - 0.10" || fail "int8 (max) $int8 against float $float: the outliers cost less than 10 points"
holds "$sq > $float - 0.01" || fail "int8-sq $sq against float $float: SmoothQuant lost more than a point"
w4a4() { "$tq" ptq --model-file outliers/mlp.tqc --recipe int8-sq --weights int4:channel=0 \
  --acts int4 --alpha "$1" --out c.tqc | acc; }
a0=$(w4a4 0); a5=$(w4a4 0.5); a1=$(w4a4 1)
holds "$a5 > $a0 + 0.05 && $a5 > $a1 + 0.05" ||
  fail "W4A4 after SmoothQuant: alpha 0 $a0, 0.5 $a5, 1 $a1 (expected 0.5 above both ends by 5 points)"
echo "e2e_outliers: float $float, int8 $int8, int8-sq $sq; W4A4 alpha 0 / 0.5 / 1: $a0 / $a5 / $a1"
