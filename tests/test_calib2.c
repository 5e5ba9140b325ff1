/* Check suite for calibration that changes weights: SmoothQuant and AWQ move each weight by
 * the amount their formulas say (the division folded into the layer before, through a ReLU),
 * keep the float function and lower the quantized output error on inputs with outlier
 * channels; AWQ clipping never raises the output error on the inputs it saw; batch-norm
 * folding keeps evaluation outputs, checkpoints keep both, recipe files, and sensitivity
 * ranks a fragile layer first. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sensitivity.h"
#include "tq_test.h"

/* Inputs (N,C,1,1) uniform in [-1,1] with channels 0..2 scaled by `outlier`. */
static tq_tensor *outlier_input(tq_rng *rng, int32_t n, int32_t c, float outlier)
{
    tq_tensor *x = tq_test_tensor(rng, 4, (int32_t[]){n, c, 1, 1}, false, -1.0f, 1.0f);
    for (int32_t b = 0; b < n; b++)
        for (int32_t k = 0; k < 3; k++) x->data[(int64_t)b * c + k] *= outlier;
    return x;
}

/* Evaluation-mode output of m on x, copied out of the tape. */
static float *eval_out(tq_model *m, tq_tensor *x, int64_t *n)
{
    tq_tape *t = tq_tape_new();
    tq_tape_set_recording(t, false);
    tq_tape_set_training(t, false);
    tq_tensor *y = tq_model_forward(m, t, x, NULL);
    ck_assert_msg(y != NULL, "forward: %s", tq_tape_error(t)->msg);
    float *out = malloc((size_t)y->numel * sizeof(float));
    memcpy(out, y->data, (size_t)y->numel * sizeof(float));
    *n = y->numel;
    tq_tape_free(t);
    return out;
}

/* max |a - b| / max |a| */
static double rel_diff(const float *a, const float *b, int64_t n)
{
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)a[i]));
    }
    return d / s;
}

static double sq_err(const float *a, const float *b, int64_t n)
{
    double e = 0;
    for (int64_t i = 0; i < n; i++) e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return e;
}

static tq_model *finish(tq_model *m, uint64_t seed)
{
    tq_rng rng;
    tq_rng_seed(&rng, seed);
    tq_error e = {0};
    ck_assert_msg(tq_model_finish(m, &rng, &e) == TQ_STATUS_OK, "%s", e.msg);
    return m;
}

/* flatten - fc1 - relu - fc2 - relu - fc3 on 16 features. */
static tq_model *mlp16(void)
{
    tq_error e = {0};
    tq_model *m = tq_model_new("mlp16", 16, 1, 1, &e);
    tq_model_flatten(m, "flatten");
    tq_model_linear(m, "fc1", 64, true);
    tq_model_relu(m, "relu1");
    tq_model_linear(m, "fc2", 32, true);
    tq_model_relu(m, "relu2");
    tq_model_linear(m, "fc3", 4, true);
    return finish(m, 3);
}

static tq_chan_stats *stats_of(tq_model *m, tq_tensor *x)
{
    tq_error e = {0};
    tq_chan_stats *s = tq_chan_stats_new(m, &e);
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(tq_chan_stats_observe(m, s, x, &e) == TQ_STATUS_OK, "%s", e.msg);
    return s;
}

START_TEST(smoothquant_keeps_float_function)
{
    tq_model *m = mlp16();
    tq_rng rng;
    tq_rng_seed(&rng, 7);
    tq_tensor *x = outlier_input(&rng, 40, 16, 30.0f);
    int64_t n;
    float *before = eval_out(m, x, &n);
    tq_chan_stats *s = stats_of(m, x);
    /* Channel 0's amax is its largest |x| among the 40 samples. */
    float expect = 0;
    for (int b = 0; b < 40; b++) expect = fmaxf(expect, fabsf(x->data[b * 16]));
    TQ_ASSERT_NEAR(s[0].amax[0], expect, 0);
    tq_error e = {0};
    ck_assert_msg(tq_smoothquant_model(m, s, 0.5f, &e) == TQ_STATUS_OK, "%s", e.msg);
    float *after = eval_out(m, x, &n);
    ck_assert_msg(rel_diff(before, after, n) < 1e-5, "relative change %g", rel_diff(before, after, n));
    /* fc1 reads the (flattened) input: stored multiplier; fc2 and fc3 fold into fc1, fc2. */
    ck_assert_ptr_nonnull(tq_model_qlayer(m, 0)->input_mul);
    ck_assert_ptr_null(tq_model_qlayer(m, 1)->input_mul);
    ck_assert_ptr_null(tq_model_qlayer(m, 2)->input_mul);
    tq_chan_stats_free(s, 3);
    free(before);
    free(after);
    tq_tensor_free(x);
    tq_model_free(m);
}
END_TEST

/* flatten - fc1 (4 -> 3) - relu - fc2 (3 -> 2), weights and biases by hand. */
static tq_model *tiny_mlp(void)
{
    tq_error e = {0};
    tq_model *m = tq_model_new("tiny", 4, 1, 1, &e);
    tq_model_flatten(m, "flatten");
    tq_model_linear(m, "fc1", 3, true);
    tq_model_relu(m, "relu");
    tq_model_linear(m, "fc2", 2, true);
    m = finish(m, 1);
    const float w1[12] = {0.5f, -0.25f, 0.125f, 1.0f, -0.75f, 0.5f, 0.25f, 0.5f, 0.25f, 1.5f, -0.5f, 0.75f};
    const float b1[3] = {0.5f, 1.0f, 0.25f}, w2[6] = {1.0f, -2.0f, 0.5f, 0.25f, 0.5f, -1.5f};
    const float b2[2] = {0.1f, -0.2f};
    memcpy(tq_model_tensor_by_name(m, "fc1.weight")->data, w1, sizeof w1);
    memcpy(tq_model_tensor_by_name(m, "fc1.bias")->data, b1, sizeof b1);
    memcpy(tq_model_tensor_by_name(m, "fc2.weight")->data, w2, sizeof w2);
    memcpy(tq_model_tensor_by_name(m, "fc2.bias")->data, b2, sizeof b2);
    return m;
}

/* Five inputs of four features, the second feature an outlier channel. */
static const float tiny_x[5][4] = {{1, 20, -0.5f, 0.25f}, {-1, 12, 0.5f, 1}, {0.5f, -16, 1, -0.5f},
                                   {2, 8, -1, 0.75f}, {-0.5f, 24, 0.25f, -1}};

/* What the rescaling must do to tiny_mlp, computed here from the inputs: fc2's weights times
 * s2 along its inputs, fc1's rows and bias divided by s2 (through the ReLU, which commutes
 * with a positive scale), then fc1's weights times s1 along its inputs and fc1's input
 * multiplier 1 / s1. Each scale comes from scale(), given the layer's input statistics (the
 * per-channel abs max and mean |x| of the float model) and its weights at that point. */
typedef double (*scale_fn)(const double *amax, const double *mean, const float *w, int out,
                           int in, int c, double param, const double *all_mean);

static double sq_formula(const double *amax, const double *mean, const float *w, int out, int in,
                         int c, double alpha, const double *all_mean)
{
    (void)mean, (void)all_mean;
    double wmax = 0;
    for (int o = 0; o < out; o++) wmax = fmax(wmax, fabs(w[o * in + c]));
    return pow(amax[c], alpha) / pow(wmax, 1 - alpha);
}

/* AWQ: mean^a normalised by the geometric mean of the largest and smallest (no zero means here). */
static double awq_formula(const double *amax, const double *mean, const float *w, int out, int in,
                          int c, double a, const double *all_mean)
{
    (void)amax, (void)w, (void)out, (void)mean;
    double lo = INFINITY, hi = 0;
    for (int k = 0; k < in; k++) lo = fmin(lo, pow(all_mean[k], a)), hi = fmax(hi, pow(all_mean[k], a));
    return pow(all_mean[c], a) / sqrt(lo * hi);
}

static void check_rescaled(tq_model *m, scale_fn scale, const double *params)
{
    double a1[4] = {0}, m1[4] = {0}, a2[3] = {0}, m2[3] = {0};
    const float *w1 = tq_model_tensor_by_name(m, "fc1.weight")->data;
    const float *b1 = tq_model_tensor_by_name(m, "fc1.bias")->data;
    float W1[12], B1[3], W2[6];
    memcpy(W1, w1, sizeof W1);
    memcpy(B1, b1, sizeof B1);
    memcpy(W2, tq_model_tensor_by_name(m, "fc2.weight")->data, sizeof W2);
    for (int n = 0; n < 5; n++) {
        for (int k = 0; k < 4; k++) a1[k] = fmax(a1[k], fabs(tiny_x[n][k])), m1[k] += fabs(tiny_x[n][k]) / 5;
        for (int c = 0; c < 3; c++) {
            double h = B1[c];
            for (int k = 0; k < 4; k++) h += (double)W1[c * 4 + k] * tiny_x[n][k];
            h = fmax(h, 0.0);
            a2[c] = fmax(a2[c], h), m2[c] += h / 5;
        }
    }
    /* last layer first: fc2's scale from fc2's weights, fc1's from fc1's after the division */
    double s2[3], s1[4], want_w1[12], want_b1[3], want_w2[6];
    for (int c = 0; c < 3; c++) s2[c] = scale(a2, m2, W2, 2, 3, c, params[1], m2);
    for (int o = 0; o < 2; o++)
        for (int c = 0; c < 3; c++) want_w2[o * 3 + c] = W2[o * 3 + c] * s2[c];
    float divided[12];
    for (int c = 0; c < 3; c++) {
        want_b1[c] = B1[c] / s2[c];
        for (int k = 0; k < 4; k++) divided[c * 4 + k] = (float)(W1[c * 4 + k] / s2[c]);
    }
    for (int k = 0; k < 4; k++) s1[k] = scale(a1, m1, divided, 3, 4, k, params[0], m1);
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 4; k++) want_w1[c * 4 + k] = W1[c * 4 + k] / s2[c] * s1[k];

    tq_tensor *x = tq_tensor_new(4, (int32_t[]){5, 4, 1, 1}, false);
    memcpy(x->data, tiny_x, sizeof tiny_x);
    int64_t n;
    float *before = eval_out(m, x, &n);
    tq_chan_stats *s = stats_of(m, x);
    tq_error e = {0};
    if (scale == sq_formula) {
        ck_assert_msg(tq_smoothquant_model(m, s, (float)params[0], &e) == TQ_STATUS_OK, "%s", e.msg);
    } else {
        tq_qspec w4;
        ck_assert(tq_qspec_parse("int4:channel=0", &w4, &e) == TQ_STATUS_OK);
        float exps[2] = {-1, -1};
        ck_assert_msg(tq_awq_model(m, s, &w4, exps, &e) == TQ_STATUS_OK, "%s", e.msg);
        /* the exponents it chose are what the formula is checked at */
        ck_assert_float_eq(exps[0], (float)params[0]);
        ck_assert_float_eq(exps[1], (float)params[1]);
    }
    /* float32 products and quotients of the same values: a few ulp */
    const double tol = 1e-6;
    for (int i = 0; i < 6; i++)
        TQ_ASSERT_NEAR(tq_model_tensor_by_name(m, "fc2.weight")->data[i], want_w2[i], tol * fabs(want_w2[i]));
    for (int i = 0; i < 12; i++) TQ_ASSERT_NEAR(w1[i], want_w1[i], tol * fabs(want_w1[i]));
    for (int c = 0; c < 3; c++) TQ_ASSERT_NEAR(b1[c], want_b1[c], tol * fabs(want_b1[c]));
    const tq_tensor *mul = tq_model_qlayer(m, 0)->input_mul;
    ck_assert_ptr_nonnull(mul);
    ck_assert_ptr_null(tq_model_qlayer(m, 1)->input_mul);
    for (int k = 0; k < 4; k++) TQ_ASSERT_NEAR(mul->data[k], 1 / s1[k], tol / s1[k]);
    /* no scale is near 1, so a transform that did nothing would fail above */
    for (int c = 0; c < 3; c++) ck_assert_msg(fabs(s2[c] - 1) > 0.05, "s2[%d] = %g", c, s2[c]);
    float *after = eval_out(m, x, &n);
    ck_assert_msg(rel_diff(before, after, n) < 1e-5, "relative change %g", rel_diff(before, after, n));
    tq_chan_stats_free(s, 2);
    free(before);
    free(after);
    tq_tensor_free(x);
}

START_TEST(rescaling_moves_weights_by_its_formula)
{
    tq_model *m = tiny_mlp();
    check_rescaled(m, sq_formula, (double[]){0.75, 0.75});
    tq_model_free(m);
    /* AWQ's exponents come from its search: first find them, then check the formula at them */
    m = tiny_mlp();
    tq_tensor *x = tq_tensor_new(4, (int32_t[]){5, 4, 1, 1}, false);
    memcpy(x->data, tiny_x, sizeof tiny_x);
    tq_chan_stats *s = stats_of(m, x);
    tq_error e = {0};
    tq_qspec w4;
    ck_assert(tq_qspec_parse("int4:channel=0", &w4, &e) == TQ_STATUS_OK);
    float exps[2];
    ck_assert(tq_awq_model(m, s, &w4, exps, &e) == TQ_STATUS_OK);
    tq_chan_stats_free(s, 2);
    tq_tensor_free(x);
    tq_model_free(m);
    if (getenv("TQ_VERBOSE")) printf("AWQ exponents on the tiny MLP: fc1 %.2f, fc2 %.2f\n", (double)exps[0], (double)exps[1]);
    ck_assert_msg(exps[0] > 0 && exps[1] > 0, "AWQ chose exponents %g, %g: identity scales", (double)exps[0], (double)exps[1]);
    m = tiny_mlp();
    check_rescaled(m, awq_formula, (double[]){exps[0], exps[1]});
    tq_model_free(m);
}
END_TEST

/* conv1 (bias) - relu - conv2 (no bias) - bn - relu - flatten - fc */
static tq_model *convbn(void)
{
    tq_error e = {0};
    tq_model *m = tq_model_new("convbn", 3, 6, 6, &e);
    tq_model_conv2d(m, "conv1", 4, 3, 1, 1, true);
    tq_model_relu(m, "relu1");
    tq_model_conv2d(m, "conv2", 5, 3, 2, 1, false);
    tq_model_batchnorm(m, "bn2");
    tq_model_relu(m, "relu2");
    tq_model_flatten(m, "flatten");
    tq_model_linear(m, "fc", 3, true);
    m = finish(m, 5);
    tq_rng rng;
    tq_rng_seed(&rng, 11);
    float *gamma = tq_model_tensor_by_name(m, "bn2.weight")->data;
    float *beta = tq_model_tensor_by_name(m, "bn2.bias")->data;
    float *st = tq_model_state(m); /* mean (5), var (5) */
    for (int c = 0; c < 5; c++) {
        gamma[c] = 0.5f + tq_rng_uniform(&rng);
        beta[c] = tq_rng_uniform(&rng) - 0.5f;
        st[c] = tq_rng_uniform(&rng) - 0.5f;
        st[5 + c] = 0.2f + tq_rng_uniform(&rng);
    }
    return m;
}

START_TEST(smoothquant_and_awq_keep_conv_function)
{
    for (int algo = 0; algo < 2; algo++) {
        tq_model *m = convbn();
        tq_rng rng;
        tq_rng_seed(&rng, 2);
        tq_tensor *x = tq_test_tensor(&rng, 4, (int32_t[]){6, 3, 6, 6}, false, -1, 1);
        for (int64_t i = 0; i < 36 * 6; i++) x->data[(i / 36) * 108 + i % 36] *= 20.0f;
        int64_t n;
        float *before = eval_out(m, x, &n);
        tq_chan_stats *s = stats_of(m, x);
        tq_error e = {0};
        tq_qspec w4;
        ck_assert(tq_qspec_parse("int4:channel=0", &w4, &e) == TQ_STATUS_OK);
        tq_status st = algo ? tq_awq_model(m, s, &w4, NULL, &e) : tq_smoothquant_model(m, s, 0.5f, &e);
        ck_assert_msg(st == TQ_STATUS_OK, "%s", e.msg);
        float *after = eval_out(m, x, &n);
        ck_assert_msg(rel_diff(before, after, n) < 1e-5, "algo %d: relative change %g", algo,
                      rel_diff(before, after, n));
        /* conv2's division folds into conv1 (through the ReLU); fc's cannot (a BN, unfolded,
         * sits before it) and conv1 reads the image. */
        ck_assert_ptr_null(tq_model_qlayer(m, 1)->input_mul);
        ck_assert_ptr_nonnull(tq_model_qlayer(m, 0)->input_mul);
        ck_assert_ptr_nonnull(tq_model_qlayer(m, 2)->input_mul);
        tq_chan_stats_free(s, 3);
        free(before);
        free(after);
        tq_tensor_free(x);
        tq_model_free(m);
    }
}
END_TEST

/* One Linear 64 -> 32 on inputs with three outlier channels. */
static tq_model *one_linear(void)
{
    tq_error e = {0};
    tq_model *m = tq_model_new("one", 64, 1, 1, &e);
    tq_model_flatten(m, "flatten");
    tq_model_linear(m, "fc", 32, true);
    return finish(m, 9);
}

/* Output of m on x after attaching recipe `name` and calibrating its activations on x. */
static float *quantized_out(tq_model *m, const char *name, tq_tensor *x, int64_t *n)
{
    tq_recipe r;
    tq_error e = {0};
    ck_assert(tq_recipe_make(name, NULL, NULL, &r, &e) == TQ_STATUS_OK);
    ck_assert_msg(tq_attach_recipe(m, &r, -1, &e) == TQ_STATUS_OK, "%s", e.msg);
    free(eval_out(m, x, n)); /* calibration pass */
    tq_qlayer *l = tq_model_qlayer(m, 0);
    if (l->input_q) {
        ck_assert(tq_quantizer_finish_calibration(l->input_q, &e) == TQ_STATUS_OK);
        tq_quantizer_set_state(l->input_q, TQ_QSTATE_QUANTIZING);
    }
    return eval_out(m, x, n);
}

START_TEST(smoothquant_lowers_w8a8_error)
{
    tq_rng rng;
    tq_rng_seed(&rng, 4);
    tq_tensor *x = outlier_input(&rng, 128, 64, 100.0f);
    tq_model *m = one_linear();
    int64_t n;
    float *ref = eval_out(m, x, &n);
    float *plain = quantized_out(m, "int8", x, &n);
    double e_max = sq_err(ref, plain, n);
    tq_detach_quantizers(m);
    tq_chan_stats *s = stats_of(m, x);
    tq_error e = {0};
    ck_assert(tq_smoothquant_model(m, s, 0.5f, &e) == TQ_STATUS_OK);
    float *smooth = quantized_out(m, "int8", x, &n);
    double e_sq = sq_err(ref, smooth, n);
    if (getenv("TQ_VERBOSE")) printf("W8A8 error: max %g, SmoothQuant %g\n", e_max, e_sq);
    ck_assert_msg(e_sq < 0.25 * e_max, "W8A8 output error: max %g, SmoothQuant %g", e_max, e_sq);
    tq_chan_stats_free(s, 1);
    free(ref);
    free(plain);
    free(smooth);
    tq_tensor_free(x);
    tq_model_free(m);
}
END_TEST

START_TEST(awq_lowers_w4_error)
{
    tq_rng rng;
    tq_rng_seed(&rng, 6);
    tq_tensor *x = outlier_input(&rng, 128, 64, 20.0f);
    tq_model *m = one_linear();
    int64_t n;
    float *ref = eval_out(m, x, &n);
    float *plain = quantized_out(m, "w4a16", x, &n);
    double e_max = sq_err(ref, plain, n);
    tq_detach_quantizers(m);
    tq_chan_stats *s = stats_of(m, x);
    tq_error e = {0};
    tq_recipe r;
    ck_assert(tq_recipe_make("w4a16-awq", NULL, NULL, &r, &e) == TQ_STATUS_OK);
    float exps[1] = {-1};
    ck_assert_msg(tq_awq_model(m, s, &r.weights, exps, &e) == TQ_STATUS_OK, "%s", e.msg);
    ck_assert_msg(exps[0] > 0.0f, "AWQ kept exponent 0");
    float *awq = quantized_out(m, "w4a16", x, &n);
    double e_awq = sq_err(ref, awq, n);
    ck_assert(tq_awq_clip_model(m, s, &e) == TQ_STATUS_OK);
    float *clipped = eval_out(m, x, &n);
    double e_clip = sq_err(ref, clipped, n);
    if (getenv("TQ_VERBOSE")) printf("W4 error: max %g, AWQ %g (exponent %.2f), clipped %g\n", e_max, e_awq, (double)exps[0], e_clip);
    ck_assert_msg(e_awq < 0.7 * e_max, "W4 output error: max %g, AWQ %g", e_max, e_awq);
    /* On the inputs the search keeps (the first TQ_AWQ_SAMPLES) clipping cannot raise the
     * error: an output channel it would raise keeps its unclipped amax (1e-6: the search
     * divides by s where the forward multiplies by 1/s). On all 128 it is not guaranteed,
     * but a clip chosen on a quarter of the inputs does not raise it here either. */
    double e_awq_kept = sq_err(ref, awq, TQ_AWQ_SAMPLES * 32);
    double e_clip_kept = sq_err(ref, clipped, TQ_AWQ_SAMPLES * 32);
    ck_assert_msg(e_clip_kept <= e_awq_kept * (1 + 1e-6), "clipping raised the error on the kept inputs: %g -> %g",
                  e_awq_kept, e_clip_kept);
    ck_assert_msg(e_clip <= e_awq, "clipping raised the error: %g -> %g", e_awq, e_clip);
    tq_chan_stats_free(s, 1);
    free(ref);
    free(plain);
    free(awq);
    free(clipped);
    tq_tensor_free(x);
    tq_model_free(m);
}
END_TEST

/* Squared output error of each of fc's 32 output channels over the first TQ_AWQ_SAMPLES
 * inputs of x, against ref. */
static void channel_errors(tq_model *m, tq_tensor *x, const float *ref, double *e)
{
    int64_t n;
    float *y = eval_out(m, x, &n);
    for (int o = 0; o < 32; o++) e[o] = 0;
    for (int64_t k = 0; k < TQ_AWQ_SAMPLES * 32; k++) e[k % 32] += ((double)y[k] - ref[k]) * ((double)y[k] - ref[k]);
    free(y);
}

/* The clip search weighs each weight's error by its input's mean square, as if the inputs
 * of different channels were uncorrelated. With correlated inputs it raises the output error
 * of some output channels; tq_awq_clip_model then keeps their unclipped amax, and lowers or
 * keeps every channel's error on the inputs it saw. */
START_TEST(awq_clip_keeps_only_clips_that_help)
{
    tq_rng rng;
    tq_rng_seed(&rng, 12);
    /* 64 channels, pairs of them equal up to a little noise, three pairs large */
    tq_tensor *x = outlier_input(&rng, 128, 64, 1.0f);
    for (int b = 0; b < 128; b++)
        for (int c = 0; c < 64; c += 2) {
            float *v = x->data + b * 64 + c;
            v[1] = v[0] + 0.05f * (tq_rng_uniform(&rng) - 0.5f);
            if (c < 6) v[0] *= 20.0f, v[1] *= 20.0f;
        }
    tq_model *m = one_linear();
    int64_t n;
    float *ref = eval_out(m, x, &n);
    tq_chan_stats *s = stats_of(m, x);
    tq_error e = {0};
    tq_recipe r;
    ck_assert(tq_recipe_make("w4a16-awq", NULL, NULL, &r, &e) == TQ_STATUS_OK);
    ck_assert_msg(tq_awq_model(m, s, &r.weights, NULL, &e) == TQ_STATUS_OK, "%s", e.msg);
    ck_assert(tq_attach_recipe(m, &r, -1, &e) == TQ_STATUS_OK);
    tq_quantizer *q = tq_model_qlayer(m, 0)->weight_q;
    int64_t na = tq_quantizer_amax_count(q);
    ck_assert_int_eq(na, 64); /* 32 rows, two blocks of 32 each */
    float orig[64], search[64];
    memcpy(orig, tq_quantizer_amax(q), sizeof orig);
    double e_orig[32], e_search[32], e_model[32];
    channel_errors(m, x, ref, e_orig);
    /* the search alone, with the importance tq_awq_clip_model gives it */
    float imp[64];
    for (int c = 0; c < 64; c++)
        imp[c] = (float)(s[0].sum_sq[c] / (double)s[0].count / ((double)s[0].awq_s[c] * s[0].awq_s[c]));
    ck_assert(tq_awq_clip_search(q, tq_model_qlayer(m, 0)->weight, imp, &e) == TQ_STATUS_OK);
    memcpy(search, tq_quantizer_amax(q), sizeof search);
    channel_errors(m, x, ref, e_search);
    ck_assert(tq_quantizer_set_amax(q, orig, 64, &e) == TQ_STATUS_OK);
    ck_assert(tq_awq_clip_model(m, s, &e) == TQ_STATUS_OK);
    channel_errors(m, x, ref, e_model);
    const float *kept = tq_quantizer_amax(q);
    int raised = 0, clipped = 0;
    double total_orig = 0, total_search = 0, total_model = 0;
    for (int o = 0; o < 32; o++) {
        total_orig += e_orig[o], total_search += e_search[o], total_model += e_model[o];
        ck_assert_msg(e_model[o] <= e_orig[o] * (1 + 1e-6), "channel %d: %g -> %g", o, e_orig[o], e_model[o]);
        bool worse = e_search[o] > e_orig[o] * (1 + 1e-6);
        raised += worse;
        for (int b = 0; b < 2; b++) {
            /* a channel the search made worse is back to its unclipped amax; the others keep the search's */
            ck_assert_float_eq(kept[2 * o + b], worse ? orig[2 * o + b] : search[2 * o + b]);
            clipped += kept[2 * o + b] != orig[2 * o + b];
        }
    }
    if (getenv("TQ_VERBOSE")) printf("clip search raised %d of 32 output channels; %d amax clipped; "
                                     "error unclipped %g, search %g, kept %g\n", raised, clipped,
                                     total_orig, total_search, total_model);
    ck_assert_msg(raised > 0, "the search raised no channel's error: the test shows nothing");
    ck_assert_msg(clipped > 0, "no clip kept: the test shows nothing");
    tq_chan_stats_free(s, 1);
    free(ref);
    tq_tensor_free(x);
    tq_model_free(m);
}
END_TEST

START_TEST(awq_scales_closed_form)
{
    /* means 1, 4, 16 at a = 0.5: 1, 2, 4, normalised by sqrt(1*4) = 2. */
    float mean[3] = {1, 4, 16}, s[3];
    tq_awq_scales(mean, 3, 0.5f, s);
    TQ_ASSERT_NEAR(s[0], 0.5, 1e-6);
    TQ_ASSERT_NEAR(s[1], 1.0, 1e-6);
    TQ_ASSERT_NEAR(s[2], 2.0, 1e-6);
    /* SmoothQuant: act amax 9, weight amax 4 at alpha 0.5 -> 3/2; a zero channel -> 1. */
    tq_tensor *w = tq_tensor_new(2, (int32_t[]){2, 2}, false);
    float wd[4] = {4, 0, -1, 0};
    memcpy(w->data, wd, sizeof wd);
    float act[2] = {9, 5}, sq[2];
    tq_error e = {0};
    ck_assert(tq_smoothquant_scales(w, act, 0.5f, sq, &e) == TQ_STATUS_OK);
    TQ_ASSERT_NEAR(sq[0], 1.5, 1e-6);
    TQ_ASSERT_NEAR(sq[1], 1.0, 0);
    ck_assert(tq_smoothquant_scales(w, act, 1.5f, sq, &e) == TQ_STATUS_ARG);
    ck_assert(strstr(e.msg, "alpha") != NULL);
    tq_tensor_free(w);
}
END_TEST

START_TEST(bn_folding_keeps_outputs)
{
    tq_model *m = convbn();
    float *gamma = tq_model_tensor_by_name(m, "bn2.weight")->data;
    float *st = tq_model_state(m);
    st[5 + 1] = 0.0f; /* zero variance */
    gamma[2] = 0.0f;  /* zero gamma */
    tq_rng rng;
    tq_rng_seed(&rng, 8);
    tq_tensor *x = tq_test_tensor(&rng, 4, (int32_t[]){4, 3, 6, 6}, false, -1, 1);
    int64_t n;
    float *before = eval_out(m, x, &n);
    tq_error e = {0};
    ck_assert_int_eq(tq_model_fold_batchnorms(m, &e), 1);
    ck_assert_int_eq(tq_model_fold_batchnorms(m, &e), 0); /* nothing left to fold */
    float *after = eval_out(m, x, &n);
    ck_assert_msg(rel_diff(before, after, n) < 1e-5, "relative change %g", rel_diff(before, after, n));
    tq_qlayer *conv2 = tq_model_qlayer(m, 1);
    ck_assert_ptr_eq(conv2->bias, tq_model_tensor_by_name(m, "bn2.bias"));
    for (int64_t i = 0; i < conv2->weight->numel; i++) ck_assert(isfinite(conv2->weight->data[i]));
    for (int64_t i = 0; i < 36; i++) TQ_ASSERT_NEAR(conv2->weight->data[2 * 36 + i], 0.0, 0);
    char names[64];
    ck_assert_str_eq(tq_model_folded_names(m, names, sizeof names), "bn2");
    /* A folded batch norm passes its input through in training mode too. */
    tq_tape *t = tq_tape_new();
    tq_tensor *y = tq_model_forward(m, t, x, NULL);
    ck_assert(y != NULL);
    ck_assert(rel_diff(after, y->data, n) < 1e-6);
    tq_tape_free(t);
    free(before);
    free(after);
    tq_tensor_free(x);
    tq_model_free(m);
}
END_TEST

START_TEST(linear_bn_folding)
{
    tq_error e = {0};
    tq_model *m = tq_model_new("lbn", 6, 1, 1, &e);
    tq_model_flatten(m, "flatten");
    tq_model_linear(m, "fc1", 4, true);
    tq_model_batchnorm(m, "bn1");
    tq_model_linear(m, "fc2", 2, true);
    m = finish(m, 1);
    float *st = tq_model_state(m);
    for (int c = 0; c < 4; c++) {
        st[c] = 0.1f * (float)c;
        st[4 + c] = 0.5f + (float)c;
    }
    tq_model_tensor_by_name(m, "bn1.weight")->data[3] = -2.0f;
    /* hand value: w' = w * g, b' = (b - mean) * g + beta for channel 3 */
    float w0 = tq_model_qlayer(m, 0)->weight->data[3 * 6], b0 = tq_model_qlayer(m, 0)->bias->data[3];
    double g = -2.0 / sqrt(3.5 + 1e-5);
    ck_assert_int_eq(tq_model_fold_batchnorms(m, &e), 1);
    TQ_ASSERT_NEAR(tq_model_qlayer(m, 0)->weight->data[3 * 6], w0 * g, 1e-6);
    TQ_ASSERT_NEAR(tq_model_qlayer(m, 0)->bias->data[3], (b0 - 0.3) * g, 1e-6);
    tq_model_free(m);
}
END_TEST

START_TEST(checkpoint_keeps_folding_and_input_scales)
{
    char dir[] = "/tmp/tq_calib2_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/run.tqc", dir);
    tq_rng rng;
    tq_rng_seed(&rng, 1);
    tq_error e = {0};
    tq_run run = {0};
    run.model = tq_model_create("convnet", 3, 8, 8, 4, &rng, &e);
    ck_assert_ptr_nonnull(run.model);
    run.batch = 8;
    for (int c = 0; c < 4; c++) run.std[c] = 1.0f;
    snprintf(run.data_name, sizeof run.data_name, "none");
    tq_model *m = run.model;
    for (int64_t i = 0; i < tq_model_state_count(m); i++) tq_model_state(m)[i] = 0.3f + 0.01f * (float)(i % 7);
    ck_assert_int_eq(tq_model_fold_batchnorms(m, &e), 5);
    int last = tq_model_qlayer_count(m) - 1;
    float s[128];
    for (int c = 0; c < 128; c++) s[c] = 0.5f + 0.01f * (float)c;
    ck_assert_int_eq(tq_model_scale_input(m, last, s, &e), 0);
    tq_tensor *x = tq_test_tensor(&rng, 4, (int32_t[]){2, 3, 8, 8}, false, -1, 1);
    int64_t n;
    float *before = eval_out(m, x, &n);
    ck_assert_msg(tq_run_save(&run, path, &e) == TQ_STATUS_OK, "%s", e.msg);
    tq_run back;
    ck_assert_msg(tq_run_load(path, &back, &e) == TQ_STATUS_OK, "%s", e.msg);
    float *after = eval_out(back.model, x, &n);
    for (int64_t i = 0; i < n; i++) ck_assert_float_eq(before[i], after[i]);
    ck_assert_ptr_nonnull(tq_model_qlayer(back.model, last)->input_mul);
    tq_run_free(&back);
    tq_run_free(&run);
    free(before);
    free(after);
    tq_tensor_free(x);
    unlink(path);
    rmdir(dir);
}
END_TEST

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(recipe_files)
{
    char dir[] = "/tmp/tq_recipe_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/mix.recipe", dir);
    write_file(path, "# mixed\ndefault w4a4\n\nlayer fc1 int8  # first\nlayer fc3 float\n");
    tq_recipe r;
    tq_error e = {0};
    ck_assert_msg(tq_recipe_load(path, &r, &e) == TQ_STATUS_OK, "%s", e.msg);
    ck_assert_int_eq(r.n_overrides, 2);
    ck_assert_str_eq(r.overrides[0].layer, "fc1");
    ck_assert_int_eq(r.overrides[0].weights.format.bits, 8);
    ck_assert(!r.overrides[1].has_weights && !r.overrides[1].has_acts);
    tq_model *m = mlp16();
    ck_assert(tq_attach_recipe(m, &r, -1, &e) == TQ_STATUS_OK);
    ck_assert_int_eq(tq_quantizer_format(tq_model_qlayer(m, 0)->weight_q).bits, 8);
    ck_assert_int_eq(tq_quantizer_format(tq_model_qlayer(m, 1)->weight_q).bits, 4);
    ck_assert_ptr_null(tq_model_qlayer(m, 2)->weight_q);
    write_file(path, "default w4a4\nlayer nosuch int8\n");
    ck_assert(tq_recipe_load(path, &r, &e) == TQ_STATUS_OK);
    ck_assert(tq_attach_recipe(m, &r, -1, &e) == TQ_STATUS_ARG);
    ck_assert_msg(strstr(e.msg, "nosuch") != NULL, "%s", e.msg);
    write_file(path, "default w4a4\nlayer fc1 int9\n");
    e = (tq_error){0};
    ck_assert(tq_recipe_load(path, &r, &e) != TQ_STATUS_OK);
    char want[300];
    snprintf(want, sizeof want, "%s:2:", path);
    ck_assert_msg(strstr(e.msg, want) != NULL, "%s", e.msg);
    write_file(path, "layer fc1 int8\n");
    e = (tq_error){0};
    ck_assert(tq_recipe_load(path, &r, &e) != TQ_STATUS_OK);
    ck_assert_msg(strstr(e.msg, ":1:") && strstr(e.msg, "default"), "%s", e.msg);
    tq_model_free(m);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(sensitivity_ranks_fragile_layer_first)
{
    tq_dataset train, test;
    tq_test_synthetic(&train, 1024, 50.0f, 40.0f, 1);
    tq_test_synthetic(&test, 512, 50.0f, 40.0f, 2);
    tq_error e = {0};
    tq_model *m = tq_model_new("gen", 1, 4, 4, &e);
    tq_model_flatten(m, "flatten");
    tq_model_linear(m, "fc1", 32, true);
    tq_model_relu(m, "relu1");
    tq_model_linear(m, "fc2", 32, true);
    tq_model_relu(m, "relu2");
    tq_model_linear(m, "fc3", 4, true);
    m = finish(m, 4);
    tq_run run = {0};
    run.model = m;
    run.batch = 64;
    run.seed = 1;
    run.epochs = 3;
    run.optim_cfg = tq_optim_defaults(TQ_OPTIM_ADAM);
    run.schedule = (tq_schedule){.kind = TQ_SCHEDULE_CONSTANT, .lr = 0.01f};
    run.mean[0] = 0.5f;
    run.std[0] = 0.25f;
    tq_reporter rep = {.out = stderr, .quiet = true};
    while (run.epoch < run.epochs)
        ck_assert_msg(tq_train_epoch(&run, &train, &rep, NULL, &e) == TQ_STATUS_OK, "%s", e.msg);
    double float_acc;
    ck_assert(tq_evaluate(m, &test, run.mean, run.std, 256, &float_acc, NULL, &e) == TQ_STATUS_OK);
    ck_assert_msg(float_acc > 0.9, "float accuracy %g", float_acc);
    /* Make fc2 fragile without changing the float model: its most active input channel
     * becomes 300 times larger (fc1's row), its weights on that channel 300 times smaller. */
    tq_tensor x = {0};
    float *buf = malloc(64 * 16 * sizeof(float));
    for (int i = 0; i < 64 * 16; i++) buf[i] = ((float)train.images[i] / 255.0f - 0.5f) / 0.25f;
    x.data = buf;
    tq_shape_set(&x, 4, (int32_t[]){64, 1, 4, 4});
    tq_chan_stats *st = stats_of(m, &x);
    float s[32];
    int big = 0;
    for (int c = 0; c < 32; c++) {
        s[c] = 1.0f;
        if (st[1].amax[c] > st[1].amax[big]) big = c;
    }
    s[big] = 1.0f / 300.0f;
    ck_assert_int_eq(tq_model_scale_input(m, 1, s, &e), 1);
    double same;
    ck_assert(tq_evaluate(m, &test, run.mean, run.std, 256, &same, NULL, &e) == TQ_STATUS_OK);
    TQ_ASSERT_NEAR(same, float_acc, 1.5 / 512);
    tq_recipe r;
    ck_assert(tq_recipe_make("w4a4", NULL, NULL, &r, &e) == TQ_STATUS_OK);
    tq_sens_ctx c = {.train = &train, .test = &test, .mean = run.mean, .std = run.std,
                     .calib_batches = 4, .batch = 64, .seed = 1};
    tq_sens_row rows[3];
    ck_assert_msg(tq_sensitivity(m, &r, &c, float_acc, rows, &e) == TQ_STATUS_OK, "%s", e.msg);
    ck_assert_str_eq(rows[0].name, "fc2");
    ck_assert_msg(float_acc - rows[0].alone_acc > 0.10, "fc2 alone drops %g", float_acc - rows[0].alone_acc);
    /* Per-tensor SQNR hides it (the outlier channel carries most of the energy), which
     * is why the ranking is by accuracy. */
    ck_assert(isfinite(rows[0].weight_sqnr) && isfinite(rows[0].input_sqnr));
    tq_recipe mix;
    double acc;
    ck_assert_msg(tq_mixed_precision(m, &r, &c, rows, float_acc, 3.0, &mix, &acc, &e) == TQ_STATUS_OK,
                  "%s", e.msg);
    ck_assert(100 * (float_acc - acc) <= 3.0);
    ck_assert_int_ge(mix.n_overrides, 1);
    ck_assert_str_eq(mix.overrides[0].layer, "fc2");
    tq_chan_stats_free(st, 3);
    free(buf);
    tq_optim_free(run.optim);
    tq_model_free(m);
    tq_dataset_free(&train);
    tq_dataset_free(&test);
}
END_TEST

Suite *calib2_suite(void)
{
    Suite *s = suite_create("calib2");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, smoothquant_keeps_float_function);
    tcase_add_test(tc, smoothquant_and_awq_keep_conv_function);
    tcase_add_test(tc, rescaling_moves_weights_by_its_formula);
    tcase_add_test(tc, smoothquant_lowers_w8a8_error);
    tcase_add_test(tc, awq_lowers_w4_error);
    tcase_add_test(tc, awq_clip_keeps_only_clips_that_help);
    tcase_add_test(tc, awq_scales_closed_form);
    tcase_add_test(tc, bn_folding_keeps_outputs);
    tcase_add_test(tc, linear_bn_folding);
    tcase_add_test(tc, checkpoint_keeps_folding_and_input_scales);
    tcase_add_test(tc, recipe_files);
    tcase_add_test(tc, sensitivity_ranks_fragile_layer_first);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tq_test_run(calib2_suite()); }
