/* Matrix products through tq_sgemm: matmul (M,K)x(K,N) and linear y = x w^T + b. */
#include "internal.h"

#include "gemm.h"

/* ---- matmul: C = A B */

static void matmul_backward(tq_node *n)
{
    tq_tensor *a = n->in[0], *b = n->in[1];
    int M = a->shape[0], K = a->shape[1], N = b->shape[1];
    const float *g = n->out->grad;
    if (a->grad) /* dA += G B^T */
        tq_sgemm(false, true, M, K, N, 1.0f, g, N, b->data, N, 1.0f, a->grad, K);
    if (b->grad) /* dB += A^T G */
        tq_sgemm(true, false, K, N, M, 1.0f, a->data, K, g, N, 1.0f, b->grad, N);
}
static const tq_op_def op_matmul = {.name = "matmul", .backward = matmul_backward};

tq_tensor *tq_matmul(tq_tape *t, tq_tensor *a, tq_tensor *b)
{
    TQ_REQUIRE_INPUTS(t, "matmul", a, b);
    if (a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[0])
        return tq_fail_shapes(t, "matmul", "expected (M,K) and (K,N), got", a, b);
    int M = a->shape[0], K = a->shape[1], N = b->shape[1];
    tq_tensor *in[] = {a, b};
    tq_tensor *y = tq_op_output(t, in, 2, 2, (int32_t[]){M, N});
    if (!y) return NULL;
    tq_sgemm(false, false, M, N, K, 1.0f, a->data, K, b->data, N, 0.0f, y->data, N);
    tq_tape_record(t, &op_matmul, y, in, 2);
    return y;
}

/* ---- linear: y (N,out) = x (N,in) w^T (in,out) + b */

static void linear_backward(tq_node *n)
{
    tq_tensor *x = n->in[0], *w = n->in[1], *b = n->n_in > 2 ? n->in[2] : NULL;
    int N = x->shape[0], IN = x->shape[1], OUT = w->shape[0];
    const float *g = n->out->grad;
    if (x->grad) /* dx += g w */
        tq_sgemm(false, false, N, IN, OUT, 1.0f, g, OUT, w->data, IN, 1.0f, x->grad, IN);
    if (w->grad) /* dw += g^T x */
        tq_sgemm(true, false, OUT, IN, N, 1.0f, g, OUT, x->data, IN, 1.0f, w->grad, IN);
    if (b && b->grad)
        for (int i = 0; i < N; i++) tq_accumulate(b->grad, g + (int64_t)i * OUT, OUT);
}
static const tq_op_def op_linear = {.name = "linear", .backward = linear_backward};

tq_tensor *tq_linear(tq_tape *t, tq_tensor *x, tq_tensor *w, tq_tensor *b)
{
    TQ_REQUIRE_INPUTS(t, "linear", x, w);
    if (x->ndim != 2 || w->ndim != 2 || x->shape[1] != w->shape[1])
        return tq_fail_shapes(t, "linear", "expected x (N,in) and w (out,in), got", x, w);
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        return tq_fail_shapes(t, "linear", "bias does not match w: w and bias are", w, b);
    int N = x->shape[0], IN = x->shape[1], OUT = w->shape[0];
    tq_tensor *in[] = {x, w, b};
    int n_in = b ? 3 : 2;
    tq_tensor *y = tq_op_output(t, in, n_in, 2, (int32_t[]){N, OUT});
    if (!y) return NULL;
    float beta = 0.0f;
    if (b) {
        for (int i = 0; i < N; i++)
            for (int o = 0; o < OUT; o++) y->data[(int64_t)i * OUT + o] = b->data[o];
        beta = 1.0f;
    }
    tq_sgemm(false, true, N, OUT, IN, 1.0f, x->data, IN, w->data, IN, beta, y->data, OUT);
    tq_tape_record(t, &op_linear, y, in, n_in);
    return y;
}
