/* Check suite for autograd/: hand-computed forwards, finite-difference gradient checks of
 * every op, the arena, and error messages for misuse. */
#include <stdlib.h>
#include <string.h>

#include "internal.h" /* the fused ops */
#include "tq_test.h"

/* ---- functions under gradient check: inputs[] -> output */

static tq_tensor *fn_add(tq_tape *t, tq_tensor **x, void *c) { (void)c; return tq_add(t, x[0], x[1]); }
static tq_tensor *fn_sub(tq_tape *t, tq_tensor **x, void *c) { (void)c; return tq_sub(t, x[0], x[1]); }
static tq_tensor *fn_mul(tq_tape *t, tq_tensor **x, void *c) { (void)c; return tq_mul(t, x[0], x[1]); }
static tq_tensor *fn_scale(tq_tape *t, tq_tensor **x, void *c) { (void)c; return tq_scale(t, x[0], -2.5f); }
static tq_tensor *fn_add_channel(tq_tape *t, tq_tensor **x, void *c) { (void)c; return tq_add_channel(t, x[0], x[1]); }
static tq_tensor *fn_mul_channel(tq_tape *t, tq_tensor **x, void *c) { (void)c; return tq_mul_channel(t, x[0], x[1]); }
static tq_tensor *fn_matmul(tq_tape *t, tq_tensor **x, void *c) { (void)c; return tq_matmul(t, x[0], x[1]); }
static tq_tensor *fn_linear(tq_tape *t, tq_tensor **x, void *c) { (void)c; return tq_linear(t, x[0], x[1], x[2]); }
static tq_tensor *fn_linear_nobias(tq_tape *t, tq_tensor **x, void *c) { (void)c; return tq_linear(t, x[0], x[1], NULL); }
static tq_tensor *fn_relu(tq_tape *t, tq_tensor **x, void *c) { (void)c; return tq_relu(t, x[0]); }
static tq_tensor *fn_sigmoid(tq_tape *t, tq_tensor **x, void *c) { (void)c; return tq_sigmoid(t, x[0]); }
static tq_tensor *fn_tanh(tq_tape *t, tq_tensor **x, void *c) { (void)c; return tq_tanh(t, x[0]); }
static tq_tensor *fn_sum(tq_tape *t, tq_tensor **x, void *c) { (void)c; return tq_sum(t, x[0]); }
static tq_tensor *fn_mean(tq_tape *t, tq_tensor **x, void *c) { (void)c; return tq_mean(t, x[0]); }
static tq_tensor *fn_mse(tq_tape *t, tq_tensor **x, void *c) { (void)c; return tq_mse(t, x[0], x[1]); }
static tq_tensor *fn_xent(tq_tape *t, tq_tensor **x, void *labels)
{
    return tq_softmax_cross_entropy(t, x[0], labels);
}
/* reshape and flatten are views: checked through an op behind them */
static tq_tensor *fn_flatten_tanh(tq_tape *t, tq_tensor **x, void *c)
{
    (void)c;
    return tq_tanh(t, tq_flatten(t, x[0]));
}
static tq_tensor *fn_reshape_mul(tq_tape *t, tq_tensor **x, void *c)
{
    (void)c;
    int32_t shape[2] = {6, 4};
    return tq_mul(t, tq_reshape(t, x[0], 2, shape), x[1]);
}

static const int32_t shapes[][4] = {{1, 1, 1, 1}, {3, 5, 1, 1}, {2, 3, 4, 5}};
static const int32_t shape_ndims[] = {1, 2, 4};

START_TEST(test_gradcheck_elementwise)
{
    tq_rng rng;
    tq_rng_seed(&rng, 1);
    tq_gradcheck_fn binary[] = {fn_add, fn_sub, fn_mul, fn_mse};
    tq_gradcheck_fn unary[] = {fn_scale, fn_sigmoid, fn_tanh, fn_sum, fn_mean};
    for (int s = 0; s < 3; s++) {
        tq_tensor *a = tq_test_tensor(&rng, shape_ndims[s], shapes[s], true, -2, 2);
        tq_tensor *b = tq_test_tensor(&rng, shape_ndims[s], shapes[s], true, -2, 2);
        tq_tensor *in[] = {a, b};
        for (size_t f = 0; f < sizeof binary / sizeof *binary; f++)
            TQ_ASSERT_GRADCHECK(binary[f], NULL, in, 2, NULL, 0.0);
        for (size_t f = 0; f < sizeof unary / sizeof *unary; f++)
            TQ_ASSERT_GRADCHECK(unary[f], NULL, in, 1, NULL, 0.0);
        tq_tensor_free(a);
        tq_tensor_free(b);
    }
}
END_TEST

START_TEST(test_gradcheck_relu_kinks)
{
    tq_rng rng;
    tq_rng_seed(&rng, 2);
    tq_tensor *a = tq_test_tensor(&rng, 4, (int32_t[]){2, 3, 4, 5}, true, -1, 1);
    a->data[0] = 0.0f; /* exactly on the kink */
    tq_gradcheck_opts o = tq_gradcheck_defaults();
    o.skip_kinks = true;
    TQ_ASSERT_GRADCHECK(fn_relu, NULL, &a, 1, &o, 0.05);
    tq_tensor_free(a);
}
END_TEST

START_TEST(test_gradcheck_channel_and_views)
{
    tq_rng rng;
    tq_rng_seed(&rng, 3);
    for (int s = 1; s < 3; s++) {
        tq_tensor *x = tq_test_tensor(&rng, shape_ndims[s], shapes[s], true, -2, 2);
        tq_tensor *v = tq_test_tensor(&rng, 1, (int32_t[]){shapes[s][1]}, true, -2, 2);
        tq_tensor *in[] = {x, v};
        TQ_ASSERT_GRADCHECK(fn_add_channel, NULL, in, 2, NULL, 0.0);
        TQ_ASSERT_GRADCHECK(fn_mul_channel, NULL, in, 2, NULL, 0.0);
        TQ_ASSERT_GRADCHECK(fn_flatten_tanh, NULL, in, 1, NULL, 0.0);
        tq_tensor_free(x);
        tq_tensor_free(v);
    }
    tq_tensor *x = tq_test_tensor(&rng, 3, (int32_t[]){2, 3, 4}, true, -2, 2);
    tq_tensor *y = tq_test_tensor(&rng, 2, (int32_t[]){6, 4}, true, -2, 2);
    tq_tensor *in[] = {x, y};
    TQ_ASSERT_GRADCHECK(fn_reshape_mul, NULL, in, 2, NULL, 0.0);
    tq_tensor_free(x);
    tq_tensor_free(y);
}
END_TEST

START_TEST(test_gradcheck_matmul_linear)
{
    tq_rng rng;
    tq_rng_seed(&rng, 4);
    const int32_t dims[][3] = {{1, 1, 1}, {3, 4, 5}, {7, 2, 9}};
    for (int s = 0; s < 3; s++) {
        int32_t M = dims[s][0], K = dims[s][1], N = dims[s][2];
        tq_tensor *a = tq_test_tensor(&rng, 2, (int32_t[]){M, K}, true, -1, 1);
        tq_tensor *b = tq_test_tensor(&rng, 2, (int32_t[]){K, N}, true, -1, 1);
        tq_tensor *w = tq_test_tensor(&rng, 2, (int32_t[]){N, K}, true, -1, 1);
        tq_tensor *bias = tq_test_tensor(&rng, 1, (int32_t[]){N}, true, -1, 1);
        tq_tensor *mm[] = {a, b}, *lin[] = {a, w, bias};
        TQ_ASSERT_GRADCHECK(fn_matmul, NULL, mm, 2, NULL, 0.0);
        TQ_ASSERT_GRADCHECK(fn_linear, NULL, lin, 3, NULL, 0.0);
        TQ_ASSERT_GRADCHECK(fn_linear_nobias, NULL, lin, 2, NULL, 0.0);
        tq_tensor_free(a);
        tq_tensor_free(b);
        tq_tensor_free(w);
        tq_tensor_free(bias);
    }
}
END_TEST

START_TEST(test_gradcheck_cross_entropy)
{
    tq_rng rng;
    tq_rng_seed(&rng, 5);
    int32_t labels[] = {0, 3, 2, 1, 3};
    for (int n = 1; n <= 5; n += 4) {
        tq_tensor *z = tq_test_tensor(&rng, 2, (int32_t[]){n, 4}, true, -3, 3);
        TQ_ASSERT_GRADCHECK(fn_xent, labels, &z, 1, NULL, 0.0);
        tq_tensor_free(z);
    }
}
END_TEST

/* The checker itself must catch a wrong backward: an op y = 3x whose backward says 2. */
static void wrong_backward(tq_node *n)
{
    for (int64_t i = 0; i < n->out->numel; i++) n->in[0]->grad[i] += 2.0f * n->out->grad[i];
}
static const tq_op_def op_wrong = {.name = "wrong", .backward = wrong_backward};
static tq_tensor *fn_wrong(tq_tape *t, tq_tensor **x, void *c)
{
    (void)c;
    tq_tensor *y = tq_tape_tensor(t, x[0]->ndim, x[0]->shape, tq_tape_needs_grad(t, x, 1));
    for (int64_t i = 0; i < y->numel; i++) y->data[i] = 3.0f * x[0]->data[i];
    tq_tape_record(t, &op_wrong, y, x, 1);
    return y;
}

START_TEST(test_gradcheck_catches_wrong_backward)
{
    tq_rng rng;
    tq_rng_seed(&rng, 8);
    tq_tensor *x = tq_test_tensor(&rng, 1, (int32_t[]){5}, true, -1, 1);
    tq_gradcheck_result r = tq_gradcheck(fn_wrong, NULL, &x, 1, NULL);
    ck_assert(!r.ok);
    ck_assert_int_eq(r.failed, 5);
    tq_tensor_free(x);
}
END_TEST

/* ---- hand-computed forwards */

START_TEST(test_cross_entropy_known_logits)
{
    tq_tape *t = tq_tape_new();
    tq_tensor *z = tq_tape_tensor(t, 2, (int32_t[]){2, 3}, false);
    /* row 0: logits (1,2,3), label 2: loss = log(e+e^2+e^3) - 3 = 0.40760596
     * row 1: logits (1000,0,-1000), label 1: stable form gives 1000 exactly */
    const float v[] = {1, 2, 3, 1000, 0, -1000};
    memcpy(z->data, v, sizeof v);
    int32_t labels[] = {2, 1};
    tq_tensor *loss = tq_softmax_cross_entropy(t, z, labels);
    ck_assert_ptr_nonnull(loss);
    TQ_ASSERT_NEAR(loss->data[0], (0.40760596 + 1000.0) / 2.0, 1e-3);
    tq_tape_free(t);
}
END_TEST

START_TEST(test_linear_known_values)
{
    tq_tape *t = tq_tape_new();
    tq_tensor *x = tq_tape_tensor(t, 2, (int32_t[]){1, 2}, false);
    tq_tensor *w = tq_tape_tensor(t, 2, (int32_t[]){3, 2}, false);
    tq_tensor *b = tq_tape_tensor(t, 1, (int32_t[]){3}, false);
    memcpy(x->data, (float[]){1, 2}, 2 * sizeof(float));
    memcpy(w->data, (float[]){1, 0, 0, 1, 1, -1}, 6 * sizeof(float));
    memcpy(b->data, (float[]){0.5f, 0, -1}, 3 * sizeof(float));
    tq_tensor *y = tq_linear(t, x, w, b);
    ck_assert_ptr_nonnull(y);
    ck_assert_float_eq(y->data[0], 1.5f);
    ck_assert_float_eq(y->data[1], 2.0f);
    ck_assert_float_eq(y->data[2], -2.0f);
    tq_tape_free(t);
}
END_TEST

/* ---- tape behaviour */

START_TEST(test_no_recording_takes_no_gradient_memory)
{
    tq_rng rng;
    tq_rng_seed(&rng, 6);
    tq_tensor *w = tq_test_tensor(&rng, 2, (int32_t[]){4, 3}, true, -1, 1);
    tq_tape *t = tq_tape_new();
    tq_tape_set_recording(t, false);
    tq_tensor *x = tq_tape_tensor(t, 2, (int32_t[]){2, 3}, false);
    tq_tensor *y = tq_relu(t, tq_linear(t, x, w, NULL));
    ck_assert_ptr_nonnull(y);
    ck_assert_ptr_null(y->grad);
    ck_assert_uint_eq(tq_tape_node_count(t), 0);
    tq_tape_free(t);
    tq_tensor_free(w);
}
END_TEST

START_TEST(test_backward_accumulates_shared_input)
{
    /* y = sum(x * x + x): dy/dx = 2x + 1, x used three times */
    tq_tape *t = tq_tape_new();
    tq_tensor *x = tq_tensor_new(1, (int32_t[]){3}, true);
    memcpy(x->data, (float[]){-1, 0.5f, 2}, 3 * sizeof(float));
    tq_tensor *y = tq_sum(t, tq_add(t, tq_mul(t, x, x), x));
    ck_assert_int_eq(tq_backward(t, y), TQ_STATUS_OK);
    ck_assert_float_eq(x->grad[0], -1.0f);
    ck_assert_float_eq(x->grad[1], 2.0f);
    ck_assert_float_eq(x->grad[2], 5.0f);
    tq_tensor_free(x);
    tq_tape_free(t);
}
END_TEST

/* A small MLP step, repeated: after the first step the arena holds everything. */
START_TEST(test_arena_steady_state_allocates_nothing)
{
    tq_rng rng;
    tq_rng_seed(&rng, 7);
    tq_tensor *w1 = tq_test_tensor(&rng, 2, (int32_t[]){256, 784}, true, -0.05f, 0.05f);
    tq_tensor *w2 = tq_test_tensor(&rng, 2, (int32_t[]){10, 256}, true, -0.05f, 0.05f);
    tq_tape *t = tq_tape_new();
    int32_t labels[64];
    for (int i = 0; i < 64; i++) labels[i] = i % 10;
    size_t after_first = 0;
    for (int step = 0; step < 5; step++) {
        tq_tape_reset(t);
        if (step == 1) after_first = tq_tape_malloc_count(t);
        tq_tensor *x = tq_tape_tensor(t, 2, (int32_t[]){64, 784}, false);
        tq_tensor_fill_uniform(x, &rng, 0, 1);
        tq_tensor *loss = tq_softmax_cross_entropy(
            t, tq_linear(t, tq_relu(t, tq_linear(t, x, w1, NULL)), w2, NULL), labels);
        ck_assert_int_eq(tq_backward(t, loss), TQ_STATUS_OK);
    }
    ck_assert_uint_gt(after_first, 0);
    ck_assert_uint_eq(tq_tape_malloc_count(t), after_first);
    tq_tape_free(t);
    tq_tensor_free(w1);
    tq_tensor_free(w2);
}
END_TEST

/* ---- misuse */

START_TEST(test_shape_mismatch_message_names_op_and_shapes)
{
    tq_tape *t = tq_tape_new();
    tq_tensor *a = tq_tape_tensor(t, 2, (int32_t[]){2, 3}, false);
    tq_tensor *b = tq_tape_tensor(t, 2, (int32_t[]){3, 2}, false);
    ck_assert_ptr_null(tq_add(t, a, b));
    ck_assert_int_eq(tq_tape_error(t)->status, TQ_STATUS_SHAPE);
    ck_assert_str_eq(tq_tape_error(t)->msg, "add: shapes differ: (2,3) and (3,2)");
    /* the NULL propagates quietly and the first message stays */
    ck_assert_ptr_null(tq_relu(t, tq_add(t, a, b)));
    ck_assert_str_eq(tq_tape_error(t)->msg, "add: shapes differ: (2,3) and (3,2)");
    ck_assert_int_ne(tq_backward(t, NULL), TQ_STATUS_OK);
    /* after a reset the tape works again */
    tq_tape_reset(t);
    a = tq_tape_tensor(t, 2, (int32_t[]){2, 3}, false);
    b = tq_tape_tensor(t, 2, (int32_t[]){2, 3}, false);
    ck_assert_ptr_nonnull(tq_add(t, a, b));
    ck_assert_int_eq(tq_tape_error(t)->status, TQ_STATUS_OK);

    tq_tensor *w = tq_tape_tensor(t, 2, (int32_t[]){4, 5}, false);
    ck_assert_ptr_null(tq_linear(t, a, w, NULL));
    ck_assert_str_eq(tq_tape_error(t)->msg,
                     "linear: expected x (N,in) and w (out,in), got (2,3) and (4,5)");
    tq_tape_free(t);
}
END_TEST

START_TEST(test_cross_entropy_label_out_of_range)
{
    tq_tape *t = tq_tape_new();
    tq_tensor *z = tq_tape_tensor(t, 2, (int32_t[]){2, 3}, false);
    memset(z->data, 0, 6 * sizeof(float));
    int32_t labels[] = {1, 3};
    ck_assert_ptr_null(tq_softmax_cross_entropy(t, z, labels));
    ck_assert_str_eq(tq_tape_error(t)->msg,
                     "softmax_cross_entropy: label 3 of sample 1 is outside [0,3)");
    tq_tape_free(t);
}
END_TEST

START_TEST(test_rng_is_reproducible)
{
    tq_rng a, b;
    tq_rng_seed(&a, 42);
    tq_rng_seed(&b, 42);
    double mean = 0.0, var = 0.0;
    for (int i = 0; i < 100000; i++) {
        uint32_t x = tq_rng_u32(&a);
        ck_assert_uint_eq(x, tq_rng_u32(&b));
        float n = tq_rng_normal(&a);
        (void)tq_rng_normal(&b);
        mean += n;
        var += (double)n * n;
    }
    mean /= 100000;
    var = var / 100000 - mean * mean;
    TQ_ASSERT_NEAR(mean, 0.0, 0.02);
    TQ_ASSERT_NEAR(var, 1.0, 0.02);
}
END_TEST

/* ---- convolution, pooling, batch norm, dropout */

typedef struct conv_case {
    int32_t N, C, H, W, O, kh, kw;
    int stride, pad;
    bool bias;
} conv_case;

/* Non-square inputs and kernels, stride 1 and 2, padding 0..2, with and without bias,
 * 1x1 both on the direct path (stride 1, no padding) and through im2col; the last three keep
 * the plane size (stride 1, pad (k-1)/2), one with a kernel larger than the plane, so that
 * some taps see no pixel at all. */
static const conv_case conv_cases[] = {
    {2, 2, 5, 5, 3, 3, 3, 1, 0, true},  {1, 2, 6, 5, 2, 3, 3, 2, 1, false},
    {2, 1, 7, 6, 2, 3, 2, 1, 2, true},  {3, 3, 4, 5, 4, 1, 1, 1, 0, true},
    {1, 2, 5, 4, 2, 1, 1, 2, 1, false}, {2, 3, 5, 6, 2, 2, 2, 2, 2, true},
    {2, 2, 4, 4, 3, 3, 3, 2, 1, false}, {3, 2, 5, 6, 3, 3, 3, 1, 1, true},
    {1, 2, 6, 5, 2, 5, 5, 1, 2, false}, {2, 2, 2, 3, 2, 5, 5, 1, 2, true},
};

static tq_tensor *fn_conv(tq_tape *t, tq_tensor **x, void *c)
{
    const conv_case *k = c;
    return tq_conv2d(t, x[0], x[1], k->bias ? x[2] : NULL, k->stride, k->pad);
}

/* Direct definition of the convolution, for comparison. */
static float conv_reference(const conv_case *k, const tq_tensor *x, const tq_tensor *w,
                            const tq_tensor *b, int n, int o, int oy, int ox)
{
    double s = b ? b->data[o] : 0.0;
    for (int c = 0; c < k->C; c++)
        for (int i = 0; i < k->kh; i++)
            for (int j = 0; j < k->kw; j++) {
                int iy = oy * k->stride - k->pad + i, ix = ox * k->stride - k->pad + j;
                if (iy < 0 || iy >= k->H || ix < 0 || ix >= k->W) continue;
                s += (double)x->data[((n * k->C + c) * k->H + iy) * k->W + ix] *
                     w->data[((o * k->C + c) * k->kh + i) * k->kw + j];
            }
    return (float)s;
}

START_TEST(test_conv2d_matches_direct_definition_and_gradcheck)
{
    tq_rng rng;
    tq_rng_seed(&rng, 20);
    for (size_t i = 0; i < sizeof conv_cases / sizeof *conv_cases; i++) {
        const conv_case *k = &conv_cases[i];
        tq_tensor *x = tq_test_tensor(&rng, 4, (int32_t[]){k->N, k->C, k->H, k->W}, true, -1, 1);
        tq_tensor *w = tq_test_tensor(&rng, 4, (int32_t[]){k->O, k->C, k->kh, k->kw}, true, -1, 1);
        tq_tensor *b = tq_test_tensor(&rng, 1, (int32_t[]){k->O}, true, -1, 1);
        tq_tensor *in[] = {x, w, b};
        tq_tape *t = tq_tape_new();
        tq_tensor *y = fn_conv(t, in, (void *)k);
        ck_assert_ptr_nonnull(y);
        int OH = (k->H + 2 * k->pad - k->kh) / k->stride + 1;
        int OW = (k->W + 2 * k->pad - k->kw) / k->stride + 1;
        ck_assert_int_eq(y->shape[2], OH);
        ck_assert_int_eq(y->shape[3], OW);
        for (int n = 0; n < k->N; n++)
            for (int o = 0; o < k->O; o++)
                for (int oy = 0; oy < OH; oy++)
                    for (int ox = 0; ox < OW; ox++)
                        TQ_ASSERT_NEAR(y->data[((n * k->O + o) * OH + oy) * OW + ox],
                                       conv_reference(k, x, w, k->bias ? b : NULL, n, o, oy, ox),
                                       1e-5);
        tq_tape_free(t);
        TQ_ASSERT_GRADCHECK(fn_conv, (void *)k, in, k->bias ? 3 : 2, NULL, 0.0);
        tq_tensor_free(x);
        tq_tensor_free(w);
        tq_tensor_free(b);
    }
}
END_TEST

/* x: channel 0 holds 1..16, channel 1 ones; 3x3 kernel, padding 1, stride 2 -> 2x2.
 * Window (oy,ox) covers rows 2oy-1..2oy+1 and columns 2ox-1..2ox+1 of the padded input.
 * Channel 0 with w0 = [1 2 0; 0 -1 0; 0 0 3]:
 *   (0,0): -1*1 + 3*6 = 17      (0,1): -1*3 + 3*8 = 21
 *   (1,0): 2*5 - 9 + 3*14 = 43  (1,1): 6 + 2*7 - 11 + 3*16 = 57
 * Channel 1 with w1 = ones counts the taps inside the image: 4, 6, 6, 9. Bias 0.5. */
START_TEST(test_conv2d_known_values)
{
    tq_tape *t = tq_tape_new();
    tq_tensor *x = tq_tape_tensor(t, 4, (int32_t[]){1, 2, 4, 4}, false);
    tq_tensor *w = tq_tape_tensor(t, 4, (int32_t[]){1, 2, 3, 3}, false);
    tq_tensor *b = tq_tape_tensor(t, 1, (int32_t[]){1}, false);
    for (int i = 0; i < 16; i++) {
        x->data[i] = (float)(i + 1);
        x->data[16 + i] = 1.0f;
    }
    const float w0[9] = {1, 2, 0, 0, -1, 0, 0, 0, 3};
    for (int i = 0; i < 9; i++) {
        w->data[i] = w0[i];
        w->data[9 + i] = 1.0f;
    }
    b->data[0] = 0.5f;
    tq_tensor *y = tq_conv2d(t, x, w, b, 2, 1);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(y->ndim, 4);
    ck_assert_int_eq(y->shape[2], 2);
    ck_assert_int_eq(y->shape[3], 2);
    const float want[4] = {17 + 4 + 0.5f, 21 + 6 + 0.5f, 43 + 6 + 0.5f, 57 + 9 + 0.5f};
    for (int i = 0; i < 4; i++) ck_assert_float_eq(y->data[i], want[i]);
    tq_tape_free(t);
}
END_TEST

/* A convolution large enough for the parallel paths: 20*16*1024*144 = 47M multiply-adds
 * (over the 1M below which it stays on one thread), the weight gradient over 8 chunks of 2 or
 * 3 images, grouped two images at a time within a chunk (K = 2*32*32 = 2048). */
enum { PC_N = 20, PC_C = 16, PC_O = 16, PC_H = 32, PC_W = 32, PC_K = 3, PC_PAD = 1 };
#define PC_X (PC_N * PC_C * PC_H * PC_W)
#define PC_Y (PC_N * PC_O * PC_H * PC_W)
#define PC_WN (PC_O * PC_C * PC_K * PC_K)

typedef struct conv_run {
    float y[PC_Y], dx[PC_X], dw[PC_WN], db[PC_O];
} conv_run;

/* y = conv(x, w, b); loss = sum(y * r), so dy = r */
static void conv_run_once(tq_tensor *x, tq_tensor *w, tq_tensor *b, const float *r, conv_run *out)
{
    tq_tape *t = tq_tape_new();
    memset(x->grad, 0, sizeof out->dx);
    memset(w->grad, 0, sizeof out->dw);
    memset(b->grad, 0, sizeof out->db);
    tq_tensor *y = tq_conv2d(t, x, w, b, 1, PC_PAD);
    ck_assert_msg(y != NULL, "%s", tq_tape_error(t)->msg);
    tq_tensor *rt = tq_tape_tensor(t, 4, y->shape, false);
    memcpy(rt->data, r, sizeof out->y);
    ck_assert_int_eq(tq_backward(t, tq_sum(t, tq_mul(t, y, rt))), TQ_STATUS_OK);
    memcpy(out->y, y->data, sizeof out->y);
    memcpy(out->dx, x->grad, sizeof out->dx);
    memcpy(out->dw, w->grad, sizeof out->dw);
    memcpy(out->db, b->grad, sizeof out->db);
    tq_tape_free(t);
}

/* The direct definitions, in double: y = b + sum x w, dx = sum r w, dW = sum r x, db = sum r. */
static void conv_run_reference(const float *x, const float *w, const float *b, const float *r,
                               conv_run *ref)
{
    static double dx[PC_X], dw[PC_WN];
    memset(dx, 0, sizeof dx);
    memset(dw, 0, sizeof dw);
    for (int o = 0; o < PC_O; o++) {
        double db = 0.0;
        for (int n = 0; n < PC_N; n++)
            for (int oy = 0; oy < PC_H; oy++)
                for (int ox = 0; ox < PC_W; ox++) {
                    const int yi = ((n * PC_O + o) * PC_H + oy) * PC_W + ox;
                    const double g = r[yi];
                    double s = b[o];
                    for (int c = 0; c < PC_C; c++)
                        for (int i = 0; i < PC_K; i++)
                            for (int j = 0; j < PC_K; j++) {
                                int iy = oy - PC_PAD + i, ix = ox - PC_PAD + j;
                                if (iy < 0 || iy >= PC_H || ix < 0 || ix >= PC_W) continue;
                                int xi = ((n * PC_C + c) * PC_H + iy) * PC_W + ix;
                                int wi = ((o * PC_C + c) * PC_K + i) * PC_K + j;
                                s += (double)x[xi] * w[wi];
                                dx[xi] += g * w[wi];
                                dw[wi] += g * x[xi];
                            }
                    ref->y[yi] = (float)s;
                    db += g;
                }
        ref->db[o] = (float)db;
    }
    for (int i = 0; i < PC_X; i++) ref->dx[i] = (float)dx[i];
    for (int i = 0; i < PC_WN; i++) ref->dw[i] = (float)dw[i];
}

/* Largest |a - ref| / (1 + |ref|) over n values. */
static double max_rel_err(const float *a, const float *ref, int n)
{
    double m = 0.0;
    for (int i = 0; i < n; i++) {
        double e = fabs((double)a[i] - ref[i]) / (1.0 + fabs((double)ref[i]));
        if (e > m) m = e;
    }
    return m;
}

static void assert_conv_run_near(const conv_run *a, const conv_run *ref, const char *what)
{
    /* float sums of 144 (y, dx) and 20480 (dW, db) products of values in [-1, 1] */
    const double ey = max_rel_err(a->y, ref->y, PC_Y), edx = max_rel_err(a->dx, ref->dx, PC_X),
                 edw = max_rel_err(a->dw, ref->dw, PC_WN), edb = max_rel_err(a->db, ref->db, PC_O);
    ck_assert_msg(ey <= 3e-5 && edx <= 3e-5 && edw <= 2e-4 && edb <= 2e-4,
                  "%s: relative errors y %.3g, dx %.3g (tol 3e-5), dW %.3g, db %.3g (tol 2e-4)",
                  what, ey, edx, edw, edb);
}

/* One thread agrees with the direct definition, and 2, 3 and 4 threads (more than this
 * machine may have cores) give its bits exactly: y, dx, dW and db. */
START_TEST(test_conv2d_parallel_paths_match_reference)
{
    tq_rng rng;
    tq_rng_seed(&rng, 21);
    tq_tensor *x = tq_test_tensor(&rng, 4, (int32_t[]){PC_N, PC_C, PC_H, PC_W}, true, -1, 1);
    tq_tensor *w = tq_test_tensor(&rng, 4, (int32_t[]){PC_O, PC_C, PC_K, PC_K}, true, -1, 1);
    tq_tensor *b = tq_test_tensor(&rng, 1, (int32_t[]){PC_O}, true, -1, 1);
    float *r = malloc(PC_Y * sizeof *r);
    conv_run *runs = malloc(5 * sizeof *runs); /* reference, then 1 to 4 threads */
    ck_assert(r && runs);
    for (int i = 0; i < PC_Y; i++) r[i] = 2.0f * tq_rng_uniform(&rng) - 1.0f;
    conv_run_reference(x->data, w->data, b->data, r, &runs[0]);

    const int saved = tq_get_threads();
    for (int threads = 1; threads <= 4; threads++) {
        tq_set_threads(threads);
        ck_assert_int_eq(tq_get_threads(), threads);
        conv_run_once(x, w, b, r, &runs[threads]);
    }
    tq_set_threads(saved);
    ck_assert_int_eq(tq_get_threads(), saved);

    assert_conv_run_near(&runs[1], &runs[0], "1 thread");
    for (int threads = 2; threads <= 4; threads++) {
        const conv_run *one = &runs[1], *more = &runs[threads];
        ck_assert_msg(memcmp(one->y, more->y, sizeof one->y) == 0, "y: 1 and %d threads differ", threads);
        ck_assert_msg(memcmp(one->dx, more->dx, sizeof one->dx) == 0, "dx: 1 and %d threads differ", threads);
        ck_assert_msg(memcmp(one->dw, more->dw, sizeof one->dw) == 0, "dW: 1 and %d threads differ", threads);
        ck_assert_msg(memcmp(one->db, more->db, sizeof one->db) == 0, "db: 1 and %d threads differ", threads);
    }
    free(runs);
    free(r);
    tq_tensor_free(x);
    tq_tensor_free(w);
    tq_tensor_free(b);
}
END_TEST

/* The fused inference op gives the bits of conv2d, batchnorm (evaluation) and relu in
 * sequence, on same-size, strided and 1x1 geometries, with and without bias and ReLU; it
 * refuses a training-mode tape. */
START_TEST(test_conv2d_bn_eval_matches_the_op_sequence)
{
    tq_rng rng;
    tq_rng_seed(&rng, 22);
    const conv_case cases[] = {
        {3, 2, 6, 5, 4, 3, 3, 1, 1, true}, {2, 3, 7, 7, 5, 3, 3, 2, 1, false},
        {2, 4, 4, 4, 3, 1, 1, 1, 0, true}, {5, 3, 4, 4, 2, 1, 1, 2, 0, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int relu = 0; relu < 2; relu++) {
            const conv_case *k = &cases[i];
            tq_tensor *x = tq_test_tensor(&rng, 4, (int32_t[]){k->N, k->C, k->H, k->W}, false, -1, 1);
            tq_tensor *w = tq_test_tensor(&rng, 4, (int32_t[]){k->O, k->C, k->kh, k->kw}, true, -1, 1);
            tq_tensor *b = tq_test_tensor(&rng, 1, (int32_t[]){k->O}, true, -1, 1);
            tq_tensor *gamma = tq_test_tensor(&rng, 1, (int32_t[]){k->O}, true, -2, 2);
            tq_tensor *beta = tq_test_tensor(&rng, 1, (int32_t[]){k->O}, true, -1, 1);
            float rm[8], rv[8];
            for (int o = 0; o < k->O; o++) {
                rm[o] = tq_rng_uniform(&rng) - 0.5f;
                rv[o] = 0.1f + 2.0f * tq_rng_uniform(&rng);
            }
            tq_batchnorm_state st = {.running_mean = rm, .running_var = rv, .momentum = 0.1f, .eps = 1e-5f};
            tq_tape *t = tq_tape_new();
            tq_tape_set_training(t, false);
            tq_tape_set_recording(t, false);
            tq_tensor *bias = k->bias ? b : NULL;
            tq_tensor *want = tq_batchnorm(t, tq_conv2d(t, x, w, bias, k->stride, k->pad), gamma, beta, &st);
            if (relu) want = tq_relu(t, want);
            tq_tensor *got = tq_conv2d_bn_eval(t, x, w, bias, k->stride, k->pad, gamma, beta, &st, relu);
            ck_assert_msg(want && got, "%s", tq_tape_error(t)->msg);
            ck_assert_int_eq(got->numel, want->numel);
            ck_assert_mem_eq(got->data, want->data, (size_t)want->numel * sizeof(float));
            int negatives = 0;
            for (int64_t j = 0; j < got->numel; j++) negatives += got->data[j] < 0.0f;
            ck_assert(relu ? negatives == 0 : negatives > 0);
            tq_tape_set_training(t, true);
            ck_assert_ptr_null(tq_conv2d_bn_eval(t, x, w, bias, k->stride, k->pad, gamma, beta, &st, relu));
            ck_assert_str_eq(tq_tape_error(t)->msg, "conv2d_bn_eval: inference only (tape in training "
                                                     "mode or recording a gradient)");
            tq_tape_free(t);
            tq_tensor_free(x);
            tq_tensor_free(w);
            tq_tensor_free(b);
            tq_tensor_free(gamma);
            tq_tensor_free(beta);
        }
}
END_TEST

typedef struct pool_case {
    int32_t N, C, H, W;
    int kernel, stride;
} pool_case;
static const pool_case pool_cases[] = {
    {2, 3, 4, 4, 2, 2}, {1, 2, 5, 6, 3, 1}, {2, 1, 5, 5, 2, 2}, {1, 2, 7, 5, 3, 2},
};

static tq_tensor *fn_maxpool(tq_tape *t, tq_tensor **x, void *c)
{
    const pool_case *k = c;
    return tq_maxpool2d(t, x[0], k->kernel, k->stride);
}
static tq_tensor *fn_avgpool(tq_tape *t, tq_tensor **x, void *c)
{
    const pool_case *k = c;
    return tq_avgpool2d(t, x[0], k->kernel, k->stride);
}
static tq_tensor *fn_global_avgpool(tq_tape *t, tq_tensor **x, void *c)
{
    (void)c;
    return tq_global_avgpool(t, x[0]);
}

/* Distinct values 0.1 apart in random order: no ties within the checker's step of 0.01. */
static void fill_distinct(tq_tensor *x, tq_rng *rng)
{
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = 0.1f * (float)i - 1.0f;
    for (int64_t i = x->numel - 1; i > 0; i--) {
        int64_t j = tq_rng_below(rng, (uint32_t)(i + 1));
        float v = x->data[i];
        x->data[i] = x->data[j];
        x->data[j] = v;
    }
}

START_TEST(test_gradcheck_pools)
{
    tq_rng rng;
    tq_rng_seed(&rng, 22);
    for (size_t i = 0; i < sizeof pool_cases / sizeof *pool_cases; i++) {
        const pool_case *k = &pool_cases[i];
        tq_tensor *x = tq_test_tensor(&rng, 4, (int32_t[]){k->N, k->C, k->H, k->W}, true, -1, 1);
        TQ_ASSERT_GRADCHECK(fn_avgpool, (void *)k, &x, 1, NULL, 0.0);
        TQ_ASSERT_GRADCHECK(fn_global_avgpool, NULL, &x, 1, NULL, 0.0);
        fill_distinct(x, &rng);
        TQ_ASSERT_GRADCHECK(fn_maxpool, (void *)k, &x, 1, NULL, 0.0);
        tq_tensor_free(x);
    }
    /* random values with a forced tie: kinks skipped, the rest must agree */
    tq_tensor *x = tq_test_tensor(&rng, 4, (int32_t[]){2, 2, 4, 4}, true, -1, 1);
    x->data[0] = x->data[1] = 2.0f;
    tq_gradcheck_opts o = tq_gradcheck_defaults();
    o.skip_kinks = true;
    TQ_ASSERT_GRADCHECK(fn_maxpool, (void *)&pool_cases[0], &x, 1, &o, 0.1);
    tq_tensor_free(x);
}
END_TEST

/* Windows of 2x2, stride 2: (0,0) {1,5,3,4} -> 5 at 1; (0,1) all 2 -> the first, at 2;
 * (1,0) {-1,-2,-3,-4} -> -1 at 8; (1,1) {0,7,7,6} -> the first 7, at 11. */
START_TEST(test_maxpool_known_winners)
{
    tq_tape *t = tq_tape_new();
    tq_tensor *x = tq_tensor_new(4, (int32_t[]){1, 1, 4, 4}, true);
    const float v[16] = {1, 5, 2, 2, 3, 4, 2, 2, -1, -2, 0, 7, -3, -4, 7, 6};
    memcpy(x->data, v, sizeof v);
    tq_tensor *y = tq_maxpool2d(t, x, 2, 2);
    ck_assert_ptr_nonnull(y);
    const float want[4] = {5, 2, -1, 7};
    for (int i = 0; i < 4; i++) ck_assert_float_eq(y->data[i], want[i]);
    ck_assert_int_eq(tq_backward(t, tq_sum(t, y)), TQ_STATUS_OK);
    for (int i = 0; i < 16; i++)
        ck_assert_float_eq(x->grad[i], (i == 1 || i == 2 || i == 8 || i == 11) ? 1.0f : 0.0f);
    tq_tensor_free(x);
    tq_tape_free(t);
}
END_TEST

/* x = 0..11 as 3x4, kernel 3, stride 1: means of columns 0..2 and 1..3 are 5 and 6; the
 * gradient of their sum is 1/9 per covering window: 1,2,2,1 ninths across every row.
 * Global average of the two planes 0..3 and 4..7: 1.5 and 5.5. */
START_TEST(test_avgpool_known_values)
{
    tq_tape *t = tq_tape_new();
    tq_tensor *x = tq_tensor_new(4, (int32_t[]){1, 1, 3, 4}, true);
    for (int i = 0; i < 12; i++) x->data[i] = (float)i;
    tq_tensor *y = tq_avgpool2d(t, x, 3, 1);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(y->shape[2], 1);
    ck_assert_int_eq(y->shape[3], 2);
    TQ_ASSERT_NEAR(y->data[0], 5.0, 1e-6);
    TQ_ASSERT_NEAR(y->data[1], 6.0, 1e-6);
    ck_assert_int_eq(tq_backward(t, tq_sum(t, y)), TQ_STATUS_OK);
    const float cover[4] = {1, 2, 2, 1};
    for (int i = 0; i < 12; i++) TQ_ASSERT_NEAR(x->grad[i], cover[i % 4] / 9.0, 1e-7);

    tq_tape_reset(t);
    tq_tensor *z = tq_tape_tensor(t, 4, (int32_t[]){1, 2, 2, 2}, false);
    for (int i = 0; i < 8; i++) z->data[i] = (float)i;
    tq_tensor *g = tq_global_avgpool(t, z);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(g->ndim, 2);
    ck_assert_int_eq(g->shape[1], 2);
    ck_assert_float_eq(g->data[0], 1.5f);
    ck_assert_float_eq(g->data[1], 5.5f);
    tq_tensor_free(x);
    tq_tape_free(t);
}
END_TEST

typedef struct bn_case {
    tq_batchnorm_state *state;
    bool training;
} bn_case;

static tq_tensor *fn_batchnorm(tq_tape *t, tq_tensor **x, void *c)
{
    const bn_case *k = c;
    tq_tape_set_training(t, k->training);
    return tq_batchnorm(t, x[0], x[1], x[2], k->state);
}

START_TEST(test_gradcheck_batchnorm)
{
    tq_rng rng;
    tq_rng_seed(&rng, 23);
    const int32_t shapes_bn[][4] = {{4, 3}, {2, 3, 3, 2}, {5, 2, 1, 1}};
    const int32_t ndims_bn[] = {2, 4, 4};
    for (int s = 0; s < 3; s++) {
        int32_t C = shapes_bn[s][1];
        float mean[3], var[3];
        tq_batchnorm_state st = {.running_mean = mean, .running_var = var, .momentum = 0.1f,
                                 .eps = 1e-5f};
        for (int c = 0; c < C; c++) {
            mean[c] = 0.3f * (float)c - 0.2f;
            var[c] = 0.5f + (float)c;
        }
        tq_tensor *x = tq_test_tensor(&rng, ndims_bn[s], shapes_bn[s], true, -2, 2);
        tq_tensor *gamma = tq_test_tensor(&rng, 1, &C, true, 0.5f, 1.5f);
        tq_tensor *beta = tq_test_tensor(&rng, 1, &C, true, -1, 1);
        tq_tensor *in[] = {x, gamma, beta};
        bn_case train = {&st, true}, eval = {&st, false};
        TQ_ASSERT_GRADCHECK(fn_batchnorm, &train, in, 3, NULL, 0.0);
        TQ_ASSERT_GRADCHECK(fn_batchnorm, &eval, in, 3, NULL, 0.0);
        tq_tensor_free(x);
        tq_tensor_free(gamma);
        tq_tensor_free(beta);
    }
}
END_TEST

/* Channel 0 is 1,2,3,4: mean 2.5, biased variance 1.25, unbiased 5/3. Channel 1 is
 * constant 3: variance 0, so the output is beta and eps keeps it finite. gamma (2,1),
 * beta (0.5,-1), momentum 0.1 from running mean 0 and variance 1. */
/* The fused batchnorm + ReLU gives the bits of tq_relu(tq_batchnorm()), forward and backward
 * (x, gamma and beta gradients), in training and evaluation mode, on a 4-D and a 2-D input. */
static void bn_relu_run(tq_tensor *x, tq_tensor *gamma, tq_tensor *beta, bool training, bool fused,
                        float *out, float *grads)
{
    float rm[5] = {0.1f, -0.2f, 0.3f, 0.0f, 0.5f}, rv[5] = {1.0f, 0.5f, 2.0f, 0.3f, 1.5f};
    tq_batchnorm_state st = {.running_mean = rm, .running_var = rv, .momentum = 0.1f, .eps = 1e-5f};
    tq_tensor *in[] = {x, gamma, beta};
    for (int i = 0; i < 3; i++) memset(in[i]->grad, 0, (size_t)in[i]->numel * sizeof(float));
    tq_tape *t = tq_tape_new();
    tq_tape_set_training(t, training);
    tq_tensor *y = fused ? tq_batchnorm_relu(t, x, gamma, beta, &st)
                         : tq_relu(t, tq_batchnorm(t, x, gamma, beta, &st));
    ck_assert_msg(y != NULL, "%s", tq_tape_error(t)->msg);
    memcpy(out, y->data, (size_t)y->numel * sizeof(float));
    /* a weighted sum, so that every output's gradient differs */
    tq_tensor *wsum = tq_tape_tensor(t, y->ndim, y->shape, false);
    for (int64_t i = 0; i < y->numel; i++) wsum->data[i] = (float)(i % 7) - 2.5f;
    ck_assert_int_eq(tq_backward(t, tq_sum(t, tq_mul(t, y, wsum))), TQ_STATUS_OK);
    for (int i = 0, off = 0; i < 3; off += (int)in[i]->numel, i++)
        memcpy(grads + off, in[i]->grad, (size_t)in[i]->numel * sizeof(float));
    tq_tape_free(t);
}

START_TEST(test_batchnorm_relu_matches_the_op_pair)
{
    tq_rng rng;
    tq_rng_seed(&rng, 23);
    const int32_t shapes[2][4] = {{3, 5, 4, 7}, {37, 5, 1, 1}};
    for (int s = 0; s < 2; s++)
        for (int training = 0; training < 2; training++) {
            tq_tensor *x = tq_test_tensor(&rng, s ? 2 : 4, shapes[s], true, -2, 2);
            tq_tensor *gamma = tq_test_tensor(&rng, 1, (int32_t[]){5}, true, -1.5, 1.5);
            tq_tensor *beta = tq_test_tensor(&rng, 1, (int32_t[]){5}, true, -0.5, 0.5);
            const size_t n = (size_t)x->numel, ng = n + 10;
            float *out[2], *grads[2];
            for (int f = 0; f < 2; f++) {
                out[f] = malloc(n * sizeof(float));
                grads[f] = malloc(ng * sizeof(float));
                bn_relu_run(x, gamma, beta, training, f, out[f], grads[f]);
            }
            ck_assert_mem_eq(out[0], out[1], n * sizeof(float));
            ck_assert_mem_eq(grads[0], grads[1], ng * sizeof(float));
            size_t zeros = 0, nonzero_grads = 0;
            for (size_t i = 0; i < n; i++) zeros += out[1][i] == 0.0f;
            for (size_t i = 0; i < n; i++) nonzero_grads += grads[1][i] != 0.0f;
            ck_assert(zeros > n / 10 && zeros < n * 9 / 10);
            ck_assert(nonzero_grads > n / 10);
            for (int f = 0; f < 2; f++) {
                free(out[f]);
                free(grads[f]);
            }
            tq_tensor_free(x);
            tq_tensor_free(gamma);
            tq_tensor_free(beta);
        }
}
END_TEST

/* The fused add + ReLU gives the bits of tq_relu(tq_add()), forward and both gradients. */
START_TEST(test_add_relu_matches_the_op_pair)
{
    tq_rng rng;
    tq_rng_seed(&rng, 29);
    const int32_t shape[4] = {3, 4, 5, 6};
    tq_tensor *a = tq_test_tensor(&rng, 4, shape, true, -2, 2);
    tq_tensor *b = tq_test_tensor(&rng, 4, shape, true, -2, 2);
    const size_t n = (size_t)a->numel;
    float *out[2], *grads[2];
    for (int f = 0; f < 2; f++) {
        out[f] = malloc(n * sizeof(float));
        grads[f] = malloc(2 * n * sizeof(float));
        memset(a->grad, 0, n * sizeof(float));
        memset(b->grad, 0, n * sizeof(float));
        tq_tape *t = tq_tape_new();
        tq_tensor *y = f ? tq_add_relu(t, a, b) : tq_relu(t, tq_add(t, a, b));
        ck_assert_msg(y != NULL, "%s", tq_tape_error(t)->msg);
        memcpy(out[f], y->data, n * sizeof(float));
        tq_tensor *wsum = tq_tape_tensor(t, y->ndim, y->shape, false);
        for (int64_t i = 0; i < y->numel; i++) wsum->data[i] = (float)(i % 7) - 2.5f;
        ck_assert_int_eq(tq_backward(t, tq_sum(t, tq_mul(t, y, wsum))), TQ_STATUS_OK);
        memcpy(grads[f], a->grad, n * sizeof(float));
        memcpy(grads[f] + n, b->grad, n * sizeof(float));
        tq_tape_free(t);
    }
    ck_assert_mem_eq(out[0], out[1], n * sizeof(float));
    ck_assert_mem_eq(grads[0], grads[1], 2 * n * sizeof(float));
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++) {
        zeros += out[1][i] == 0.0f;
        /* by hand: the gradient of a and of b is the weight where a + b > 0 */
        float v = a->data[i] + b->data[i], want = v > 0.0f ? (float)(i % 7) - 2.5f : 0.0f;
        ck_assert(grads[1][i] == want && grads[1][n + i] == want);
    }
    ck_assert(zeros > n / 10 && zeros < n * 9 / 10);
    tq_tape *t = tq_tape_new();
    ck_assert_ptr_null(tq_add_relu(t, a, tq_reshape(t, b, 2, (int32_t[]){12, 30})));
    ck_assert_msg(strstr(tq_tape_error(t)->msg, "add_relu"), "%s", tq_tape_error(t)->msg);
    tq_tape_free(t);
    for (int f = 0; f < 2; f++) {
        free(out[f]);
        free(grads[f]);
    }
    tq_tensor_free(a);
    tq_tensor_free(b);
}
END_TEST

START_TEST(test_batchnorm_known_batch)
{
    tq_tape *t = tq_tape_new();
    tq_tensor *x = tq_tensor_new(2, (int32_t[]){4, 2}, true);
    tq_tensor *gamma = tq_tensor_new(1, (int32_t[]){2}, true);
    tq_tensor *beta = tq_tensor_new(1, (int32_t[]){2}, true);
    const float xv[8] = {1, 3, 2, 3, 3, 3, 4, 3};
    memcpy(x->data, xv, sizeof xv);
    gamma->data[0] = 2.0f;
    gamma->data[1] = 1.0f;
    beta->data[0] = 0.5f;
    beta->data[1] = -1.0f;
    float rm[2] = {0, 0}, rv[2] = {1, 1};
    tq_batchnorm_state st = {.running_mean = rm, .running_var = rv, .momentum = 0.1f, .eps = 1e-5f};

    tq_tensor *y = tq_batchnorm(t, x, gamma, beta, &st);
    ck_assert_ptr_nonnull(y);
    for (int n = 0; n < 4; n++) {
        TQ_ASSERT_NEAR(y->data[2 * n], 2.0 * (xv[2 * n] - 2.5) / sqrt(1.25 + 1e-5) + 0.5, 1e-5);
        ck_assert_float_eq(y->data[2 * n + 1], -1.0f);
    }
    TQ_ASSERT_NEAR(rm[0], 0.25, 1e-7);
    TQ_ASSERT_NEAR(rm[1], 0.3, 1e-7);
    TQ_ASSERT_NEAR(rv[0], 0.9 + 0.1 * 5.0 / 3.0, 1e-6);
    TQ_ASSERT_NEAR(rv[1], 0.9, 1e-7);
    /* d sum(y) / dx is 0 (the mean absorbs a shift), d/dbeta = 4, d/dgamma = sum xhat = 0 */
    ck_assert_int_eq(tq_backward(t, tq_sum(t, y)), TQ_STATUS_OK);
    for (int i = 0; i < 8; i++) TQ_ASSERT_NEAR(x->grad[i], 0.0, 1e-4);
    TQ_ASSERT_NEAR(beta->grad[0], 4.0, 1e-6);
    TQ_ASSERT_NEAR(gamma->grad[0], 0.0, 1e-5);

    /* evaluation uses the running statistics and leaves them alone */
    tq_tape_reset(t);
    tq_tape_set_training(t, false);
    y = tq_batchnorm(t, x, gamma, beta, &st);
    ck_assert_ptr_nonnull(y);
    TQ_ASSERT_NEAR(y->data[0], 2.0 * (1.0 - 0.25) / sqrt(0.9 + 0.5 / 3.0 + 1e-5) + 0.5, 1e-5);
    TQ_ASSERT_NEAR(y->data[1], (3.0 - 0.3) / sqrt(0.9 + 1e-5) - 1.0, 1e-5);
    TQ_ASSERT_NEAR(rm[0], 0.25, 1e-7);
    TQ_ASSERT_NEAR(rv[1], 0.9, 1e-7);
    tq_tensor_free(x);
    tq_tensor_free(gamma);
    tq_tensor_free(beta);
    tq_tape_free(t);
}
END_TEST

/* A channel with zero variance normalises to xhat = 0, so with dL/dy = r the gradients
 * reduce to dx = gamma / sqrt(eps) * (r - mean r) over the channel, dgamma = sum r xhat = 0
 * and dbeta = sum r: finite, and exactly these. */
START_TEST(test_batchnorm_zero_variance_closed_form)
{
    tq_tape *t = tq_tape_new();
    tq_tensor *x = tq_tensor_new(4, (int32_t[]){2, 2, 3, 3}, true);
    tq_tensor *gamma = tq_tensor_new(1, (int32_t[]){2}, true);
    tq_tensor *beta = tq_tensor_new(1, (int32_t[]){2}, true);
    const float value[2] = {7.0f, -3.0f}, g[2] = {1.5f, -0.5f};
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = value[(i / 9) % 2];
    gamma->data[0] = g[0], gamma->data[1] = g[1];
    beta->data[0] = 0.25f, beta->data[1] = -1.0f;
    float rm[2] = {0, 0}, rv[2] = {1, 1};
    tq_batchnorm_state st = {.running_mean = rm, .running_var = rv, .momentum = 0.1f, .eps = 1e-5f};
    tq_tensor *y = tq_batchnorm(t, x, gamma, beta, &st);
    ck_assert_ptr_nonnull(y);
    tq_rng rng;
    tq_rng_seed(&rng, 24);
    tq_tensor *r = tq_tape_tensor(t, 4, y->shape, false);
    tq_tensor_fill_uniform(r, &rng, -1, 1);
    ck_assert_int_eq(tq_backward(t, tq_sum(t, tq_mul(t, y, r))), TQ_STATUS_OK);
    for (int c = 0; c < 2; c++) {
        double sum_r = 0;
        for (int n = 0; n < 2; n++)
            for (int k = 0; k < 9; k++) sum_r += r->data[(n * 2 + c) * 9 + k];
        const double mean_r = sum_r / 18;
        const double scale = g[c] / sqrt((double)1e-5f); /* about 474 and -158 */
        for (int n = 0; n < 2; n++)
            for (int k = 0; k < 9; k++) {
                const int i = (n * 2 + c) * 9 + k;
                ck_assert_float_eq(y->data[i], beta->data[c]);
                TQ_ASSERT_NEAR(x->grad[i], scale * (r->data[i] - mean_r), 1e-5 * fabs(scale));
            }
        TQ_ASSERT_NEAR(gamma->grad[c], 0.0, 0);
        TQ_ASSERT_NEAR(beta->grad[c], sum_r, 1e-5);
    }
    tq_tensor_free(x);
    tq_tensor_free(gamma);
    tq_tensor_free(beta);
    tq_tape_free(t);
}
END_TEST

/* A mean far from zero must not cancel the variance: 10000 + (1,2,3,4) normalises like
 * (1,2,3,4), to (x - 2.5) / sqrt(1.25 + eps); every value here is exact in float. */
START_TEST(test_batchnorm_large_mean)
{
    tq_tape *t = tq_tape_new();
    tq_tensor *x = tq_tape_tensor(t, 4, (int32_t[]){2, 1, 1, 2}, false);
    tq_tensor *gamma = tq_tape_tensor(t, 1, (int32_t[]){1}, false);
    tq_tensor *beta = tq_tape_tensor(t, 1, (int32_t[]){1}, false);
    for (int i = 0; i < 4; i++) x->data[i] = 10001.0f + (float)i;
    gamma->data[0] = 1.0f;
    beta->data[0] = 0.0f;
    float rm = 0.0f, rv = 1.0f;
    tq_batchnorm_state st = {.running_mean = &rm, .running_var = &rv, .momentum = 1.0f, .eps = 1e-5f};
    tq_tensor *y = tq_batchnorm(t, x, gamma, beta, &st);
    ck_assert_ptr_nonnull(y);
    for (int i = 0; i < 4; i++) TQ_ASSERT_NEAR(y->data[i], (i - 1.5) / sqrt(1.25 + 1e-5), 1e-5);
    TQ_ASSERT_NEAR(rm, 10002.5, 1e-3);
    TQ_ASSERT_NEAR(rv, 5.0 / 3.0, 1e-5);
    tq_tape_free(t);
}
END_TEST

typedef struct dropout_case {
    float p;
    uint64_t seed;
} dropout_case;

/* reseeded on every call, so the finite differences see the same mask as backward */
static tq_tensor *fn_dropout(tq_tape *t, tq_tensor **x, void *c)
{
    const dropout_case *k = c;
    tq_rng rng;
    tq_rng_seed(&rng, k->seed);
    return tq_dropout(t, x[0], k->p, &rng);
}

START_TEST(test_gradcheck_dropout)
{
    tq_rng rng;
    tq_rng_seed(&rng, 25);
    dropout_case cases[] = {{0.5f, 1}, {0.2f, 2}};
    for (int s = 1; s < 3; s++) {
        tq_tensor *x = tq_test_tensor(&rng, shape_ndims[s], shapes[s], true, -2, 2);
        for (int i = 0; i < 2; i++) TQ_ASSERT_GRADCHECK(fn_dropout, &cases[i], &x, 1, NULL, 0.0);
        tq_tensor_free(x);
    }
}
END_TEST

START_TEST(test_dropout_fraction_and_scale)
{
    tq_tape *t = tq_tape_new();
    tq_tensor *x = tq_tensor_new(1, (int32_t[]){100000}, true);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = 1.0f;
    tq_rng rng;
    tq_rng_seed(&rng, 26);
    tq_tensor *y = tq_dropout(t, x, 0.3f, &rng);
    ck_assert_ptr_nonnull(y);
    ck_assert_ptr_ne(y, x);
    int64_t dropped = 0;
    for (int64_t i = 0; i < y->numel; i++) {
        if (y->data[i] == 0.0f) dropped++;
        else ck_assert_float_eq(y->data[i], 1.0f / 0.7f);
    }
    TQ_ASSERT_NEAR((double)dropped / 100000.0, 0.3, 0.005); /* 3.5 standard deviations */
    /* d sum(y)/dx is the scaled mask, which for x = 1 is y itself */
    ck_assert_int_eq(tq_backward(t, tq_sum(t, y)), TQ_STATUS_OK);
    ck_assert_mem_eq(x->grad, y->data, 100000 * sizeof(float));

    /* identity when p = 0 or outside training; the rng is not touched */
    tq_tape_reset(t);
    tq_rng before = rng;
    ck_assert_ptr_eq(tq_dropout(t, x, 0.0f, &rng), x);
    tq_tape_set_training(t, false);
    ck_assert_ptr_eq(tq_dropout(t, x, 0.5f, &rng), x);
    ck_assert_mem_eq(&before, &rng, sizeof rng);

    ck_assert_ptr_null(tq_dropout(t, x, 1.0f, &rng));
    ck_assert_int_eq(tq_tape_error(t)->status, TQ_STATUS_ARG);
    ck_assert_str_eq(tq_tape_error(t)->msg, "dropout: p 1 is outside [0,1)");
    tq_tape_fail_clear(t);
    ck_assert_ptr_null(tq_dropout(t, x, -0.25f, &rng));
    ck_assert_str_eq(tq_tape_error(t)->msg, "dropout: p -0.25 is outside [0,1)");
    tq_tensor_free(x);
    tq_tape_free(t);
}
END_TEST

START_TEST(test_nn_shape_messages)
{
    tq_tape *t = tq_tape_new();
    tq_tensor *x = tq_tape_tensor(t, 4, (int32_t[]){2, 3, 8, 8}, false);
    tq_tensor *w = tq_tape_tensor(t, 4, (int32_t[]){4, 2, 3, 3}, false);
    ck_assert_ptr_null(tq_conv2d(t, x, w, NULL, 1, 0));
    ck_assert_int_eq(tq_tape_error(t)->status, TQ_STATUS_SHAPE);
    ck_assert_str_eq(tq_tape_error(t)->msg,
                     "conv2d: expected x (N,C,H,W) and w (O,C,kh,kw), got (2,3,8,8) and (4,2,3,3)");
    tq_tape_fail_clear(t);
    tq_tensor *w3 = tq_tape_tensor(t, 4, (int32_t[]){4, 3, 3, 3}, false);
    tq_tensor *b = tq_tape_tensor(t, 1, (int32_t[]){5}, false);
    ck_assert_ptr_null(tq_conv2d(t, x, w3, b, 1, 0));
    ck_assert_str_eq(tq_tape_error(t)->msg,
                     "conv2d: bias does not match w: w and bias are (4,3,3,3) and (5)");
    tq_tape_fail_clear(t);
    ck_assert_ptr_null(tq_conv2d(t, x, w3, NULL, 0, 1));
    ck_assert_int_eq(tq_tape_error(t)->status, TQ_STATUS_ARG);
    ck_assert_str_eq(tq_tape_error(t)->msg,
                     "conv2d: stride 0 and padding 1 (expected stride >= 1, padding >= 0)");
    tq_tape_fail_clear(t);
    tq_tensor *big = tq_tape_tensor(t, 4, (int32_t[]){1, 3, 11, 3}, false);
    ck_assert_ptr_null(tq_conv2d(t, x, big, NULL, 1, 1));
    ck_assert_str_eq(tq_tape_error(t)->msg,
                     "conv2d: kernel of w (1,3,11,3) does not fit x (2,3,8,8) with padding 1");
    tq_tape_fail_clear(t);
    ck_assert_ptr_null(tq_maxpool2d(t, x, 9, 1));
    ck_assert_str_eq(tq_tape_error(t)->msg, "maxpool2d: kernel 9 does not fit x (2,3,8,8)");
    tq_tape_fail_clear(t);
    tq_tensor *flat = tq_tape_tensor(t, 2, (int32_t[]){2, 3}, false);
    ck_assert_ptr_null(tq_avgpool2d(t, flat, 2, 2));
    ck_assert_str_eq(tq_tape_error(t)->msg, "avgpool2d: expected x (N,C,H,W), got (2,3)");
    tq_tape_fail_clear(t);
    ck_assert_ptr_null(tq_global_avgpool(t, flat));
    ck_assert_str_eq(tq_tape_error(t)->msg, "global_avgpool: expected x (N,C,H,W), got (2,3)");
    tq_tape_fail_clear(t);
    float rm[4] = {0}, rv[4] = {1, 1, 1, 1};
    tq_batchnorm_state st = {.running_mean = rm, .running_var = rv, .momentum = 0.1f, .eps = 1e-5f};
    tq_tensor *g4 = tq_tape_tensor(t, 1, (int32_t[]){4}, false);
    ck_assert_ptr_null(tq_batchnorm(t, x, g4, g4, &st));
    ck_assert_str_eq(tq_tape_error(t)->msg,
                     "batchnorm: gamma does not match dimension 1: x and gamma are (2,3,8,8) and (4)");
    tq_tape_fail_clear(t);
    /* a failed op upstream propagates as NULL without a second message */
    ck_assert_ptr_null(tq_maxpool2d(t, tq_conv2d(t, x, w, NULL, 1, 0), 2, 2));
    ck_assert_str_eq(tq_tape_error(t)->msg,
                     "conv2d: expected x (N,C,H,W) and w (O,C,kh,kw), got (2,3,8,8) and (4,2,3,3)");
    tq_tape_free(t);
}
END_TEST

/* A small conv net step, repeated: scratch, masks and statistics all come from the arena. */
START_TEST(test_conv_net_steady_state_allocates_nothing)
{
    tq_rng rng;
    tq_rng_seed(&rng, 27);
    tq_tensor *w1 = tq_test_tensor(&rng, 4, (int32_t[]){4, 1, 3, 3}, true, -0.3f, 0.3f);
    tq_tensor *w2 = tq_test_tensor(&rng, 4, (int32_t[]){6, 4, 1, 1}, true, -0.3f, 0.3f);
    tq_tensor *gamma = tq_test_tensor(&rng, 1, (int32_t[]){4}, true, 1, 1);
    tq_tensor *beta = tq_test_tensor(&rng, 1, (int32_t[]){4}, true, 0, 0);
    float rm[4] = {0}, rv[4] = {1, 1, 1, 1};
    tq_batchnorm_state st = {.running_mean = rm, .running_var = rv, .momentum = 0.1f, .eps = 1e-5f};
    int32_t labels[8];
    for (int i = 0; i < 8; i++) labels[i] = i % 6;
    tq_tape *t = tq_tape_new();
    size_t after_first = 0;
    for (int step = 0; step < 4; step++) {
        tq_tape_reset(t);
        if (step == 1) after_first = tq_tape_malloc_count(t);
        tq_tensor *x = tq_tape_tensor(t, 4, (int32_t[]){8, 1, 12, 12}, false);
        tq_tensor_fill_uniform(x, &rng, 0, 1);
        tq_tensor *h = tq_relu(t, tq_batchnorm(t, tq_conv2d(t, x, w1, NULL, 1, 1), gamma, beta, &st));
        h = tq_dropout(t, tq_maxpool2d(t, h, 2, 2), 0.25f, &rng);
        h = tq_global_avgpool(t, tq_avgpool2d(t, tq_conv2d(t, h, w2, NULL, 1, 0), 3, 1));
        tq_tensor *loss = tq_softmax_cross_entropy(t, h, labels);
        ck_assert_int_eq(tq_backward(t, loss), TQ_STATUS_OK);
    }
    ck_assert_uint_gt(after_first, 0);
    ck_assert_uint_eq(tq_tape_malloc_count(t), after_first);
    tq_tape_free(t);
    tq_tensor_free(w1);
    tq_tensor_free(w2);
    tq_tensor_free(gamma);
    tq_tensor_free(beta);
}
END_TEST

static Suite *autograd_suite(void)
{
    Suite *s = suite_create("autograd");
    TCase *grad = tcase_create("gradcheck");
    tcase_add_test(grad, test_gradcheck_elementwise);
    tcase_add_test(grad, test_gradcheck_relu_kinks);
    tcase_add_test(grad, test_gradcheck_channel_and_views);
    tcase_add_test(grad, test_gradcheck_matmul_linear);
    tcase_add_test(grad, test_gradcheck_cross_entropy);
    tcase_add_test(grad, test_gradcheck_catches_wrong_backward);
    suite_add_tcase(s, grad);

    TCase *fwd = tcase_create("forward");
    tcase_add_test(fwd, test_cross_entropy_known_logits);
    tcase_add_test(fwd, test_linear_known_values);
    suite_add_tcase(s, fwd);

    TCase *tape = tcase_create("tape");
    tcase_add_test(tape, test_no_recording_takes_no_gradient_memory);
    tcase_add_test(tape, test_backward_accumulates_shared_input);
    tcase_add_test(tape, test_arena_steady_state_allocates_nothing);
    tcase_add_test(tape, test_shape_mismatch_message_names_op_and_shapes);
    tcase_add_test(tape, test_cross_entropy_label_out_of_range);
    tcase_add_test(tape, test_rng_is_reproducible);
    suite_add_tcase(s, tape);

    TCase *nn = tcase_create("conv, pool, norm, dropout");
    tcase_add_test(nn, test_conv2d_matches_direct_definition_and_gradcheck);
    tcase_add_test(nn, test_conv2d_known_values);
    tcase_add_test(nn, test_conv2d_parallel_paths_match_reference);
    tcase_add_test(nn, test_conv2d_bn_eval_matches_the_op_sequence);
    tcase_add_test(nn, test_batchnorm_relu_matches_the_op_pair);
    tcase_add_test(nn, test_add_relu_matches_the_op_pair);
    tcase_add_test(nn, test_gradcheck_pools);
    tcase_add_test(nn, test_maxpool_known_winners);
    tcase_add_test(nn, test_avgpool_known_values);
    tcase_add_test(nn, test_gradcheck_batchnorm);
    tcase_add_test(nn, test_batchnorm_known_batch);
    tcase_add_test(nn, test_batchnorm_zero_variance_closed_form);
    tcase_add_test(nn, test_batchnorm_large_mean);
    tcase_add_test(nn, test_gradcheck_dropout);
    tcase_add_test(nn, test_dropout_fraction_and_scale);
    tcase_add_test(nn, test_nn_shape_messages);
    tcase_add_test(nn, test_conv_net_steady_state_allocates_nothing);
    suite_add_tcase(s, nn);
    return s;
}

int main(void) { return tq_test_run(autograd_suite()); }
