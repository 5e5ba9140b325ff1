/* Batch normalisation over dimension 1 (batch statistics in training mode, running ones
 * otherwise) and inverted dropout. */
#include "internal.h"

#include <math.h>
#include <stdio.h>

/* ---- batch norm. saved = mean (C) then 1/sqrt(var+eps) (C), as used by the forward;
 * iarg[0] = 1 when those were batch statistics (backward then flows through them). */

static void batchnorm_backward(tq_node *nd)
{
    tq_tensor *x = nd->in[0], *gamma = nd->in[1], *beta = nd->in[2];
    const int64_t N = x->shape[0], C = x->shape[1], inner = x->numel / N / C, M = N * inner;
    const float *mean = nd->saved, *invstd = mean + C, *gy = nd->out->grad;
    const bool batch_stats = nd->iarg[0] != 0;
    for (int64_t c = 0; c < C; c++) {
        double sum_g = 0.0, sum_gx = 0.0; /* dbeta and dgamma */
        for (int64_t n = 0; n < N; n++) {
            int64_t off = (n * C + c) * inner;
            for (int64_t i = 0; i < inner; i++) {
                float xhat = (x->data[off + i] - mean[c]) * invstd[c];
                sum_g += gy[off + i];
                sum_gx += (double)gy[off + i] * xhat;
            }
        }
        if (gamma->grad) gamma->grad[c] += (float)sum_gx;
        if (beta->grad) beta->grad[c] += (float)sum_g;
        if (!x->grad) continue;
        float k = gamma->data[c] * invstd[c];
        /* With batch statistics, dx = k/M * (M g - sum g - xhat sum g xhat): the mean and
         * variance depend on every x of the channel. */
        float mg = batch_stats ? (float)(sum_g / M) : 0.0f;
        float mgx = batch_stats ? (float)(sum_gx / M) : 0.0f;
        for (int64_t n = 0; n < N; n++) {
            int64_t off = (n * C + c) * inner;
            for (int64_t i = 0; i < inner; i++) {
                float xhat = (x->data[off + i] - mean[c]) * invstd[c];
                x->grad[off + i] += k * (gy[off + i] - mg - xhat * mgx);
            }
        }
    }
}
static const tq_op_def op_batchnorm = {.name = "batchnorm", .backward = batchnorm_backward};

tq_tensor *tq_batchnorm(tq_tape *t, tq_tensor *x, tq_tensor *gamma, tq_tensor *beta,
                        const tq_batchnorm_state *bn)
{
    TQ_REQUIRE_INPUTS(t, "batchnorm", x, gamma, beta);
    if (x->ndim != 2 && x->ndim != 4)
        return tq_fail_shape(t, "batchnorm", "x (N,C) or (N,C,H,W)", x);
    if (gamma->ndim != 1 || gamma->shape[0] != x->shape[1])
        return tq_fail_shapes(t, "batchnorm", "gamma does not match dimension 1: x and gamma are",
                              x, gamma);
    if (beta->ndim != 1 || beta->shape[0] != x->shape[1])
        return tq_fail_shapes(t, "batchnorm", "beta does not match dimension 1: x and beta are", x,
                              beta);
    if (!bn || !bn->running_mean || !bn->running_var)
        return tq_tape_fail(t, TQ_STATUS_ARG, "batchnorm: no running statistics state");
    if (!(bn->eps > 0.0f) || !(bn->momentum >= 0.0f && bn->momentum <= 1.0f))
        return tq_tape_fail(t, TQ_STATUS_ARG,
                            "batchnorm: eps %g and momentum %g (expected eps > 0, momentum in [0,1])",
                            (double)bn->eps, (double)bn->momentum);
    const int64_t N = x->shape[0], C = x->shape[1], inner = x->numel / N / C, M = N * inner;
    const bool training = tq_tape_training(t);
    if (training && M < 2) {
        char s[64];
        return tq_tape_fail(t, TQ_STATUS_SHAPE,
                            "batchnorm: training needs more than one value per channel, got x %s",
                            tq_shape_str(x, s, sizeof s));
    }
    tq_tensor *in[] = {x, gamma, beta};
    tq_tensor *y = tq_op_output(t, in, 3, x->ndim, x->shape);
    if (!y) return NULL;
    float *stats = tq_tape_alloc(t, (size_t)(2 * C) * sizeof(float));
    if (!stats) return NULL;
    float *mean = stats, *invstd = stats + C;

    for (int64_t c = 0; c < C; c++) {
        if (training) {
            /* two passes in double: no cancellation for large means */
            double s = 0.0, ss = 0.0;
            for (int64_t n = 0; n < N; n++)
                for (int64_t i = 0; i < inner; i++) s += x->data[(n * C + c) * inner + i];
            double mu = s / M;
            for (int64_t n = 0; n < N; n++)
                for (int64_t i = 0; i < inner; i++) {
                    double d = x->data[(n * C + c) * inner + i] - mu;
                    ss += d * d;
                }
            double var = ss / M, m = bn->momentum;
            mean[c] = (float)mu;
            invstd[c] = (float)(1.0 / sqrt(var + bn->eps));
            bn->running_mean[c] = (float)((1.0 - m) * bn->running_mean[c] + m * mu);
            bn->running_var[c] = (float)((1.0 - m) * bn->running_var[c] + m * ss / (M - 1));
        } else {
            mean[c] = bn->running_mean[c];
            invstd[c] = (float)(1.0 / sqrt((double)bn->running_var[c] + bn->eps));
        }
        float k = gamma->data[c] * invstd[c], b = beta->data[c];
        for (int64_t n = 0; n < N; n++) {
            int64_t off = (n * C + c) * inner;
            for (int64_t i = 0; i < inner; i++) y->data[off + i] = k * (x->data[off + i] - mean[c]) + b;
        }
    }
    tq_node *nd = tq_tape_record(t, &op_batchnorm, y, in, 3);
    if (nd) {
        nd->saved = stats;
        nd->iarg[0] = training;
    }
    return y;
}

/* ---- dropout. saved = keep mask (one byte per element); farg[0] = 1/(1-p). */

static void dropout_backward(tq_node *nd)
{
    const unsigned char *keep = nd->saved;
    const float scale = nd->farg[0], *gy = nd->out->grad;
    float *gx = nd->in[0]->grad;
    for (int64_t i = 0; i < nd->out->numel; i++) gx[i] += keep[i] ? gy[i] * scale : 0.0f;
}
static const tq_op_def op_dropout = {.name = "dropout", .backward = dropout_backward};

tq_tensor *tq_dropout(tq_tape *t, tq_tensor *x, float p, tq_rng *rng)
{
    TQ_REQUIRE_INPUTS(t, "dropout", x);
    if (!(p >= 0.0f && p < 1.0f))
        return tq_tape_fail(t, TQ_STATUS_ARG, "dropout: p %g is outside [0,1)", (double)p);
    if (!tq_tape_training(t) || p == 0.0f) return x;
    if (!rng) return tq_tape_fail(t, TQ_STATUS_ARG, "dropout: no rng in training mode");
    tq_tensor *y = tq_op_output(t, &x, 1, x->ndim, x->shape);
    if (!y) return NULL;
    unsigned char *keep = NULL;
    if (y->grad && !(keep = tq_tape_alloc(t, (size_t)x->numel))) return NULL;
    const float scale = 1.0f / (1.0f - p);
    /* The mask is drawn the same way whether or not it is kept, so the rng advances by one
     * draw per element either way. */
    for (int64_t i = 0; i < x->numel; i++) {
        bool k = tq_rng_uniform(rng) >= p;
        y->data[i] = k ? x->data[i] * scale : 0.0f;
        if (keep) keep[i] = k;
    }
    tq_node *nd = tq_tape_record(t, &op_dropout, y, &x, 1);
    if (nd) {
        nd->saved = keep;
        nd->farg[0] = scale;
    }
    return y;
}
