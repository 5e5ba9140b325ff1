/* Fixed-point requantization factors: a real multiplier as a 31-bit mantissa and a shift. */
#include "qkernels.h"

#include <math.h>

tq_requant tq_requant_make(double r)
{
    if (r == 0.0 || !isfinite(r)) return (tq_requant){0, 0};
    int e;
    const double m = frexp(fabs(r), &e); /* |r| = m * 2^e, m in [0.5, 1) */
    int64_t mult = llround(m * 2147483648.0); /* in [2^30, 2^31] */
    if (mult == ((int64_t)1 << 31)) {
        mult /= 2;
        e++;
    }
    int shift = 31 - e;
    if (shift > 62) {
        /* Tiny factors: the shift is capped, so the mantissa keeps fewer bits, rounded once
         * from r itself (halving the 31-bit mantissa step by step would round repeatedly). */
        mult = llround(ldexp(fabs(r), 62));
        shift = mult ? 62 : 0;
    } else if (shift < 0) {
        /* Huge factors do not fit: saturate. */
        mult = ((int64_t)1 << 31) - 1;
        shift = 0;
    }
    return (tq_requant){(int32_t)(r < 0 ? -mult : mult), shift};
}
