/* Check suite for autograd/: hand-computed forwards, finite-difference gradient checks of
 * every op, the arena, and error messages for misuse. */
#include <stdlib.h>
#include <string.h>

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
    return s;
}

int main(void) { return tq_test_run(autograd_suite()); }
