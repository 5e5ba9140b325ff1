/* Check suite for tq_sgemm_conv: over many convolution geometries it must give bitwise what
 * tq_sgemm gives on the stored column matrix (built here by a plain im2col), and agree with
 * the direct definition of the convolution. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "tq_test.h"

#define SENTINEL 12345.0f

typedef struct geom {
    int C, H, W, kh, kw, stride, pad;
} geom;

static int out_size(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

/* The column matrix by its definition: row (c,ki,kj), column (oy,ox). */
static float *reference_im2col(const tq_conv_shape *s, const float *x, int OH, int OW)
{
    const int ck = s->C * s->kh * s->kw, p = OH * OW;
    float *cols = malloc((size_t)ck * (size_t)p * sizeof(float));
    ck_assert(cols);
    for (int c = 0; c < s->C; c++)
        for (int ki = 0; ki < s->kh; ki++)
            for (int kj = 0; kj < s->kw; kj++)
                for (int oy = 0; oy < OH; oy++)
                    for (int ox = 0; ox < OW; ox++) {
                        const int iy = oy * s->stride + ki - s->pad, ix = ox * s->stride + kj - s->pad;
                        const bool in = iy >= 0 && iy < s->H && ix >= 0 && ix < s->W;
                        cols[((size_t)(c * s->kh + ki) * s->kw + kj) * p + (size_t)oy * OW + ox] =
                            in ? x[((size_t)c * s->H + iy) * s->W + ix] : 0.0f;
                    }
    return cols;
}

static float uniform(tq_rng *rng) { return 2.0f * tq_rng_uniform(rng) - 1.0f; }

/* Runs O output channels over n_img images: every image's Y from tq_sgemm_conv must equal,
 * bit for bit, tq_sgemm on the reference column matrix; columns past OH*OW (ldy is wider)
 * must keep their sentinel; and one image is checked against the direct definition. With
 * last_y, the last image's Y is handed back (malloc'd, *y_len floats). */
static void run_geom_y(tq_rng *rng, const geom *gm, int O, int n_img, float alpha, float beta,
                       bool nan_y, float **last_y, size_t *last_len)
{
    const tq_conv_shape s = {gm->C, gm->H, gm->W, gm->kh, gm->kw, gm->stride, gm->pad};
    const int OH = out_size(gm->H, gm->kh, gm->stride, gm->pad),
              OW = out_size(gm->W, gm->kw, gm->stride, gm->pad);
    const int ck = gm->C * gm->kh * gm->kw, p = OH * OW, lda = ck + O % 3, ldy = p + O % 2;
    const size_t in_len = (size_t)gm->C * gm->H * gm->W, y_len = (size_t)O * ldy;
    float *x = malloc(n_img * in_len * sizeof(float)), *A = malloc((size_t)O * lda * sizeof(float));
    float *y = malloc(y_len * sizeof(float)), *want = malloc(y_len * sizeof(float));
    ck_assert(x && A && y && want);
    for (size_t i = 0; i < n_img * in_len; i++) x[i] = uniform(rng);
    for (size_t i = 0; i < (size_t)O * lda; i++) A[i] = uniform(rng);
    char what[160];
    snprintf(what, sizeof what, "C=%d %dx%d k=%dx%d stride %d pad %d, O=%d alpha=%g beta=%g",
             gm->C, gm->H, gm->W, gm->kh, gm->kw, gm->stride, gm->pad, O, (double)alpha,
             (double)beta);
    for (int n = 0; n < n_img; n++) {
        const float *xn = x + n * in_len;
        for (size_t i = 0; i < y_len; i++)
            y[i] = (int)(i % ldy) >= p ? SENTINEL : nan_y ? NAN : uniform(rng);
        memcpy(want, y, y_len * sizeof(float));
        float *cols = reference_im2col(&s, xn, OH, OW);
        tq_sgemm(false, false, O, p, ck, alpha, A, lda, cols, p, beta, want, ldy);
        const bool done = tq_sgemm_conv(O, &s, alpha, A, lda, xn, beta, y, ldy);
        if (strcmp(tq_sgemm_backend(), "avx512") != 0) {
            ck_assert_msg(!done, "%s: the OpenBLAS backend claims a convolution product", what);
            free(cols);
            continue;
        }
        ck_assert_msg(done, "%s: no convolution product with AVX-512", what);
        for (size_t i = 0; i < y_len; i++)
            ck_assert_msg(memcmp(&y[i], &want[i], sizeof(float)) == 0,
                          "%s, image %d: Y[%zu][%zu] = %.9g, im2col + tq_sgemm gave %.9g", what,
                          n, i / ldy, i % ldy, (double)y[i], (double)want[i]);
        if (n == 0 && beta == 0.0f) /* the direct definition, in double */
            for (int o = 0; o < O; o++)
                for (int j = 0; j < p; j++) {
                    double acc = 0.0, mag = 0.0;
                    for (int k = 0; k < ck; k++) {
                        const double t = (double)A[(size_t)o * lda + k] * cols[(size_t)k * p + j];
                        acc += t;
                        mag += fabs(t);
                    }
                    TQ_ASSERT_NEAR(y[(size_t)o * ldy + j], alpha * acc,
                                   1e-5 * sqrt(ck + 1.0) * fabs(alpha) * mag + 1e-30);
                }
        free(cols);
    }
    free(x);
    free(A);
    if (last_y) *last_y = y, *last_len = y_len;
    else free(y);
    free(want);
}

static void run_geom(tq_rng *rng, const geom *gm, int O, int n_img, float alpha, float beta,
                     bool nan_y)
{
    run_geom_y(rng, gm, O, n_img, alpha, beta, nan_y, NULL, NULL);
}

/* ResNet-20's, LeNet's and other shapes, each with beta 0 and 1. */
START_TEST(test_network_geometries_bitwise)
{
    tq_rng rng;
    tq_rng_seed(&rng, 21);
    const struct { geom g; int O; } cases[] = {
        {{3, 32, 32, 3, 3, 1, 1}, 16},  {{16, 32, 32, 3, 3, 1, 1}, 16},
        {{16, 32, 32, 3, 3, 2, 1}, 32}, {{32, 16, 16, 3, 3, 1, 1}, 32},
        {{16, 32, 32, 1, 1, 2, 0}, 32}, {{32, 16, 16, 3, 3, 2, 1}, 64},
        {{64, 8, 8, 3, 3, 1, 1}, 64},   {{32, 16, 16, 1, 1, 2, 0}, 64},
        {{1, 28, 28, 5, 5, 1, 2}, 6},   {{6, 14, 14, 5, 5, 1, 0}, 16},
        {{70, 8, 8, 3, 3, 1, 1}, 130},  {{3, 20, 20, 7, 7, 2, 3}, 8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int b = 0; b < 2; b++) run_geom(&rng, &cases[i].g, cases[i].O, 2, 1.0f, (float)b, false);
}
END_TEST

/* Random channels, outputs, planes, kernels, strides and paddings (odd planes, 1-pixel
 * planes, one output column, kernels with more taps than are tabulated per sliver), with
 * alpha and beta off one. */
START_TEST(test_random_geometries_bitwise)
{
    tq_rng rng;
    tq_rng_seed(&rng, 22);
    const int kernels[][2] = {{3, 3}, {1, 1}, {5, 5}, {3, 1}, {2, 3}, {7, 7}, {11, 5}};
    const float alphas[] = {1.0f, -0.5f}, betas[] = {0.0f, 1.0f, 0.75f};
    for (int it = 0; it < 120; it++) {
        geom g = {.C = 1 + (int)tq_rng_below(&rng, 70), .H = 1 + (int)tq_rng_below(&rng, 14),
                  .W = 1 + (int)tq_rng_below(&rng, 14)};
        const int *k = kernels[it % 7];
        g.kh = k[0];
        g.kw = k[1];
        g.stride = 1 + (int)tq_rng_below(&rng, 3);
        g.pad = (int)tq_rng_below(&rng, (uint32_t)(k[0] > k[1] ? k[0] : k[1]));
        if (g.H + 2 * g.pad < g.kh) g.H = g.kh;
        if (g.W + 2 * g.pad < g.kw) g.W = g.kw;
        if (it % 5 == 0) g.C = 1 + (int)tq_rng_below(&rng, 4); /* short K: one tap table */
        const int O = 1 + (int)tq_rng_below(&rng, 70);
        run_geom(&rng, &g, O, 1 + it % 3, alphas[it % 2], betas[it % 3], false);
    }
    /* the geometries the task names: 7x9 planes, 3x3 without padding, 5x5 pad 2 */
    const geom named[] = {{5, 7, 9, 3, 3, 1, 1}, {5, 7, 9, 3, 3, 2, 1}, {9, 7, 9, 3, 3, 1, 0},
                          {4, 7, 9, 5, 5, 1, 2}, {7, 7, 9, 1, 1, 2, 0}, {2, 1, 1, 1, 1, 1, 0},
                          {3, 13, 1, 3, 3, 1, 1}, {3, 1, 40, 1, 3, 1, 0}};
    for (size_t i = 0; i < sizeof named / sizeof *named; i++)
        for (int b = 0; b < 2; b++) run_geom(&rng, &named[i], 1 + 23 * (int)i % 70, 3, 1.0f, (float)b, false);
}
END_TEST

START_TEST(test_beta_zero_ignores_nan_in_y)
{
    tq_rng rng;
    tq_rng_seed(&rng, 23);
    const geom g = {13, 9, 11, 3, 3, 1, 1};
    run_geom(&rng, &g, 21, 2, 1.0f, 0.0f, true);
}
END_TEST

/* A product above the threading threshold, outside any parallel region, in 1 and 2 threads
 * (split by columns, and by rows for many outputs over a small plane) on the same inputs:
 * each tq_sgemm's bits, and the same bits as each other. */
START_TEST(test_thread_count_does_not_change_bits)
{
    const struct { geom g; int O; } cases[] = {{{16, 32, 32, 3, 3, 1, 1}, 32},
                                               {{64, 4, 4, 3, 3, 1, 1}, 600}};
    const int saved = tq_get_threads();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        float *y[2];
        size_t len[2];
        for (int t = 1; t <= 2; t++) {
            tq_rng rng;
            tq_rng_seed(&rng, 24 + i); /* the same inputs for both thread counts */
            tq_set_threads(t);
            ck_assert_int_eq(tq_get_threads(), t);
            run_geom_y(&rng, &cases[i].g, cases[i].O, 1, 1.0f, 0.5f, false, &y[t - 1], &len[t - 1]);
        }
        ck_assert(len[0] == len[1]);
        ck_assert_msg(memcmp(y[0], y[1], len[0] * sizeof(float)) == 0,
                      "O=%d: 1 and 2 threads give different bits", cases[i].O);
        free(y[0]);
        free(y[1]);
    }
    tq_set_threads(saved);
}
END_TEST

static Suite *conv_gemm_suite(void)
{
    Suite *s = suite_create("conv_gemm");
    TCase *tc = tcase_create("sgemm_conv");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_network_geometries_bitwise);
    tcase_add_test(tc, test_random_geometries_bitwise);
    tcase_add_test(tc, test_beta_zero_ignores_nan_in_y);
    tcase_add_test(tc, test_thread_count_does_not_change_bits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tq_test_run_requiring(conv_gemm_suite(), strcmp(tq_sgemm_backend(), "avx512") == 0,
                                 "needs the AVX-512 kernels (sgemm backend here: %s)", tq_sgemm_backend());
}
