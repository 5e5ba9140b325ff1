"""The tensors quant_ref.py quantizes: (mode, spec, tensor[, calibration batches]). Seeded, so a
failure repeats; shapes chosen to leave short last blocks, all-zero blocks and channels,
values at rounding ties, and magnitudes spanning many binades."""
import numpy as np

from numerics import F32, Spec, block_absmax, per_element, scales


def with_ties(rng, x, spec, frac=0.3, pow2=True):
    """Moves a fraction of x onto midpoints between neighbouring grid values times each
    element's scale (from its block's abs max), keeping every block's abs max. With float
    scales each block's abs max is first moved up to qmax * 2^c, so that its scale is a
    power of two and x / scale is exactly a tie; MX scales are powers of two already; NVFP4
    scales are not, and only some of its midpoints stay exact ties. Without pow2, float
    scales stay as they are: x / scale lands within an ulp of the midpoint, where dividing
    and multiplying by the inverse round differently."""
    fmt = spec.format()
    x = x.copy()
    if pow2 and spec.scale == "float":  # each slot's abs max moved up to qmax * 2^c: scales 2^c
        amax = block_absmax(x, spec)
        slot = per_element(x, spec, np.arange(len(amax))).reshape(-1)
        flat = x.reshape(-1)
        for j in np.flatnonzero(amax > 0):
            i = np.flatnonzero((slot == j) & (np.abs(flat) == amax[j]))[0]
            flat[i] = np.copysign(fmt.hi * F32(2.0 ** np.ceil(np.log2(amax[j] / fmt.hi))), flat[i])
    amax_el = per_element(x, spec, block_absmax(x, spec))
    s_el = per_element(x, spec, scales(spec, fmt, block_absmax(x, spec), amax_el.max()))
    g = fmt.grid if not fmt.is_int else np.arange(fmt.lo, fmt.hi + 1)
    mids = (g[:-1] + g[1:]) / 2
    tie = (mids[rng.integers(0, len(mids), x.shape)] * s_el).astype(F32)
    if not fmt.is_int:
        tie *= rng.choice(np.array([-1, 1], dtype=F32), x.shape)
    pick = (rng.random(x.shape) < frac) & (np.abs(tie) < amax_el) & (np.abs(x) < amax_el)
    return np.where(pick, tie, x).astype(F32)


def grid_sweep(fmt):
    """Every grid value of a minifloat, every midpoint and the floats either side of each,
    both signs, with the largest value planted so that the scale is exactly 1."""
    g = fmt.grid.astype(F32)
    mids = ((fmt.grid[:-1] + fmt.grid[1:]) / 2).astype(F32)
    v = np.concatenate([g, mids, np.nextafter(mids, F32(0)), np.nextafter(mids, F32(np.inf))])
    v = np.concatenate([v, -v, [fmt.hi]]).astype(F32)
    return np.pad(v, (0, -len(v) % 16)).reshape(-1, 16)


def spread(rng, shape, lo=-20, hi=20):
    """Normal values, each row scaled by its own power of two in [2^lo, 2^hi]."""
    x = rng.normal(size=shape)
    return (x * 2.0 ** rng.integers(lo, hi + 1, (shape[0],) + (1,) * (len(shape) - 1))).astype(F32)


def zero_block(x, rows, cols):
    x = x.copy()
    x[rows, cols] = 0
    return x


def FORMAT_CASES():
    rng = np.random.default_rng(16)
    normal = lambda *shape: rng.normal(size=shape).astype(F32)
    tied = lambda spec, x: with_ties(rng, x, Spec(spec))
    relu = lambda x: np.maximum(x, F32(0))
    cases = [
        # per tensor, per channel, per block integers (weights: abs max per slot)
        ("weight", "int8", tied("int8", normal(24, 50))),
        ("weight", "int4:channel=0", tied("int4:channel=0", spread(rng, (16, 40)))),
        ("weight", "int4:channel=0:narrow", tied("int4:channel=0:narrow", normal(16, 40))),
        ("weight", "int3:block=32", tied("int3:block=32", zero_block(normal(12, 70), 3, slice(32, 64)))),
        ("weight", "int4:block=16:axis=1",
         tied("int4:block=16:axis=1", zero_block(normal(6, 20, 3, 3), 2, slice(16, 20)))),
        ("weight", "int2:channel=1", tied("int2:channel=1", zero_block(normal(5, 9, 4), slice(None), 7))),
        ("weight", "uint4:channel=0", normal(8, 30)),  # negatives clamp to 0
        ("weight", "int8:channel=0", with_ties(rng, spread(rng, (64, 64)), Spec("int8:channel=0"),
                                               pow2=False)),
        ("weight", "int4:channel=0", with_ties(rng, spread(rng, (64, 64)), Spec("int4:channel=0"),
                                               pow2=False)),
        # FP8 / FP4 elements with float scales
        ("weight", "e4m3", grid_sweep(Spec("e4m3").format())),
        ("weight", "e5m2", grid_sweep(Spec("e5m2").format())),
        ("weight", "e2m1", grid_sweep(Spec("e2m1").format())),
        ("weight", "e4m3", tied("e4m3", normal(32, 64))),
        ("weight", "e4m3:channel=0", tied("e4m3:channel=0", spread(rng, (16, 64)))),
        ("weight", "e5m2", tied("e5m2", normal(32, 64))),
        ("weight", "e5m2:block=32", tied("e5m2:block=32", spread(rng, (8, 100)))),
        ("weight", "e2m1:channel=0", tied("e2m1:channel=0", spread(rng, (16, 48)))),
        # MX: E8M0 scales over blocks of 32; short last blocks, zero blocks, 2^-130..2^120
        ("weight", "mxfp8", tied("mxfp8", zero_block(spread(rng, (16, 100)), 5, slice(0, 32)))),
        ("weight", "mxfp4", tied("mxfp4", zero_block(spread(rng, (16, 100)), 2, slice(96, 100)))),
        ("weight", "mxint8", tied("mxint8", zero_block(spread(rng, (16, 70)), 0, slice(64, 70)))),
        ("weight", "mxfp4", (spread(rng, (4, 64)) * F32(2.0 ** -110)).astype(F32)),
        ("weight", "mxint8", (spread(rng, (4, 64), 0, 10) * F32(2.0 ** 100)).astype(F32)),
        # NVFP4: E4M3 block scales under a global scale that is not 1; block magnitudes
        # 2^-20..2^20 apart, so some block scales are E4M3 subnormals or round to 0
        ("weight", "nvfp4", tied("nvfp4", zero_block(spread(rng, (16, 70)), 4, slice(16, 32)))),
        ("weight", "nvfp4", tied("nvfp4", spread(rng, (32, 48), -4, 4))),
        ("weight", "nvfp4", (normal(8, 64) * F32(3e-3)).astype(F32)),
        # activations: calibrated in batches, unsigned switch, per-block with one amax
        ("act", "int8", tied("int8", relu(normal(8, 2, 6, 6))), 4),
        ("act", "int8", tied("int8", normal(8, 2, 6, 6)), 3),
        ("act", "int8:unsigned=off", relu(normal(8, 40)), 2),
        ("act", "int4:channel=1", relu(spread(rng, (8, 6, 5, 5))).transpose(1, 0, 2, 3).copy(), 2),
        ("act", "int4:channel=1", normal(8, 6, 5), 4),
        ("act", "int4:block=32", relu(spread(rng, (6, 70))), 3),
        ("act", "int4:block=32", spread(rng, (6, 70)), 3),
        ("act", "uint8", normal(4, 50), 2),  # a uint spec clamps negatives
        ("act", "mxfp8", zero_block(spread(rng, (8, 70)), 1, slice(32, 64)), 4),
        ("act", "mxint8", spread(rng, (8, 40)), 2),
        ("act", "mxint8", spread(rng, (8, 20)), 2),  # one block per image
        ("act", "nvfp4", spread(rng, (8, 16), -3, 3), 2),
        ("act", "nvfp4", zero_block(spread(rng, (8, 40), -6, 6), 3, slice(0, 16)), 4),
        ("act", "e4m3", normal(16, 30), 4),
        ("act", "e2m1", normal(16, 30), 4),
        # non-finite inputs: ignored by calibration, NaN kept, infinities saturate
        ("act", "int8", np.where(rng.random((8, 30)) < 0.05, np.float32(np.nan),
                                 np.where(rng.random((8, 30)) < 0.05, F32(np.inf), normal(8, 30))), 2),
        ("act", "e4m3", np.where(rng.random((8, 30)) < 0.05, -F32(np.inf), normal(8, 30)), 2),
    ]
    return cases


def CALIB_CASES():
    rng = np.random.default_rng(61)
    normal = lambda *shape: rng.normal(size=shape).astype(F32)
    laplace = lambda *shape: rng.laplace(size=shape).astype(F32)
    relu = lambda x: np.maximum(x, F32(0))
    # later batches larger: the histogram range doubles (bins merge) during calibration
    growing = lambda x: (x * np.linspace(0.3, 2.5, x.shape[0], dtype=F32).reshape(
        (-1,) + (1,) * (x.ndim - 1))).astype(F32)
    return [
        ("act", "int8:calib=percentile:p=99.9", growing(laplace(16, 400)), 4),
        ("act", "int8:calib=percentile:p=99", relu(normal(8, 500)), 2),
        ("act", "e4m3:calib=percentile:p=99.99", growing(normal(8, 500)), 4),
        ("act", "e5m2:calib=percentile:p=99", laplace(8, 500), 2),  # saturates, no inf
        ("act", "nvfp4:calib=percentile:p=99.5", growing(laplace(8, 400)), 4),
        # per-block activations: block amax from the tensor, clipped to the calibrated one
        ("act", "int4:block=32:calib=percentile:p=99", laplace(8, 200), 2),
        ("act", "mxfp8:calib=percentile:p=99.5", laplace(8, 200), 2),
        ("act", "int8:calib=mse", growing(laplace(16, 400)), 4),
        ("act", "int4:calib=mse", laplace(8, 500), 2),
        ("act", "int2:calib=mse", normal(8, 500), 2),
        ("act", "int4:calib=mse", relu(normal(8, 500)), 2),  # uint4
        ("act", "e4m3:calib=mse", laplace(8, 500), 2),
        ("act", "e2m1:calib=mse", normal(8, 500), 2),
        ("weight", "int4:channel=0:calib=mse", laplace(16, 300)),
        ("weight", "int8:calib=mse", normal(32, 100)),
        ("act", "int4:channel=1:calib=mse", normal(8, 4, 100), 2),
        # entropy on 40,000 values: tens of counts per bin, as real calibration gives
        ("act", "int8:calib=entropy", growing(laplace(16, 2500)), 4),
        ("act", "int8:calib=entropy", relu(normal(8, 5000)), 2),  # uint8: 256 levels
        ("act", "int4:calib=entropy", laplace(8, 5000), 2),
        ("act", "e4m3:calib=entropy", laplace(8, 5000), 2),
    ]
