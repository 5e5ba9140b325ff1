#!/usr/bin/env bash
# Fixed against learned scales (LSQ) in QAT on LeNet-5 Fashion-MNIST, from the same PTQ start,
# for the same epochs, with the same rates to choose from:
#   bench/lsq.sh [BUILD_DIR] [MODEL_FILE]
# MODEL_FILE: a float LeNet-5 Fashion-MNIST checkpoint trained with a validation split
# (default bench/out/lenet5-fashion.tqc, from bench/accuracy.sh build DATA lenet5-fashion).
# RECIPES (default int8,w4a4,w2a2), QAT_EPOCHS (default 3) and COMPARE_ARGS change the run.
# Writes bench/out/lsq-fashion.{md,csv,json}; about 10-20 minutes on two loaded cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
build=${1:-build}; model=${2:-bench/out/lenet5-fashion.tqc}
if [ ! -e "$model" ]; then
  echo "bench/lsq.sh: $model not found (train it: bench/accuracy.sh $build DATA_DIR lenet5-fashion)" >&2
  exit 77
fi
mkdir -p bench/out
# Entropy calibration fails at 4 bits and below on this model (README), so it is left out.
"$build/tinyqat" compare --model-file "$model" --recipes "${RECIPES:-int8,w4a4,w2a2}" \
  --calibs max,percentile,mse --qat-epochs "${QAT_EPOCHS:-3}" --methods qat,qat-lsq \
  --out bench/out/lsq-fashion --json bench/out/lsq-fashion.json ${COMPARE_ARGS:-}
