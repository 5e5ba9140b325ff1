/* Affine rescaling in integers: round(v * scale + offset), half to even, as one multiply,
 * add and shift, one channel at a time (tq_affine) or a row of channels at one shift
 * (tq_rowquant), and the two sides of a residual add (tq_addquant). */
#include "engine_internal.h"

#include <math.h>
#include <stdlib.h>

tq_affine tq_affine_make(double scale, double offset)
{
    const double lim = 2305843009213693952.0; /* 2^61: with |v * mult| < 2^62, no overflow */
    if (!isfinite(offset)) offset = 0.0;
    tq_requant r = tq_requant_make(scale);
    if (r.mult && fabs(ldexp(offset, r.shift)) > lim) {
        /* a large offset at a small scale: fewer fraction bits, so that the bias fits (the
         * product loses no more than 2^-shift of v in absolute terms) */
        int e;
        frexp(offset, &e);
        r.shift = 60 - e > 0 ? 60 - e : 0;
        r.mult = (int32_t)llround(ldexp(scale, r.shift));
    }
    double b = ldexp(offset, r.mult ? r.shift : 0);
    b = b > lim ? lim : b < -lim ? -lim : b;
    int64_t half = r.mult && r.shift > 0 ? (int64_t)1 << (r.shift - 1) : 0;
    if (!r.mult) r.shift = 0;
    return (tq_affine){.mult = r.mult, .bias = llround(b) + half, .shift = r.shift,
                       .mask = r.shift ? ((int64_t)1 << r.shift) - 1 : -1};
}

tq_status tq_rowquant_make(tq_rowquant *q, const double *m, const double *c, const int32_t *row_sum,
                           int32_t zp, int64_t n, tq_error *err)
{
    const int64_t repeats = n >= 32 ? 1 : (32 + n - 1) / n;
    q->period = n * repeats;
    q->mult = malloc((size_t)q->period * sizeof *q->mult);
    q->corr = malloc((size_t)q->period * sizeof *q->corr);
    q->bias = malloc((size_t)q->period * sizeof *q->bias);
    if (!q->mult || !q->corr || !q->bias)
        return tq_fail(err, TQ_STATUS_NOMEM, "engine: out of memory");
    double max_m = 0.0, max_c = 0.0;
    for (int64_t o = 0; o < n; o++) {
        if (isfinite(m[o])) max_m = fmax(max_m, fabs(m[o]));
        if (isfinite(c[o])) max_c = fmax(max_c, fabs(c[o]));
    }
    /* the largest shift with every |mult| < 2^30 and every |bias| < 2^59; at most 61, so
     * that the offset 2^(62 - shift) is even and keeps the parity ties look at */
    int e, shift = 61;
    if (max_m > 0) {
        frexp(max_m, &e); /* max_m < 2^e */
        shift = 30 - e < shift ? 30 - e : shift;
    }
    if (max_c > 0) {
        frexp(max_c, &e);
        shift = 59 - e < shift ? 59 - e : shift;
    }
    shift = shift < 0 ? 0 : shift;
    const double lim = 576460752303423488.0; /* 2^59: outputs that far out saturate anyway */
    const int64_t top = (int64_t)1 << 62, half = shift > 0 ? (int64_t)1 << (shift - 1) : 0;
    for (int64_t o = 0; o < n; o++) {
        double mo = isfinite(m[o]) ? ldexp(m[o], shift) : 0.0;
        double co = isfinite(c[o]) ? ldexp(c[o], shift) : 0.0;
        co = co > lim ? lim : co < -lim ? -lim : co;
        for (int64_t r = 0; r < repeats; r++) {
            q->mult[r * n + o] = (int32_t)llround(mo);
            q->bias[r * n + o] = llround(co) + half + top;
            q->corr[r * n + o] = row_sum ? zp * row_sum[o] : 0;
        }
    }
    q->shift = shift;
    q->offset = top >> shift;
    q->mask = shift ? ((uint64_t)1 << shift) - 1 : UINT64_MAX;
    return TQ_STATUS_OK;
}

void tq_rowquant_free(tq_rowquant *q)
{
    free(q->mult);
    free(q->corr);
    free(q->bias);
}

tq_addquant tq_addquant_make(double ra, double rb)
{
    ra = isfinite(ra) ? ra : 0.0;
    rb = isfinite(rb) ? rb : 0.0;
    const double most = fmax(fabs(ra), fabs(rb));
    int e, shift = 61; /* as in tq_rowquant_make */
    if (most > 0) {
        frexp(most, &e); /* most < 2^e: multipliers below 2^29 */
        shift = 29 - e < shift ? 29 - e : shift;
    }
    shift = shift < 0 ? 0 : shift;
    const int64_t top = (int64_t)1 << 62;
    return (tq_addquant){.ma = (int32_t)llround(ldexp(ra, shift)),
                         .mb = (int32_t)llround(ldexp(rb, shift)),
                         .shift = shift,
                         .bias = top + (shift > 0 ? (int64_t)1 << (shift - 1) : 0),
                         .offset = top >> shift,
                         .mask = shift ? ((uint64_t)1 << shift) - 1 : UINT64_MAX};
}
