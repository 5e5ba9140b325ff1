#!/usr/bin/env bash
# tinyqat's fake-quant accuracy against ONNX Runtime on the exported QDQ model, on the real
# test sets: LeNet-5 on MNIST and Fashion-MNIST, ResNet-20 on CIFAR-10 (data_batch_5), recipes
# int8 and w4a8 (PTQ, max calibrator, 16 calibration batches). Per run: tinyqat's accuracy,
# ORT's at graph optimization levels disabled, basic and all, and how many codes agree.
#   bench/onnx_check.sh [BUILD_DIR] [DATA_DIR] [WHICH...]
# WHICH: lenet5-mnist lenet5-fashion resnet20-cifar (default: all three). The float
# checkpoints are bench/out/WHICH.tqc from bench/accuracy.sh (CKPT_DIR=... to read them
# elsewhere); a missing one is skipped with a message. Needs node and tests/ort/node_modules
# (scripts/setup.sh). Writes bench/out/onnx-WHICH-RECIPE.json and prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
build=${1:-build}; data=${2:-../shared/data}
shift $(( $# > 2 ? 2 : $# )) || true
which=("$@"); ((${#which[@]})) || which=(lenet5-mnist lenet5-fashion resnet20-cifar)
ckpts=${CKPT_DIR:-bench/out}
tq="$build/tinyqat"; mkdir -p bench/out
[ -d tests/ort/node_modules/onnxruntime-node ] || { echo "onnx_check: run scripts/setup.sh first (tests/ort/node_modules)"; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
rows=()
for w in "${which[@]}"; do
  case $w in
    lenet5-mnist) spec="mnist:$data/mnist"; coded=10000 ;;
    lenet5-fashion) spec=fashion-mnist; coded=10000 ;;
    # a ResNet-20's codes take 1.2 MB an image: compare them on the first 500
    resnet20-cifar) spec="cifar10:$data/cifar10"; coded=500 ;;
    *) echo "onnx_check: unknown run '$w'"; exit 2 ;;
  esac
  [ -e "$ckpts/$w.tqc" ] || { echo "onnx_check: skipped $w: $ckpts/$w.tqc not found (bench/accuracy.sh $build $data $w)"; continue; }
  for recipe in int8 w4a8; do
    name=$w-$recipe
    echo "== $name"
    "$tq" ptq --model-file "$ckpts/$w.tqc" --data "$spec" --recipe $recipe --calib max \
      --calib-batches 16 --quiet --out "$work/$name.tqc"
    "$tq" export --model-file "$work/$name.tqc" --out "$work/$name.onnx"
    "$tq" export --model-file "$work/$name.tqc" --out "$work/$name.codes.onnx" --codes >/dev/null
    "$tq" eval --model-file "$work/$name.tqc" --data "$spec" --quiet --dump "$work/$name.dump" \
      --dump-codes $coded >/dev/null
    node tests/ort/check.js --dump "$work/$name.dump" --model "$work/$name.onnx" \
      --codes-model "$work/$name.codes.onnx" --name "$name" --json "bench/out/onnx-$name.json" || true
    rm -f "$work/$name.dump"
    rows+=("bench/out/onnx-$name.json")
  done
done
((${#rows[@]})) || exit 0
echo
node -e '
const pct = (x) => (x === undefined ? "-" : (100 * x).toFixed(2));
const lvl = (f, k) => f.levels[k] ? (f.levels[k].refused ? "refused" : pct(f.levels[k].accuracy)) : "-";
console.log("| run | images | tinyqat | ORT disabled | ORT basic | ORT all | codes equal (images) | verdict |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
for (const p of process.argv.slice(1)) {
  const f = JSON.parse(require("fs").readFileSync(p, "utf8")), d = f.levels.disabled || {};
  console.log(`| ${f.name} | ${f.images} | ${pct(f.tinyqat_accuracy)} | ${lvl(f, "disabled")} | ${lvl(f, "basic")} | ${lvl(f, "all")} | ` +
    `${d.codes_equal === undefined ? "-" : (100 * d.codes_equal).toFixed(4) + "% (" + d.coded_images + ")"} | ${f.verdict} |`);
}' "${rows[@]}"
