#!/usr/bin/env bash
# Writes the seed corpus of fuzz_onnx into tests/fuzz/corpus/onnx/: models exported by
# `tinyqat export` (LeNet-5 int8, w4a8, w2a2, fp8, with and without --codes) and broken
# ones (cut short, a byte changed, foreign files, nesting past the reader's limit).
# Usage: tests/fuzz/make_onnx_corpus.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
out=$(cd "$(dirname "$0")" && pwd)/corpus/onnx
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
cd "$tmp"
"$build/make_bars" . 120 3 200 50 >/dev/null
tq=$build/tinyqat
"$tq" train --model lenet5 --data mnist:. --epochs 1 --threads 1 --quiet --out f.tqc >/dev/null
for r in int8 w4a8 w2a2 fp8; do
  "$tq" ptq --model-file f.tqc --recipe $r --calib-batches 1 --threads 1 --quiet --out $r.tqc >/dev/null
  "$tq" export --model-file $r.tqc --out "$out/lenet5-$r.onnx" >/dev/null
done
"$tq" export --model-file w4a8.tqc --out "$out/lenet5-w4a8-codes.onnx" --codes >/dev/null
m=$out/lenet5-w4a8.onnx
size=$(stat -c %s "$m")
for cut in 0 1 2 7 64 1000 $((size / 2)) $((size - 1)); do head -c $cut "$m" > "$out/cut-$cut.onnx"; done
for at in 3 100 $((size / 3)) $((size - 20)); do
  cp "$m" "$out/flip-$at.onnx"
  printf '\xff' | dd of="$out/flip-$at.onnx" bs=1 seek=$at conv=notrunc 2>/dev/null
done
head -c 2048 f.tqc > "$out/foreign-checkpoint.onnx"
printf 'not a model at all\n' > "$out/foreign-text.onnx"
# ModelProto{ir_version 8, graph{node{attribute{g{node{...}}}}}} nested N levels
python3 - "$out" <<'PY'
import sys
def varint(n):
    b = b""
    while True:
        b += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
        n >>= 7
        if not n:
            return b
def field(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload
for depth in (3, 70, 2000):
    g = b""
    for _ in range(depth):
        g = field(1, field(5, field(6, g)))
    open("%s/nested-%d.onnx" % (sys.argv[1], depth), "wb").write(b"\x08\x08" + field(7, g))
# an initializer whose dims promise more data than it holds, and one with 9 dimensions
t = field(8, b"w") + b"\x10\x03" + b"".join(b"\x08" + varint(4) for _ in range(2)) + field(9, b"\x01\x02")
open("%s/short-data.onnx" % sys.argv[1], "wb").write(b"\x08\x08" + field(7, field(5, t)))
t = field(8, b"w") + b"\x10\x03" + b"".join(b"\x08\x01" for _ in range(9)) + field(9, b"\x01")
open("%s/nine-dims.onnx" % sys.argv[1], "wb").write(b"\x08\x08" + field(7, field(5, t)))
PY
echo "make_onnx_corpus: $(ls "$out" | wc -l) seeds in $out"
