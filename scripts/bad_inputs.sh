#!/usr/bin/env bash
# A tour of bad input: builds broken files from a small generated data set and a checkpoint,
# runs the command on each, and prints the exit status and the one-line message it gives.
#   scripts/bad_inputs.sh [BUILD_DIR]
set -uo pipefail
build=$(cd "${1:-build}" && pwd); tq=$build/tinyqat
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir good && "$build/make_bars" good 120 3 200 50
mk() { rm -rf d; cp -r good d; }
poke() { printf "$2" | dd of="$1" bs=1 seek="$3" conv=notrunc 2>/dev/null; }
case_() { printf -- '- %s: ' "$1"; shift; "$@" > out.txt 2>&1; printf 'exit %s, `%s`\n' "$?" "$(head -1 out.txt)"; }
train() { "$tq" train --model mlp --data "$1" --epochs 1 --quiet --out x.tqc; }

mk; head -c 5000 good/train-images-idx3-ubyte > d/train-images-idx3-ubyte
case_ "IDX images truncated" train mnist:d
mk; poke d/train-images-idx3-ubyte '\0\0\0\0' 0;      case_ "IDX wrong magic" train mnist:d
mk; head -c 100 good/train-labels-idx1-ubyte > d/train-labels-idx1-ubyte
case_ "IDX labels truncated" train mnist:d
mk; poke d/train-labels-idx1-ubyte '\0\0\0\x64' 4;    case_ "IDX image and label counts differ" train mnist:d
mk; poke d/train-labels-idx1-ubyte '\x0c' 10;         case_ "IDX label out of range" train mnist:d
mk; poke d/train-images-idx3-ubyte '\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff' 4
case_ "IDX dimensions whose product overflows" train mnist:d
mk; gzip -c good/train-images-idx3-ubyte | head -c 3000 > d/train-images-idx3-ubyte.gz; rm d/train-images-idx3-ubyte
case_ "IDX .gz cut short" train mnist:d
mk; rm d/t10k-labels-idx1-ubyte;                      case_ "missing file" train mnist:d
mk; rm d/train-images-idx3-ubyte; mkdir d/train-images-idx3-ubyte
case_ "a directory where a file is expected" train mnist:d
mkdir cif; head -c 3074 good/train-images-idx3-ubyte > cif/data_batch_1.bin
case_ "CIFAR-10 size not a multiple of 3073" train cifar10:cif
mkdir -p png/a; echo "not a png" > png/a/x.png;      case_ "PNG folder: a file that is not a PNG" train pngdir:png
mkdir empty;                                          case_ "PNG folder: empty folder" train pngdir:empty
case_ "unknown data kind" train imagenet:foo

"$tq" train --model mlp --data mnist:good --epochs 1 --quiet --out g.tqc > /dev/null
head -c 1000 g.tqc > t.tqc;                           case_ "checkpoint truncated" "$tq" eval --model-file t.tqc
cp g.tqc c.tqc; poke c.tqc 'Z' 300;                   case_ "checkpoint checksum mismatch" "$tq" eval --model-file c.tqc
cp g.tqc m.tqc; poke m.tqc 'X' 0;                     case_ "checkpoint wrong magic" "$tq" eval --model-file m.tqc
cp g.tqc v.tqc; poke v.tqc '\x09' 8;                  case_ "checkpoint newer version" "$tq" eval --model-file v.tqc
case_ "checkpoint path is a directory" "$tq" eval --model-file good
case_ "checkpoint missing" "$tq" eval --model-file nothere.tqc
case_ "output directory missing (before training)" "$tq" train --model mlp --data mnist:good --out nodir/x.tqc
case_ "JSON output unwritable" "$tq" eval --model-file g.tqc --json nodir/x.json
case_ "JSON output is a directory" "$tq" eval --model-file g.tqc --json good
mkdir cif5; for i in 1 2 3 4 5; do head -c 30730 /dev/zero > "cif5/data_batch_$i.bin"; done
case_ "data of another shape than the model" "$tq" eval --model-file g.tqc --data cifar10:cif5
case_ "resuming with another --model" "$tq" train --model lenet5 --resume g.tqc --out r.tqc
case_ "bad quantizer spec" "$tq" ptq --model-file g.tqc --weights int9 --out q.tqc
case_ "bad spec option" "$tq" ptq --model-file g.tqc --weights int4:block=0 --out q.tqc
case_ "scales that cannot learn" "$tq" ptq --model-file g.tqc --weights nvfp4:scale=learn --out q.tqc
case_ "unknown recipe" "$tq" ptq --model-file g.tqc --recipe w3a3 --out q.tqc
case_ "QAT on a float model" "$tq" qat --model-file g.tqc --out q.tqc
case_ "the integer engine on a float model" "$tq" eval --model-file g.tqc --engine int
"$tq" ptq --model-file g.tqc --recipe w4a16 --calib-batches 1 --quiet --out w.tqc > /dev/null
case_ "the integer engine on a weight-only recipe" "$tq" eval --model-file w.tqc --engine int
"$tq" ptq --model-file g.tqc --recipe fp8 --calib-batches 1 --quiet --out f.tqc > /dev/null
case_ "the integer engine on FP8" "$tq" eval --model-file f.tqc --engine int
"$tq" ptq --model-file g.tqc --recipe int8 --calib-batches 1 --quiet --out i.tqc > /dev/null
case_ "the integer engine on data of another shape" "$tq" eval --model-file i.tqc --engine int --data cifar10:cif5
"$tq" export --model-file g.tqc --out g.onnx > /dev/null
head -c 3000 g.onnx > t.onnx;                         case_ "ONNX model truncated" "$tq" info t.onnx
head -c 300 good/t10k-labels-idx1-ubyte > f.onnx
case_ "ONNX: a foreign file" "$tq" info f.onnx
case_ "ONNX output unwritable (before loading)" "$tq" export --model-file nothere.tqc --out nodir/x.onnx
"$tq" ptq --model-file g.tqc --recipe nvfp4 --calib-batches 1 --quiet --out n.tqc > /dev/null
case_ "ONNX export of NVFP4" "$tq" export --model-file n.tqc --out n.onnx
case_ "unknown option" "$tq" train --bogus
case_ "bad value" "$tq" train --lr abc
case_ "learning rate 1e9 (SGD)" "$tq" train --model lenet5 --data mnist:good --epochs 2 --optim sgd --lr 1e9 --quiet --out nan.tqc
printf -- '- partial outputs left behind: %s\n' "$(ls x.tqc nan.tqc q.tqc r.tqc n.onnx nodir 2>/dev/null | wc -l)"
