#!/usr/bin/env bash
# Every tinyqat command once under valgrind memcheck, on a tiny generated data set: no
# memory errors and no definite leaks. Skips (exit 77, which CTest reports as a skip, with a
# message) where valgrind is absent or the binary was built with sanitizers (they do not mix).
#   tests/e2e_valgrind.sh TINYQAT MAKE_BARS
set -euo pipefail
tq=$1; make_bars=$2
command -v valgrind >/dev/null || { echo "e2e_valgrind: skipped, valgrind not installed"; exit 77; }
# grep reads all of nm's output: with -q, nm could die of SIGPIPE and fail the pipeline.
if nm "$tq" 2>/dev/null | grep __asan_init >/dev/null; then
  echo "e2e_valgrind: skipped for a sanitizer build"; exit 77
fi
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
"$make_bars" "$dir" 120 3 256 64
cd "$dir"
vg() {
  # OpenMP's thread pool keeps memory until exit on purpose: only definite leaks count.
  valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite "$tq" "$@" > vg.out 2>&1
  local rc=$?
  if [ $rc -eq 99 ]; then cat vg.out; echo "e2e_valgrind: memcheck errors in: tinyqat $*"; exit 1; fi
  echo "$rc"
}
expect() { local want=$1; shift; local got; got=$(vg "$@") || true
  [ "$got" = "$want" ] || { cat vg.out; echo "e2e_valgrind: tinyqat $* exited $got, expected $want"; exit 1; }; }
set +e
expect 0 train --model mlp --data mnist:. --epochs 1 --batch 64 --threads 2 --quiet --out m.tqc --json m.json
expect 0 eval --model-file m.tqc --quiet
expect 0 ptq --model-file m.tqc --recipe w4a4 --calib-batches 2 --quiet --out p.tqc
expect 0 qat --model-file p.tqc --epochs 1 --quiet --out q.tqc
expect 0 info q.tqc
expect 0 eval --model-file p.tqc --engine int --compare --quiet
expect 0 compare --model-file m.tqc --recipes int8 --calibs max,entropy --calib-batches 2 --quiet --out c
expect 0 grid e4m3
expect 0 fq --spec int4 --amax 2 0.3 -7
expect 0 fq --spec nvfp4 0.3 -7 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17
expect 2 train --bogus
expect 1 eval --model-file missing.tqc
printf 'X' | dd of=q.tqc bs=1 seek=100 conv=notrunc 2>/dev/null
expect 1 info q.tqc
echo "e2e_valgrind: 12 commands clean"
