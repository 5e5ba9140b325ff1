#!/usr/bin/python3
"""tinyqat's quantization against the independent numpy reference in numerics.py and
calibrators.py, through tests/fixture/quant_dump (float32 in; amax, unsigned choice, scales,
codes and fake-quant outputs out).

  quant_ref.py QUANT_DUMP formats    rounding, int/uint, per-channel/per-block, MX, NVFP4
  quant_ref.py QUANT_DUMP calib      percentile, MSE and entropy calibration

What must agree, and how closely:
- amax from abs max and from the percentile calibrator, the unsigned switch, every scale,
  code and output: to the bit (the reference does the same float32 operations).
- MSE calibration: tinyqat searches every 8th threshold, then every one within 7 bins of
  the best, so it can miss the global minimum of a jagged error curve. Its threshold must be
  a candidate (a bin edge below the abs max seen, or that abs max) whose squared error
  (computed here) is within MSE_TOL (0.5%) of the minimum over all of them (brute force).
  Over 150 random calibrations (6 formats, 5 distributions) it was the minimum itself 148
  times and at most 0.16% above it.
- Entropy calibration: its threshold must be a bin edge whose KL divergence, computed here
  directly as the slides give it, is the minimum over every threshold from `levels` bins to
  the bin holding the abs max, to 1e-9 relative + 1e-12 absolute: tinyqat sums the same
  terms through prefix sums (sum h log h - sum h log q, then normalised), which rounds
  differently. The slides loop i over 128..2047 and place the threshold at (m + 0.5) bin
  widths; tinyqat also tries i = 2048 (no clipping) and, like the open transcriptions
  (MXNet, pytorch-quantization), returns the bin edge m: compared by index m."""
import os
import subprocess
import sys
import tempfile

import numpy as np

import calibrators as cal
from numerics import F32, Spec, as3d, block_absmax, fake_quant, per_element, scales

MSE_TOL = 0.005  # squared error at most 0.5% above the brute-force minimum
KINDS = {0: "int", 1: "uint", 2: "e4m3", 3: "e5m2", 4: "e2m1"}
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL " + what)
    return ok


def run_dump(dump, mode, spec, x, chunks):
    with tempfile.TemporaryDirectory() as d:
        xin, out = os.path.join(d, "x"), os.path.join(d, "y")
        x.astype(F32).tofile(xin)
        shape = "x".join(str(s) for s in x.shape)
        subprocess.run([dump, mode, spec, shape, xin, out, str(chunks)], check=True)
        raw = open(out, "rb").read()
    head = np.frombuffer(raw[:48], dtype=np.int64)
    na, ns, n = int(head[0]), int(head[1]), int(head[2])
    body = np.frombuffer(raw[48:], dtype=F32)
    parts = np.split(body, np.cumsum([na, ns, n, n, n]))
    return {"unsigned": bool(head[3]), "kind": KINDS[int(head[4])], "bits": int(head[5]),
            "amax": parts[0], "scales": parts[1], "codes": parts[2].reshape(x.shape),
            "y_op": parts[3].reshape(x.shape), "y_apply": parts[4].reshape(x.shape),
            "y_first": parts[5].reshape((1,) + x.shape[1:]) if mode == "act" else None}


def same_bits(a, b):
    a, b = np.asarray(a, dtype=F32), np.asarray(b, dtype=F32)
    nan = np.isnan(a) & np.isnan(b)
    return (a.view(np.int32) == b.view(np.int32)) | nan


def check_bits(name, got, want, label):
    eq = same_bits(got, want)
    if check(eq.all(), f"{label}: {name} differs at {np.count_nonzero(~eq)} of {eq.size}"):
        return True
    i = np.flatnonzero(~eq)[:5]
    for k in i:
        print(f"     [{k}] tinyqat {got.reshape(-1)[k]!r} reference {want.reshape(-1)[k]!r}")
    return False


def histograms(x, spec, chunks):
    """One histogram per channel (per-channel specs) or one for all, fed batch by batch as
    quant_dump feeds tinyqat: the first dimension cut into `chunks` slices."""
    rows = x.shape[0]
    cuts = [rows * c // chunks for c in range(chunks + 1)]
    per_channel = spec.block == "channel"
    n = x.shape[spec.axis % x.ndim] if per_channel else 1
    hs = [cal.Histogram() for _ in range(n)]
    for a, b in zip(cuts, cuts[1:]):
        if a == b:
            continue
        if per_channel:
            x3 = as3d(x[a:b], spec)
            for c in range(n):
                v = x3[:, c, :]
                hs[c].add(v[np.isfinite(v)])
        else:
            part = x[a:b]
            hs[0].add(part[np.isfinite(part)])
    return hs


def calibrated(h, spec, fmt, got, label):
    """The reference amax of one histogram; for MSE and entropy, tinyqat's own amax after
    checking it against the brute-force search."""
    if spec.calib == "max" or h.range == 0:
        return h.amax
    if spec.calib == "percentile":
        return min(cal.percentile(h, spec.pct), h.amax)
    cands = cal.candidates(h)
    if not check(got in cands, f"{label}: amax {got!r} is neither a bin edge below the abs "
                 f"max {h.amax!r} nor the abs max"):
        return got
    if spec.calib == "mse":
        err = cal.mse_errors(h, fmt, cands)
        here, best = err[np.flatnonzero(cands == got)[0]], err.min()
        ratio = here / best if best > 0 else (1.0 if here == 0 else np.inf)
        stats["mse"].append(ratio)
        check(ratio <= 1 + MSE_TOL, f"{label}: MSE at tinyqat's threshold {got!r} is {ratio:.4f}"
              f" x the brute-force minimum {best:.6g} (at {cands[np.argmin(err)]!r})")
    else:
        k = int(np.flatnonzero(cands == got)[0]) + 1  # bins kept
        every = np.arange(cal.levels(fmt), cal.top_bin(h) + 1)
        kl = cal.kl_divergences(h, fmt, every)
        here = kl[every == k][0] if k in every else np.inf
        ratio = here / kl.min() if kl.min() > 0 else 1.0
        stats["entropy"].append(ratio)
        check(here <= kl.min() * (1 + 1e-9) + 1e-12,
              f"{label}: entropy chose {k} bins (KL {here:.9g}); the reference's minimum is at "
              f"{every[np.argmin(kl)]} bins (KL {kl.min():.9g})")
    return got


def reference(mode, spec, x, chunks, got, label):
    """Reference amax, unsigned choice, format, scales, codes and outputs."""
    finite = x[np.isfinite(x)]
    go_unsigned = (mode == "act" and spec.auto_unsigned and spec.elem.startswith("int")
                   and spec.scale == "float" and not np.any(finite < 0))
    fmt = spec.format(go_unsigned)
    if mode == "weight" and (spec.calib == "max" or spec.block == "block"):
        amax = block_absmax(x, spec)
    else:
        hs = histograms(x, spec, chunks if mode == "act" else 1)
        amax = np.array([calibrated(h, spec, fmt, g, f"{label} [{i}]")
                         for i, (h, g) in enumerate(zip(hs, got["amax"]))], dtype=F32)
    slot_amax, global_amax = amax, amax.max()
    if spec.block == "block" and len(amax) == 1 and len(block_absmax(x, spec)) > 1:
        slot_amax = np.minimum(block_absmax(np.where(np.isfinite(x), x, 0), spec), amax[0])
    s = scales(spec, fmt, slot_amax, global_amax)
    codes, y = fake_quant(fmt, x, per_element(x, spec, s))
    return {"unsigned": go_unsigned, "fmt": fmt, "amax": amax, "scales": s, "codes": codes, "y": y}


stats = {"mse": [], "entropy": []}


def ties(x, spec, ref):
    """How many values sit exactly halfway between two grid values once divided by their
    scale: where ties to even decide."""
    s_el = per_element(x, spec, ref["scales"])
    fmt = ref["fmt"]
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.abs(np.where(s_el > 0, x / s_el, F32(0)).astype(np.float64))
    g = fmt.grid
    return int(np.count_nonzero(np.isin(v, (g[:-1] + g[1:]) / 2)))


def run_case(dump, mode, spec_text, x, chunks=1):
    spec = Spec(spec_text)
    label = f"{mode} {spec_text} {'x'.join(map(str, x.shape))}"
    got = run_dump(dump, mode, spec_text, x, chunks)
    ref = reference(mode, spec, x, chunks, got, label)
    ok = check(got["unsigned"] == ref["unsigned"], f"{label}: unsigned {got['unsigned']}")
    ok &= check(got["kind"] + (str(got["bits"]) if got["kind"].endswith("int") else "")
                == ref["fmt"].name, f"{label}: format {got['kind']}{got['bits']}")
    ok &= check_bits("amax", got["amax"], ref["amax"], label)
    ok &= check_bits("scales", got["scales"], ref["scales"], label)
    ok &= check_bits("codes", got["codes"], ref["codes"], label)
    ok &= check_bits("op output", got["y_op"], ref["y"], label)
    ok &= check_bits("apply output", got["y_apply"], ref["y"], label)
    if mode == "act":  # an image alone is quantized as in its batch
        ok &= check_bits("first slice alone", got["y_first"], ref["y"][:1], label)
    nz = np.count_nonzero(ref["y"])
    if ok:
        print(f"ok   {label}: {ref['fmt'].name}, {len(ref['amax'])} amax, {len(ref['scales'])} "
              f"scales, {x.size} values ({nz} nonzero, {ties(x, spec, ref)} ties) bitwise equal")
    return got, ref


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] not in ("formats", "calib"):
        sys.exit("usage: quant_ref.py QUANT_DUMP formats|calib")
    from cases import CALIB_CASES, FORMAT_CASES
    for case in (FORMAT_CASES if sys.argv[2] == "formats" else CALIB_CASES)():
        run_case(sys.argv[1], *case)
    for k, v in stats.items():
        if v:
            print(f"{k}: {len(v)} calibrations, error / minimum: max {max(v):.4f}, "
                  f"exactly the minimum in {sum(r == 1.0 for r in v)}")
    print(f"quant_ref {sys.argv[2]}: {len(failures)} failures")
    sys.exit(1 if failures else 0)
