#!/usr/bin/env bash
# Fake quant against PyTorch on a million values (int8, int4 per channel; e4m3 against a
# grid-rounding reference): bench/fq_crosscheck.py driving bench/fq_dump.
# Usage: bench/fq_crosscheck.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
[ -x "$build/fq_dump" ] || { echo "fq_crosscheck: build first ($build/fq_dump missing)"; exit 1; }
/usr/bin/python3 -c "import torch, numpy" 2>/dev/null || { echo "fq_crosscheck: skipped, python3-torch is not installed (apt-get install python3-torch)"; exit 0; }
OPENBLAS_NUM_THREADS=1 exec /usr/bin/python3 bench/fq_crosscheck.py "$build"
