/* Fixed-point requantization factors: a real multiplier as a 31-bit mantissa and a shift. */
#include "qkernels.h"

#include <math.h>

tq_requant tq_requant_make(double r)
{
    if (r == 0.0 || !isfinite(r)) return (tq_requant){0, 0};
    int e;
    double m = frexp(fabs(r), &e); /* |r| = m * 2^e, m in [0.5, 1) */
    int64_t mult = llround(m * 2147483648.0); /* in [2^30, 2^31] */
    if (mult == ((int64_t)1 << 31)) {
        mult /= 2;
        e++;
    }
    int shift = 31 - e;
    while (shift > 62) { /* tiny factors: fewer mantissa bits */
        mult = (mult + 1) / 2;
        shift--;
    }
    while (shift < 0) { /* huge factors do not fit; saturate the mantissa */
        mult = ((int64_t)1 << 31) - 1;
        shift = 0;
    }
    return (tq_requant){(int32_t)(r < 0 ? -mult : mult), shift};
}
