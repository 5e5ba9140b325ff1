#!/usr/bin/env bash
# Speed against PyTorch, in one run: training (batch 64) and inference (batch 256) images/s
# of each zoo model with 1 and 2 threads, tinyqat and Debian's python3-torch interleaved,
# REPEATS times each; prints the medians and the ratios tinyqat / PyTorch.
# PyTorch runs in its fastest setting here: OPENBLAS_NUM_THREADS=1, torch.set_num_threads(T).
# Both use libgomp, so OMP_WAIT_POLICY / GOMP_SPINCOUNT, if set, apply to both alike.
# Then the effective training GFLOP/s of LeNet-5 and ResNet-20 (convolutions and linear
# layers) next to the GFLOP/s of tinyqat's sgemm (AVX-512 kernel or OpenBLAS) and of OpenBLAS's
# on a 1024^3 product, measured by the same program.
# Usage: bench/speed.sh [BUILD_DIR] [REPEATS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}; repeats=${2:-3}; seconds=${3:-3}
[ -x "$build/bench_speed" ] || { echo "speed: build first ($build/bench_speed missing)"; exit 1; }
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "speed: skipped, python3-torch is not installed (apt-get install python3-torch)"; exit 0; }

echo "# $(date -u +%Y-%m-%d) OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset} GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-unset} OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} TQ_GEMM=${TQ_GEMM:-unset} repeats=$repeats seconds=$seconds"
declare -A gflops
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
printf "%-9s %3s  %12s %12s %6s  %12s %12s %6s\n" model thr "train tq" "train torch" ratio "infer tq" "infer torch" ratio
for model in mlp lenet5 resnet20; do
  for t in 1 2; do
    tq_tr=(); tq_in=(); tq_gf=(); pt_tr=(); pt_in=()
    for ((r = 0; r < repeats; r++)); do
      read -r _ _ a b g < <(OMP_NUM_THREADS=$t "$build/bench_speed" "$model" "$t" "$seconds")
      tq_tr+=("$a"); tq_in+=("$b"); tq_gf+=("$g")
      read -r _ _ a b < <(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$t /usr/bin/python3 bench/torch_ref.py "$model" "$t" "$seconds")
      pt_tr+=("$a"); pt_in+=("$b")
    done
    a=$(printf "%s\n" "${tq_tr[@]}" | median); b=$(printf "%s\n" "${pt_tr[@]}" | median)
    c=$(printf "%s\n" "${tq_in[@]}" | median); d=$(printf "%s\n" "${pt_in[@]}" | median)
    printf "%-9s %3s  %12.0f %12.0f %6.2f  %12.0f %12.0f %6.2f\n" "$model" "$t" "$a" "$b" \
      "$(awk -v x="$a" -v y="$b" 'BEGIN{print x/y}')" "$c" "$d" "$(awk -v x="$c" -v y="$d" 'BEGIN{print x/y}')"
    gflops["$model $t"]=$(printf "%s\n" "${tq_gf[@]}" | median)
  done
done
echo
printf "%-9s %3s  %14s %13s %6s %15s %6s\n" model thr "train GFLOP/s" "tq sgemm" share "OpenBLAS sgemm" share
for t in 1 2; do
  read -r _ _ peak blas backend < <(OMP_NUM_THREADS=$t "$build/bench_speed" --sgemm "$t")
  for model in lenet5 resnet20; do
    g=${gflops["$model $t"]}
    printf "%-9s %3s  %14.1f %13.1f %5.0f%% %15.1f %5.0f%%\n" "$model" "$t" "$g" "$peak" \
      "$(awk -v x="$g" -v y="$peak" 'BEGIN{print 100*x/y}')" "$blas" "$(awk -v x="$g" -v y="$blas" 'BEGIN{print 100*x/y}')"
  done
done
echo "(tq sgemm: $backend)"
