/* Affine rescaling in integers: round(v * scale + offset) as one multiply, add and shift. */
#include "engine_internal.h"

#include <math.h>

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
    return (tq_affine){.mult = r.mult, .bias = llround(b) + half, .shift = r.shift};
}
