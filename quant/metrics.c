/* Quantization error metrics: signal-to-quantization-noise ratio and mean squared error. */
#include "quant_internal.h"

double tq_sqnr_db(const float *x, const float *xq, int64_t n)
{
    double signal = 0.0, noise = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - (double)xq[i];
        signal += (double)x[i] * x[i];
        noise += d * d;
    }
    if (noise == 0.0) return INFINITY;
    return 10.0 * log10(signal / noise);
}

double tq_quant_mse(const float *x, const float *xq, int64_t n)
{
    if (n <= 0) return 0.0;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - (double)xq[i];
        s += d * d;
    }
    return s / (double)n;
}
