#!/usr/bin/env bash
# tinyqat as another program sees it: installs the build to a temporary prefix, checks that
# exactly the public headers are there and that the worked example atop each compiles, then
# builds every program in examples/ against the installed package twice, with CMake
# (find_package) and with pkg-config, runs both builds on a generated data set and checks the
# results each example states, and that the two builds print the same figures.
# Usage: install_examples.sh BUILD_DIR SOURCE_DIR MAKE_BARS C_COMPILER
set -euo pipefail
build=$1 src=$2 make_bars=$3 cc=$4
examples=(train_model ptq_qat own_calibrator tape_loop)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "install_examples: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
public="autograd.h data.h engine.h layers.h onnx.h optim.h ptq.h quant.h train.h"
installed=$(cd "$tmp/prefix/include/tinyqat" && echo *)
[ "$installed" = "$public" ] || fail "installed headers: $installed (expected $public)"
pc=$(find "$tmp/prefix" -name tinyqat.pc)
export PKG_CONFIG_PATH=${pc%/*}
read -r -a flags <<<"$(pkg-config --cflags --libs tinyqat)"

# The example atop each header: its first run of " *     " lines (blank " *" lines within
# it), as the body of a function given what the example takes from its context. (No {5} in
# the patterns: Debian's awk, mawk, reads no intervals.)
declare -A context=(
  [autograd.h]="void" [data.h]="void" [train.h]="void" [ptq.h]="void"
  [quant.h]="tq_tape *tape, tq_tensor *x, tq_tensor *w, tq_tensor *b, tq_tensor **batches, int n_batches"
  [layers.h]="tq_tape *tape, tq_tensor *x" [optim.h]="tq_model *m"
  [engine.h]="tq_run run, tq_dataset test" [onnx.h]="tq_run run")
{
  printf '#include <stdio.h>\n#include <stdlib.h>\n'
  for h in $public; do printf '#include <tinyqat/%s>\n' "$h"; done
  for h in $public; do
    fn=example_${h%.h}
    printf 'void %s(%s);\nvoid %s(%s)\n{\n' "$fn" "${context[$h]}" "$fn" "${context[$h]}"
    awk 'on && !/^ \*(     |$)/ { exit } /^ \*     / { on = 1 } on { sub(/^ \*(     )?/, ""); print }' \
      "$tmp/prefix/include/tinyqat/$h" | tee "$tmp/example.c"
    [ "$(wc -l <"$tmp/example.c")" -ge 5 ] || fail "$h: no worked example at its top"
    printf '}\n'
  done
  printf 'int main(void) { return 0; }\n'
} >"$tmp/header_examples.c"
"$cc" -std=c11 -Wall -Werror -Wno-unused-variable -Wno-unused-but-set-variable \
  -Werror=implicit-function-declaration "$tmp/header_examples.c" "${flags[@]}" \
  -o "$tmp/header_examples" || fail "a worked example atop a header does not compile (above)"

# The two builds.
cmake -S "$src/examples" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/cmake" -j2 >/dev/null
mkdir "$tmp/pkg-config"
for ex in "${examples[@]}"; do
  "$cc" -std=c11 -O2 -Wall -Werror "$src/examples/$ex.c" "${flags[@]}" -o "$tmp/pkg-config/$ex"
done

# Bars of 14x14 pixels (make_bars: a dim one-row bar over noise, cheap even under
# sanitizers): the float model gets most right, 4-bit PTQ loses some and QAT wins it back.
mkdir "$tmp/bars"
"$make_bars" "$tmp/bars" 40 1 1200 300 14
data=mnist:$tmp/bars
for flavour in cmake pkg-config; do
  for ex in "${examples[@]}"; do
    case $ex in
      train_model) args=("$data" small_cnn.tqc) ;;
      tape_loop) args=("$data" --quick) ;;
      *) args=(small_cnn.tqc "$data" --quick) ;;
    esac
    (cd "$tmp/$flavour" && "./$ex" "${args[@]}") >"$tmp/$flavour/$ex.out" 2>&1 ||
      { cat "$tmp/$flavour/$ex.out"; fail "$ex built with $flavour failed"; }
    [ $flavour = cmake ] || cmp -s "$tmp/cmake/$ex.out" "$tmp/pkg-config/$ex.out" ||
      { diff "$tmp/cmake/$ex.out" "$tmp/pkg-config/$ex.out"; fail "$ex: the CMake and pkg-config builds disagree"; }
  done
done
out=$tmp/cmake.out
for ex in "${examples[@]}"; do cat "$tmp/cmake/$ex.out"; done | tee "$out"
echo "install_examples: the pkg-config build printed the same as the CMake build"

# The stated results: "accuracy WHAT... VALUE" lines.
value() { # the number after the words $1 on an accuracy line
  awk -v what="accuracy $1 " 'index($0, what) == 1 { v = substr($0, length(what) + 1); sub(/ .*/, "", v); print v; exit }' "$out"
}
at_least() { # name value bound
  [ -n "$2" ] || fail "no '$1' line"
  awk -v v="$2" -v b="$3" 'BEGIN { exit !(v >= b) }' || fail "$1: $2, expected at least $3"
  echo "install_examples: $1 $2 >= $3"
}
floats=($(awk '/^accuracy float / { print $3 }' "$out")) # train_model, ptq_qat, tape_loop
[ ${#floats[@]} = 3 ] || fail "expected 3 'accuracy float' lines, got ${#floats[@]}"
at_least "train_model float" "${floats[0]}" 0.92
# ptq_qat loads train_model's checkpoint into a model built again: the same accuracy
[ "${floats[1]}" = "${floats[0]}" ] || fail "ptq_qat's float accuracy ${floats[1]} is not train_model's ${floats[0]}"
at_least "w4a4 ptq" "$(value 'w4a4 ptq')" 0.85
at_least "w4a4 qat" "$(awk '/^accuracy w4a4 ptq/ { print $6 }' "$out")" 0.92
at_least "mixed ptq" "$(value 'mixed ptq')" 0.85
at_least "mixed qat" "$(awk '/^accuracy mixed ptq/ { print $6 }' "$out")" 0.92
grep -q '^conv1  input amax: max calibrator' "$out" || fail "own_calibrator made no check"
# own_calibrator at percentile 100 is the max calibrator: w4a4's PTQ accuracy, as ptq_qat had it
[ "$(value 'w4a4 percentile 100')" = "$(value 'w4a4 ptq')" ] ||
  fail "own_calibrator's percentile 100 ($(value 'w4a4 percentile 100')) is not ptq_qat's w4a4 PTQ ($(value 'w4a4 ptq'))"
at_least "percentile 99.9" "$(value 'w4a4 percentile 99.9')" 0.88
at_least "percentile 99" "$(value 'w4a4 percentile 99')" 0.88
at_least "tape_loop float" "${floats[2]}" 0.88
at_least "tape_loop ptq" "$(value ptq)" 0.85
at_least "tape_loop qat" "$(value qat)" 0.88
echo "install_examples: every example built both ways and met its bound"
