#!/usr/bin/python3
"""Cross-check of tinyqat's fake quant against PyTorch on a million values (1000 channels of
1000) with per-channel abs-max amax, through bench/fq_dump (float32 in, amax + float32 out).

For int8 and int4: tinyqat must equal clamp(round(x / scale)) * scale computed in torch
(torch.round is half to even) to the bit; against torch.fake_quantize_per_channel_affine,
which multiplies by 1/scale, every difference must be a rounding tie: x/scale within an ulp
of k + 0.5, where x * (1/scale) and x / scale fall on either side of it.
For e4m3 (torch 1.13 has no float8): against round-to-nearest-even onto the E4M3 grid
(enumerated from its bit patterns, saturating at 448), written here in numpy.

A tenth of each channel is placed on the midpoints between grid points (k + 0.5 times the
scale, rounded to float32), where the two ways of dividing disagree most often.
Usage: fq_crosscheck.py BUILD_DIR"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

ROWS, COLS = 1000, 1000


def e4m3_grid():
    """Non-negative finite E4M3 values ascending; index = bit pattern (0..126)."""
    vals = []
    for code in range(127):  # 127 = 0x7f is NaN
        e, m = code >> 3, code & 7
        vals.append(m / 8 * 2.0 ** -6 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7))
    return np.array(vals)


FORMATS = {  # name: (spec, qmin, qmax)
    "int8": ("int8:channel=0", -128, 127),
    "int4": ("int4:channel=0", -8, 7),
    "e4m3": ("e4m3:channel=0", -448, 448),
}


def make_data(rng, fmt):
    """Normal values with a per-channel spread, a tenth moved onto grid midpoints."""
    _, _, qmax = FORMATS[fmt]
    sigma = np.exp(rng.normal(0, 2, size=(ROWS, 1)))
    x = (rng.normal(size=(ROWS, COLS)) * sigma).astype(np.float32)
    amax = np.abs(x).max(1, keepdims=True)
    scale = (amax / np.float32(qmax)).astype(np.float32)
    if fmt == "e4m3":
        g = e4m3_grid()
        mids = (g[:-1] + g[1:]) / 2
        mid = mids[rng.integers(0, len(mids), size=(ROWS, COLS))] * rng.choice([-1, 1], (ROWS, COLS))
    else:
        mid = rng.integers(-qmax, qmax, size=(ROWS, COLS)) + 0.5
    ties = (mid.astype(np.float32) * scale).astype(np.float32)
    pick = rng.random((ROWS, COLS)) < 0.1
    pick &= np.abs(ties) < amax  # keep each channel's abs max where it is
    return np.where(pick, ties, x).astype(np.float32), pick


def run_tinyqat(build, spec, x):
    with tempfile.TemporaryDirectory() as d:
        xin, yout = os.path.join(d, "x.bin"), os.path.join(d, "y.bin")
        x.tofile(xin)
        subprocess.run([os.path.join(build, "fq_dump"), spec, str(ROWS), str(COLS), xin, yout],
                       check=True)
        raw = np.fromfile(yout, dtype=np.float32)
    return raw[:ROWS], raw[ROWS:].reshape(ROWS, COLS)


def same_bits(a, b):
    return a.view(np.int32) == b.view(np.int32)


def e4m3_reference(x, scale):
    """Round-to-nearest-even onto the E4M3 grid (ties to the even bit pattern), saturating."""
    g = e4m3_grid()
    v = (x / scale).astype(np.float32)
    a = np.minimum(np.abs(v).astype(np.float64), 448.0)
    hi = np.clip(np.searchsorted(g, a), 1, len(g) - 1)
    lo = hi - 1
    dlo, dhi = a - g[lo], g[hi] - a
    idx = np.where(dlo < dhi, lo, np.where(dhi < dlo, hi, np.where(lo % 2 == 0, lo, hi)))
    r = np.copysign(g[idx], v).astype(np.float32)
    return (r * scale).astype(np.float32), r


def check_int(fmt, x, amax, ours, placed):
    spec, qmin, qmax = FORMATS[fmt]
    xt, scale = torch.from_numpy(x), torch.from_numpy(amax) / qmax
    s = scale.reshape(-1, 1)
    ref = (torch.clamp(torch.round(xt / s), qmin, qmax) * s).numpy()
    div_diff = int((~same_bits(ours, ref)).sum())
    fq = torch.fake_quantize_per_channel_affine(xt, scale, torch.zeros(ROWS, dtype=torch.int32),
                                                0, qmin, qmax).numpy()
    # torch's kernel returns +0 where x/scale rounds to -0; equal values, counted apart
    zero_sign = ~same_bits(ours, fq) & (ours == fq)
    differ = ours != fq
    rows, cols = np.nonzero(differ)
    q64 = x[rows, cols].astype(np.float64) / scale.numpy()[rows].astype(np.float64)
    qdiv = (xt / s).numpy()[rows, cols]
    qmul = (xt * (1.0 / s)).numpy()[rows, cols]
    half = np.floor(q64) + 0.5
    ulp = np.spacing(np.abs(qdiv).astype(np.float32)).astype(np.float64)
    within = np.abs(q64 - half) <= ulp
    straddle = np.rint(qdiv) != np.rint(qmul)
    print(f"{fmt}: {x.size} values, amax equal to torch abs max: "
          f"{bool(np.array_equal(amax, np.abs(x).max(1)))}")
    print(f"  vs clamp(round(x / scale)) * scale in torch: {div_diff} values differ in any bit")
    print(f"  vs torch.fake_quantize_per_channel_affine (x * (1/scale)): {int(differ.sum())} "
          f"values differ (and {int(zero_sign.sum())} zeros differ only in sign); "
          f"x/scale within an ulp of k+0.5: {int(within.sum())}; x/scale and x*(1/scale) "
          f"round to different integers: {int(straddle.sum())}; any other difference: "
          f"{int((~(within & straddle)).sum())}")
    print(f"    of the differences, {int((~placed[rows, cols]).sum())} among the plain normal "
          f"values, the rest on the placed midpoints")
    for i in np.linspace(0, len(rows) - 1, min(4, len(rows))).astype(int):
        r, c = rows[i], cols[i]
        print(f"    x={x[r, c]:.9g} scale={scale[r].item():.9g} x/scale={qdiv[i]:.9g} "
              f"x*(1/scale)={qmul[i]:.9g} tinyqat={ours[r, c]:.9g} torch_fq={fq[r, c]:.9g}")
    return div_diff == 0 and bool((within & straddle).all())


def check_e4m3(x, amax, ours):
    scale = (amax / np.float32(448)).astype(np.float32).reshape(-1, 1)
    ref, grid_value = e4m3_reference(x, scale)
    differ = ~same_bits(ours, ref)
    print(f"e4m3: {x.size} values, amax equal to abs max: "
          f"{bool(np.array_equal(amax, np.abs(x).max(1)))}")
    print(f"  vs grid round-to-nearest-even in numpy (x / scale): {int(differ.sum())} values "
          f"differ in any bit")
    v = (x / scale).astype(np.float32)
    g = e4m3_grid()
    mids = (g[:-1] + g[1:]) / 2
    exact_ties = np.isin(np.abs(v).astype(np.float64), mids)
    print(f"  values exactly on a midpoint (ties to even exercised): {int(exact_ties.sum())}")
    for r, c in list(zip(*np.nonzero(exact_ties)))[:4]:
        a = abs(float(v[r, c]))
        k = int(np.searchsorted(g, a))
        print(f"    x/scale={v[r, c]:.9g}: between codes 0x{k - 1:02x} ({g[k - 1]:.9g}) and "
              f"0x{k:02x} ({g[k]:.9g}) -> {grid_value[r, c]:.9g}; tinyqat {ours[r, c]:.9g} "
              f"= reference {ref[r, c]:.9g}")
    return not differ.any()


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    rng = np.random.default_rng(7)
    ok = True
    for fmt in FORMATS:
        x, placed = make_data(rng, fmt)
        amax, ours = run_tinyqat(build, FORMATS[fmt][0], x)
        ok &= check_e4m3(x, amax, ours) if fmt == "e4m3" else check_int(fmt, x, amax, ours, placed)
    print("crosscheck:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
