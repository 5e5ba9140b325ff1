#!/usr/bin/env bash
# The same bits on any number of threads: every zoo model trained (batch norm where the model
# has it, augmentation, a cosine schedule, gradient clipping, a held-out split), quantized
# (PTQ with SmoothQuant, AWQ and the histogram calibrators) and fine-tuned (QAT) at 1, 2, 3 and
# 4 threads on a small generated CIFAR-10-layout data set; compare and sensitivity too. Every
# checkpoint, recipe file, table and printed line must be the same bytes at every thread
# count, and every JSON file too but for the thread count and the timings. A run with another
# seed must differ (the negative control: the comparison can fail). More threads than cores
# must work too.
#   tests/e2e_threads.sh TINYQAT MAKE_BARS [MODEL...]
set -euo pipefail
tq=$1; make_bars=$2; shift 2
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(mlp lenet5 convnet resnet20)
# Under the sanitizers (ten times slower) 1 and 3 threads only: 3 shares 8 chunks unevenly
# over more threads than this machine may have cores.
thread_counts=(1 2 3 4)
if nm "$tq" 2>/dev/null | grep __asan_init >/dev/null; then thread_counts=(1 3); fi
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
"$make_bars" "$dir" 120 3 64 16 cifar >/dev/null
cd "$dir"
export OMP_WAIT_POLICY=passive
unset OMP_NUM_THREADS

failed=0
# What must agree: the file itself, or a JSON file without its thread count and timings.
normalised() {
  case $1 in
    *.json) grep -vE '"(threads|seconds|images_per_s)":' "$1" ;;
    *) cat "$1" ;;
  esac
}
# Every file t1/NAME against tT/NAME: each thread count runs in a directory of its own, with
# the same file names, so that printed lines naming a file agree too.
same_as_one_thread() { # T
  local f
  for f in t1/*; do
    if ! cmp -s <(normalised "$f") <(normalised "t$1/${f#t1/}"); then
      echo "e2e_threads: t$1/${f#t1/} differs from $f"
      failed=$((failed + 1))
    fi
  done
}

# One model's flow in the current directory: train, PTQ, QAT.
flow() { # MODEL RECIPE CALIB SEED THREADS
  local m=$1 recipe=$2 calib=$3 seed=$4 common="--threads $5 --quiet"
  "$tq" train --model "$m" --data cifar10:.. --epochs 2 --batch 16 --lr 3e-3 --schedule cosine \
    --clip 2 --val 0.25 --seed "$seed" $common --out "$m.tqc" --json "$m-train.json" > "$m-train.out"
  "$tq" ptq --model-file "$m.tqc" --recipe "$recipe" --calib "$calib" --calib-batches 3 \
    --batch 16 $common --out "$m-ptq.tqc" --json "$m-ptq.json" > "$m-ptq.out"
  "$tq" qat --model-file "$m-ptq.tqc" --epochs 1 --batch 16 --lr 1e-3 $common \
    --out "$m-qat.tqc" --json "$m-qat.json" > "$m-qat.out"
}
recipe_of() { # a recipe and calibrator per model, so that every calibration path runs
  case $1 in
    mlp) echo "int8-sq entropy" ;;
    lenet5) echo "w4a16-awq max" ;;
    convnet) echo "w4a8 percentile" ;;
    resnet20) echo "int8 mse" ;;
    *) echo "e2e_threads: unknown model $1" >&2; exit 2 ;;
  esac
}

for t in "${thread_counts[@]}"; do
  mkdir "t$t"
  for m in "${models[@]}"; do
    # shellcheck disable=SC2046
    (cd "t$t" && flow "$m" $(recipe_of "$m") 3 "$t")
  done
  # compare and sensitivity on a float checkpoint trained on 1 thread (LeNet-5's: MSE weight
  # calibration makes them slow on the MLP's larger layers): every calibrator, QAT rates and
  # epochs chosen on the held-out images, per-layer probes
  m=${models[0]}
  [[ " ${models[*]} " == *" lenet5 "* ]] && m=lenet5
  cp "t1/$m.tqc" "t$t/float.tqc"
  (cd "t$t" &&
    "$tq" compare --model-file float.tqc --recipes w4a4,w2a2 --calib-batches 2 --batch 16 \
      --qat-epochs 1 --threads "$t" --quiet --out cmp --json cmp.json > cmp.out &&
    "$tq" sensitivity --model-file float.tqc --recipe w4a4 --target-drop 1 --calib-batches 2 \
      --batch 16 --threads "$t" --out mixed.recipe > sens.out)
  [ "$t" = 1 ] || same_as_one_thread "$t"
  echo "e2e_threads: $t thread(s) done"
done

# The negative control: another seed gives other bytes, so the comparison can fail.
mkdir seed4
m=${models[0]}
(cd seed4 && flow "$m" $(recipe_of "$m") 4 1)
for f in "$m.tqc" "$m-ptq.tqc" "$m-qat.tqc" "$m-qat.json"; do
  if cmp -s <(normalised "t1/$f") <(normalised "seed4/$f"); then
    echo "e2e_threads: seeds 3 and 4 gave the same $f: the comparison cannot fail"
    failed=$((failed + 1))
  fi
done

echo "e2e_threads: $failed difference(s)"
[ "$failed" -eq 0 ]
