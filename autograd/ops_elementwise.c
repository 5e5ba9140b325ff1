/* Elementwise ops: add, sub, mul, scale, per-channel add and multiply, ReLU, sigmoid, tanh. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

tq_tensor *tq_fail_shapes(tq_tape *t, const char *op, const char *what, const tq_tensor *a,
                          const tq_tensor *b)
{
    char sa[64], sb[64];
    return tq_tape_fail(t, TQ_STATUS_SHAPE, "%s: %s %s and %s", op, what,
                        tq_shape_str(a, sa, sizeof sa), tq_shape_str(b, sb, sizeof sb));
}

tq_tensor *tq_fail_shape(tq_tape *t, const char *op, const char *expected, const tq_tensor *x)
{
    char s[64];
    return tq_tape_fail(t, TQ_STATUS_SHAPE, "%s: expected %s, got %s", op, expected,
                        tq_shape_str(x, s, sizeof s));
}

tq_tensor *tq_op_output(tq_tape *t, tq_tensor *const *in, int n_in, int32_t ndim,
                        const int32_t *shape)
{
    return tq_tape_tensor(t, ndim, shape, tq_tape_needs_grad(t, in, n_in));
}

void tq_accumulate(float *restrict dst, const float *restrict src, int64_t n)
{
#pragma omp parallel for schedule(static) if (n >= TQ_EW_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

/* ---- binary ops on equal shapes */

static void add_backward(tq_node *n)
{
    for (int k = 0; k < 2; k++)
        if (n->in[k]->grad) tq_accumulate(n->in[k]->grad, n->out->grad, n->out->numel);
}

static void sub_backward(tq_node *n)
{
    const float *g = n->out->grad;
    if (n->in[0]->grad) tq_accumulate(n->in[0]->grad, g, n->out->numel);
    if (n->in[1]->grad)
        for (int64_t i = 0; i < n->out->numel; i++) n->in[1]->grad[i] -= g[i];
}

static void mul_backward(tq_node *n)
{
    const float *g = n->out->grad, *a = n->in[0]->data, *b = n->in[1]->data;
    if (n->in[0]->grad)
        for (int64_t i = 0; i < n->out->numel; i++) n->in[0]->grad[i] += g[i] * b[i];
    if (n->in[1]->grad)
        for (int64_t i = 0; i < n->out->numel; i++) n->in[1]->grad[i] += g[i] * a[i];
}

static const tq_op_def op_add = {.name = "add", .backward = add_backward};
static const tq_op_def op_sub = {.name = "sub", .backward = sub_backward};
static const tq_op_def op_mul = {.name = "mul", .backward = mul_backward};

static tq_tensor *binary(tq_tape *t, const tq_op_def *op, tq_tensor *a, tq_tensor *b)
{
    TQ_REQUIRE_INPUTS(t, op->name, a, b);
    if (!tq_same_shape(a, b)) return tq_fail_shapes(t, op->name, "shapes differ:", a, b);
    tq_tensor *in[] = {a, b};
    tq_tensor *y = tq_op_output(t, in, 2, a->ndim, a->shape);
    if (!y) return NULL;
    const float *restrict x0 = a->data, *restrict x1 = b->data;
    float *restrict o = y->data;
    const int64_t n = y->numel;
    const bool par = n >= TQ_EW_PARALLEL_MIN;
    if (op == &op_add) {
#pragma omp parallel for schedule(static) if (par)
        for (int64_t i = 0; i < n; i++) o[i] = x0[i] + x1[i];
    } else if (op == &op_sub) {
#pragma omp parallel for schedule(static) if (par)
        for (int64_t i = 0; i < n; i++) o[i] = x0[i] - x1[i];
    } else {
#pragma omp parallel for schedule(static) if (par)
        for (int64_t i = 0; i < n; i++) o[i] = x0[i] * x1[i];
    }
    tq_tape_record(t, op, y, in, 2);
    return y;
}

tq_tensor *tq_add(tq_tape *t, tq_tensor *a, tq_tensor *b) { return binary(t, &op_add, a, b); }
tq_tensor *tq_sub(tq_tape *t, tq_tensor *a, tq_tensor *b) { return binary(t, &op_sub, a, b); }
tq_tensor *tq_mul(tq_tape *t, tq_tensor *a, tq_tensor *b) { return binary(t, &op_mul, a, b); }

/* ---- scale by a constant */

static void scale_backward(tq_node *n)
{
    float c = n->farg[0];
    for (int64_t i = 0; i < n->out->numel; i++) n->in[0]->grad[i] += c * n->out->grad[i];
}
static const tq_op_def op_scale = {.name = "scale", .backward = scale_backward};

tq_tensor *tq_scale(tq_tape *t, tq_tensor *x, float c)
{
    TQ_REQUIRE_INPUTS(t, "scale", x);
    tq_tensor *y = tq_op_output(t, &x, 1, x->ndim, x->shape);
    if (!y) return NULL;
    for (int64_t i = 0; i < y->numel; i++) y->data[i] = c * x->data[i];
    tq_node *n = tq_tape_record(t, &op_scale, y, &x, 1);
    if (n) n->farg[0] = c;
    return y;
}

/* ---- per-channel broadcast along dimension 1: x (N,C,...) with v (C) */

/* inner = product of the dimensions after 1 (H*W, or 1 for (N,C)). */
static int64_t channel_inner(const tq_tensor *x) { return x->numel / x->shape[0] / x->shape[1]; }

static void add_channel_backward(tq_node *n)
{
    tq_tensor *x = n->in[0], *v = n->in[1];
    const float *g = n->out->grad;
    if (x->grad) tq_accumulate(x->grad, g, x->numel);
    if (v->grad) {
        int64_t N = x->shape[0], C = x->shape[1], inner = channel_inner(x);
        /* each channel sums its own planes in batch order: the same bits for any thread count */
#pragma omp parallel for schedule(static) if (x->numel >= TQ_EW_PARALLEL_MIN)
        for (int64_t c = 0; c < C; c++)
            for (int64_t b = 0; b < N; b++) {
                const float *gp = g + (b * C + c) * inner;
                float s = 0.0f;
                for (int64_t i = 0; i < inner; i++) s += gp[i];
                v->grad[c] += s;
            }
    }
}

static void mul_channel_backward(tq_node *n)
{
    tq_tensor *x = n->in[0], *v = n->in[1];
    const float *g = n->out->grad;
    int64_t N = x->shape[0], C = x->shape[1], inner = channel_inner(x);
    for (int64_t b = 0; b < N; b++)
        for (int64_t c = 0; c < C; c++) {
            int64_t off = (b * C + c) * inner;
            if (x->grad)
                for (int64_t i = 0; i < inner; i++) x->grad[off + i] += g[off + i] * v->data[c];
            if (v->grad) {
                float s = 0.0f;
                for (int64_t i = 0; i < inner; i++) s += g[off + i] * x->data[off + i];
                v->grad[c] += s;
            }
        }
}

static const tq_op_def op_add_channel = {.name = "add_channel", .backward = add_channel_backward};
static const tq_op_def op_mul_channel = {.name = "mul_channel", .backward = mul_channel_backward};

static tq_tensor *channel_op(tq_tape *t, const tq_op_def *op, tq_tensor *x, tq_tensor *v)
{
    TQ_REQUIRE_INPUTS(t, op->name, x, v);
    if (x->ndim < 2) return tq_fail_shape(t, op->name, "x of shape (N,C) or (N,C,H,W)", x);
    if (v->ndim != 1 || v->shape[0] != x->shape[1])
        return tq_fail_shapes(t, op->name, "per-channel vector does not match dimension 1:", x, v);
    tq_tensor *in[] = {x, v};
    tq_tensor *y = tq_op_output(t, in, 2, x->ndim, x->shape);
    if (!y) return NULL;
    int64_t N = x->shape[0], C = x->shape[1], inner = channel_inner(x);
    bool add = op == &op_add_channel;
#pragma omp parallel for collapse(2) schedule(static) if (x->numel >= TQ_EW_PARALLEL_MIN)
    for (int64_t b = 0; b < N; b++)
        for (int64_t c = 0; c < C; c++) {
            int64_t off = (b * C + c) * inner;
            float s = v->data[c];
            if (add)
                for (int64_t i = 0; i < inner; i++) y->data[off + i] = x->data[off + i] + s;
            else
                for (int64_t i = 0; i < inner; i++) y->data[off + i] = x->data[off + i] * s;
        }
    tq_tape_record(t, op, y, in, 2);
    return y;
}

tq_tensor *tq_add_channel(tq_tape *t, tq_tensor *x, tq_tensor *v)
{
    return channel_op(t, &op_add_channel, x, v);
}
tq_tensor *tq_mul_channel(tq_tape *t, tq_tensor *x, tq_tensor *v)
{
    return channel_op(t, &op_mul_channel, x, v);
}

/* ---- activations; backward uses the saved output where it can */

static void relu_backward(tq_node *n)
{
    const float *restrict y = n->out->data, *restrict g = n->out->grad;
    float *restrict gx = n->in[0]->grad;
    const int64_t len = n->out->numel;
#pragma omp parallel for schedule(static) if (len >= TQ_EW_PARALLEL_MIN)
    for (int64_t i = 0; i < len; i++) {
        float gi = g[i]; /* loaded unconditionally so that the select vectorises */
        gx[i] += y[i] > 0.0f ? gi : 0.0f;
    }
}

static void sigmoid_backward(tq_node *n)
{
    const float *y = n->out->data, *g = n->out->grad;
    float *gx = n->in[0]->grad;
    for (int64_t i = 0; i < n->out->numel; i++) gx[i] += g[i] * y[i] * (1.0f - y[i]);
}

static void tanh_backward(tq_node *n)
{
    const float *y = n->out->data, *g = n->out->grad;
    float *gx = n->in[0]->grad;
    for (int64_t i = 0; i < n->out->numel; i++) gx[i] += g[i] * (1.0f - y[i] * y[i]);
}

static const tq_op_def op_relu = {.name = "relu", .backward = relu_backward};
static const tq_op_def op_sigmoid = {.name = "sigmoid", .backward = sigmoid_backward};
static const tq_op_def op_tanh = {.name = "tanh", .backward = tanh_backward};

static tq_tensor *activation(tq_tape *t, const tq_op_def *op, tq_tensor *x)
{
    TQ_REQUIRE_INPUTS(t, op->name, x);
    tq_tensor *y = tq_op_output(t, &x, 1, x->ndim, x->shape);
    if (!y) return NULL;
    const float *restrict a = x->data;
    float *restrict o = y->data;
    const int64_t len = y->numel;
    if (op == &op_relu) {
#pragma omp parallel for schedule(static) if (len >= TQ_EW_PARALLEL_MIN)
        for (int64_t i = 0; i < len; i++) o[i] = a[i] > 0.0f ? a[i] : 0.0f;
    } else if (op == &op_sigmoid) {
        for (int64_t i = 0; i < y->numel; i++) o[i] = 1.0f / (1.0f + expf(-a[i]));
    } else {
        for (int64_t i = 0; i < y->numel; i++) o[i] = tanhf(a[i]);
    }
    tq_tape_record(t, op, y, &x, 1);
    return y;
}

tq_tensor *tq_relu(tq_tape *t, tq_tensor *x) { return activation(t, &op_relu, x); }

/* ---- relu(a + b), the join of a residual block, in one pass each way */

static void add_relu_backward(tq_node *n)
{
    const float *restrict y = n->out->data, *restrict g = n->out->grad;
    const int64_t len = n->out->numel;
    for (int k = 0; k < 2; k++) {
        float *restrict gx = n->in[k]->grad;
        if (!gx) continue;
#pragma omp parallel for schedule(static) if (len >= TQ_EW_PARALLEL_MIN)
        for (int64_t i = 0; i < len; i++) {
            float gi = g[i];
            gx[i] += y[i] > 0.0f ? gi : 0.0f;
        }
    }
}
static const tq_op_def op_add_relu = {.name = "add_relu", .backward = add_relu_backward};

tq_tensor *tq_add_relu(tq_tape *t, tq_tensor *a, tq_tensor *b)
{
    TQ_REQUIRE_INPUTS(t, "add_relu", a, b);
    if (!tq_same_shape(a, b)) return tq_fail_shapes(t, "add_relu", "shapes differ:", a, b);
    tq_tensor *in[] = {a, b};
    tq_tensor *y = tq_op_output(t, in, 2, a->ndim, a->shape);
    if (!y) return NULL;
    const float *restrict x0 = a->data, *restrict x1 = b->data;
    float *restrict o = y->data;
    const int64_t len = y->numel;
#pragma omp parallel for schedule(static) if (len >= TQ_EW_PARALLEL_MIN)
    for (int64_t i = 0; i < len; i++) {
        float v = x0[i] + x1[i];
        o[i] = v > 0.0f ? v : 0.0f;
    }
    tq_tape_record(t, &op_add_relu, y, in, 2);
    return y;
}
tq_tensor *tq_sigmoid(tq_tape *t, tq_tensor *x) { return activation(t, &op_sigmoid, x); }
tq_tensor *tq_tanh(tq_tape *t, tq_tensor *x) { return activation(t, &op_tanh, x); }
