"""Reference calibrators in numpy, sharing no code with tinyqat: the |x| histogram as tinyqat
documents it (2048 bins over [0, range), range = the first batch's abs max, doubling with
exact bin merges when a larger value arrives), percentile on it, the squared error of every
candidate threshold (for a brute-force MSE search), and the KL divergence of every
threshold as in the published TensorRT procedure (Migacz, "8-bit Inference with TensorRT",
GTC 2017)."""
import numpy as np

from numerics import F32, round_to

NBINS = 2048


class Histogram:
    def __init__(self):
        self.hist = np.zeros(NBINS)
        self.range = F32(0)
        self.amax = F32(0)

    def add(self, values):
        """One calibration batch (float32, finite)."""
        a = np.abs(values.astype(F32).reshape(-1))
        m = a.max(initial=F32(0))
        self.amax = max(self.amax, m)
        if a.size == 0:
            return
        if self.range == 0:
            if m == 0:  # zeros before any range: kept in bin 0
                self.hist[0] += a.size
                return
            self.range = m
        elif m > self.range:
            f = 1
            while self.range < m:
                self.range, f = F32(self.range * F32(2)), f * 2
            merged = np.zeros(NBINS)
            np.add.at(merged, np.arange(NBINS) // f, self.hist)
            self.hist = merged
        per_unit = F32(NBINS) / self.range
        b = np.minimum((a * per_unit).astype(np.int64), NBINS - 1)
        self.hist += np.bincount(b, minlength=NBINS)

    def width(self):
        return self.range / F32(NBINS)


def percentile(h, pct):
    """The upper edge of the first bin where the cumulative count reaches pct% of all."""
    target = float(F32(pct)) / 100.0 * h.hist.sum()
    j = int(np.argmax(np.cumsum(h.hist) >= target))
    return F32(j + 1) * h.width()


def mse_errors(h, fmt, thresholds):
    """Squared error of each threshold (float32) on the histogram, values taken at bin
    centres: the function tinyqat minimises."""
    w = h.width()
    nz = np.nonzero(h.hist)[0]
    centres = ((nz.astype(F32) + F32(0.5)) * w).astype(F32)
    counts = h.hist[nz]
    out = np.empty(len(thresholds))
    for k0 in range(0, len(thresholds), 256):  # 256 thresholds at a time keeps memory small
        amax = np.asarray(thresholds[k0:k0 + 256], dtype=F32)
        scale = (amax / fmt.hi).astype(F32)[:, None]
        q = (round_to(fmt, centres[None, :] / scale) * scale).astype(F32)
        d = centres[None, :].astype(np.float64) - q.astype(np.float64)
        out[k0:k0 + len(amax)] = (counts[None, :] * d * d).sum(axis=1)
    return out


def candidates(h):
    """Every threshold a histogram calibrator may return: the bin edges k * width below the
    abs max seen, and the abs max itself (a range grown by doubling reaches beyond it)."""
    edges = (np.arange(1, NBINS + 1).astype(F32) * h.width()).astype(F32)
    return np.append(edges[edges < h.amax], h.amax).astype(F32)


def top_bin(h):
    """The number of bins up to and including the one holding the abs max."""
    return int(min(NBINS, np.ceil(float(h.amax) / float(h.width()))))


def levels(fmt):
    """How many non-negative values the format has: the quantized distribution's levels."""
    return len(fmt.grid)


def kl_divergences(h, fmt, thresholds):
    """KL(P || Q) for each threshold i (number of bins kept), as Migacz 2017 gives it:
      P = bin[0..i-1], the outliers bin[i..] added to bin[i-1], normalised;
      Q = bin[0..i-1] quantized into `levels` groups, each group's sum spread evenly over
          its non-empty bins (empty bins stay empty), normalised;
      KL = sum over P > 0 of P log(P / Q), infinite where Q is 0 and P is not.
    Integer formats: `levels` groups of i // levels bins, the last one taking the rest (the
    slides' example divides evenly; the remainder goes last as in the open transcriptions).
    Minifloats (tinyqat's extension to uneven grids): bins grouped by the grid value their
    centre rounds to at scale i * width / max."""
    hist, w, n = h.hist, h.width(), levels(fmt)
    out = np.full(len(thresholds), np.inf)
    for t, i in enumerate(thresholds):
        p = hist[:i].copy()
        p[i - 1] += hist[i:].sum()
        raw = hist[:i]
        if fmt.is_int:
            merged = i // n
            starts = np.arange(n) * merged
        else:
            scale = F32(F32(i) * w) / fmt.hi
            centre = ((np.arange(i).astype(F32) + F32(0.5)) * w).astype(F32)
            lv = round_to(fmt, centre / scale)
            starts = np.concatenate(([0], np.nonzero(lv[1:] != lv[:-1])[0] + 1))
        sums = np.add.reduceat(raw, starts)
        nonzero = np.add.reduceat((raw > 0).astype(np.float64), starts)
        group = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, i)))
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(raw > 0, sums[group] / nonzero[group], 0.0)
        if p.sum() <= 0 or q.sum() <= 0:
            continue
        p, q = p / p.sum(), q / q.sum()
        on = p > 0
        if np.any(q[on] <= 0):
            continue
        out[t] = np.sum(p[on] * np.log(p[on] / q[on]))
    return out
