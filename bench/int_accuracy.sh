#!/usr/bin/env bash
# The integer engine against fake quant on the real test sets:
#   bench/int_accuracy.sh [BUILD_DIR] [DATA_DIR] [WHICH...]
# WHICH: lenet5-mnist lenet5-fashion resnet20-cifar-val (default: all three), the float
# checkpoints bench/accuracy.sh writes to bench/out/ (a run whose checkpoint is absent is
# skipped). Each is quantized with PTQ at each of RECIPES (default "int8 w4a8"; max
# calibration, 16 batches for ResNet-20 as compare uses), then evaluated by
#   tinyqat eval --model-file Q --engine int --compare
# which runs fake quant and the integer engine on the same test images. Ends with a table:
# both accuracies, their difference in points, the images classified differently and the
# activation codes one step apart. JSON figures go to bench/out/int-WHICH-RECIPE.json.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
build=${1:-build}; data=${2:-../shared/data}
shift $(( $# > 2 ? 2 : $# )) || true
which=("$@"); ((${#which[@]})) || which=(lenet5-mnist lenet5-fashion resnet20-cifar-val)
read -r -a recipes <<< "${RECIPES:-int8 w4a8}"
tq="$build/tinyqat"; mkdir -p bench/out
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
rows=()
num() { grep -o "\"$1\": [-0-9.e]*" "$2" | head -1 | sed 's/.*: //'; }
for w in "${which[@]}"; do
  ckpt=bench/out/$w.tqc
  [ -e "$ckpt" ] || { echo "int_accuracy: skipped $w: $ckpt not found (bench/accuracy.sh makes it)"; continue; }
  case $w in
    lenet5-mnist) spec="mnist:$data/mnist"; calib=8 ;;
    lenet5-fashion) spec=fashion-mnist; calib=8 ;;
    resnet20-cifar|resnet20-cifar-val) spec="cifar10:$data/cifar10"; calib=16 ;;
    *) echo "int_accuracy: unknown run '$w'"; exit 2 ;;
  esac
  for r in "${recipes[@]}"; do
    echo "== $w $r"
    json=bench/out/int-$w-$r.json
    "$tq" ptq --model-file "$ckpt" --data "$spec" --recipe "$r" --calib max \
      --calib-batches "$calib" --quiet --out "$tmp/q.tqc"
    "$tq" eval --model-file "$tmp/q.tqc" --data "$spec" --engine int --compare --json "$json"
    fq=$(num fake_quant_accuracy "$json"); in=$(num accuracy "$json")
    rows+=("$(awk -v w="$w" -v r="$r" -v fq="$fq" -v ie="$in" -v d="$(num images_differing "$json")" \
      -v n="$(num images "$json")" -v one="$(num fraction_one_step "$json")" \
      -v more="$(num codes_more "$json")" 'BEGIN { printf "| %s | %s | %.2f | %.2f | %+.2f | %d of %d | %.2g%% | %d |", w, r, 100 * fq, 100 * ie, 100 * (ie - fq), d, n, 100 * one, more }')")
  done
done
echo
echo "| model | recipe | fake quant | integer engine | difference | images classified differently | codes one step apart | codes further apart |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for row in "${rows[@]}"; do echo "$row"; done
