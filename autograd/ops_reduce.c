/* Reductions (sum, mean), views (reshape, flatten) and losses (softmax cross-entropy, MSE). */
#include "internal.h"

#include <math.h>
#include <string.h>

/* ---- sum and mean: output (1); farg[0] is the factor (1 or 1/n) */

static void reduce_backward(tq_node *n)
{
    float g = n->out->grad[0] * n->farg[0];
    float *gx = n->in[0]->grad;
    for (int64_t i = 0; i < n->in[0]->numel; i++) gx[i] += g;
}
static const tq_op_def op_sum = {.name = "sum", .backward = reduce_backward};
static const tq_op_def op_mean = {.name = "mean", .backward = reduce_backward};

static tq_tensor *reduce(tq_tape *t, const tq_op_def *op, tq_tensor *x)
{
    TQ_REQUIRE_INPUTS(t, op->name, x);
    tq_tensor *y = tq_op_output(t, &x, 1, 1, (int32_t[]){1});
    if (!y) return NULL;
    double s = 0.0;
    for (int64_t i = 0; i < x->numel; i++) s += x->data[i];
    float factor = op == &op_mean ? 1.0f / (float)x->numel : 1.0f;
    y->data[0] = (float)(s * factor);
    tq_node *n = tq_tape_record(t, op, y, &x, 1);
    if (n) n->farg[0] = factor;
    return y;
}

tq_tensor *tq_sum(tq_tape *t, tq_tensor *x) { return reduce(t, &op_sum, x); }
tq_tensor *tq_mean(tq_tape *t, tq_tensor *x) { return reduce(t, &op_mean, x); }

/* ---- views: the output shares data and gradient with the input, so backward has nothing
 * to do and no node is recorded. */

tq_tensor *tq_reshape(tq_tape *t, tq_tensor *x, int32_t ndim, const int32_t *shape)
{
    TQ_REQUIRE_INPUTS(t, "reshape", x);
    tq_tensor *y = tq_tape_alloc(t, sizeof *y);
    if (!y) return NULL;
    *y = *x;
    if (!tq_shape_set(y, ndim, shape) || y->numel != x->numel) {
        tq_tensor want = {0};
        want.ndim = ndim > TQ_MAX_DIMS ? TQ_MAX_DIMS : ndim < 0 ? 0 : ndim;
        for (int i = 0; i < want.ndim; i++) want.shape[i] = shape[i];
        return tq_fail_shapes(t, "reshape", "cannot view", x, &want);
    }
    if (!tq_tape_recording(t)) y->grad = NULL;
    return y;
}

tq_tensor *tq_flatten(tq_tape *t, tq_tensor *x)
{
    TQ_REQUIRE_INPUTS(t, "flatten", x);
    int32_t shape[2] = {x->shape[0], (int32_t)(x->numel / x->shape[0])};
    return tq_reshape(t, x, 2, shape);
}

/* ---- softmax cross-entropy, mean over the batch. saved = softmax probabilities. */

static void xent_backward(tq_node *n)
{
    tq_tensor *x = n->in[0];
    int N = x->shape[0], K = x->shape[1];
    const float *p = n->saved;
    const int32_t *labels = (const int32_t *)(p + (int64_t)N * K);
    float g = n->out->grad[0] / (float)N;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < K; k++) {
            int64_t j = (int64_t)i * K + k;
            x->grad[j] += g * (p[j] - (k == labels[i] ? 1.0f : 0.0f));
        }
}
static const tq_op_def op_xent = {.name = "softmax_cross_entropy", .backward = xent_backward};

tq_tensor *tq_softmax_cross_entropy(tq_tape *t, tq_tensor *logits, const int32_t *labels)
{
    TQ_REQUIRE_INPUTS(t, "softmax_cross_entropy", logits);
    if (logits->ndim != 2) return tq_fail_shape(t, "softmax_cross_entropy", "logits (N,K)", logits);
    int N = logits->shape[0], K = logits->shape[1];
    for (int i = 0; i < N; i++)
        if (labels[i] < 0 || labels[i] >= K)
            return tq_tape_fail(t, TQ_STATUS_ARG,
                                "softmax_cross_entropy: label %d of sample %d is outside [0,%d)",
                                labels[i], i, K);
    tq_tensor *y = tq_op_output(t, &logits, 1, 1, (int32_t[]){1});
    if (!y) return NULL;
    bool keep = tq_tape_needs_grad(t, &logits, 1);
    float *p = NULL;
    if (keep) {
        p = tq_tape_alloc(t, (size_t)N * K * sizeof(float) + (size_t)N * sizeof(int32_t));
        if (!p) return NULL;
        memcpy(p + (int64_t)N * K, labels, (size_t)N * sizeof(int32_t));
    }
    double loss = 0.0;
    for (int i = 0; i < N; i++) {
        const float *z = logits->data + (int64_t)i * K;
        float m = z[0];
        for (int k = 1; k < K; k++) m = z[k] > m ? z[k] : m;
        double s = 0.0;
        for (int k = 0; k < K; k++) s += exp((double)(z[k] - m));
        double logsum = log(s);
        loss += logsum - (double)(z[labels[i]] - m);
        if (p)
            for (int k = 0; k < K; k++) p[(int64_t)i * K + k] = (float)(exp((double)(z[k] - m)) / s);
    }
    y->data[0] = (float)(loss / N);
    tq_node *n = tq_tape_record(t, &op_xent, y, &logits, 1);
    if (n) n->saved = p;
    return y;
}

/* ---- mean squared error */

static void mse_backward(tq_node *n)
{
    tq_tensor *a = n->in[0], *b = n->in[1];
    float g = 2.0f * n->out->grad[0] / (float)a->numel;
    for (int64_t i = 0; i < a->numel; i++) {
        float d = g * (a->data[i] - b->data[i]);
        if (a->grad) a->grad[i] += d;
        if (b->grad) b->grad[i] -= d;
    }
}
static const tq_op_def op_mse = {.name = "mse", .backward = mse_backward};

tq_tensor *tq_mse(tq_tape *t, tq_tensor *pred, tq_tensor *target)
{
    TQ_REQUIRE_INPUTS(t, "mse", pred, target);
    if (!tq_same_shape(pred, target)) return tq_fail_shapes(t, "mse", "shapes differ:", pred, target);
    tq_tensor *in[] = {pred, target};
    tq_tensor *y = tq_op_output(t, in, 2, 1, (int32_t[]){1});
    if (!y) return NULL;
    double s = 0.0;
    for (int64_t i = 0; i < pred->numel; i++) {
        double d = (double)pred->data[i] - target->data[i];
        s += d * d;
    }
    y->data[0] = (float)(s / pred->numel);
    tq_tape_record(t, &op_mse, y, in, 2);
    return y;
}
