/* Statistics for comparing two models on the same test images: whether a difference of a few
 * images is more than chance. */
#include "train.h"

#include <math.h>

double tq_mcnemar_p(int64_t gained, int64_t lost)
{
    int64_t n = gained + lost, k = gained < lost ? gained : lost;
    if (n == 0) return 1.0;
    /* P(X <= k) for X ~ Binomial(n, 1/2), summed in log space (n may be thousands). */
    double log_half_n = (double)n * log(0.5), tail = 0.0;
    for (int64_t i = 0; i <= k; i++)
        tail += exp(lgamma((double)n + 1) - lgamma((double)i + 1) - lgamma((double)(n - i) + 1) +
                    log_half_n);
    double p = 2.0 * tail;
    return p < 1.0 ? p : 1.0;
}
