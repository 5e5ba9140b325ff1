#!/usr/bin/env bash
# Fixed-scale QAT and compare, run by two builds of tinyqat on the same generated data: every
# checkpoint and table must be byte for byte the same (e.g. main's build against a branch's):
#   bench/fixed_qat_bits.sh OLD_TINYQAT [BUILD_DIR]
# BUILD_DIR (default build) gives the new tinyqat and make_bars. Exits 1 at the first file
# that differs.
set -euo pipefail
old=$(realpath "$1"); build=$(realpath "${2:-build}"); new="$build/tinyqat"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; cd "$work"
"$build/make_bars" . 40 2 600 100 > /dev/null
"$old" train --model lenet5 --data mnist:. --epochs 1 --batch 32 --val 0.1 --quiet --out f.tqc > /dev/null
same() { cmp "$1" "$2" || { echo "fixed_qat_bits: $1 and $2 differ"; exit 1; }; }
for r in int8 w4a8 w4a4 w2a2 fp8 w4a16 nvfp4 int8-sq; do
  "$old" ptq --model-file f.tqc --recipe "$r" --calib-batches 4 --quiet --out "p-$r.tqc" > /dev/null
  for o in "sgd --lr 0.01" "adam --lr 1e-3 --wd 1e-4"; do
    tag=$r-${o%% *}
    "$old" qat --model-file "p-$r.tqc" --epochs 2 --optim $o --quiet --out "old-$tag.tqc" > /dev/null
    "$new" qat --model-file "p-$r.tqc" --epochs 2 --optim $o --quiet --out "new-$tag.tqc" > /dev/null
    same "old-$tag.tqc" "new-$tag.tqc"
  done
done
for b in old new; do
  "${!b}" compare --model-file f.tqc --recipes w4a4,w2a2,int8 --calibs max,mse --qat-epochs 2 \
    --quiet --out "cmp-$b" --json "cmp-$b.json" > "cmp-$b.txt"
done
for e in csv md json txt; do same "cmp-old.$e" "cmp-new.$e"; done
echo "fixed_qat_bits: fixed-scale QAT (8 recipes, SGD and Adam) and compare identical to the byte"
