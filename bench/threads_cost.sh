#!/usr/bin/env bash
# What the same bits on any number of threads cost: the time of a training step (bench_step:
# batch 64, Adam, random inputs) of each zoo model at 1 and 2 threads, this build against
# another revision's (main by default; its tree is built, with this bench_step.c, into
# BUILD_DIR/base-REV the first time), the two interleaved REPEATS times, each run the median
# of STEPS steps. Prints the medians over the runs of the wall time and of the process's CPU
# time per step, and their ratios this / base (below 1: this build is faster). On a machine
# others load, the CPU time is the steadier figure.
# Usage: bench/threads_cost.sh [BUILD_DIR] [BASE_REV] [REPEATS] [STEPS] [MODELS...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}; rev=${2:-main}; repeats=${3:-7}; steps=${4:-20}
shift $(($# < 4 ? $# : 4))
models=("$@"); [ ${#models[@]} -gt 0 ] || models=(mlp lenet5 convnet resnet20)
[ -x "$build/bench_step" ] || { echo "threads_cost: build first ($build/bench_step missing)"; exit 1; }
base=$build/base-${rev//\//_}
if [ ! -x "$base/build/bench_step" ]; then
  echo "threads_cost: building $rev with this bench_step.c in $base"
  rm -rf "$base"; mkdir -p "$base/src"
  git archive "$rev" | tar -x -C "$base/src"
  cp bench/bench_step.c bench/bench_clock.h "$base/src/bench/"
  cmake -S "$base/src" -B "$base/build" -DCMAKE_BUILD_TYPE=Release -DTQ_BUILD_TESTS=OFF >/dev/null
  cmake --build "$base/build" -j2 --target bench_step >/dev/null
fi

echo "# $(date -u +%Y-%m-%d) base=$rev ($(git rev-parse --short "$rev")) this=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo +changes) OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset} TQ_GEMM=${TQ_GEMM:-unset} repeats=$repeats steps=$steps load=$(cut -d' ' -f1 /proc/loadavg)"
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v x="$1" -v y="$2" 'BEGIN{printf "%.3f", x/y}'; }
fmt="%-9s %3s  %9s %9s %6s  %9s %9s %6s\n"
printf "$fmt" model thr "base wall" "this wall" ratio "base cpu" "this cpu" ratio
for model in "${models[@]}"; do
  n=$steps; [ "$model" = mlp ] || [ "$model" = lenet5 ] && n=$((5 * steps)) # short steps
  for t in 1 2; do
    bw=(); bc=(); tw=(); tc=()
    for ((r = 0; r < repeats; r++)); do # alternate which goes first
      for who in $( ((r % 2 == 0)) && echo "base this" || echo "this base"); do
        bin=$build/bench_step; [ "$who" = base ] && bin=$base/build/bench_step
        read -r _ _ w c < <(OMP_NUM_THREADS=$t "$bin" "$model" "$t" "$n")
        if [ "$who" = base ]; then bw+=("$w"); bc+=("$c"); else tw+=("$w"); tc+=("$c"); fi
      done
    done
    a=$(printf "%s\n" "${bw[@]}" | median); b=$(printf "%s\n" "${tw[@]}" | median)
    c=$(printf "%s\n" "${bc[@]}" | median); d=$(printf "%s\n" "${tc[@]}" | median)
    printf "$fmt" "$model" "$t" "$a" "$b" "$(ratio "$b" "$a")" "$c" "$d" "$(ratio "$d" "$c")"
  done
done
echo "(milliseconds per step, medians)"
