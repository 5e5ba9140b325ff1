#!/usr/bin/env bash
# GPTQ against round-to-nearest and AWQ, weight-only, on real data, and GPTQ's time on ResNet-20:
#   bench/gptq.sh [BUILD_DIR] [DATA_DIR]
# 1. LeNet-5 on Fashion-MNIST (bench/out/lenet5-fashion.tqc, from bench/accuracy.sh): test
#    accuracy of PTQ at W4 per channel (MSE amax), W4 per block of 32 (max amax), W3 and W2 per
#    channel (MSE amax), each with the same scales by round-to-nearest (the plain w4a16, w3a16,
#    w2a16 recipes with that weight spec), AWQ (w4a16-awq with that spec), GPTQ, GPTQ with
#    act-order and GPTQ with every layer's H from float inputs. AWQ and GPTQ depend on which
#    calibration batches are drawn: they run with SEEDS (default "1 2 3"), and the table gives
#    the mean and the range.
# 2. ResNet-20 on CIFAR-10 (bench/out/resnet20-cifar-val.tqc; DATA_DIR/cifar10): the time GPTQ
#    takes (the `gptq:` line of `ptq`: wall and CPU seconds) at w4a16-gptq with 4 and 8
#    calibration batches of 64, and with float inputs. Accuracy there is not the point.
# Tables go to bench/out/gptq.md. A run whose checkpoint or data is absent is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
build=${1:-build}; data=${2:-../shared/data}
tq="$build/tinyqat"; mkdir -p bench/out
read -r -a seeds <<< "${SEEDS:-1 2 3}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
md=bench/out/gptq.md
: > "$md"

acc() { grep '^accuracy: ' | tail -1 | sed 's/accuracy: //'; }
# mean, min and max (in %) of the accuracies given as arguments
stats() { printf '%s\n' "$@" | awk '{v=100*$1; s+=v; if(NR==1||v<lo)lo=v; if(NR==1||v>hi)hi=v}
  END { if (NR == 1) printf "%.2f", s; else printf "%.2f (%.2f-%.2f)", s/NR, lo, hi }'; }

lenet=bench/out/lenet5-fashion.tqc
if [ -e "$lenet" ]; then
  {
    echo "LeNet-5, Fashion-MNIST, weight-only PTQ, test accuracy in % (AWQ and GPTQ: mean and range over calibration seeds ${seeds[*]}):"
    echo
    echo "| weights | spec | float | round-to-nearest | AWQ | GPTQ | GPTQ act-order | GPTQ float inputs |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  } >> "$md"
  # case: label, spec, plain recipe, GPTQ recipe
  cases=("W4 per channel|int4:channel=0:calib=mse|w4a16|w4a16-gptq"
         "W4 per block 32|int4:block=32|w4a16|w4a16-gptq"
         "W3 per channel|int3:channel=0:calib=mse|w3a16|w3a16-gptq"
         "W2 per channel|int2:channel=0:calib=mse|w2a16|w2a16-gptq")
  for c in "${cases[@]}"; do
    IFS='|' read -r label spec plain gptq <<< "$c"
    echo "== lenet5-fashion $label ($spec)"
    out=$("$tq" ptq --model-file "$lenet" --recipe "$plain" --weights "$spec" --out "$tmp/q.tqc")
    rtn=$(acc <<< "$out")
    float=$(grep -o 'float accuracy [0-9.]*' <<< "$out" | sed 's/.* //')
    awq=(); g=(); ga=(); gf=()
    for s in "${seeds[@]}"; do
      awq+=("$("$tq" ptq --model-file "$lenet" --recipe w4a16-awq --weights "$spec" --seed "$s" --quiet --out "$tmp/q.tqc" | acc)")
      g+=("$("$tq" ptq --model-file "$lenet" --recipe "$gptq" --weights "$spec" --seed "$s" --out "$tmp/q.tqc" | tee "$tmp/log" | acc)")
      grep '^gptq' "$tmp/log"
      ga+=("$("$tq" ptq --model-file "$lenet" --recipe "$gptq" --weights "$spec" --seed "$s" --gptq-act-order --quiet --out "$tmp/q.tqc" | acc)")
      gf+=("$("$tq" ptq --model-file "$lenet" --recipe "$gptq" --weights "$spec" --seed "$s" --gptq-float-inputs --quiet --out "$tmp/q.tqc" | acc)")
    done
    row="| $label | \`$spec\` | $(stats "$float") | $(stats "$rtn") | $(stats "${awq[@]}") | $(stats "${g[@]}") | $(stats "${ga[@]}") | $(stats "${gf[@]}") |"
    echo "$row"; echo "$row" >> "$md"
  done
  echo >> "$md"
else
  echo "gptq: skipped LeNet-5: $lenet not found (bench/accuracy.sh makes it)"
fi

resnet=bench/out/resnet20-cifar-val.tqc
if [ -e "$resnet" ] && [ -d "$data/cifar10" ]; then
  {
    echo "ResNet-20, CIFAR-10, w4a16-gptq: the time GPTQ takes (22 layers; $(nproc) cores, $(uptime | sed 's/.*load average: //') load average at the start):"
    echo
    echo "| calibration | passes | wall s | CPU s |"
    echo "| --- | ---: | ---: | ---: |"
  } >> "$md"
  for v in "4|" "8|" "4|--gptq-float-inputs"; do
    IFS='|' read -r b opt <<< "$v"
    echo "== resnet20 w4a16-gptq, $b batches of 64 $opt"
    # shellcheck disable=SC2086
    line=$("$tq" ptq --model-file "$resnet" --data "cifar10:$data/cifar10" --recipe w4a16-gptq \
      --calib-batches "$b" $opt --out "$tmp/q.tqc" | tee "$tmp/log" | grep '^gptq: ')
    echo "$line"; acc < "$tmp/log"
    read -r passes wall cpu <<< "$(sed -E 's/.* in ([0-9]+) passes .*, ([0-9.]+) s \(([0-9.]+) s of CPU.*/\1 \2 \3/' <<< "$line")"
    echo "| $((b * 64)) images${opt:+, float inputs} | $passes | $wall | $cpu |" >> "$md"
  done
else
  echo "gptq: skipped ResNet-20: $resnet or $data/cifar10 not found"
fi
echo; cat "$md"
