#!/usr/bin/env bash
# The PTQ-versus-QAT tables on the real data sets, from float checkpoints trained by
# bench/accuracy.sh (or trained here when missing):
#   bench/compare.sh [BUILD_DIR] [DATA_DIR] [WHICH...]
# WHICH: lenet5-mnist lenet5-fashion resnet20-cifar-val resnet20-cifar (default: the first two;
# resnet20-cifar-val about 20 minutes, plus 20 to train its float model if missing). Tables go to
# bench/out/compare-WHICH.{md,csv,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
# Idle OpenMP threads sleep instead of spinning: on a busy machine spinning threads cost
# 10x and more (bench/README.md, "Thread wait policy").
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
build=${1:-build}; data=${2:-../shared/data}
shift $(( $# > 2 ? 2 : $# )) || true
which=("$@"); ((${#which[@]})) || which=(lenet5-mnist lenet5-fashion)
tq="$build/tinyqat"; mkdir -p bench/out
for w in "${which[@]}"; do
  echo "== $w"
  f=bench/out/$w.tqc
  [ -e "$f" ] || bench/accuracy.sh "$build" "$data" "$w"
  # QAT epochs: a fifth to two fifths of the float schedule (5, 15 and 25 epochs); ResNet-20
  # with SGD like its float training, fewer recipes and calibrators (entropy fails at 4 bits
  # and below on every model here), 16 calibration batches of 64
  recipes=int8,int8-sq,w4a16,w4a16-awq,w4a8,w4a4,w2a2,fp8,mxfp8,nvfp4; extra=()
  case $w in
    lenet5-fashion) qat_epochs=3 ;;
    resnet20-cifar*) qat_epochs=1; recipes=int8,w4a8,w4a4,w2a2,fp8
      extra=(--calibs max,percentile,mse --calib-batches 16 --optim sgd) ;;
    *) qat_epochs=2 ;;
  esac
  "$tq" compare --model-file "$f" --recipes "${RECIPES:-$recipes}" \
    --qat-epochs "${QAT_EPOCHS:-$qat_epochs}" "${extra[@]}" \
    --out "bench/out/compare-$w" --json "bench/out/compare-$w.json" ${COMPARE_ARGS:-}
done
