/* Batch normalisation over dimension 1 (batch statistics in training mode, running ones
 * otherwise) and inverted dropout. */
#include "internal.h"

#include <math.h>
#include <stdio.h>

/* ---- batch norm. saved = mean (C) then 1/sqrt(var+eps) (C), as used by the forward;
 * iarg[0] = 1 when those were batch statistics (backward then flows through them);
 * iarg[1] = 1 when a ReLU is fused onto the output (its gradient is then masked where the
 * output is 0, exactly as relu's backward would have left it).
 * Channels are independent, so they are spread over the pool with the same bits for any
 * thread count. */

#define BN_PARALLEL_MIN 32768
#define LANES 8 /* independent float accumulators: lets the compiler vectorise the sums */

/* sum of (p[i] - m) and of (p[i] - m)^2 over one row; the rows are summed in double */
static void row_moments(const float *p, int64_t n, float m, double *s1, double *s2)
{
    float a[LANES] = {0}, b[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            float d = p[i + j] - m;
            a[j] += d;
            b[j] += d * d;
        }
    for (; i < n; i++) {
        float d = p[i] - m;
        a[0] += d;
        b[0] += d * d;
    }
    for (int j = 0; j < LANES; j++) {
        *s1 += a[j];
        *s2 += b[j];
    }
}

/* a[j] += g[i], b[j] += g[i] (x[i] - m) for i = j mod LANES, over n (a multiple of LANES)
 * values */
static inline void lanes_grad_sums(float *restrict a, float *restrict b, const float *restrict g,
                                   const float *restrict x, int64_t n, float m)
{
    for (int64_t i = 0; i < n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            a[j] += g[i + j];
            b[j] += g[i + j] * (x[i + j] - m);
        }
}

/* sum of g and of g * (x - m) over one row; when y is given, g is masked to 0 where the
 * fused ReLU's output y is 0 (the gradient relu's backward would have passed on), a chunk
 * at a time into a buffer so that both loops vectorise and the sums keep the unmasked
 * order. */
#define MASK_CHUNK 256
static void row_grad_sums(const float *g, const float *y, const float *x, int64_t n, float m,
                          double *sg, double *sgx)
{
    float a[LANES] = {0}, b[LANES] = {0}, buf[MASK_CHUNK];
    const int64_t body = n / LANES * LANES;
    for (int64_t i0 = 0; i0 < body; i0 += MASK_CHUNK) {
        const int64_t len = body - i0 < MASK_CHUNK ? body - i0 : MASK_CHUNK;
        const float *gc = g + i0;
        if (y) {
            for (int64_t i = 0; i < len; i++) {
                const float gv = g[i0 + i]; /* unconditional, so that the select vectorises */
                buf[i] = y[i0 + i] > 0.0f ? gv : 0.0f;
            }
            gc = buf;
        }
        lanes_grad_sums(a, b, gc, x + i0, len, m);
    }
    for (int64_t i = body; i < n; i++) {
        const float gv = g[i], gi = !y || y[i] > 0.0f ? gv : 0.0f;
        a[0] += gi;
        b[0] += gi * (x[i] - m);
    }
    for (int j = 0; j < LANES; j++) {
        *sg += a[j];
        *sgx += b[j];
    }
}

float tq_batchnorm_eval_invstd(const tq_batchnorm_state *bn, int64_t c)
{
    return (float)(1.0 / sqrt((double)bn->running_var[c] + bn->eps));
}

static void batchnorm_backward(tq_node *nd)
{
    tq_tensor *x = nd->in[0], *gamma = nd->in[1], *beta = nd->in[2];
    const int64_t N = x->shape[0], C = x->shape[1], inner = x->numel / N / C, M = N * inner;
    const float *mean = nd->saved, *invstd = mean + C, *gy = nd->out->grad;
    const bool batch_stats = nd->iarg[0] != 0;
    const float *mask = nd->iarg[1] ? nd->out->data : NULL;
#pragma omp parallel for schedule(static) if (x->numel >= BN_PARALLEL_MIN)
    for (int64_t c = 0; c < C; c++) {
        double sum_g = 0.0, sum_gd = 0.0; /* dbeta, and dgamma / invstd */
        for (int64_t n = 0; n < N; n++) {
            int64_t off = (n * C + c) * inner;
            row_grad_sums(gy + off, mask ? mask + off : NULL, x->data + off, inner, mean[c],
                          &sum_g, &sum_gd);
        }
        double sum_gx = sum_gd * invstd[c];
        if (gamma->grad) gamma->grad[c] += (float)sum_gx;
        if (beta->grad) beta->grad[c] += (float)sum_g;
        if (!x->grad) continue;
        /* With batch statistics dx = k (g - mean(g) - xhat mean(g xhat)): the mean and the
         * variance depend on every x of the channel. In evaluation only the k g term stays. */
        const float k = gamma->data[c] * invstd[c], m = mean[c], is = invstd[c];
        const float mg = batch_stats ? (float)(sum_g / M) : 0.0f;
        const float mgx_is = batch_stats ? (float)(sum_gx / M) * is : 0.0f;
        for (int64_t n = 0; n < N; n++) {
            int64_t off = (n * C + c) * inner;
            const float *g = gy + off, *xs = x->data + off;
            float *dx = x->grad + off;
            if (mask) {
                const float *restrict ys = mask + off, *restrict gr = g, *restrict xr = xs;
                float *restrict dr = dx;
                for (int64_t i = 0; i < inner; i++) {
                    const float gv = gr[i], gi = ys[i] > 0.0f ? gv : 0.0f;
                    dr[i] += k * (gi - mg - (xr[i] - m) * mgx_is);
                }
            } else {
                for (int64_t i = 0; i < inner; i++) dx[i] += k * (g[i] - mg - (xs[i] - m) * mgx_is);
            }
        }
    }
}
static const tq_op_def op_batchnorm = {.name = "batchnorm", .backward = batchnorm_backward};

static tq_tensor *batchnorm_op(tq_tape *t, tq_tensor *x, tq_tensor *gamma, tq_tensor *beta,
                               const tq_batchnorm_state *bn, bool relu)
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

#pragma omp parallel for schedule(static) if (x->numel >= BN_PARALLEL_MIN)
    for (int64_t c = 0; c < C; c++) {
        if (training) {
            /* One pass of sums around a sample of the channel (the shifted-data algorithm):
             * the shift keeps the sum of squares from cancelling the variance away when the
             * mean is large against the spread. */
            const float shift = x->data[c * inner];
            double d1 = 0.0, d2 = 0.0;
            for (int64_t n = 0; n < N; n++)
                row_moments(x->data + (n * C + c) * inner, inner, shift, &d1, &d2);
            const float mu = (float)(shift + d1 / M);
            double ss = d2 - d1 * d1 / M, var = ss > 0.0 ? ss / M : 0.0, m = bn->momentum;
            mean[c] = mu;
            invstd[c] = (float)(1.0 / sqrt(var + bn->eps));
            bn->running_mean[c] = (float)((1.0 - m) * bn->running_mean[c] + m * mu);
            bn->running_var[c] = (float)((1.0 - m) * bn->running_var[c] + m * var * M / (M - 1));
        } else {
            mean[c] = bn->running_mean[c];
            invstd[c] = tq_batchnorm_eval_invstd(bn, c);
        }
        const float k = gamma->data[c] * invstd[c], b = beta->data[c], m = mean[c];
        for (int64_t n = 0; n < N; n++) {
            int64_t off = (n * C + c) * inner;
            const float *xs = x->data + off;
            float *ys = y->data + off;
            if (relu)
                for (int64_t i = 0; i < inner; i++) {
                    const float v = k * (xs[i] - m) + b;
                    ys[i] = v > 0.0f ? v : 0.0f;
                }
            else
                for (int64_t i = 0; i < inner; i++) ys[i] = k * (xs[i] - m) + b;
        }
    }
    tq_node *nd = tq_tape_record(t, &op_batchnorm, y, in, 3);
    if (nd) {
        nd->saved = stats;
        nd->iarg[0] = training;
        nd->iarg[1] = relu;
    }
    return y;
}

tq_tensor *tq_batchnorm(tq_tape *t, tq_tensor *x, tq_tensor *gamma, tq_tensor *beta,
                        const tq_batchnorm_state *bn)
{
    return batchnorm_op(t, x, gamma, beta, bn, false);
}

tq_tensor *tq_batchnorm_relu(tq_tape *t, tq_tensor *x, tq_tensor *gamma, tq_tensor *beta,
                             const tq_batchnorm_state *bn)
{
    return batchnorm_op(t, x, gamma, beta, bn, true);
}

/* ---- dropout. saved = keep mask (one byte per element); farg[0] = 1/(1-p). */

static void dropout_backward(tq_node *nd)
{
    const unsigned char *keep = nd->saved;
    const float scale = nd->farg[0], *gy = nd->out->grad;
    float *gx = nd->in[0]->grad;
    for (int64_t i = 0; i < nd->out->numel; i++) {
        float gi = gy[i] * scale; /* unconditional, so that the select vectorises */
        gx[i] += keep[i] ? gi : 0.0f;
    }
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
