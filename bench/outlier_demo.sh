#!/usr/bin/env bash
# The outlier demo: W8A8 PTQ with max calibration against SmoothQuant (and AWQ at 4 bits) on
# an MLP with a few hidden channels 100x, 300x and 1000x larger than the rest. Usage:
#   bench/outlier_demo.sh [build-dir]
set -euo pipefail
build=${1:-build}
cmake --build "$build" --target outlier_demo >/dev/null
for k in 100 300 1000; do OMP_NUM_THREADS=2 "$build/outlier_demo" "$k"; done
