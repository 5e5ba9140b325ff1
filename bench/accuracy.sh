#!/usr/bin/env bash
# Float accuracy targets on the real test sets, one command per model:
#   bench/accuracy.sh [BUILD_DIR] [DATA_DIR] [WHICH...]
# WHICH: lenet5-mnist lenet5-fashion mlp-mnist resnet20-cifar resnet20-cifar-val (default: the
# first three; resnet20-cifar: 25 epochs, about 20 minutes on two quiet AVX-512 cores;
# resnet20-cifar-val: the same with a tenth held out, the model compare uses; resnet20-cifar-long:
# the published-accuracy schedule, 160 epochs on data_batch_1-4, accuracy on data_batch_5, hours
# of work: run it again and it resumes from its last finished epoch, so it can be trained in
# pieces and stopped at any time; on a fresh clone it resumes from bench/runs/, where the run's
# latest checkpoint and epoch log are committed between pieces). DATA_DIR holds mnist/ and cifar10/
# in the official layouts; Fashion-MNIST comes from the Debian package. Each run prints its
# epochs and ends with "accuracy: X"; JSON figures go to bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
# Idle OpenMP threads sleep instead of spinning: on a busy machine spinning threads cost
# 10x and more (bench/README.md, "Thread wait policy").
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
build=${1:-build}; data=${2:-../shared/data}
shift $(( $# > 2 ? 2 : $# )) || true
which=("$@"); ((${#which[@]})) || which=(lenet5-mnist lenet5-fashion mlp-mnist)
tq="$build/tinyqat"; mkdir -p bench/out
need() { [ -e "$1" ] || { echo "accuracy: skipped $2: $1 not found"; return 1; }; }
for w in "${which[@]}"; do
  echo "== $w"
  case $w in
    lenet5-mnist) need "$data/mnist" "$w" &&
      "$tq" train --model lenet5 --data "mnist:$data/mnist" --epochs 5 --optim adam --lr 2e-3 --schedule cosine \
        --batch 64 --seed 1 --val 0.1 --out bench/out/lenet5-mnist.tqc --json bench/out/lenet5-mnist.json ;;
    lenet5-fashion)
      "$tq" train --model lenet5 --data fashion-mnist --epochs 15 --optim adam --lr 2e-3 \
        --schedule cosine --batch 64 --seed 1 --val 0.1 --out bench/out/lenet5-fashion.tqc \
        --json bench/out/lenet5-fashion.json ;;
    mlp-mnist) need "$data/mnist" "$w" &&
      "$tq" train --model mlp --data "mnist:$data/mnist" --epochs 10 --optim adam --lr 1e-3 \
        --schedule cosine --batch 64 --seed 1 --val 0.1 --out bench/out/mlp-mnist.tqc --json bench/out/mlp-mnist.json ;;
    resnet20-cifar|resnet20-cifar-val) need "$data/cifar10" "$w" &&
      # -val: a tenth of the training images held out, for compare to choose on
      "$tq" train --model resnet20 --data "cifar10:$data/cifar10" --epochs "${RESNET_EPOCHS:-25}" \
        --optim sgd --lr 0.1 --momentum 0.9 --nesterov --wd 5e-4 --schedule cosine --warmup 300 \
        --batch 128 --seed 1 $([ "$w" = resnet20-cifar-val ] && echo --val 0.1) \
        --out "bench/out/$w.tqc" --json "bench/out/$w.json" &&
      "$tq" eval --model-file "bench/out/$w.tqc" --data "cifar10:$data/cifar10:test_batch" ;;
    resnet20-cifar-long) need "$data/cifar10" "$w" &&
      # He et al.'s augmentation (4-pixel padded crop, flip), cosine over LONG_EPOCHS; each epoch is
      # saved, and an existing checkpoint is resumed (bit-exact at the same thread count).
      ckpt=bench/out/$w.tqc && log=bench/out/$w.log &&
      if [ ! -e "$ckpt" ] && [ -e "bench/runs/$w.tqc" ]; then
        cp "bench/runs/$w.tqc" "$ckpt"; cp "bench/runs/$w.log" "$log" 2>/dev/null || true
      fi &&
      if [ -e "$ckpt" ]; then
        "$tq" train --resume "$ckpt" --epochs "${LONG_EPOCHS:-160}" --threads "${THREADS:-2}" \
          --out "$ckpt" --json "bench/out/$w.json" | tee -a "$log"
      else
        "$tq" train --model resnet20 --data "cifar10:$data/cifar10" --epochs "${LONG_EPOCHS:-160}" \
          --optim sgd --lr 0.1 --momentum 0.9 --nesterov --wd 5e-4 --schedule cosine --warmup 300 \
          --batch 128 --seed 1 --threads "${THREADS:-2}" --out "$ckpt" --json "bench/out/$w.json" |
          tee "$log"
      fi ;;
    *) echo "accuracy: unknown run '$w'"; exit 2 ;;
  esac
done
