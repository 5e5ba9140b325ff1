/* Finite-difference gradient checker: backward against central differences of the
 * randomly projected output sum(out * r), accumulated in double. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tq_gradcheck_opts tq_gradcheck_defaults(void)
{
    return (tq_gradcheck_opts){.eps = 1e-2, .rtol = 2e-2, .atol = 1e-3, .skip_kinks = false,
                               .seed = 12345};
}

/* sum(out * r) in double, with recording off. */
static double projected(tq_tape *t, tq_gradcheck_fn fn, void *ctx, tq_tensor **inputs,
                        const float *r, int64_t n)
{
    tq_tape_reset(t);
    tq_tape_set_recording(t, false);
    tq_tensor *out = fn(t, inputs, ctx);
    if (!out || out->numel != n) return NAN;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)out->data[i] * r[i];
    return s;
}

tq_gradcheck_result tq_gradcheck(tq_gradcheck_fn fn, void *ctx, tq_tensor **inputs, int n_in,
                                 const tq_gradcheck_opts *opts)
{
    tq_gradcheck_opts o = opts ? *opts : tq_gradcheck_defaults();
    tq_gradcheck_result res = {.ok = false};
    tq_tape *t = tq_tape_new();
    float *r = NULL, **analytic = calloc((size_t)n_in, sizeof *analytic);
    if (!t || !analytic) {
        snprintf(res.msg, sizeof res.msg, "out of memory");
        goto done;
    }

    /* Analytic gradients through the tape. */
    for (int k = 0; k < n_in; k++)
        if (inputs[k]->grad) memset(inputs[k]->grad, 0, (size_t)inputs[k]->numel * sizeof(float));
    tq_tensor *out = fn(t, inputs, ctx);
    if (!out) {
        snprintf(res.msg, sizeof res.msg, "forward failed: %s", tq_tape_error(t)->msg);
        goto done;
    }
    int64_t n_out = out->numel;
    r = malloc((size_t)n_out * sizeof *r);
    tq_tensor *rt = tq_tape_tensor(t, out->ndim, out->shape, false);
    if (!r || !rt) goto done;
    tq_rng rng;
    tq_rng_seed(&rng, o.seed);
    for (int64_t i = 0; i < n_out; i++) r[i] = rt->data[i] = 2.0f * tq_rng_uniform(&rng) - 1.0f;
    if (tq_backward(t, tq_sum(t, tq_mul(t, out, rt))) != TQ_STATUS_OK) {
        snprintf(res.msg, sizeof res.msg, "backward failed: %s", tq_tape_error(t)->msg);
        goto done;
    }
    for (int k = 0; k < n_in; k++) {
        if (!inputs[k]->grad) continue;
        analytic[k] = malloc((size_t)inputs[k]->numel * sizeof(float));
        if (!analytic[k]) goto done;
        memcpy(analytic[k], inputs[k]->grad, (size_t)inputs[k]->numel * sizeof(float));
    }

    /* Central differences, element by element. */
    res.ok = true;
    for (int k = 0; k < n_in; k++) {
        if (!analytic[k]) continue;
        float *x = inputs[k]->data;
        for (int64_t i = 0; i < inputs[k]->numel; i++) {
            float x0 = x[i];
            x[i] = x0 + (float)o.eps;
            double fp = projected(t, fn, ctx, inputs, r, n_out);
            x[i] = x0 - (float)o.eps;
            double fm = projected(t, fn, ctx, inputs, r, n_out);
            double f0 = 0.0;
            if (o.skip_kinks) {
                x[i] = x0;
                f0 = projected(t, fn, ctx, inputs, r, n_out);
            }
            x[i] = x0;
            double numeric = (fp - fm) / (2.0 * o.eps), a = analytic[k][i];
            if (o.skip_kinks) {
                double right = (fp - f0) / o.eps, left = (f0 - fm) / o.eps;
                if (fabs(right - left) > o.atol + o.rtol * fabs(numeric)) {
                    res.skipped++;
                    continue;
                }
            }
            res.checked++;
            double err = fabs(a - numeric);
            if (err > res.max_abs_err) res.max_abs_err = err;
            if (!(err <= o.atol + o.rtol * fabs(numeric))) {
                if (res.failed++ == 0)
                    snprintf(res.msg, sizeof res.msg,
                             "input %d element %lld: analytic %.6g, numeric %.6g", k,
                             (long long)i, a, numeric);
                res.ok = false;
            }
        }
    }
done:
    if (analytic)
        for (int k = 0; k < n_in; k++) free(analytic[k]);
    free(analytic);
    free(r);
    tq_tape_free(t);
    return res;
}
