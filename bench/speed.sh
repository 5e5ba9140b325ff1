#!/usr/bin/env bash
# Speed against PyTorch at its best, in one run: training (batch 64) and inference (batch 256)
# images/s of each zoo model with 1 and 2 threads. Each repeat runs, interleaved:
#   tq         tinyqat as the environment is
#   tq-heap    tinyqat with glibc's malloc kept in the heap (below), to show it does not need it
#   pt         Debian's python3-torch as the environment is
#   pt-heap    PyTorch with glibc's malloc kept in the heap: GLIBC_TUNABLES with mmap and trim
#              thresholds at 4 GiB, the effect jemalloc or tcmalloc give, which PyTorch's CPU
#              performance guides recommend (without it each step's fresh pages fault in)
#   pt-blas    pt-heap with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for PyTorch's command
#              alone, so OpenBLAS (its linear layers) picks its own kernels
# PyTorch always runs with OPENBLAS_NUM_THREADS=1 and torch.set_num_threads(T) (one thread pool).
# Prints the medians over REPEATS, and the ratio tinyqat / the best of the three PyTorch
# settings (named in the table). Then each workload's effective GFLOP/s (convolutions and
# linear layers) as a share of the machine's sgemm peak at the same thread count (tinyqat's
# sgemm on a 1024^3 product, `bench_speed --sgemm`; OpenBLAS's beside it).
# Both use libgomp, so OMP_WAIT_POLICY / GOMP_SPINCOUNT, if set, apply to both alike.
# Usage: bench/speed.sh [BUILD_DIR] [REPEATS] [SECONDS] [MODELS...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}; repeats=${2:-3}; seconds=${3:-3}
shift $(($# < 3 ? $# : 3))
models=("$@"); [ ${#models[@]} -gt 0 ] || models=(mlp lenet5 resnet20)
[ -x "$build/bench_speed" ] || { echo "speed: build first ($build/bench_speed missing)"; exit 1; }
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "speed: skipped, python3-torch is not installed (apt-get install python3-torch)"; exit 0; }
heap=glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295

echo "# $(date -u +%Y-%m-%d) OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset} GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-unset} OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset} TQ_GEMM=${TQ_GEMM:-unset} repeats=$repeats seconds=$seconds load=$(cut -d' ' -f1 /proc/loadavg)"
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v x="$1" -v y="$2" 'BEGIN{printf "%.2f", x/y}'; }
share() { awk -v x="$1" -v y="$2" 'BEGIN{printf "%.0f%%", 100*x/y}'; }
tq() { OMP_NUM_THREADS=$1 "$build/bench_speed" "$model" "$1" "$seconds"; }
pt() { OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$1 /usr/bin/python3 bench/torch_ref.py "$model" "$1" "$seconds"; }
settings=(tq tq-heap pt pt-heap pt-blas)
run() { # SETTING THREADS -> "train_ips infer_ips [train_gflops infer_gflops]"
  case $1 in
    tq) tq "$2" ;;
    tq-heap) GLIBC_TUNABLES=$heap tq "$2" ;;
    pt) pt "$2" ;;
    pt-heap) GLIBC_TUNABLES=$heap pt "$2" ;;
    pt-blas) GLIBC_TUNABLES=$heap env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
               OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS="$2" /usr/bin/python3 bench/torch_ref.py "$model" "$2" "$seconds" ;;
  esac | awk '{print $3, $4, $5, $6}'
}

declare -A med
fmt="%-9s %3s %5s  %9s %9s %9s %9s %9s  %-7s %5s\n"
for model in "${models[@]}"; do
  for t in 1 2; do
    declare -A samples=()
    for ((r = 0; r < repeats; r++)); do
      for s in "${settings[@]}"; do
        read -r a b g h < <(run "$s" "$t")
        samples["$s train"]+="$a "; samples["$s infer"]+="$b "
        [ "$s" = tq ] && { samples[gf_train]+="$g "; samples[gf_infer]+="$h "; }
      done
    done
    for k in "${!samples[@]}"; do med["$model $t $k"]=$(printf "%s\n" ${samples[$k]} | median); done
    unset samples
  done
done

for phase in train infer; do
  echo
  printf "$fmt" model thr phase tq tq-heap pt pt-heap pt-blas "best pt" ratio
  for model in "${models[@]}"; do
    for t in 1 2; do
      best=pt
      for s in pt-heap pt-blas; do
        awk -v x="${med["$model $t $s $phase"]}" -v y="${med["$model $t $best $phase"]}" 'BEGIN{exit !(x>y)}' && best=$s
      done
      v=(); for s in "${settings[@]}"; do v+=("$(printf "%.0f" "${med["$model $t $s $phase"]}")"); done
      printf "$fmt" "$model" "$t" "$phase" "${v[@]}" "$best" \
        "$(ratio "${med["$model $t tq $phase"]}" "${med["$model $t $best $phase"]}")"
    done
  done
done

echo
printf "%-9s %3s  %11s %6s  %11s %6s  %9s %14s\n" model thr "train GF/s" share "infer GF/s" share "tq sgemm" "OpenBLAS sgemm"
for t in 1 2; do
  read -r _ _ peak blas backend < <(OMP_NUM_THREADS=$t "$build/bench_speed" --sgemm "$t")
  for model in "${models[@]}"; do
    g=${med["$model $t gf_train"]}; h=${med["$model $t gf_infer"]}
    printf "%-9s %3s  %11.1f %6s  %11.1f %6s  %9.1f %14.1f\n" "$model" "$t" "$g" "$(share "$g" "$peak")" \
      "$h" "$(share "$h" "$peak")" "$peak" "$blas"
  done
done
echo "(images/s, medians of $repeats; ratio: tq / the best PyTorch setting; shares of tinyqat's sgemm ($backend) on a 1024^3 product at the same thread count)"
