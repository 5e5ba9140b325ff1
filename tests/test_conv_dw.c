/* Check suite for tq_conv_direct_dw, the packed weight gradient of stride-1 convolutions: over
 * many geometries and several images it must match the definition computed in double, add onto
 * existing gradients, and through conv2d give the same bits on one and two threads. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_direct.h"
#include "tq_test.h"

static float uniform(tq_rng *rng) { return 2.0f * tq_rng_uniform(rng) - 1.0f; }

static bool avx512(void) { return strcmp(tq_sgemm_backend(), "avx512") == 0; }

/* dW[o][c][ki][kj] = sum over images and output pixels of gy * x under tap (ki,kj), in double,
 * with the sum of the terms' magnitudes per element for the tolerance. */
static void reference(const tq_conv_shape *s, int O, int n_img, const float *x, const float *gy,
                      double *want, double *mag)
{
    const int OH = s->H + 2 * s->pad - s->kh + 1, OW = s->W + 2 * s->pad - s->kw + 1;
    const size_t in_len = (size_t)s->C * s->H * s->W, out_len = (size_t)O * OH * OW;
    for (int o = 0; o < O; o++)
        for (int c = 0; c < s->C; c++)
            for (int ki = 0; ki < s->kh; ki++)
                for (int kj = 0; kj < s->kw; kj++) {
                    double acc = 0.0, m = 0.0;
                    for (int n = 0; n < n_img; n++)
                        for (int oy = 0; oy < OH; oy++)
                            for (int ox = 0; ox < OW; ox++) {
                                const int iy = oy + ki - s->pad, ix = ox + kj - s->pad;
                                if (iy < 0 || iy >= s->H || ix < 0 || ix >= s->W) continue;
                                const double t =
                                    (double)gy[n * out_len + ((size_t)o * OH + oy) * OW + ox] *
                                    x[n * in_len + ((size_t)c * s->H + iy) * s->W + ix];
                                acc += t;
                                m += fabs(t);
                            }
                    const size_t i = (((size_t)o * s->C + c) * s->kh + ki) * s->kw + kj;
                    want[i] = acc;
                    mag[i] = m;
                }
}

/* n_img images accumulated onto a random packed gradient, then unpacked onto a random dw:
 * every element within 1e-5 * sqrt(terms) of the terms' magnitude. */
static void run_geom(tq_rng *rng, const tq_conv_shape *s, int O, int n_img)
{
    const int OH = s->H + 2 * s->pad - s->kh + 1, OW = s->W + 2 * s->pad - s->kw + 1;
    const int taps = s->kh * s->kw;
    const size_t in_len = (size_t)s->C * s->H * s->W, out_len = (size_t)O * OH * OW;
    const size_t w_len = (size_t)O * s->C * taps;
    float *x = malloc(n_img * in_len * sizeof(float)), *gy = malloc(n_img * out_len * sizeof(float));
    float *dwp = malloc(w_len * sizeof(float)), *dwp0 = malloc(w_len * sizeof(float));
    float *dw = malloc(w_len * sizeof(float)), *dw0 = malloc(w_len * sizeof(float));
    float *scratch = malloc(tq_conv_direct_dw_scratch_len(O, s) * sizeof(float));
    double *want = malloc(w_len * sizeof(double)), *mag = malloc(w_len * sizeof(double));
    ck_assert(x && gy && dwp && dwp0 && dw && dw0 && scratch && want && mag);
    for (size_t i = 0; i < n_img * in_len; i++) x[i] = uniform(rng);
    for (size_t i = 0; i < n_img * out_len; i++) gy[i] = uniform(rng);
    for (size_t i = 0; i < w_len; i++) dwp0[i] = dwp[i] = uniform(rng);
    for (size_t i = 0; i < w_len; i++) dw0[i] = dw[i] = uniform(rng);
    char what[96];
    snprintf(what, sizeof what, "C %d %dx%d k %dx%d pad %d O %d, %d images", s->C, s->H, s->W,
             s->kh, s->kw, s->pad, O, n_img);
    ck_assert_msg(tq_conv_direct_supported(O, s) == avx512(), "%s: supported() is wrong", what);
    if (!avx512()) goto done;
    for (int n = 0; n < n_img; n++)
        ck_assert(tq_conv_direct_dw(O, s, x + n * in_len, gy + n * out_len, dwp, scratch));
    tq_conv_direct_unpack_add(dwp, O, s->C, s->kh, s->kw, dw);
    reference(s, O, n_img, x, gy, want, mag);
    const double terms = (double)n_img * OH * OW + 2.0;
    for (int o = 0; o < O; o++)
        for (int c = 0; c < s->C; c++)
            for (int t = 0; t < taps; t++) {
                const size_t i = ((size_t)o * s->C + c) * taps + t;
                const double old_p = dwp0[((size_t)c * taps + t) * O + o], old = dw0[i];
                const double exp = want[i] + old_p + old;
                const double tol = 1e-5 * sqrt(terms) * (mag[i] + fabs(old_p) + fabs(old)) + 1e-30;
                ck_assert_msg(fabs(dw[i] - exp) <= tol, "%s: dW[%d][%d][%d] = %.9g, expected %.9g",
                              what, o, c, t, (double)dw[i], exp);
            }
done:
    free(x), free(gy), free(dwp), free(dwp0), free(dw), free(dw0), free(scratch), free(want),
        free(mag);
}

START_TEST(test_resnet_geometries)
{
    tq_rng rng;
    tq_rng_seed(&rng, 5);
    const struct { tq_conv_shape s; int O, n; } cases[] = {
        {{16, 32, 32, 3, 3, 1, 1}, 16, 2}, {{3, 32, 32, 3, 3, 1, 1}, 16, 2},
        {{32, 16, 16, 3, 3, 1, 1}, 32, 3}, {{16, 16, 16, 3, 3, 1, 1}, 32, 2},
        {{64, 8, 8, 3, 3, 1, 1}, 64, 3},   {{32, 8, 8, 3, 3, 1, 1}, 48, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        run_geom(&rng, &cases[i].s, cases[i].O, cases[i].n);
}
END_TEST

START_TEST(test_odd_geometries)
{
    tq_rng rng;
    tq_rng_seed(&rng, 6);
    const struct { tq_conv_shape s; int O; } named[] = {
        {{5, 7, 9, 3, 3, 1, 1}, 16},  {{4, 11, 10, 5, 5, 1, 2}, 32}, {{7, 9, 8, 3, 3, 1, 0}, 48},
        {{2, 1, 40, 1, 3, 1, 1}, 16}, {{3, 1, 40, 1, 40, 1, 0}, 16}, {{1, 6, 6, 2, 4, 1, 1}, 64},
        {{70, 5, 5, 3, 3, 1, 1}, 16}, {{9, 6, 7, 1, 1, 1, 0}, 32},
    };
    for (size_t i = 0; i < sizeof named / sizeof *named; i++) run_geom(&rng, &named[i].s, named[i].O, 2);
    for (int r = 0; r < 12; r++) {
        tq_conv_shape s = {.C = 1 + (int)tq_rng_below(&rng, 70), .H = 1 + (int)tq_rng_below(&rng, 12),
                           .W = 1 + (int)tq_rng_below(&rng, 12), .kh = 1 + (int)tq_rng_below(&rng, 4),
                           .kw = 1 + (int)tq_rng_below(&rng, 4), .stride = 1,
                           .pad = (int)tq_rng_below(&rng, 3)};
        if (s.kh > s.H + 2 * s.pad || s.kw > s.W + 2 * s.pad) continue;
        run_geom(&rng, &s, 16 * (1 + (int)tq_rng_below(&rng, 4)), 1 + (int)tq_rng_below(&rng, 3));
    }
}
END_TEST

/* Through conv2d (3x3 pad 1, several images, enough work for two threads): the weight
 * gradient added onto an existing one is the same bits on one and two threads (on the
 * AVX-512 path), and both agree with the definition. */
static void conv_grads(tq_tensor *x, tq_tensor *w, const float *w_grad0, float *dw_out,
                       float *dx_out, size_t x_len, size_t w_len)
{
    tq_tape *t = tq_tape_new();
    memcpy(w->grad, w_grad0, w_len * sizeof(float));
    memset(x->grad, 0, x_len * sizeof(float));
    tq_tensor *y = tq_conv2d(t, x, w, NULL, 1, 1);
    ck_assert_msg(y != NULL, "%s", tq_tape_error(t)->msg);
    ck_assert_int_eq(tq_backward(t, tq_sum(t, tq_mul(t, y, y))), TQ_STATUS_OK);
    memcpy(dw_out, w->grad, w_len * sizeof(float));
    memcpy(dx_out, x->grad, x_len * sizeof(float));
    tq_tape_free(t);
}

START_TEST(test_conv2d_threads_same_bits)
{
    enum { N = 5, C = 16, H = 8, W = 8, O = 32 };
    tq_rng rng;
    tq_rng_seed(&rng, 9);
    tq_tensor *x = tq_test_tensor(&rng, 4, (int32_t[]){N, C, H, W}, true, -1, 1);
    tq_tensor *w = tq_test_tensor(&rng, 4, (int32_t[]){O, C, 3, 3}, true, -0.3f, 0.3f);
    const size_t x_len = (size_t)N * C * H * W, w_len = (size_t)O * C * 9;
    float *g0 = malloc(w_len * sizeof(float)), *dw1 = malloc(w_len * sizeof(float)),
          *dw2 = malloc(w_len * sizeof(float)), *dx1 = malloc(x_len * sizeof(float)),
          *dx2 = malloc(x_len * sizeof(float));
    ck_assert(g0 && dw1 && dw2 && dx1 && dx2);
    for (size_t i = 0; i < w_len; i++) g0[i] = uniform(&rng);
    const int saved = tq_get_threads();
    tq_set_threads(1);
    conv_grads(x, w, g0, dw1, dx1, x_len, w_len);
    tq_set_threads(2);
    ck_assert_int_eq(tq_get_threads(), 2);
    conv_grads(x, w, g0, dw2, dx2, x_len, w_len);
    tq_set_threads(saved);
    /* the OpenBLAS path (no AVX-512, or TQ_GEMM=openblas) sums per-thread partials: its bits
     * may depend on the thread count, and only the comparison with the definition applies */
    if (avx512()) {
        ck_assert_msg(memcmp(dw1, dw2, w_len * sizeof(float)) == 0, "dW differs between 1 and 2 threads");
        ck_assert_msg(memcmp(dx1, dx2, x_len * sizeof(float)) == 0, "dx differs between 1 and 2 threads");
    }

    /* loss = sum y^2: dW = sum 2 y x under each tap, y from a double forward */
    const tq_conv_shape s = {C, H, W, 3, 3, 1, 1};
    double *y = malloc((size_t)N * O * H * W * sizeof(double));
    float *gy = malloc((size_t)N * O * H * W * sizeof(float));
    double *want = malloc(w_len * sizeof(double)), *mag = malloc(w_len * sizeof(double));
    ck_assert(y && gy && want && mag);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++)
            for (int oy = 0; oy < H; oy++)
                for (int ox = 0; ox < W; ox++) {
                    double acc = 0.0;
                    for (int c = 0; c < C; c++)
                        for (int ki = 0; ki < 3; ki++)
                            for (int kj = 0; kj < 3; kj++) {
                                const int iy = oy + ki - 1, ix = ox + kj - 1;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                acc += (double)w->data[((o * C + c) * 3 + ki) * 3 + kj] *
                                       x->data[((n * C + c) * H + iy) * W + ix];
                            }
                    const size_t i = (((size_t)n * O + o) * H + oy) * W + ox;
                    y[i] = acc;
                    gy[i] = (float)(2.0 * acc);
                }
    reference(&s, O, N, x->data, gy, want, mag);
    for (size_t i = 0; i < w_len; i++) {
        const double exp = want[i] + g0[i];
        const double tol = 1e-4 * sqrt((double)N * H * W) * (mag[i] + fabs(g0[i]));
        ck_assert_msg(fabs(dw1[i] - exp) <= tol && fabs(dw2[i] - exp) <= tol,
                      "dW[%zu] = %.9g (1 thread), %.9g (2), expected %.9g", i, (double)dw1[i],
                      (double)dw2[i], exp);
    }
    free(y), free(gy), free(want), free(mag);
    free(g0), free(dw1), free(dw2), free(dx1), free(dx2);
    tq_tensor_free(x);
    tq_tensor_free(w);
}
END_TEST

/* Output counts that are not multiples of 16 and stride 2 are declined, dwp untouched. */
START_TEST(test_declines_unsupported)
{
    const tq_conv_shape s1 = {2, 4, 4, 3, 3, 1, 1}, s2 = {2, 4, 4, 3, 3, 2, 1};
    float x[32] = {0}, gy[24 * 16] = {0}, dwp[2 * 9 * 24], scratch[1024];
    for (int i = 0; i < 2 * 9 * 24; i++) dwp[i] = 3.0f;
    ck_assert(tq_conv_direct_dw_scratch_len(16, &s1) <= 1024);
    ck_assert(!tq_conv_direct_dw(24, &s1, x, gy, dwp, scratch));
    ck_assert(!tq_conv_direct_dw(16, &s2, x, gy, dwp, scratch));
    for (int i = 0; i < 2 * 9 * 24; i++) ck_assert(dwp[i] == 3.0f);
}
END_TEST

static Suite *conv_dw_suite(void)
{
    Suite *s = suite_create("conv_dw");
    TCase *tc = tcase_create("conv_dw");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_resnet_geometries);
    tcase_add_test(tc, test_odd_geometries);
    tcase_add_test(tc, test_conv2d_threads_same_bits);
    tcase_add_test(tc, test_declines_unsupported);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tq_test_run_requiring(conv_dw_suite(), strcmp(tq_sgemm_backend(), "avx512") == 0,
                                 "needs the AVX-512 kernels (sgemm backend here: %s)", tq_sgemm_backend());
}
