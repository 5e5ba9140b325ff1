#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into tests/fuzz/corpus/<target>/: small valid
files and broken ones (truncated, wrong magic or version, bad checksums, absurd sizes, NaN).
Deterministic: running it again gives the same bytes. Usage: make_corpus.py [OUT_DIR]"""
import gzip
import io
import os
import struct
import sys
import zlib

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(data):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def truncations(target, stem, data, cuts):
    for c in cuts:
        if 0 <= c < len(data):
            put(target, "%s-cut%d" % (stem, c), data[:c])


# ---------------------------------------------------------------- idx
def idx_images(n, h, w, pixels=None, magic=0x803):
    body = pixels if pixels is not None else bytes((i * 37) & 0xFF for i in range(n * h * w))
    return struct.pack(">IIII", magic, n, h, w) + body


def idx_labels(labels, magic=0x801, count=None):
    return struct.pack(">II", magic, len(labels) if count is None else count) + bytes(labels)


def make_idx():
    t = "idx"
    img = idx_images(2, 3, 2)
    lbl = idx_labels([3, 9])
    put(t, "images-2x3x2", img)
    put(t, "images-2x3x2.gz", gz(img))
    put(t, "images-2x1x1", idx_images(2, 1, 1))
    put(t, "images-2x28x28.gz", gz(idx_images(2, 28, 28)))
    put(t, "images-3x2x2-count-mismatch", idx_images(3, 2, 2))
    put(t, "images-trailing-bytes", img + b"extra")
    put(t, "labels-2", lbl)
    put(t, "labels-2.gz", gz(lbl))
    put(t, "labels-5-count-mismatch", idx_labels([0, 1, 2, 3, 4]))
    truncations(t, "images", img, [0, 2, 4, 9, 15, 16, 20, len(img) - 1])
    truncations(t, "labels", lbl, [0, 3, 6, 8, 9])
    truncations(t, "images.gz", gz(img), [10, 20, len(gz(img)) - 8, len(gz(img)) - 1])
    put(t, "images-magic-labels", idx_images(2, 3, 2, magic=0x801))
    put(t, "images-magic-zero", idx_images(2, 3, 2, magic=0))
    put(t, "images-magic-idx4", idx_images(2, 3, 2, magic=0x804))
    put(t, "labels-magic-images", idx_labels([1, 2], magic=0x803))
    put(t, "images-zero-count", idx_images(0, 3, 2, pixels=b""))
    put(t, "images-zero-rows", idx_images(2, 0, 2, pixels=b""))
    put(t, "images-side-65537", idx_images(2, 65537, 1, pixels=b"\0" * 8))
    put(t, "images-count-max", idx_images(0xFFFFFFFF, 1, 1, pixels=b"\0" * 8))
    put(t, "images-overflow", idx_images(0x7FFFFFFF, 65536, 65536, pixels=b"\0" * 8))
    put(t, "images-claims-60000x28x28", idx_images(60000, 28, 28, pixels=b"\1" * 10))
    put(t, "labels-count-zero", idx_labels([], count=0))
    put(t, "labels-count-max", idx_labels([1, 2], count=0xFFFFFFFF))
    put(t, "labels-claims-60000", idx_labels([1, 2, 3], count=60000))
    put(t, "labels-value-10", idx_labels([1, 10]))
    put(t, "labels-value-255", idx_labels([255, 0]))
    bad_crc = bytearray(gz(img))
    bad_crc[-6] ^= 0xFF  # gzip trailer: CRC-32 of the data
    put(t, "images-gz-bad-crc.gz", bytes(bad_crc))
    bad_len = bytearray(gz(img))
    bad_len[-1] ^= 0x01  # gzip trailer: length of the data
    put(t, "images-gz-bad-length.gz", bytes(bad_len))
    bad_deflate = bytearray(gz(img))
    bad_deflate[12] ^= 0xFF
    put(t, "images-gz-bad-deflate.gz", bytes(bad_deflate))
    put(t, "images-gz-header-only.gz", gz(img)[:10])
    put(t, "images-two-gz-members.gz", gz(img[:9]) + gz(img[9:]))
    put(t, "images-gz-bomb-header.gz", gz(idx_images(2, 2048, 2048, pixels=b"\0" * 100000)))


# ---------------------------------------------------------------- cifar
def make_cifar():
    t = "cifar"
    rec = lambda label, seed: bytes([label]) + bytes((seed + i * 7) & 0xFF for i in range(3072))
    one, two = rec(3, 1), rec(3, 1) + rec(9, 2)
    put(t, "one-record", one)
    put(t, "two-records", two)
    put(t, "empty", b"")
    put(t, "label-10", rec(10, 0))
    put(t, "label-255-second", rec(0, 0) + rec(255, 0))
    put(t, "record-minus-one", one[:-1])
    put(t, "record-plus-one", one + b"\0")
    put(t, "one-byte", b"\x01")


# ---------------------------------------------------------------- png
def chunk(kind, data, crc=None):
    c = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", c & 0xFFFFFFFF)


SIG = b"\x89PNG\r\n\x1a\n"
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def row_bytes(samples, depth):
    """Packs one row of samples at the bit depth, big-endian within bytes."""
    if depth == 8:
        return bytes(samples)
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    out, acc, bits = bytearray(), 0, 0
    for s in samples:
        acc = acc << depth | s
        bits += depth
        if bits == 8:
            out.append(acc)
            acc, bits = 0, 0
    if bits:
        out.append(acc << (8 - bits))
    return bytes(out)


def png(w, h, color, depth, channels, interlace=0, extra=b"", ihdr=None, idat=None, iend=True):
    maxv = (1 << depth) - 1
    pix = [[[(x * 31 + y * 17 + c * 59) % (maxv + 1) for c in range(channels)] for x in range(w)]
           for y in range(h)]
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        xs = list(range(x0, w, dx))
        if not xs:
            continue
        for y in range(y0, h, dy):
            raw += b"\0" + row_bytes([s for x in xs for s in pix[y][x]], depth)
    head = ihdr if ihdr is not None else struct.pack(">IIBBBBB", w, h, depth, color, 0, 0,
                                                       interlace)
    data = SIG + chunk(b"IHDR", head) + extra
    data += chunk(b"IDAT", zlib.compress(bytes(raw), 9) if idat is None else idat)
    return data + (chunk(b"IEND", b"") if iend else b"")


def make_png():
    t = "png"
    plte = chunk(b"PLTE", bytes(range(48)))
    grey = png(4, 3, 0, 8, 1)
    put(t, "grey8-4x3.png", grey)
    put(t, "grey1-9x2.png", png(9, 2, 0, 1, 1))
    put(t, "grey2-5x2.png", png(5, 2, 0, 2, 1))
    put(t, "grey4-3x3.png", png(3, 3, 0, 4, 1))
    put(t, "grey16-3x2.png", png(3, 2, 0, 16, 1))
    put(t, "rgb8-3x2.png", png(3, 2, 2, 8, 3))
    put(t, "rgb16-2x2.png", png(2, 2, 2, 16, 3))
    put(t, "rgba8-2x3.png", png(2, 3, 6, 8, 4))
    put(t, "grey-alpha8-3x2.png", png(3, 2, 4, 8, 2))
    put(t, "palette4-5x2.png", png(5, 2, 3, 4, 1, extra=plte))
    put(t, "palette8-trns-3x2.png",
        png(3, 2, 3, 8, 1, extra=plte + chunk(b"tRNS", b"\x00\x80\xff")))
    put(t, "grey8-trns-2x2.png", png(2, 2, 0, 8, 1, extra=chunk(b"tRNS", b"\x00\x05")))
    put(t, "grey8-interlaced-9x9.png", png(9, 9, 0, 8, 1, interlace=1))
    put(t, "rgb8-interlaced-5x3.png", png(5, 3, 2, 8, 3, interlace=1))
    put(t, "grey8-gamma-text.png",
        png(2, 2, 0, 8, 1, extra=chunk(b"gAMA", struct.pack(">I", 45455)) +
            chunk(b"tEXt", b"Comment\0fuzz seed")))
    truncations(t, "grey8", grey, [0, 7, 8, 20, 33, 40, len(grey) - 13, len(grey) - 1])
    put(t, "bad-signature.png", b"\x89PNX" + grey[4:])
    bad = bytearray(grey)
    bad[29] ^= 0xFF  # IHDR CRC
    put(t, "bad-ihdr-crc.png", bytes(bad))
    put(t, "bad-idat-crc.png",
        SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 3, 8, 0, 0, 0, 0)) +
        chunk(b"IDAT", zlib.compress(b"\0" * 15), crc=0) + chunk(b"IEND", b""))
    put(t, "bad-zlib.png", png(4, 3, 0, 8, 1, idat=b"\x78\x9c\xff\xff\xff\xff"))
    put(t, "short-idat.png", png(4, 3, 0, 8, 1, idat=zlib.compress(b"\0" * 7)))
    put(t, "no-iend.png", png(4, 3, 0, 8, 1, iend=False))
    put(t, "no-idat.png", SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 3, 8, 0, 0, 0, 0)) +
        chunk(b"IEND", b""))
    put(t, "width-zero.png", png(0, 3, 0, 8, 1, idat=zlib.compress(b"\0" * 3)))
    put(t, "width-2pow31.png", png(1, 1, 0, 8, 1, ihdr=struct.pack(">IIBBBBB", 1 << 31, 1, 8, 0,
                                                                    0, 0, 0)))
    # Sides the loader accepts but a few hundred bytes cannot fill.
    put(t, "huge-65536x65536.png",
        png(1, 1, 0, 8, 1, ihdr=struct.pack(">IIBBBBB", 65536, 65536, 8, 0, 0, 0, 0),
            idat=zlib.compress(b"\0" * 200000, 9)))
    put(t, "huge-rgb16-60000x60000.png",
        png(1, 1, 2, 16, 3, ihdr=struct.pack(">IIBBBBB", 60000, 60000, 16, 2, 0, 0, 0)))
    put(t, "wide-65537x1.png",
        png(1, 1, 0, 8, 1, ihdr=struct.pack(">IIBBBBB", 65537, 1, 8, 0, 0, 0, 0),
            idat=zlib.compress(b"\0" * 65538)))
    put(t, "depth-3.png", png(2, 2, 0, 8, 1, ihdr=struct.pack(">IIBBBBB", 2, 2, 3, 0, 0, 0, 0)))
    put(t, "color-5.png", png(2, 2, 0, 8, 1, ihdr=struct.pack(">IIBBBBB", 2, 2, 8, 5, 0, 0, 0)))
    put(t, "palette-without-plte.png", png(3, 2, 3, 8, 1))
    put(t, "palette-index-out-of-range.png",
        png(3, 2, 3, 8, 1, extra=chunk(b"PLTE", bytes(6))))
    put(t, "interlace-2.png", png(2, 2, 0, 8, 1, ihdr=struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 2)))
    put(t, "bad-filter-type.png", png(2, 1, 0, 8, 1, idat=zlib.compress(b"\x07\x01\x02")))


# ---------------------------------------------------------------- checkpoint
def ckpt(sections, version=1, count=None, size_delta=0, crc_xor=0, pad_byte=0, tail=b""):
    """sections: (name bytes, type, count, payload bytes); payload already little-endian."""
    body = bytearray()
    for name, typ, n, payload in sections:
        body += struct.pack("<I", len(name)) + name + struct.pack("<IQ", typ, n)
        while (24 + len(body)) % 8:
            body.append(pad_byte)
        body += payload
    body += tail
    total = 24 + len(body) + 4
    head = b"TQCKPT\0\0" + struct.pack("<IIQ", version, len(sections) if count is None else count,
                                       total + size_delta)
    data = head + bytes(body)
    return data + struct.pack("<I", (zlib.crc32(data) ^ crc_xor) & 0xFFFFFFFF)


def f32(*v):
    return (len(v), struct.pack("<%df" % len(v), *v))


def make_checkpoint():
    t = "checkpoint"
    w = f32(0.5, -1.25, 3.0)
    steps = (2, struct.pack("<qq", 7, -9))
    model = b"lenet5"
    good = [(b"params", 1, w[0], w[1]), (b"step", 2, steps[0], steps[1]),
            (b"model", 3, len(model), model + b"\0")]
    valid = ckpt(good)
    put(t, "valid", valid)
    put(t, "empty", ckpt([]))
    put(t, "empty-string-and-array", ckpt([(b"s", 3, 0, b"\0"), (b"a", 1, 0, b"")]))
    put(t, "name-255", ckpt([(b"n" * 255, 2, 1, struct.pack("<q", 1))]))
    put(t, "nan", ckpt([(b"params", 1) + f32(1.0, float("nan"))]))
    put(t, "inf", ckpt([(b"params", 1) + f32(float("-inf"))]))
    truncations(t, "valid", valid, [0, 5, 8, 23, 24, 27, 30, 40, 60, len(valid) - 5,
                                    len(valid) - 1])
    put(t, "bad-magic", b"TQCKPX" + valid[6:])
    put(t, "version-0", ckpt(good, version=0))
    put(t, "version-2", ckpt(good, version=2))
    put(t, "bad-checksum", ckpt(good, crc_xor=1))
    put(t, "size-field-short", ckpt(good, size_delta=-8))
    put(t, "size-field-long", ckpt(good, size_delta=8))
    put(t, "count-too-many", ckpt(good, count=4))
    put(t, "count-too-few", ckpt(good, count=2))
    put(t, "count-huge", ckpt(good, count=0xFFFFFFFF))
    put(t, "unknown-type", ckpt([(b"x", 4, 1, b"\0" * 8)]))
    put(t, "type-zero", ckpt([(b"x", 0, 0, b"")]))
    put(t, "name-empty", ckpt([(b"", 2, 1, struct.pack("<q", 1))]))
    put(t, "name-256", ckpt([(b"n" * 256, 2, 1, struct.pack("<q", 1))]))
    put(t, "name-with-nul", ckpt([(b"a\0b", 2, 1, struct.pack("<q", 1))]))
    put(t, "duplicate-name", ckpt([(b"a", 2, 1, struct.pack("<q", 1)),
                                   (b"a", 1, 1, struct.pack("<f", 1))]))
    put(t, "nonzero-padding", ckpt(good, pad_byte=1))
    put(t, "string-without-nul", ckpt([(b"s", 3, 3, b"abcd")]))
    put(t, "count-exceeds-file", ckpt([(b"p", 1, 1000, b"\0" * 8)]))
    put(t, "count-overflow", ckpt([(b"p", 2, 1 << 61, b"\0" * 8)]))
    put(t, "count-max", ckpt([(b"p", 1, (1 << 64) - 1, b"\0" * 8)]))
    put(t, "string-count-max", ckpt([(b"s", 3, (1 << 64) - 1, b"\0" * 8)]))
    put(t, "trailing-bytes", ckpt(good, tail=b"\0" * 8))
    make_run_checkpoints(t)


def i64s(*v):
    return (len(v), struct.pack("<%dq" % len(v), *v))


def string(s):
    return (len(s), s + b"\0")


def run_sections(model=b"lenet5", shape=(1, 12, 12, 2), n_params=14946, steps=0, batch=64,
                 norm=(0.5, 0, 0, 0, 0.25, 1, 1, 1), quant=True):
    """A run checkpoint as tq_run_save writes it: lenet5 on 1x12x12 inputs, 2 classes."""
    # run.i64: epoch, epochs, batch, seed, optim steps, optim kind, nesterov, schedule kind,
    # warm-up, step size, total steps, batch in epoch, rng state (2); run.f32: momentum, wd,
    # beta1, beta2, eps, lr, min lr, gamma, clip, validation fraction.
    secs = [(b"model.name", 3) + string(model), (b"model.input", 2) + i64s(*shape),
            (b"model.params", 1, n_params, struct.pack("<f", 0.01) * n_params),
            (b"model.state", 1, 0, b""), (b"data.name", 3) + string(b"pngdir"),
            (b"data.norm", 1) + f32(*norm),
            (b"run.i64", 2) + i64s(1, 2, batch, 7, steps, 1, 0, 0, 0, 1, 100, 0, 1, 2),
            (b"run.f32", 1) + f32(0.9, 0, 0.9, 0.999, 1e-8, 1e-3, 0, 0.1, 0, 0)]
    if quant:
        secs += [(b"q.fc3.w.spec", 3) + string(b"int4:channel=0"),
                 (b"q.fc3.w.amax", 1) + f32(0.5, 0.25), (b"q.fc3.w.meta", 2) + i64s(2, 0),
                 (b"q.fc3.a.spec", 3) + string(b"int8"), (b"q.fc3.a.amax", 1) + f32(4.0),
                 (b"q.fc3.a.meta", 2) + i64s(2, 1)]
    return secs


def make_run_checkpoints(t):
    put(t, "run-lenet5", ckpt(run_sections()))
    put(t, "run-lenet5-float", ckpt(run_sections(quant=False)))
    put(t, "run-steps-without-optim-state", ckpt(run_sections(steps=3, quant=False)))
    bad_spec = run_sections()
    bad_spec[8] = (b"q.fc3.w.spec", 3) + string(b"int9:channel=0")
    put(t, "run-bad-quant-spec", ckpt(bad_spec))
    bad_amax = run_sections()
    bad_amax[9] = (b"q.fc3.w.amax", 1) + f32(0.5, 0.25, 1.0)
    put(t, "run-amax-count", ckpt(bad_amax))
    # Small ones the fuzzer can mutate: the model is built before its parameters are checked.
    for name, shape in [(b"mlp", (1, 2, 2, 2)), (b"mlp", (65536, 65536, 65536, 65536)),
                        (b"lenet5", (1, 1, 1, 2)), (b"resnet20", (3, 65536, 65536, 65536)),
                        (b"convnet", (4, 8, 8, 10)), (b"nosuchmodel", (1, 2, 2, 2)),
                        (b"mlp", (0, 2, 2, 2))]:
        secs = run_sections(model=name, shape=shape, n_params=0, quant=False)
        put(t, "run-%s-%s" % (name.decode(), "x".join(map(str, shape))), ckpt(secs))
    # learned scales: the scales' optimizer (steps, amax count) and its Adam state (m, v)
    learned = run_sections()
    learned[8] = (b"q.fc3.w.spec", 3) + string(b"int4:channel=0:scale=learn")
    learned[11] = (b"q.fc3.a.spec", 3) + string(b"int8:scale=learn")
    put(t, "run-learned-no-optim", ckpt(learned))
    opt = [(b"optim.scales", 2) + i64s(5, 3), (b"optim.scales.state", 1) + f32(*[0.0] * 6)]
    put(t, "run-learned-optim", ckpt(learned + opt))
    put(t, "run-learned-optim-count", ckpt(learned + [(b"optim.scales", 2) + i64s(5, 4)] + opt[1:]))
    put(t, "run-learned-optim-state", ckpt(learned + opt[:1] + [(b"optim.scales.state", 1) + f32(0.0)]))
    put(t, "run-fixed-with-optim", ckpt(run_sections() + opt))
    put(t, "run-batch-0", ckpt(run_sections(batch=0, quant=False)))
    # QAT's best epoch so far: its weights, state, number and validation accuracy (double bits)
    best = [(b"best.params", 1, 14946, struct.pack("<f", 0.02) * 14946), (b"best.state", 1, 0, b""),
            (b"best.meta", 2) + (2, struct.pack("<qd", 1, 0.75))]
    put(t, "run-best", ckpt(run_sections() + best))
    put(t, "run-best-accuracy-2", ckpt(run_sections() + best[:2] + [(b"best.meta", 2) + (2, struct.pack("<qd", 1, 2.0))]))
    put(t, "run-best-short", ckpt(run_sections() + [(b"best.params", 1) + f32(0.5)] + best[1:]))
    put(t, "run-best-no-meta", ckpt(run_sections() + best[:2]))
    put(t, "run-std-0", ckpt(run_sections(norm=(0.5, 0, 0, 0, 0, 1, 1, 1), quant=False)))


# ---------------------------------------------------------------- cli
def make_cli():
    t = "cli"
    args = {
        "empty": b"",
        "train": b"--model\nlenet5\n--epochs=3\n--nesterov\n--lr\n0.001",
        "help": b"--help",
        "h-after-options": b"--model\nmlp\n-h",
        "missing-value": b"--lr",
        "flag-with-value": b"--nesterov=1",
        "unknown": b"--bogus\n1",
        "positionals": b"a.tqc\nb.tqc\nc.tqc",
        "double-dash": b"--",
        "equals-only": b"--=x",
        "prefix-names": b"--step-size=3\n--step\n4\n--q=-0.5",
        "numbers": b"--epochs=1e309\n--lr=nan\n--batch=-0\n--step=0x10\n--q=inf",
        "overflow-int": b"--epochs=99999999999999999999999\n--batch= 5",
        "repeated": b"--data\nx\n--data=y\n--data\n--json",
        "nul-separated": b"--json\0out.json\0--batch\x0032",
        "full-table": b"--o47=5\n--o0\n--o1\nv\n--o48",
        "sixteen": b"\n".join(b"p%d" % i for i in range(17)),
        # more values than any fixed table, options and their values among them (fq)
        "interleaved": b"\n".join(b"%d\n--data\nd%d\n--nesterov" % (i, i) if i % 5 == 0
                                   else b"-%d.5" % i for i in range(60)),
        "dash-value": b"--lr\n--model\n-x\n-",
        "long-name": b"--" + b"m" * 300 + b"=1",
        "utf8": "--data=pngdir:caf\u00e9\n\u00e9".encode(),
    }
    for name, data in args.items():
        put(t, name, data)


# ---------------------------------------------------------------- spec
def make_spec():
    t = "spec"
    specs = ["int8", "int4:block=32:calib=mse", "uint4", "int2:narrow", "int8:channel",
             "int8:channel=1", "int4:block=16:axis=0", "e4m3", "e5m2:channel=-1", "e2m1",
             "mxfp8", "mxfp4:calib=entropy", "mxint8", "nvfp4:ste=pass",
             "int8:calib=percentile:p=99.9", "int8:p=50", "int8:unsigned=off:narrow=off",
             "int8:block=4:channel", "int8:channel=2:block=4", ":int8::calib=max:",
             # rejected ones
             "", "int9", "int1", "uint", "fp8", "int8:", "int8:bogus", "int8:block=0",
             "int8:block=1048577", "int8:axis=4", "int8:axis=1", "int8:channel=x",
             "uint4:narrow", "mxfp8:block=16", "nvfp4:channel", "int8:p=0", "int8:p=100.5",
             "int8:p=nan", "int8:p=50:calib=max", "int8:calib=kl", "int8:ste=none",
             "int8:unsigned=yes", "int8:narrow=maybe", "int8:tensor=1",
             "int8:calib=percentile:p=1e-45", "int8:block=2147483648", "int8:axis=-2",
             "int8:" + "channel:" * 40,
             # learned scales: accepted, then refused where the scales cannot learn
             "int4:channel=0:scale=learn", "e4m3:scale=learn:scale=fixed", "uint2:scale=learn",
             "int4:scale=learn:block=32", "nvfp4:scale=learn", "mxint8:scale=learn",
             "int4:scale=", "int4:scale=LEARN", "int4:scale"]
    for i, s in enumerate(specs):
        put(t, "spec-%02d" % i, s.encode())
    put(t, "with-nul", b"int4\0:block=3")
    put(t, "long-500", b"int8:" + b"x" * 500)


if __name__ == "__main__":
    make_idx()
    make_cifar()
    make_png()
    make_checkpoint()
    make_cli()
    make_spec()
