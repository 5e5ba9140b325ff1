#!/usr/bin/env bash
# The main job: installs what is missing, builds tinyqat, then compares PTQ (each calibrator)
# against QAT for LeNet-5 on Fashion-MNIST, recipe by recipe, in one table. A few minutes on
# two cores. Extra arguments go to `tinyqat compare` (e.g. --recipes int8,w2a2 --epochs 5).
# The pictures of the run go to out/report/index.html (REPORT=0: none).
set -euo pipefail
cd "$(dirname "$0")/.."
# Idle OpenMP threads sleep instead of spinning: on a busy machine spinning threads cost
# 10x and more (bench/README.md, "Thread wait policy").
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
scripts/setup.sh build
mkdir -p out
report=()
[ "${REPORT:-1}" = 0 ] || report=(--report out/report)
build/tinyqat compare --model lenet5 --data fashion-mnist --recipes int8,w4a8,w4a4,w2a2,fp8 \
  --epochs 3 --qat-epochs 1 --out out/compare --json out/compare.json "${report[@]}" "$@"
