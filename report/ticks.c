/* Axis ticks: round steps (1, 2 or 5 times a power of ten) on linear axes, decades on log
 * axes, and their labels; and the equal-width histogram the figures count with. */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int tq_nice_ticks(double lo, double hi, int target, double *ticks, int cap, double *nlo,
                  double *nhi)
{
    if (lo > hi) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    if (lo == hi) { /* all-equal data: a tenth of the value either side (1 at zero) */
        double d = lo != 0 ? fabs(lo) / 10 : 1;
        lo -= d;
        hi += d;
    }
    *nlo = lo;
    *nhi = hi;
    double range = hi - lo;
    if (!isfinite(range) || range <= 0 || cap < 2 || target < 1) return 0;
    double rough = range / target, mag = pow(10, floor(log10(rough))), norm = rough / mag;
    double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    for (;;) {
        if (!(step > 0) || !isfinite(step)) return 0; /* a range too small to divide */
        double first = floor(lo / step) * step, last = ceil(hi / step) * step;
        double count = round((last - first) / step) + 1;
        if (count <= cap) {
            int n = (int)count;
            for (int i = 0; i < n; i++) {
                double t = first + i * step;
                ticks[i] = fabs(t) < step * 1e-9 ? 0 : t;
            }
            *nlo = first;
            *nhi = last;
            return n;
        }
        step *= 2;
    }
}

int tq_log_ticks(double lo, double hi, double *ticks, int cap, double *nlo, double *nhi)
{
    if (lo > hi) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    double klo = floor(log10(lo)), khi = ceil(log10(hi));
    if (khi <= klo) khi = klo + 1;
    klo = fmax(klo, -300);
    khi = fmin(khi, 300);
    *nlo = pow(10, klo);
    *nhi = pow(10, khi);
    if (cap < 2) return 0;
    int stride = 1;
    while ((khi - klo) / stride + 1 > cap) stride++;
    int n = 0;
    for (double k = klo; k <= khi && n < cap; k += stride) ticks[n++] = pow(10, k);
    return n;
}

void tq_tick_label(double v, char *buf, size_t len)
{
    char tmp[40];
    double a = fabs(v);
    /* Plain from 0.001 to 9999; else "1e+04", "2.5e-06" without '+' and leading zeros. */
    snprintf(tmp, sizeof tmp, v == 0 || (a >= 1e-3 && a < 1e4) ? "%.6g" : "%.3g", v);
    char *e = strchr(tmp, 'e');
    if (!e) {
        snprintf(buf, len, "%s", tmp);
        return;
    }
    char *d = e + 1;
    bool neg = *d == '-';
    if (*d == '+' || *d == '-') d++;
    while (*d == '0' && d[1]) d++;
    *e = '\0';
    snprintf(buf, len, "%se%s%s", tmp, neg ? "-" : "", d);
}

int64_t tq_histogram(const float *v, int64_t n, double lo, double hi, int nbins, bool clamp,
                     double *counts, int64_t *nonfinite)
{
    int64_t counted = 0, bad = 0;
    for (int b = 0; b < nbins; b++) counts[b] = 0;
    double width = (hi - lo) / nbins;
    for (int64_t i = 0; i < n; i++) {
        double x = v[i];
        if (!isfinite(x)) {
            bad++;
            continue;
        }
        if (x < lo || x > hi) {
            if (!clamp) continue;
            x = x < lo ? lo : hi;
        }
        int b = width > 0 ? (int)((x - lo) / width) : 0;
        if (b >= nbins) b = nbins - 1; /* x == hi, or rounding at the top edge */
        if (b < 0) b = 0;
        counts[b] += 1;
        counted++;
    }
    if (nonfinite) *nonfinite = bad;
    return counted;
}
