/* Check suite for tq_conv_direct: over many stride-1 geometries it must agree with the
 * convolution's definition computed in double, keep Y's columns past the plane, honour beta,
 * and with the adjoint packing give the input gradient of a convolution. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_direct.h"
#include "tq_test.h"

#define SENTINEL 12345.0f

static float uniform(tq_rng *rng) { return 2.0f * tq_rng_uniform(rng) - 1.0f; }

static bool avx512(void) { return strcmp(tq_sgemm_backend(), "avx512") == 0; }

/* Y (O, OH*OW) = conv(x, w) + beta Y0 with w (O,C,kh,kw), in double; also the sum of the
 * terms' magnitudes per output, for the tolerance. */
static void reference(const tq_conv_shape *s, int O, const float *w, const float *x, double beta,
                      const float *y0, int ldy, double *want, double *mag)
{
    const int OH = s->H + 2 * s->pad - s->kh + 1, OW = s->W + 2 * s->pad - s->kw + 1;
    for (int o = 0; o < O; o++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                double acc = 0.0, m = 0.0;
                for (int c = 0; c < s->C; c++)
                    for (int ki = 0; ki < s->kh; ki++)
                        for (int kj = 0; kj < s->kw; kj++) {
                            const int iy = oy + ki - s->pad, ix = ox + kj - s->pad;
                            if (iy < 0 || iy >= s->H || ix < 0 || ix >= s->W) continue;
                            const double t = (double)w[((o * s->C + c) * s->kh + ki) * s->kw + kj] *
                                             x[((size_t)c * s->H + iy) * s->W + ix];
                            acc += t;
                            m += fabs(t);
                        }
                const size_t i = (size_t)o * ldy + (size_t)oy * OW + ox;
                if (beta != 0.0) {
                    acc += beta * y0[i];
                    m += fabs(beta * y0[i]);
                }
                want[i] = acc;
                mag[i] = m;
            }
}

/* n_img images of one geometry: each Y must match the reference within 1e-5*sqrt(K) of the
 * terms' magnitude, and the columns past OH*OW (ldy is wider) keep their sentinel. With
 * nan_y, Y starts as NaN (beta must then be 0). */
static void run_geom(tq_rng *rng, const tq_conv_shape *s, int O, int n_img, float beta, bool nan_y)
{
    const int OH = s->H + 2 * s->pad - s->kh + 1, OW = s->W + 2 * s->pad - s->kw + 1;
    const int p = OH * OW, ldy = p + 3, K = s->C * s->kh * s->kw;
    const size_t in_len = (size_t)s->C * s->H * s->W, y_len = (size_t)O * ldy;
    float *x = malloc(n_img * in_len * sizeof(float)), *w = malloc((size_t)O * K * sizeof(float));
    float *wp = malloc(tq_conv_direct_packed_len(s->C, O, s->kh, s->kw) * sizeof(float));
    float *scratch = malloc(tq_conv_direct_scratch_len(s) * sizeof(float));
    float *y = malloc(y_len * sizeof(float)), *y0 = malloc(y_len * sizeof(float));
    double *want = malloc(y_len * sizeof(double)), *mag = malloc(y_len * sizeof(double));
    ck_assert(x && w && wp && scratch && y && y0 && want && mag);
    for (size_t i = 0; i < n_img * in_len; i++) x[i] = uniform(rng);
    for (size_t i = 0; i < (size_t)O * K; i++) w[i] = uniform(rng);
    tq_conv_direct_pack(w, O, s->C, s->kh, s->kw, false, wp);
    char what[160];
    snprintf(what, sizeof what, "C=%d %dx%d k=%dx%d pad %d, O=%d beta=%g%s", s->C, s->H, s->W,
             s->kh, s->kw, s->pad, O, (double)beta, nan_y ? " (NaN in Y)" : "");
    ck_assert_msg(tq_conv_direct_supported(O, s) == avx512(), "%s: supported() is wrong", what);
    for (int n = 0; n < n_img; n++) {
        for (size_t i = 0; i < y_len; i++)
            y0[i] = (int)(i % ldy) >= p ? SENTINEL : nan_y ? NAN : uniform(rng);
        memcpy(y, y0, y_len * sizeof(float));
        const bool done = tq_conv_direct(O, s, wp, x + n * in_len, beta, y, ldy, scratch);
        ck_assert_msg(done == avx512(), "%s: ran %d with backend %s", what, done, tq_sgemm_backend());
        if (!done) break;
        reference(s, O, w, x + n * in_len, beta, y0, ldy, want, mag);
        for (size_t i = 0; i < y_len; i++) {
            if ((int)(i % ldy) >= p) {
                ck_assert_msg(y[i] == SENTINEL, "%s: Y[%zu][%zu] past the plane was written",
                              what, i / ldy, i % ldy);
                continue;
            }
            ck_assert_msg(fabs(y[i] - want[i]) <= 1e-5 * sqrt(K + 1.0) * mag[i] + 1e-30,
                          "%s, image %d: Y[%zu][%zu] = %.9g, expected %.9g", what, n, i / ldy,
                          i % ldy, (double)y[i], want[i]);
        }
    }
    free(x), free(w), free(wp), free(scratch), free(y), free(y0), free(want), free(mag);
}

/* ResNet-20's three stages, with beta 0 and 1 over several images. */
START_TEST(test_resnet_geometries)
{
    tq_rng rng;
    tq_rng_seed(&rng, 31);
    const struct { tq_conv_shape s; int O; } cases[] = {
        {{16, 32, 32, 3, 3, 1, 1}, 16}, {{32, 16, 16, 3, 3, 1, 1}, 32},
        {{64, 8, 8, 3, 3, 1, 1}, 64},   {{3, 32, 32, 3, 3, 1, 1}, 16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int b = 0; b < 2; b++) run_geom(&rng, &cases[i].s, cases[i].O, 2, (float)b, false);
}
END_TEST

/* Odd planes (tiles running past rows and past the last row), 5x5 pad 2, 1x1, no padding,
 * rectangular kernels, channel counts 1..70, 16 to 64 outputs, beta 0, 1 and 0.5. */
START_TEST(test_odd_geometries)
{
    tq_rng rng;
    tq_rng_seed(&rng, 32);
    const tq_conv_shape named[] = {
        {5, 7, 9, 3, 3, 1, 1},  {9, 7, 9, 3, 3, 1, 0},   {4, 7, 9, 5, 5, 1, 2},
        {7, 7, 9, 1, 1, 1, 0},  {1, 1, 1, 1, 1, 1, 0},   {3, 13, 1, 3, 3, 1, 1},
        {3, 1, 40, 1, 3, 1, 0}, {70, 5, 5, 3, 3, 1, 1},  {2, 17, 33, 3, 3, 1, 1},
        {11, 8, 8, 3, 1, 1, 0}, {6, 3, 20, 2, 3, 1, 1},  {1, 12, 12, 7, 7, 1, 3},
    };
    const int outs[] = {16, 32, 48, 64};
    const float betas[] = {0.0f, 1.0f, 0.5f};
    for (size_t i = 0; i < sizeof named / sizeof *named; i++)
        run_geom(&rng, &named[i], outs[i % 4], 1 + (int)i % 3, betas[i % 3], false);
    for (int it = 0; it < 30; it++) {
        tq_conv_shape s = {.C = 1 + (int)tq_rng_below(&rng, 70), .H = 1 + (int)tq_rng_below(&rng, 12),
                           .W = 1 + (int)tq_rng_below(&rng, 20), .stride = 1};
        s.kh = 1 + (int)tq_rng_below(&rng, 5);
        s.kw = 1 + (int)tq_rng_below(&rng, 5);
        s.pad = (int)tq_rng_below(&rng, 3);
        if (s.H + 2 * s.pad < s.kh) s.H = s.kh;
        if (s.W + 2 * s.pad < s.kw) s.W = s.kw;
        run_geom(&rng, &s, outs[it % 4], 1, betas[it % 3], false);
    }
}
END_TEST

START_TEST(test_beta_zero_ignores_nan_in_y)
{
    tq_rng rng;
    tq_rng_seed(&rng, 33);
    const tq_conv_shape a = {13, 9, 11, 3, 3, 1, 1}, b = {8, 6, 6, 3, 3, 1, 1};
    run_geom(&rng, &a, 32, 2, 0.0f, true);
    run_geom(&rng, &b, 16, 2, 0.0f, true);
}
END_TEST

/* The adjoint packing: conv(dY, adjoint(w)) with the same padding must be the input gradient
 * of a "same" stride-1 convolution, dX[c][iy][ix] = sum over o, taps of dY[o][iy-ki+pad]
 * [ix-kj+pad] w[o][c][ki][kj], here accumulated (beta 1) onto an existing dX. */
START_TEST(test_adjoint_is_input_gradient)
{
    tq_rng rng;
    tq_rng_seed(&rng, 34);
    if (!avx512()) return;
    const struct { int C, O, H, W, k; } cases[] = {{16, 16, 8, 8, 3}, {32, 16, 7, 9, 3},
                                                   {16, 48, 5, 6, 5}, {48, 32, 4, 4, 1}};
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        const int C = cases[t].C, O = cases[t].O, H = cases[t].H, W = cases[t].W, k = cases[t].k;
        const int pad = (k - 1) / 2;
        const tq_conv_shape s = {O, H, W, k, k, 1, pad}; /* the gradient's own convolution */
        float *w = malloc((size_t)O * C * k * k * sizeof(float)),
              *gy = malloc((size_t)O * H * W * sizeof(float)),
              *dx = malloc((size_t)C * H * W * sizeof(float)),
              *wp = malloc(tq_conv_direct_packed_len(O, C, k, k) * sizeof(float)),
              *scratch = malloc(tq_conv_direct_scratch_len(&s) * sizeof(float));
        double *want = malloc((size_t)C * H * W * sizeof(double)),
               *mag = malloc((size_t)C * H * W * sizeof(double));
        ck_assert(w && gy && dx && wp && scratch && want && mag);
        for (int i = 0; i < O * C * k * k; i++) w[i] = uniform(&rng);
        for (int i = 0; i < O * H * W; i++) gy[i] = uniform(&rng);
        for (int i = 0; i < C * H * W; i++) {
            dx[i] = uniform(&rng);
            want[i] = dx[i];
            mag[i] = fabs(dx[i]);
        }
        for (int o = 0; o < O; o++)
            for (int c = 0; c < C; c++)
                for (int ki = 0; ki < k; ki++)
                    for (int kj = 0; kj < k; kj++)
                        for (int oy = 0; oy < H; oy++)
                            for (int ox = 0; ox < W; ox++) {
                                const int iy = oy + ki - pad, ix = ox + kj - pad;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                const double v = (double)gy[(o * H + oy) * W + ox] *
                                                 w[((o * C + c) * k + ki) * k + kj];
                                want[(c * H + iy) * W + ix] += v;
                                mag[(c * H + iy) * W + ix] += fabs(v);
                            }
        tq_conv_direct_pack(w, O, C, k, k, true, wp);
        ck_assert(tq_conv_direct(C, &s, wp, gy, 1.0f, dx, H * W, scratch));
        for (int i = 0; i < C * H * W; i++)
            ck_assert_msg(fabs(dx[i] - want[i]) <= 1e-5 * sqrt(O * k * k + 1.0) * mag[i],
                          "C=%d O=%d %dx%d k=%d: dx[%d] = %.9g, expected %.9g", C, O, H, W, k, i,
                          (double)dx[i], want[i]);
        free(w), free(gy), free(dx), free(wp), free(scratch), free(want), free(mag);
    }
}
END_TEST

/* Stride 2 and output counts that are not multiples of 16 are declined, Y untouched. */
START_TEST(test_declines_unsupported)
{
    const tq_conv_shape s1 = {4, 6, 6, 3, 3, 1, 1}, s2 = {4, 6, 6, 3, 3, 2, 1};
    float wp[4 * 9 * 24] = {0}, x[4 * 36] = {0}, scratch[512], y[24 * 36];
    ck_assert(tq_conv_direct_scratch_len(&s1) <= 512);
    for (int i = 0; i < 24 * 36; i++) y[i] = 7.0f;
    ck_assert(!tq_conv_direct_supported(24, &s1));
    ck_assert(!tq_conv_direct(24, &s1, wp, x, 0.0f, y, 36, scratch));
    ck_assert(!tq_conv_direct_supported(16, &s2));
    ck_assert(!tq_conv_direct(16, &s2, wp, x, 0.0f, y, 9, scratch));
    ck_assert(!tq_conv_direct_supported(0, &s1));
    for (int i = 0; i < 24 * 36; i++) ck_assert(y[i] == 7.0f);
}
END_TEST

static Suite *conv_direct_suite(void)
{
    Suite *s = suite_create("conv_direct");
    TCase *tc = tcase_create("conv_direct");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_resnet_geometries);
    tcase_add_test(tc, test_odd_geometries);
    tcase_add_test(tc, test_beta_zero_ignores_nan_in_y);
    tcase_add_test(tc, test_adjoint_is_input_gradient);
    tcase_add_test(tc, test_declines_unsupported);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tq_test_run_requiring(conv_direct_suite(), strcmp(tq_sgemm_backend(), "avx512") == 0,
                                 "needs the AVX-512 kernels (sgemm backend here: %s)", tq_sgemm_backend());
}
