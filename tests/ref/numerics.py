"""A second implementation of tinyqat's quantization numerics in numpy, written from the
format definitions (OCP FP8 and MX v1.0, NVIDIA NVFP4), sharing no code with tinyqat:
element grids built from bit layouts, rounding to the nearest grid value (ties to the even
code, saturating), spec strings, amax layouts and the scales amax implies.

Every float32 operation tinyqat does is done here in float32 too (x / scale, code * scale,
amax / qmax), so results can be compared to the bit."""
import math

import numpy as np

F32 = np.float32


class Format:
    """An element format: its non-negative grid (ascending) with codes, min and max."""

    def __init__(self, name, grid, codes, lo, hi, emax):
        self.name, self.grid, self.codes = name, np.array(grid, dtype=np.float64), np.array(codes)
        self.lo, self.hi = F32(lo), F32(hi)
        self.emax = emax  # exponent of the largest value: MX shared exponents subtract it
        self.is_int = name.startswith(("int", "uint"))


def minifloat(name, ebits, mbits, bias):
    """Sign + ebits + mbits with the given bias. E4M3 has no infinities (only S.1111.111 is
    NaN); E5M2 is IEEE-like (exponent all ones: inf/NaN); E2M1 has neither."""
    vals, codes = [], []
    for code in range(1 << (ebits + mbits)):
        e, m = code >> mbits, code & ((1 << mbits) - 1)
        if name == "e4m3" and e == (1 << ebits) - 1 and m == (1 << mbits) - 1:
            continue
        if name == "e5m2" and e == (1 << ebits) - 1:
            continue
        if e == 0:
            vals.append(m * 2.0 ** (1 - bias - mbits))  # subnormal
        else:
            vals.append((1 + m / 2 ** mbits) * 2.0 ** (e - bias))
        codes.append(code)
    top = vals[-1]
    return Format(name, vals, codes, -top, top, math.floor(math.log2(top)))


def integer(bits, signed, narrow=False):
    hi = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1
    lo = (-hi if narrow else -hi - 1) if signed else 0
    name = ("int" if signed else "uint") + str(bits)
    # MX integers are 1.(bits-2) fixed point: largest value just under 2, exponent 0
    return Format(name, np.arange(hi + 1), np.arange(hi + 1), lo, hi, 0)


E4M3, E5M2, E2M1 = minifloat("e4m3", 4, 3, 7), minifloat("e5m2", 5, 2, 15), minifloat("e2m1", 2, 1, 1)
# the published maxima: the grids above must reproduce them
assert (E4M3.hi, E5M2.hi, E2M1.hi) == (448, 57344, 6)
assert list(E2M1.grid) == [0, 0.5, 1, 1.5, 2, 3, 4, 6]


def round_to(fmt, v):
    """v (float32, already divided by the scale) onto fmt's grid. Integers: np.rint (half to
    even) clamped to [lo, hi]. Minifloats: the nearest grid value, a tie going to the even
    code (even last mantissa bit), beyond the largest value saturating; sign kept, NaN kept."""
    v = np.asarray(v, dtype=F32)
    if fmt.is_int:  # clamp by comparison: keeps rint's -0 for small negative values
        r = np.rint(v)
        return np.where(r < fmt.lo, fmt.lo, np.where(r > fmt.hi, fmt.hi, r)).astype(F32)
    g = fmt.grid
    a = np.minimum(np.abs(v.astype(np.float64)), g[-1])
    hi = np.clip(np.searchsorted(g, a, side="left"), 1, len(g) - 1)
    lo = hi - 1
    d_lo, d_hi = a - g[lo], g[hi] - a  # exact: a and the grid differ by few binades here
    up = (d_hi < d_lo) | ((d_hi == d_lo) & (fmt.codes[hi] % 2 == 0))
    r = np.where(up, g[hi], g[lo])
    r = np.where(np.isnan(v), np.nan, r)
    return np.copysign(r, v).astype(F32)


class Spec:
    """The subset of tinyqat's spec strings the reference cases use, parsed from scratch:
    FORMAT[:channel=A][:block=N][:axis=A][:narrow][:calib=C][:p=P][:unsigned=off]."""

    NAMED = {  # name: (element, scale kind, block size)
        "e4m3": ("e4m3", "float", 0), "e5m2": ("e5m2", "float", 0), "e2m1": ("e2m1", "float", 0),
        "mxfp8": ("e4m3", "e8m0", 32), "mxfp4": ("e2m1", "e8m0", 32),
        "mxint8": ("int8", "e8m0", 32), "nvfp4": ("e2m1", "nvfp4", 16),
    }

    def __init__(self, text):
        name, *opts = text.split(":")
        self.elem, self.scale, self.block_size = self.NAMED.get(name, (name, "float", 0))
        self.block = "block" if self.block_size else "tensor"
        self.axis, self.narrow, self.calib, self.pct, self.auto_unsigned = -1, False, "max", 99.99, True
        for o in opts:
            key, _, val = o.partition("=")
            if key == "channel":
                self.block, self.axis = "channel", int(val) if val else 0
            elif key == "block":
                self.block, self.block_size = "block", int(val)
            elif key == "axis":
                self.axis = int(val)
            elif key == "narrow":
                self.narrow = True
            elif key == "calib":
                self.calib = val
            elif key == "p":
                self.calib, self.pct = "percentile", float(val)
            elif key == "unsigned":
                self.auto_unsigned = val == "on"
            else:
                raise ValueError("reference: unknown option " + o)

    def format(self, unsigned=False):
        if self.elem.startswith(("int", "uint")):
            signed = self.elem.startswith("int") and not unsigned
            return integer(int(self.elem.lstrip("uint")), signed, self.narrow)
        return {"e4m3": E4M3, "e5m2": E5M2, "e2m1": E2M1}[self.elem]


def as3d(x, spec):
    """x viewed as (outer, n, inner) around the spec's axis (per tensor: (1, numel, 1))."""
    if spec.block == "tensor":
        return x.reshape(1, -1, 1)
    axis = spec.axis % x.ndim
    outer = int(np.prod(x.shape[:axis]))
    return x.reshape(outer, x.shape[axis], -1)


def block_absmax(x, spec):
    """Abs max per amax slot, laid out as tinyqat documents it: per tensor [1], per channel
    [n], per block [outer][blocks][inner], the last block shorter when n is not a multiple."""
    x3 = np.abs(as3d(x, spec))
    if spec.block == "tensor":
        return x3.max(initial=0).reshape(1).astype(F32)
    if spec.block == "channel":
        return x3.max(axis=(0, 2), initial=0).astype(F32)
    b = spec.block_size
    blocks = [x3[:, k:k + b, :].max(axis=1) for k in range(0, x3.shape[1], b)]
    return np.stack(blocks, axis=1).reshape(-1).astype(F32)


def per_element(x, spec, slots):
    """Expands one value per amax slot back to x's shape."""
    x3 = as3d(x, spec)
    outer, n, inner = x3.shape
    if spec.block == "tensor":
        return np.broadcast_to(slots[0], x.shape)
    if spec.block == "channel":
        return np.broadcast_to(slots.reshape(1, n, 1), x3.shape).reshape(x.shape)
    nblocks = -(-n // spec.block_size)
    s3 = slots.reshape(outer, nblocks, inner)
    return s3[:, np.arange(n) // spec.block_size, :].reshape(x.shape)


def e4m3_block_scale(block_amax, g):
    """NVFP4: block amax / 6 / global scale (float32, in that order), rounded to E4M3."""
    if not g > 0:
        return np.zeros_like(block_amax)
    return round_to(E4M3, (block_amax / F32(6)) / g)


def scales(spec, fmt, amax, global_amax):
    """The step each amax implies (0 for amax 0): amax / qmax; E8M0 2^(floor(log2 amax) -
    emax), clamped to [2^-127, 2^127], times 2^-(bits-2) for MX integers; NVFP4 the E4M3
    block scale times the global scale global_amax / (448 * 6)."""
    amax = np.asarray(amax, dtype=F32)
    with np.errstate(divide="ignore"):
        if spec.scale == "float":
            s = amax / F32(fmt.hi)
        elif spec.scale == "e8m0":
            e = np.floor(np.log2(amax.astype(np.float64)))
            e = np.clip(e - fmt.emax, -127, 127)
            frac = int(fmt.name[3:]) - 2 if fmt.is_int else 0
            s = np.exp2(e - frac).astype(F32)  # powers of two down to 2^-133: exact in float32
        else:
            g = F32(global_amax) / F32(448 * 6)
            s = (e4m3_block_scale(amax, g) * g).astype(F32)
    return np.where(amax > 0, s, F32(0)).astype(F32)


def fake_quant(fmt, x, scale_el):
    """codes = round(x / scale) and y = codes * scale, both 0 where the scale is 0."""
    ok = scale_el > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        codes = round_to(fmt, np.where(ok, x / np.where(ok, scale_el, F32(1)), F32(0)))
    codes = np.where(ok, codes, F32(0)).astype(F32)
    y = np.where(ok, codes * scale_el, np.where(np.isnan(x), x, F32(0))).astype(F32)
    return codes, y
