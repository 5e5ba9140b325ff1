/* Check suite for the integer kernels (engine/qkernels.h): u8 x s8 products against a plain
 * triple loop on the unpacked weights over random and edge shapes and the saturation corners;
 * the portable path, the dispatched one, the AVX2 kernels and the VNNI ones (on a CPU that
 * has VNNI, and always through an emulation of the intrinsics) equal to the bit; thread-count
 * independence; the fused requantizing epilogue. Requantization itself is in
 * test_requant.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qgemm_internal.h"
#include "tq_test.h"
#ifdef TQ_TEST_VNNI_EMULATED
#include "vnni_emulated.h"
#endif

#define SENTINEL32 0x5a5a5a5a
#define SENTINEL8 0xa5

/* One product: a (m x lda, random bytes past k), the unpacked weights b (n x k), their
 * packing, and the sums of the plain triple loop in int64. */
typedef struct problem {
    int64_t m, n, k, lda, ldc;
    uint8_t *a;
    int8_t *b;
    tq_qweights w;
    int64_t *ref;
} problem;

typedef enum fill { FILL_RANDOM, FILL_MAX_POSITIVE, FILL_MAX_NEGATIVE } fill;

static void problem_make(problem *p, tq_rng *rng, int64_t m, int64_t n, int64_t k,
                         int64_t lda_extra, int64_t ldc_extra, fill how)
{
    memset(p, 0, sizeof *p);
    p->m = m;
    p->n = n;
    p->k = k;
    p->lda = (k + 3) / 4 * 4 + lda_extra;
    p->ldc = n + ldc_extra;
    p->a = calloc((size_t)(m * p->lda), 1);
    p->b = malloc((size_t)(n * k));
    p->ref = malloc((size_t)(m * n) * sizeof *p->ref);
    ck_assert(p->a && p->b && p->ref);
    /* the bytes of a row past k meet zero weights: any value gives the same sums */
    for (int64_t i = 0; i < m; i++)
        for (int64_t kk = 0; kk < p->lda; kk++)
            p->a[i * p->lda + kk] =
                how == FILL_RANDOM || kk >= k ? (uint8_t)tq_rng_below(rng, 256) : 255;
    for (int64_t i = 0; i < n * k; i++)
        p->b[i] = how == FILL_MAX_POSITIVE   ? 127
                  : how == FILL_MAX_NEGATIVE ? -128
                                             : (int8_t)((int)tq_rng_below(rng, 256) - 128);
    tq_error err = {0};
    ck_assert_msg(tq_qweights_pack(p->b, n, k, &p->w, &err) == TQ_STATUS_OK, "%s", err.msg);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int64_t acc = 0;
            for (int64_t kk = 0; kk < k; kk++)
                acc += (int64_t)p->a[i * p->lda + kk] * p->b[j * k + kk];
            p->ref[i * n + j] = acc;
        }
}

static void problem_free(problem *p)
{
    free(p->a);
    free(p->b);
    free(p->ref);
    tq_qweights_free(&p->w);
}

/* The paths under test: the portable one, the dispatched one (VNNI on a CPU that has it),
 * the AVX2 kernels called directly, and the VNNI kernels through the emulation. */
enum { PATH_PORTABLE, PATH_DISPATCHED, PATH_AVX2, PATH_EMULATED, N_PATHS };
static const char *const path_name[N_PATHS] = {"portable", "dispatched", "avx2",
                                               "emulated vnni"};

static bool path_available(int path)
{
    if (path == PATH_AVX2) {
#if TQ_HAVE_AVX2
        return __builtin_cpu_supports("avx2");
#else
        return false;
#endif
    }
#ifndef TQ_TEST_VNNI_EMULATED
    if (path == PATH_EMULATED) return false;
#endif
    return true;
}

static void run_int32(int path, const problem *p, int32_t *c)
{
    if (path == PATH_PORTABLE) tq_qgemm_ref(p->m, p->a, p->lda, &p->w, c, p->ldc);
    if (path == PATH_DISPATCHED) tq_qgemm(p->m, p->a, p->lda, &p->w, c, p->ldc);
#if TQ_HAVE_AVX2
    if (path == PATH_AVX2) tq_qgemm_avx2_rows(0, p->m, p->a, p->lda, &p->w, NULL, c, p->ldc);
#endif
#ifdef TQ_TEST_VNNI_EMULATED
    if (path == PATH_EMULATED)
        tq_test_vnni_emulated_rows(0, p->m, p->a, p->lda, &p->w, NULL, c, p->ldc);
#endif
}

static void run_requant(int path, const problem *p, const tq_qepilogue *ep, uint8_t *y)
{
    if (path == PATH_PORTABLE) tq_qgemm_requant_ref(p->m, p->a, p->lda, &p->w, ep, y, p->ldc);
    if (path == PATH_DISPATCHED) tq_qgemm_requant(p->m, p->a, p->lda, &p->w, ep, y, p->ldc);
#if TQ_HAVE_AVX2
    if (path == PATH_AVX2) tq_qgemm_avx2_rows(0, p->m, p->a, p->lda, &p->w, ep, y, p->ldc);
#endif
#ifdef TQ_TEST_VNNI_EMULATED
    if (path == PATH_EMULATED)
        tq_test_vnni_emulated_rows(0, p->m, p->a, p->lda, &p->w, ep, y, p->ldc);
#endif
}

/* Every path's int32 sums equal the triple loop's, and the columns past n keep their
 * sentinel. */
static void check_int32_paths(const problem *p)
{
    int32_t *c = malloc((size_t)(p->m * p->ldc) * sizeof *c);
    ck_assert(c);
    for (int path = 0; path < N_PATHS; path++) {
        if (!path_available(path)) continue;
        for (int64_t i = 0; i < p->m * p->ldc; i++) c[i] = SENTINEL32;
        run_int32(path, p, c);
        for (int64_t i = 0; i < p->m; i++)
            for (int64_t j = 0; j < p->ldc; j++) {
                const int64_t got = c[i * p->ldc + j],
                              want = j < p->n ? p->ref[i * p->n + j] : SENTINEL32;
                ck_assert_msg(got == want, "%s m=%lld n=%lld k=%lld: c[%lld][%lld] = %lld, "
                              "expected %lld", path_name[path], (long long)p->m,
                              (long long)p->n, (long long)p->k, (long long)i, (long long)j,
                              (long long)got, (long long)want);
            }
    }
    free(c);
}

START_TEST(test_products_on_edge_shapes)
{
    tq_rng rng;
    tq_rng_seed(&rng, 1);
    /* m, n, k: one of everything; k short of a multiple of 4 and 16; n short of 16; rows
     * left over after each tile height (12, 6, then 4, 2, 1); the engine's layers (LeNet-5
     * conv1/conv2/fc, ResNet-20 3x3 convs and shortcuts, the MLP) */
    const int64_t shapes[][3] = {
        {1, 1, 1},     {1, 16, 4},    {2, 17, 5},    {3, 15, 3},    {7, 6, 25},
        {23, 16, 150}, {33, 10, 27},  {20, 33, 13},  {37, 64, 144}, {19, 100, 17},
        {31, 48, 31},  {15, 31, 63},  {29, 80, 65},  {1, 120, 400}, {13, 84, 120},
        {97, 16, 144}, {50, 32, 288}, {11, 64, 576}, {40, 256, 784}, {6, 10, 4097},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        problem p;
        problem_make(&p, &rng, shapes[s][0], shapes[s][1], shapes[s][2], s % 3 == 1 ? 12 : 0,
                     s % 2 ? 5 : 0, FILL_RANDOM);
        check_int32_paths(&p);
        problem_free(&p);
    }
}
END_TEST

START_TEST(test_products_on_random_shapes)
{
    tq_rng rng;
    tq_rng_seed(&rng, 2);
    for (int t = 0; t < 60; t++) {
        problem p;
        problem_make(&p, &rng, 1 + tq_rng_below(&rng, 70), 1 + tq_rng_below(&rng, 90),
                     1 + tq_rng_below(&rng, 300), tq_rng_below(&rng, 3) * 4,
                     tq_rng_below(&rng, 4), FILL_RANDOM);
        check_int32_paths(&p);
        problem_free(&p);
    }
}
END_TEST

/* All-255 activations against all-127 and all -128 weights at the longest k: the largest
 * sums in magnitude, 255 * 127 * 65536 = 2122383360 and -255 * 128 * 65536 = -2139095040,
 * still int32. */
START_TEST(test_saturation_corners)
{
    tq_rng rng;
    tq_rng_seed(&rng, 3);
    const fill fills[] = {FILL_MAX_POSITIVE, FILL_MAX_NEGATIVE};
    const int64_t ks[] = {1, 5, 1000, TQ_QGEMM_MAX_K};
    for (size_t f = 0; f < 2; f++)
        for (size_t kk = 0; kk < sizeof ks / sizeof ks[0]; kk++) {
            problem p;
            problem_make(&p, &rng, 3, 17, ks[kk], 0, 0, fills[f]);
            const int64_t want = 255 * (fills[f] == FILL_MAX_POSITIVE ? 127 : -128) * ks[kk];
            ck_assert_int_eq(p.ref[0], want);
            check_int32_paths(&p);
            problem_free(&p);
        }
}
END_TEST

START_TEST(test_pack_refuses_bad_sizes)
{
    int8_t b[4] = {1, 2, 3, 4};
    tq_qweights w;
    tq_error err = {0};
    ck_assert_int_eq(tq_qweights_pack(b, 0, 4, &w, &err), TQ_STATUS_ARG);
    ck_assert_ptr_null(w.data);
    tq_error_clear(&err);
    /* refused before any allocation or read of b */
    ck_assert_int_eq(tq_qweights_pack(b, 1, TQ_QGEMM_MAX_K + 1, &w, &err), TQ_STATUS_ARG);
    ck_assert_msg(strstr(err.msg, "65536"), "%s", err.msg);
    ck_assert_ptr_null(w.data);
}
END_TEST

START_TEST(test_packed_layout_and_row_sums)
{
    /* 18 rows of k = 6: row j holds j*10 + kk; two groups, k4 = 8 */
    int8_t b[18 * 6];
    for (int j = 0; j < 18; j++)
        for (int kk = 0; kk < 6; kk++) b[j * 6 + kk] = (int8_t)(j * 10 + kk - 90);
    tq_qweights w;
    tq_error err = {0};
    ck_assert(tq_qweights_pack(b, 18, 6, &w, &err) == TQ_STATUS_OK);
    ck_assert_int_eq(w.k4, 8);
    ck_assert_int_eq(w.n16, 32);
    ck_assert_int_eq((uintptr_t)w.data % 64, 0);
    /* group 1, step 1, lane 1 = row 17, codes 4..7 (6, 7 padding) */
    const int8_t *q = w.data + (1 * 2 + 1) * 64 + 1 * 4;
    ck_assert_int_eq(q[0], 17 * 10 + 4 - 90);
    ck_assert_int_eq(q[1], 17 * 10 + 5 - 90);
    ck_assert_int_eq(q[2], 0);
    ck_assert_int_eq(q[3], 0);
    /* lane 2 of group 1 is row 18: padding */
    ck_assert_int_eq(w.data[(1 * 2 + 0) * 64 + 2 * 4], 0);
    ck_assert_int_eq(w.row_sum[3], 6 * (30 - 90) + 15);
    tq_qweights_free(&w);
}
END_TEST

/* Products large enough to be split over the pool give the same bits on 1, 2 and 3
 * threads, and the right ones. */
START_TEST(test_thread_count_does_not_change_bits)
{
    tq_rng rng;
    tq_rng_seed(&rng, 4);
    const int saved = tq_get_threads();
    const int64_t shapes[][3] = {{1001, 64, 144}, {300, 256, 128}, {2003, 16, 300}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        problem p;
        problem_make(&p, &rng, shapes[s][0], shapes[s][1], shapes[s][2], 0, 0, FILL_RANDOM);
        const size_t bytes = (size_t)(p.m * p.ldc) * sizeof(int32_t);
        int32_t *c[3];
        for (int t = 0; t < 3; t++) {
            c[t] = malloc(bytes);
            ck_assert(c[t]);
            tq_set_threads(t + 1);
            tq_qgemm(p.m, p.a, p.lda, &p.w, c[t], p.ldc);
        }
        ck_assert(memcmp(c[0], c[1], bytes) == 0 && memcmp(c[0], c[2], bytes) == 0);
        for (int64_t i = 0; i < p.m * p.n; i++) ck_assert_int_eq(c[1][i], p.ref[i]);
        for (int t = 0; t < 3; t++) free(c[t]);
        problem_free(&p);
    }
    tq_set_threads(saved);
}
END_TEST

/* The fused epilogue against tq_qepilogue_value applied to the triple loop's sums, on every
 * path: uint8 and int8 outputs, ReLU, int8 codes stored as uint8, 4-bit ranges, no bias;
 * factors of both signs, tiny (shift 62), shift 0, and 0. */
START_TEST(test_requant_epilogue)
{
    tq_rng rng;
    tq_rng_seed(&rng, 5);
    const struct {
        tq_qout_type type;
        int32_t lo, hi, offset;
        bool bias;
    } outs[] = {
        {TQ_QOUT_U8, 0, 255, 0, true},   {TQ_QOUT_U8, -128, 127, 128, true},
        {TQ_QOUT_S8, -128, 127, 0, true}, {TQ_QOUT_S8, 0, 127, 0, false},
        {TQ_QOUT_U8, 0, 15, 0, true},    {TQ_QOUT_S8, -8, 7, 0, true},
    };
    const int64_t shapes[][3] = {{1, 1, 1},   {7, 6, 25},   {33, 10, 27},  {29, 33, 150},
                                 {17, 64, 144}, {13, 84, 120}, {40, 100, 288}, {5, 256, 784},
                                 {64, 48, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        problem p;
        problem_make(&p, &rng, shapes[s][0], shapes[s][1], shapes[s][2], 0, s % 2 ? 3 : 0,
                     FILL_RANDOM);
        int32_t *bias = malloc((size_t)p.n * sizeof *bias);
        tq_requant *rq = malloc((size_t)p.n * sizeof *rq);
        uint8_t *y = malloc((size_t)(p.m * p.ldc));
        ck_assert(bias && rq && y);
        /* typical sums are ~2^12 sqrt(k): factors around 2^-6 / sqrt(k) spread the codes
         * over the range and past both ends */
        const double spread = 1.0 / (64.0 * sqrt((double)p.k));
        for (int64_t j = 0; j < p.n; j++) {
            bias[j] = (int32_t)tq_rng_below(&rng, 1 << 21) - (1 << 20);
            const double r = spread * exp2(4.0 * tq_rng_uniform(&rng) - 2.0);
            rq[j] = tq_requant_make(j % 5 == 3 ? -r : r);
            if (j % 7 == 4) rq[j] = (tq_requant){(int32_t)tq_rng_below(&rng, 7) - 3, 0};
            if (j % 11 == 6) rq[j] = tq_requant_make(ldexp(1.0, -40));
            if (j % 13 == 8) rq[j] = tq_requant_make(0.0);
            /* powers of two: exact ties, which go to the even code */
            if (j % 3 == 2) rq[j] = tq_requant_make(ldexp(1.0, -6 - (int)(s % 6)));
        }
        for (size_t o = 0; o < sizeof outs / sizeof outs[0]; o++) {
            const tq_qepilogue ep = {.bias = outs[o].bias ? bias : NULL, .rq = rq,
                                     .lo = outs[o].lo, .hi = outs[o].hi,
                                     .offset = outs[o].offset, .type = outs[o].type};
            for (int path = 0; path < N_PATHS; path++) {
                if (!path_available(path)) continue;
                memset(y, SENTINEL8, (size_t)(p.m * p.ldc));
                run_requant(path, &p, &ep, y);
                for (int64_t i = 0; i < p.m; i++)
                    for (int64_t j = 0; j < p.ldc; j++) {
                        int want = SENTINEL8;
                        if (j < p.n) {
                            const int32_t v =
                                tq_qepilogue_value((int32_t)p.ref[i * p.n + j], j, &ep);
                            want = (uint8_t)v;
                            ck_assert(v >= outs[o].lo + outs[o].offset &&
                                      v <= outs[o].hi + outs[o].offset);
                        }
                        ck_assert_msg(y[i * p.ldc + j] == want,
                                      "%s m=%lld n=%lld k=%lld out %zu: y[%lld][%lld] = %d, "
                                      "expected %d", path_name[path], (long long)p.m,
                                      (long long)p.n, (long long)p.k, o, (long long)i,
                                      (long long)j, y[i * p.ldc + j], want);
                    }
            }
        }
        free(bias);
        free(rq);
        free(y);
        problem_free(&p);
    }
}
END_TEST

/* The epilogue's definition on hand-computed values: sum 1000 + bias 24 at r = 1/8 is
 * 128, clamped to 127 in int8 and stored as 255 with offset 128; at r = -1/8 it is -128. */
START_TEST(test_epilogue_value_by_hand)
{
    const int32_t bias[2] = {24, -1024};
    const tq_requant rq[2] = {tq_requant_make(0.125), tq_requant_make(-0.125)};
    tq_qepilogue ep = {.bias = bias, .rq = rq, .lo = -128, .hi = 127, .offset = 0,
                       .type = TQ_QOUT_S8};
    ck_assert_int_eq(tq_qepilogue_value(1000, 0, &ep), 127);
    ck_assert_int_eq(tq_qepilogue_value(1000, 1, &ep), 3); /* -24 * -1/8 */
    ck_assert_int_eq(tq_qepilogue_value(-1024, 0, &ep), -125);
    ep.offset = 128;
    ep.type = TQ_QOUT_U8;
    ck_assert_int_eq(tq_qepilogue_value(1000, 0, &ep), 255);
    ep.offset = 0;
    ep.lo = 0; /* ReLU */
    ck_assert_int_eq(tq_qepilogue_value(-1024, 0, &ep), 0);
}
END_TEST

START_TEST(test_backend_follows_cpu_and_environment)
{
    const char *env = getenv("TQ_QGEMM"), *got = tq_qgemm_backend();
    bool vnni = false, avx2 = false;
#if defined(__x86_64__)
    vnni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    avx2 = __builtin_cpu_supports("avx2");
#endif
    if (env && strcmp(env, "avx2") == 0) vnni = false;
    if (env && strcmp(env, "portable") == 0) vnni = avx2 = false;
    ck_assert_str_eq(got, vnni ? "vnni" : avx2 ? "avx2" : "portable");
    if (!vnni)
        printf("test_qkernels: tq_qgemm runs the %s path here; the VNNI kernels are "
               "checked %s\n", got,
#ifdef TQ_TEST_VNNI_EMULATED
               "through the emulation only"
#else
               "nowhere (no emulation: install libsimde-dev)"
#endif
        );
}
END_TEST

static Suite *qkernels_suite(void)
{
    Suite *s = suite_create("qkernels");
    TCase *tc = tcase_create("qgemm");
    tcase_add_test(tc, test_products_on_edge_shapes);
    tcase_add_test(tc, test_products_on_random_shapes);
    tcase_add_test(tc, test_saturation_corners);
    tcase_add_test(tc, test_pack_refuses_bad_sizes);
    tcase_add_test(tc, test_packed_layout_and_row_sums);
    tcase_add_test(tc, test_thread_count_does_not_change_bits);
    tcase_add_test(tc, test_requant_epilogue);
    tcase_add_test(tc, test_epilogue_value_by_hand);
    tcase_add_test(tc, test_backend_follows_cpu_and_environment);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tq_test_run(qkernels_suite()); }
