#!/usr/bin/env bash
# QAT overhead against PyTorch, in one run: time of a training step (batch 64, Adam, random
# inputs) with fake quantization over the same step in float, for lenet5 and resnet20 under
# the int8 and w4a4 recipes. tinyqat (bench_qat) and PyTorch (torch_qat.py: a plain
# fake-quant reference and the torch.ao prepare_qat flow) run one after the other per row,
# each alternating float and QAT steps; the ratios are medians over PAIRS step pairs (5x as
# many for lenet5, whose steps are short), then the ratio of the fastest steps ("min").
# Usage: bench/qat_overhead.sh [BUILD_DIR] [THREADS] [PAIRS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}; threads=${2:-2}; pairs=${3:-9}
[ -x "$build/bench_qat" ] || { echo "qat_overhead: build first ($build/bench_qat missing)"; exit 1; }
have_torch=1
/usr/bin/python3 -c "import torch" 2>/dev/null || { have_torch=0; echo "qat_overhead: python3-torch is not installed, PyTorch columns left out"; }

fmt="%-9s %-6s %3s | %8s %8s %6s %6s | %8s %8s %6s %6s %8s %6s %6s\n"
printf "$fmt" model recipe thr "tq float" "tq qat" ratio min "pt float" "pt fq" ratio min "pt ao" ratio min
for model in lenet5 resnet20; do
  for recipe in int8 w4a4; do
    n=$pairs; [ "$model" = lenet5 ] && n=$((5 * pairs))
    read -r _ _ tf tq tr tm < <(OMP_NUM_THREADS=$threads "$build/bench_qat" "$threads" "$n" "$model" "$recipe" | tail -1)
    pf=- pq=- pr=- pa=- par=- pm=- pam=-
    if [ "$have_torch" = 1 ]; then
      read -r _ _ pf pq pr pa par pm pam < <(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$threads \
        /usr/bin/python3 bench/torch_qat.py "$model" "$recipe" "$threads" "$n")
    fi
    printf "$fmt" "$model" "$recipe" "$threads" "$tf" "$tq" "$tr" "$tm" "$pf" "$pq" "$pr" "$pm" \
      "$pa" "$par" "$pam"
  done
done
