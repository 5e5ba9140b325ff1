/* Checks of GPTQ (quant/gptq.c, quant/gptq_hessian.c): the codes against a direct
 * implementation in double written here (the unblocked algorithm on an explicit inverse,
 * updated as each column leaves), the layer-output error against round-to-nearest with the
 * same scales, act-order, dead inputs, dampening errors, and H against direct sums. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "tq_test.h"

/* ---- the test's data: inputs X (n, k) with correlated columns, weights W (o, k) */

typedef struct layer_data {
    int o, k, n;
    float *w, *x;
} layer_data;

static layer_data make_layer(int o, int k, int n, uint64_t seed)
{
    layer_data d = {o, k, n, malloc((size_t)o * k * sizeof(float)), malloc((size_t)n * k * sizeof(float))};
    ck_assert(d.w && d.x);
    tq_rng rng;
    tq_rng_seed(&rng, seed);
    for (int i = 0; i < o * k; i++) d.w[i] = tq_rng_normal(&rng) * 0.1f;
    /* each input mixes its own noise with a few shared factors (and a channel scale), so H
     * is far from diagonal, as a layer's input is */
    float f[4];
    for (int r = 0; r < n; r++) {
        for (int j = 0; j < 4; j++) f[j] = tq_rng_normal(&rng);
        for (int c = 0; c < k; c++)
            d.x[r * k + c] = (0.5f + (float)(c % 7) * 0.3f) *
                             (tq_rng_normal(&rng) + f[c % 4] + 0.5f * f[(c + 1) % 4]);
    }
    return d;
}

static void free_layer(layer_data *d)
{
    free(d->w);
    free(d->x);
}

/* H = (2/n) X^T X by the library, checked against the direct sum in double. */
static double *hessian_of(const layer_data *d)
{
    tq_gptq_hessian h;
    tq_error err = {0};
    ck_assert_msg(tq_gptq_hessian_init(&h, d->k, &err) == TQ_STATUS_OK, "%s", err.msg);
    tq_tensor x = {.data = d->x};
    /* in two calls, so the running average is exercised */
    int half = d->n / 2;
    tq_shape_set(&x, 2, (int32_t[]){half, d->k});
    ck_assert_msg(tq_gptq_hessian_add_rows(&h, &x, NULL, &err) == TQ_STATUS_OK, "%s", err.msg);
    x.data = d->x + (size_t)half * d->k;
    tq_shape_set(&x, 2, (int32_t[]){d->n - half, d->k});
    ck_assert_msg(tq_gptq_hessian_add_rows(&h, &x, NULL, &err) == TQ_STATUS_OK, "%s", err.msg);
    ck_assert_int_eq(h.n, d->n);
    for (int i = 0; i < d->k; i++)
        for (int j = 0; j < d->k; j++) {
            double s = 0;
            for (int r = 0; r < d->n; r++) s += (double)d->x[r * d->k + i] * d->x[r * d->k + j];
            s *= 2.0 / d->n;
            ck_assert_msg(fabs(h.h[i * d->k + j] - s) <= 1e-5 * (fabs(s) + 1.0),
                          "H[%d][%d] = %.9g, direct %.9g", i, j, h.h[i * d->k + j], s);
        }
    return h.h; /* the caller frees it */
}

static tq_quantizer *weight_quantizer(const char *spec_str, const tq_tensor *w)
{
    tq_qspec spec;
    tq_error err = {0};
    ck_assert_msg(tq_qspec_parse(spec_str, &spec, &err) == TQ_STATUS_OK, "%s", err.msg);
    tq_quantizer *q = tq_quantizer_new(&spec, &err);
    ck_assert_msg(q && tq_quantizer_calibrate_weight(q, w, &err) == TQ_STATUS_OK, "%s", err.msg);
    return q;
}

/* Each element's scale from tq_quantizer_codes's layout, for the (o, k) specs used here:
 * per channel along axis 0, or blocks of bs along the last axis ([o][block]). */
static float *element_scales(const tq_quantizer *q, const tq_tensor *w)
{
    tq_error err = {0};
    int o = w->shape[0], k = w->shape[1];
    int64_t count = tq_quantizer_scale_count(q, w, &err);
    float *s = malloc((size_t)count * sizeof *s), *e = malloc((size_t)o * k * sizeof *e);
    ck_assert(s && e);
    ck_assert_msg(tq_quantizer_codes(q, w, NULL, s, &err) == TQ_STATUS_OK, "%s", err.msg);
    const tq_qspec *spec = tq_quantizer_spec(q);
    for (int r = 0; r < o; r++)
        for (int c = 0; c < k; c++) {
            int64_t idx = spec->block == TQ_BLOCK_CHANNEL ? r
                          : spec->block == TQ_BLOCK_BLOCK
                              ? (int64_t)r * ((k + spec->block_size - 1) / spec->block_size) + c / spec->block_size
                              : 0;
            e[r * k + c] = s[idx];
        }
    free(s);
    return e;
}

/* The quantizer's rounding of one weight, as fake quant does it. */
static double rq(tq_format f, double w, float s)
{
    return s > 0.0f ? (double)(tq_format_round(f, (float)w / s) * s) : 0.0;
}

/* Inverse of the (k, k) matrix A by Gauss-Jordan elimination with partial pivoting. */
static void invert(const double *A, int k, double *inv)
{
    double *a = malloc((size_t)k * k * sizeof *a);
    ck_assert(a);
    memcpy(a, A, (size_t)k * k * sizeof *a);
    for (int i = 0; i < k * k; i++) inv[i] = i / k == i % k;
    for (int c = 0; c < k; c++) {
        int p = c;
        for (int r = c + 1; r < k; r++)
            if (fabs(a[r * k + c]) > fabs(a[p * k + c])) p = r;
        for (int j = 0; j < k; j++) {
            double t = a[c * k + j]; a[c * k + j] = a[p * k + j]; a[p * k + j] = t;
            t = inv[c * k + j]; inv[c * k + j] = inv[p * k + j]; inv[p * k + j] = t;
        }
        double d = a[c * k + c];
        for (int j = 0; j < k; j++) {
            a[c * k + j] /= d;
            inv[c * k + j] /= d;
        }
        for (int r = 0; r < k; r++) {
            if (r == c) continue;
            double m = a[r * k + c];
            for (int j = 0; j < k; j++) {
                a[r * k + j] -= m * a[c * k + j];
                inv[r * k + j] -= m * inv[c * k + j];
            }
        }
    }
    free(a);
}

/* GPTQ as the paper states it before its reformulation: one column at a time, its error
 * (w - q) / [H^-1]_ii spread over the columns left through row i of H^-1, and then column i
 * removed from H^-1 by one step of Gaussian elimination, all in double. W (o, k) becomes
 * the dequantized codes. */
static void reference_gptq(double *W, int o, int k, const double *H, const float *S, tq_format f,
                           double damp, bool act_order)
{
    double *Hd = malloc((size_t)k * k * sizeof *Hd), *Hi = malloc((size_t)k * k * sizeof *Hi);
    int *order = malloc((size_t)k * sizeof *order);
    bool *left = malloc((size_t)k * sizeof *left);
    ck_assert(Hd && Hi && order && left);
    memcpy(Hd, H, (size_t)k * k * sizeof *Hd);
    double mean = 0;
    for (int i = 0; i < k; i++) {
        if (Hd[i * k + i] == 0) {
            Hd[i * k + i] = 1;
            for (int r = 0; r < o; r++) W[r * k + i] = 0;
        }
        mean += Hd[i * k + i] / k;
    }
    for (int i = 0; i < k; i++) order[i] = i;
    if (act_order) /* insertion sort: descending diag, ties by index */
        for (int i = 1; i < k; i++)
            for (int j = i; j > 0 && Hd[order[j] * k + order[j]] > Hd[order[j - 1] * k + order[j - 1]]; j--) {
                int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
            }
    for (int i = 0; i < k; i++) Hd[i * k + i] += damp * mean;
    invert(Hd, k, Hi);
    for (int i = 0; i < k; i++) left[i] = true;
    for (int t = 0; t < k; t++) {
        int i = order[t];
        left[i] = false;
        double d = Hi[i * k + i];
        for (int r = 0; r < o; r++) {
            double q = rq(f, W[r * k + i], S[r * k + i]);
            double e = (W[r * k + i] - q) / d;
            W[r * k + i] = q;
            for (int j = 0; j < k; j++)
                if (left[j]) W[r * k + j] -= e * Hi[i * k + j];
        }
        for (int a = 0; a < k; a++) /* eliminate i from the inverse of the columns left */
            for (int b = 0; b < k; b++)
                if (left[a] && left[b]) Hi[a * k + b] -= Hi[a * k + i] * Hi[i * k + b] / d;
    }
    free(Hd);
    free(Hi);
    free(order);
    free(left);
}

/* sum over the test's inputs of ||W x - Q x||^2. */
static double output_error(const layer_data *d, const float *q)
{
    double e = 0;
    for (int r = 0; r < d->n; r++)
        for (int oo = 0; oo < d->o; oo++) {
            double s = 0;
            for (int c = 0; c < d->k; c++)
                s += ((double)d->w[oo * d->k + c] - q[oo * d->k + c]) * d->x[r * d->k + c];
            e += s * s;
        }
    return e;
}

/* GPTQ by the library and by the reference on the same layer, spec and options: every
 * weight must come out the same, fake quant must reproduce the library's weights to the bit,
 * and its output error must not exceed round-to-nearest's. Returns GPTQ / RTN error. */
static double check_against_reference(const layer_data *d, const char *spec, tq_gptq_opts opts)
{
    tq_tensor w = {0};
    tq_shape_set(&w, 2, (int32_t[]){d->o, d->k});
    w.data = malloc((size_t)d->o * d->k * sizeof(float));
    ck_assert(w.data);
    memcpy(w.data, d->w, (size_t)d->o * d->k * sizeof(float));
    tq_quantizer *q = weight_quantizer(spec, &w);
    float *S = element_scales(q, &w), *rtn = malloc((size_t)d->o * d->k * sizeof(float));
    double *H = hessian_of(d), *ref = malloc((size_t)d->o * d->k * sizeof *ref);
    ck_assert(rtn && ref);
    tq_error err = {0};
    ck_assert(tq_quantizer_apply(q, &w, rtn, &err) == TQ_STATUS_OK);
    for (int i = 0; i < d->o * d->k; i++) ref[i] = d->w[i];
    reference_gptq(ref, d->o, d->k, H, S, tq_quantizer_format(q), opts.damp, opts.act_order);

    tq_gptq_result res;
    ck_assert_msg(tq_gptq_quantize(q, &w, H, &opts, &res, &err) == TQ_STATUS_OK, "%s", err.msg);
    int differ = 0;
    for (int i = 0; i < d->o * d->k; i++) differ += (double)w.data[i] != ref[i];
    ck_assert_msg(differ == 0, "%s (block %d, act-order %d): %d of %d weights differ from the reference",
                  spec, opts.block, opts.act_order, differ, d->o * d->k);
    float *again = malloc((size_t)d->o * d->k * sizeof(float));
    ck_assert(again && tq_quantizer_apply(q, &w, again, &err) == TQ_STATUS_OK);
    ck_assert_msg(memcmp(again, w.data, (size_t)d->o * d->k * sizeof(float)) == 0,
                  "%s: fake quant moves GPTQ's weights", spec);
    double eg = output_error(d, w.data), er = output_error(d, rtn);
    ck_assert_msg(eg <= er, "%s: GPTQ output error %.6g > round-to-nearest's %.6g", spec, eg, er);
    /* the result's errors are the same sums, per input vector */
    TQ_ASSERT_NEAR(res.err_gptq, eg / d->n, 1e-4 * eg / d->n);
    TQ_ASSERT_NEAR(res.err_rtn, er / d->n, 1e-4 * er / d->n);
    ck_assert_int_eq(res.dead, 0);
    free(again);
    free(S);
    free(rtn);
    free(H);
    free(ref);
    free(w.data);
    tq_quantizer_free(q);
    return eg / er;
}

START_TEST(test_codes_equal_the_direct_implementation)
{
    layer_data d = make_layer(6, 40, 300, 1);
    tq_gptq_opts o = tq_gptq_defaults();
    /* one block, several blocks (the lazy updates), a column at a time */
    int blocks[] = {128, 16, 7, 1};
    for (int b = 0; b < 4; b++) {
        o.block = blocks[b];
        check_against_reference(&d, "int4:channel=0", o);
        check_against_reference(&d, "int3:block=8", o);
    }
    o = tq_gptq_defaults();
    check_against_reference(&d, "int2:channel=0:calib=mse", o);
    check_against_reference(&d, "int8:channel=0", o);
    check_against_reference(&d, "e2m1:block=16", o);
    check_against_reference(&d, "nvfp4", o);
    check_against_reference(&d, "mxfp4", o);
    check_against_reference(&d, "e4m3:channel=0", o);
    check_against_reference(&d, "uint4:channel=0", o);
    o.damp = 0.1;
    check_against_reference(&d, "int4:channel=0:narrow", o);
    free_layer(&d);
}
END_TEST

START_TEST(test_more_columns_than_a_block_and_fewer_inputs_than_columns)
{
    /* 300 columns: blocks of 128, 128 and 44; and 150 inputs for 150 columns (rank-deficient
     * H, which only the dampening makes invertible) */
    layer_data d = make_layer(5, 300, 900, 2);
    check_against_reference(&d, "int4:block=32", tq_gptq_defaults());
    free_layer(&d);
    d = make_layer(5, 150, 100, 3);
    check_against_reference(&d, "int3:channel=0", tq_gptq_defaults());
    free_layer(&d);
}
END_TEST

START_TEST(test_never_worse_than_round_to_nearest)
{
    /* on the test's own data, over formats, widths and seeds; and by a wide margin at
     * 2-3 bits on correlated inputs */
    const char *specs[] = {"int4:channel=0", "int4:block=16", "int3:channel=0:calib=mse",
                           "int2:channel=0:calib=mse", "e2m1:channel=0", "int8:channel=0"};
    double worst = 0;
    for (uint64_t seed = 10; seed < 14; seed++) {
        layer_data d = make_layer(8, 48, 200, seed);
        for (int s = 0; s < 6; s++) {
            double ratio = check_against_reference(&d, specs[s], tq_gptq_defaults());
            if (s == 2 || s == 3) worst = fmax(worst, ratio);
        }
        free_layer(&d);
    }
    ck_assert_msg(worst < 0.7, "GPTQ / RTN output error at 2-3 bits reached %.3f", worst);
}
END_TEST

START_TEST(test_act_order)
{
    layer_data d = make_layer(6, 40, 300, 4);
    tq_gptq_opts o = tq_gptq_defaults();
    o.act_order = true;
    o.block = 16;
    check_against_reference(&d, "int3:channel=0", o);
    check_against_reference(&d, "int4:block=8", o);
    o.block = 128;
    check_against_reference(&d, "int2:channel=0:calib=mse", o);
    free_layer(&d);
}
END_TEST

START_TEST(test_dead_inputs_are_zeroed)
{
    layer_data d = make_layer(4, 20, 100, 5);
    for (int r = 0; r < d.n; r++) d.x[r * d.k + 3] = d.x[r * d.k + 11] = 0.0f;
    tq_tensor w = {.data = d.w};
    tq_shape_set(&w, 2, (int32_t[]){d.o, d.k});
    tq_quantizer *q = weight_quantizer("int4:channel=0", &w);
    float *S = element_scales(q, &w);
    double *H = hessian_of(&d), *ref = malloc((size_t)d.o * d.k * sizeof *ref);
    ck_assert(ref);
    for (int i = 0; i < d.o * d.k; i++) ref[i] = d.w[i];
    reference_gptq(ref, d.o, d.k, H, S, tq_quantizer_format(q), 0.01, false);
    tq_gptq_result res;
    tq_error err = {0};
    tq_gptq_opts o = tq_gptq_defaults();
    for (int r = 0; r < d.o; r++) ck_assert(d.w[r * d.k + 3] != 0.0f);
    ck_assert_msg(tq_gptq_quantize(q, &w, H, &o, &res, &err) == TQ_STATUS_OK, "%s", err.msg);
    ck_assert_int_eq(res.dead, 2);
    for (int r = 0; r < d.o; r++) {
        ck_assert(d.w[r * d.k + 3] == 0.0f && d.w[r * d.k + 11] == 0.0f);
        for (int c = 0; c < d.k; c++) ck_assert((double)d.w[r * d.k + c] == ref[r * d.k + c]);
    }
    free(S);
    free(H);
    free(ref);
    tq_quantizer_free(q);
    free_layer(&d);
}
END_TEST

START_TEST(test_bad_dampening_and_indefinite_h_fail_leaving_the_weights)
{
    float wv[4] = {0.3f, -0.2f, 0.1f, 0.7f}, before[4];
    memcpy(before, wv, sizeof wv);
    tq_tensor w = {.data = wv};
    tq_shape_set(&w, 2, (int32_t[]){2, 2});
    tq_quantizer *q = weight_quantizer("int4:channel=0", &w);
    double good[4] = {2, 1, 1, 2}, indefinite[4] = {1, 2, 2, 1}, nan_h[4] = {1, 0, 0, NAN};
    tq_error err = {0};
    tq_gptq_opts o = tq_gptq_defaults();
    double bad[] = {-0.01, NAN, INFINITY};
    for (int i = 0; i < 3; i++) {
        o.damp = bad[i];
        tq_error_clear(&err);
        ck_assert_int_eq(tq_gptq_quantize(q, &w, good, &o, NULL, &err), TQ_STATUS_ARG);
        ck_assert_msg(strstr(err.msg, "dampening") && strstr(err.msg, "expected finite and >= 0"),
                      "%s", err.msg);
    }
    o = tq_gptq_defaults();
    o.block = 0;
    tq_error_clear(&err);
    ck_assert_int_eq(tq_gptq_quantize(q, &w, good, &o, NULL, &err), TQ_STATUS_ARG);
    /* eigenvalues 3 and -1: not positive definite with no or too little dampening (mean diag
     * 1, so damp 0.5 adds 0.5 and the smallest eigenvalue stays -0.5) */
    o = tq_gptq_defaults();
    double damps[] = {0.0, 0.01, 0.5};
    for (int i = 0; i < 3; i++) {
        o.damp = damps[i];
        tq_error_clear(&err);
        ck_assert_int_eq(tq_gptq_quantize(q, &w, indefinite, &o, NULL, &err), TQ_STATUS_NUMERIC);
        ck_assert_msg(strstr(err.msg, "not positive definite") && strstr(err.msg, "raise the dampening"),
                      "%s", err.msg);
    }
    o = tq_gptq_defaults();
    tq_error_clear(&err);
    ck_assert_int_eq(tq_gptq_quantize(q, &w, nan_h, &o, NULL, &err), TQ_STATUS_NUMERIC);
    ck_assert_msg(strstr(err.msg, "expected finite"), "%s", err.msg);
    ck_assert(memcmp(wv, before, sizeof wv) == 0);
    /* enough dampening (damp 2 adds 2: eigenvalues 5 and 1) makes it definite */
    o.damp = 2.0;
    tq_gptq_result res;
    ck_assert_msg(tq_gptq_quantize(q, &w, indefinite, &o, &res, &err) == TQ_STATUS_OK, "%s", err.msg);
    TQ_ASSERT_NEAR(res.lambda, 2.0, 1e-12);
    /* damp 0 on a positive definite H is fine */
    memcpy(wv, before, sizeof wv);
    o.damp = 0.0;
    ck_assert_msg(tq_gptq_quantize(q, &w, good, &o, &res, &err) == TQ_STATUS_OK, "%s", err.msg);
    ck_assert(res.lambda == 0.0);
    tq_quantizer_free(q);
}
END_TEST

START_TEST(test_conv_h_sums_receptive_fields_in_weight_order)
{
    /* x (2, 3, 5, 4), a 3x2 kernel, stride 2, pad 1; each channel scaled by mul */
    int N = 2, C = 3, H = 5, W = 4, kh = 3, kw = 2, stride = 2, pad = 1;
    int OH = (H + 2 * pad - kh) / stride + 1, OW = (W + 2 * pad - kw) / stride + 1, k = C * kh * kw;
    tq_rng rng;
    tq_rng_seed(&rng, 7);
    tq_tensor *x = tq_test_tensor(&rng, 4, (int32_t[]){N, C, H, W}, false, -1.0f, 1.0f);
    float mul[3] = {1.0f, 0.5f, 2.0f};
    tq_gptq_hessian h;
    tq_error err = {0};
    ck_assert(tq_gptq_hessian_init(&h, k, &err) == TQ_STATUS_OK);
    ck_assert_msg(tq_gptq_hessian_add_conv(&h, x, kh, kw, stride, pad, mul, &err) == TQ_STATUS_OK,
                  "%s", err.msg);
    ck_assert_int_eq(h.n, (int64_t)N * OH * OW);
    double *v = malloc((size_t)k * sizeof *v), *ref = calloc((size_t)k * k, sizeof *ref);
    ck_assert(v && ref);
    for (int n = 0; n < N; n++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                for (int c = 0; c < C; c++)
                    for (int i = 0; i < kh; i++)
                        for (int j = 0; j < kw; j++) {
                            int y = oy * stride + i - pad, xx = ox * stride + j - pad;
                            bool in = y >= 0 && y < H && xx >= 0 && xx < W;
                            v[(c * kh + i) * kw + j] = in ? (double)x->data[((n * C + c) * H + y) * W + xx] * mul[c] : 0.0;
                        }
                for (int a = 0; a < k; a++)
                    for (int b = 0; b < k; b++) ref[a * k + b] += v[a] * v[b];
            }
    for (int a = 0; a < k * k; a++) {
        double r = ref[a] * 2.0 / (double)h.n;
        ck_assert_msg(fabs(h.h[a] - r) <= 1e-5 * (fabs(r) + 1.0), "H[%d] = %.9g, direct %.9g", a, h.h[a], r);
    }
    /* wrong geometry for k */
    tq_error_clear(&err);
    ck_assert_int_eq(tq_gptq_hessian_add_conv(&h, x, 2, 2, 1, 0, NULL, &err), TQ_STATUS_SHAPE);
    tq_tensor flat = *x;
    tq_shape_set(&flat, 2, (int32_t[]){N, C * H * W});
    tq_error_clear(&err);
    ck_assert_int_eq(tq_gptq_hessian_add_rows(&h, &flat, NULL, &err), TQ_STATUS_SHAPE);
    tq_gptq_hessian_free(&h);
    free(v);
    free(ref);
    tq_tensor_free(x);
}
END_TEST

static Suite *gptq_suite(void)
{
    Suite *s = suite_create("gptq");
    TCase *tc = tcase_create("gptq");
    tcase_add_test(tc, test_codes_equal_the_direct_implementation);
    tcase_add_test(tc, test_more_columns_than_a_block_and_fewer_inputs_than_columns);
    tcase_add_test(tc, test_never_worse_than_round_to_nearest);
    tcase_add_test(tc, test_act_order);
    tcase_add_test(tc, test_dead_inputs_are_zeroed);
    tcase_add_test(tc, test_bad_dampening_and_indefinite_h_fail_leaving_the_weights);
    tcase_add_test(tc, test_conv_h_sums_receptive_fields_in_weight_order);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tq_test_run(gptq_suite()); }
