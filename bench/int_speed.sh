#!/usr/bin/env bash
# Integer inference speed in one interleaved run: images/s at batch 256 of LeNet-5 and
# ResNet-20 quantized to int8 (PTQ, max calibration), 1 and 2 threads, REPEATS times each:
#   tinyqat's float model, fake quant and integer engine (bench_infer),
#   PyTorch's own int8 model (bench/torch_int8.py: eager static quantization, oneDNN or
#     QNNPACK, whichever is faster; glibc's malloc kept in the heap, as a user tuning it would),
#   ONNX Runtime on tinyqat's exported QDQ model (bench/ort_speed.js, optimizations `all`).
# Prints the medians and the ratios of the integer engine to each.
# Usage: bench/int_speed.sh [BUILD_DIR] [REPEATS] [SECONDS]
# CLOCK=cpu: images per second of each process's CPU time instead of the wall clock, for a
# machine that other work keeps busy (1 thread: what the rates would be alone; 2 threads:
# the work, not the speed-up); ONNX Runtime's harness has no such clock and is left out.
# Needs the float checkpoints of bench/accuracy.sh (lenet5-mnist, resnet20-cifar-val) in
# bench/out/; a model whose checkpoint is absent is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}; repeats=${2:-3}; seconds=${3:-3}
clock=(); [ "${CLOCK:-wall}" = cpu ] && clock=(cpu)
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
tq="$build/tinyqat"
[ -x "$build/bench_infer" ] || { echo "int_speed: build first ($build/bench_infer missing)"; exit 1; }
have_torch=1; /usr/bin/python3 -c "import torch" 2>/dev/null || have_torch=0
have_ort=1; [ -d tests/ort/node_modules/onnxruntime-node ] && ((${#clock[@]} == 0)) || have_ort=0
torch_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1
           GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295)
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v x="$1" -v y="$2" 'BEGIN { if (y > 0) printf "%.2f", x / y; else printf "-" }'; }
mkdir -p bench/out
echo "# $(date -u +%Y-%m-%d) repeats=$repeats seconds=$seconds OMP_WAIT_POLICY=$OMP_WAIT_POLICY clock=${CLOCK:-wall}"
printf "%-9s %3s %10s %10s %10s %11s %10s  %8s %8s %8s\n" model thr float fakequant "int" \
  "torch int8" "ort qdq" "int/flt" "int/pt" "int/ort"
for pair in lenet5:lenet5-mnist resnet20:resnet20-cifar-val; do
  model=${pair%%:*}; ckpt=bench/out/${pair#*:}.tqc
  [ -e "$ckpt" ] || { echo "int_speed: skipped $model: $ckpt not found (bench/accuracy.sh)"; continue; }
  q=bench/out/$model-int8-speed.tqc; onnx=bench/out/$model-int8-speed.onnx
  "$tq" ptq --model-file "$ckpt" --recipe int8 --calib max --calib-batches 16 --out "$q" --quiet >/dev/null
  "$tq" export --model-file "$q" --out "$onnx" >/dev/null
  for t in 1 2; do
    fl=(); fq=(); in=(); pt=(); ort=()
    for ((r = 0; r < repeats; r++)); do
      read -r _ _ a b c backend < <(OMP_NUM_THREADS=$t "$build/bench_infer" "$q" "$t" "$seconds" "${clock[@]}")
      fl+=("$a"); fq+=("$b"); in+=("$c")
      if ((have_torch)); then
        read -r _ _ a _ < <(cd bench && OMP_NUM_THREADS=$t "${torch_env[@]}" /usr/bin/python3 torch_int8.py "$model" "$t" "$seconds" "${clock[@]}")
        pt+=("$a")
      fi
      if ((have_ort)); then
        read -r _ _ a < <(node bench/ort_speed.js "$onnx" "$t" "$seconds"); ort+=("$a")
      fi
    done
    F=$(printf "%s\n" "${fl[@]}" | median); Q=$(printf "%s\n" "${fq[@]}" | median)
    I=$(printf "%s\n" "${in[@]}" | median)
    P=$( ((${#pt[@]})) && printf "%s\n" "${pt[@]}" | median || echo 0)
    O=$( ((${#ort[@]})) && printf "%s\n" "${ort[@]}" | median || echo 0)
    printf "%-9s %3s %10.0f %10.0f %10.0f %11.0f %10.0f  %8s %8s %8s\n" "$model" "$t" "$F" "$Q" "$I" "$P" "$O" \
      "$(ratio "$I" "$F")" "$(ratio "$I" "$P")" "$(ratio "$I" "$O")"
  done
done
echo "(integer products: ${backend:-?}; torch: best of oneDNN and QNNPACK)"
