/* Check suite for tq_sgemm: hand-computed products, a double-accumulating reference over many
 * shapes, strides, transpositions, alpha and beta, NaN in C with beta = 0, and bitwise
 * independence from the thread count. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "tq_test.h"

typedef struct case_t {
    bool ta, tb;
    int M, N, K, lda, ldb, ldc;
    float alpha, beta;
} case_t;

/* Random storage for one case: A, B and C with their leading dimensions, C's gap columns
 * (between N and ldc) set to a sentinel that must survive. */
typedef struct mats {
    float *A, *B, *C, *C0;
    size_t na, nb, nc;
} mats;

#define SENTINEL 12345.0f

static float uniform(tq_rng *rng) { return 2.0f * tq_rng_uniform(rng) - 1.0f; }

static mats make_mats(tq_rng *rng, const case_t *c, bool nan_c)
{
    mats m;
    m.na = (size_t)(c->ta ? c->K : c->M) * (size_t)c->lda;
    m.nb = (size_t)(c->tb ? c->N : c->K) * (size_t)c->ldb;
    m.nc = (size_t)c->M * (size_t)c->ldc;
    m.A = malloc(m.na * sizeof(float));
    m.B = malloc(m.nb * sizeof(float));
    m.C = malloc(m.nc * sizeof(float));
    m.C0 = malloc(m.nc * sizeof(float));
    ck_assert(m.A && m.B && m.C && m.C0);
    for (size_t i = 0; i < m.na; i++) m.A[i] = uniform(rng);
    for (size_t i = 0; i < m.nb; i++) m.B[i] = uniform(rng);
    for (int i = 0; i < c->M; i++)
        for (int j = 0; j < c->ldc; j++)
            m.C[(size_t)i * c->ldc + j] = j >= c->N ? SENTINEL : nan_c ? NAN : uniform(rng);
    memcpy(m.C0, m.C, m.nc * sizeof(float));
    return m;
}

static void free_mats(mats *m)
{
    free(m->A);
    free(m->B);
    free(m->C);
    free(m->C0);
}

/* Compares C against alpha op(A) op(B) + beta C0 accumulated in double, with a tolerance of
 * 1e-5 sqrt(K) relative to the sum of the magnitudes of the terms. */
static void check_against_reference(const case_t *c, const mats *m, const char *what)
{
    for (int i = 0; i < c->M; i++)
        for (int j = 0; j < c->ldc; j++) {
            const float got = m->C[(size_t)i * c->ldc + j];
            if (j >= c->N) {
                ck_assert_msg(got == SENTINEL, "%s: C[%d][%d] past N=%d was overwritten", what,
                              i, j, c->N);
                continue;
            }
            double acc = 0.0, mag = 0.0;
            for (int k = 0; k < c->K; k++) {
                double a = c->ta ? m->A[(size_t)k * c->lda + i] : m->A[(size_t)i * c->lda + k];
                double b = c->tb ? m->B[(size_t)j * c->ldb + k] : m->B[(size_t)k * c->ldb + j];
                acc += a * b;
                mag += fabs(a * b);
            }
            double ref = c->alpha * acc, scale = fabs(c->alpha) * mag;
            if (c->beta != 0.0f) {
                double old = m->C0[(size_t)i * c->ldc + j];
                ref += c->beta * old;
                scale += fabs(c->beta * old);
            }
            const double tol = 1e-5 * sqrt((double)c->K + 1.0) * (scale + 1e-30);
            ck_assert_msg(fabs((double)got - ref) <= tol,
                          "%s %c%c M=%d N=%d K=%d lda=%d ldb=%d ldc=%d alpha=%g beta=%g: "
                          "C[%d][%d] = %.9g, expected %.9g (tol %g)",
                          what, c->ta ? 'T' : 'N', c->tb ? 'T' : 'N', c->M, c->N, c->K, c->lda,
                          c->ldb, c->ldc, (double)c->alpha, (double)c->beta, i, j, (double)got,
                          ref, tol);
        }
}

static void run_case(tq_rng *rng, case_t c, bool nan_c, const char *what)
{
    const int min_lda = c.ta ? c.M : c.K, min_ldb = c.tb ? c.K : c.N;
    if (c.lda < min_lda) c.lda = min_lda;
    if (c.ldb < min_ldb) c.ldb = min_ldb;
    if (c.ldc < c.N) c.ldc = c.N;
    mats m = make_mats(rng, &c, nan_c);
    tq_sgemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, m.A, c.lda, m.B, c.ldb, c.beta, m.C, c.ldc);
    check_against_reference(&c, &m, what);
    free_mats(&m);
}

START_TEST(test_hand_computed_products)
{
    /* [1 2 3; 4 5 6] [7 8; 9 10; 11 12] = [58 64; 139 154], exact in float */
    const float A[6] = {1, 2, 3, 4, 5, 6}, At[6] = {1, 4, 2, 5, 3, 6};
    const float B[6] = {7, 8, 9, 10, 11, 12}, Bt[6] = {7, 9, 11, 8, 10, 12};
    const float want[4] = {58, 64, 139, 154};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            float C[4] = {NAN, NAN, NAN, NAN};
            tq_sgemm(ta, tb, 2, 2, 3, 1.0f, ta ? At : A, ta ? 2 : 3, tb ? Bt : B, tb ? 3 : 2, 0.0f,
                     C, 2);
            for (int i = 0; i < 4; i++)
                ck_assert_msg(C[i] == want[i], "%c%c: C[%d] = %g, expected %g", ta ? 'T' : 'N',
                              tb ? 'T' : 'N', i, (double)C[i], (double)want[i]);
        }
    /* alpha = 2, beta = 0.5 on C = 4: 2 * 58 + 2 = 118 */
    float C[4] = {4, 4, 4, 4};
    tq_sgemm(false, false, 2, 2, 3, 2.0f, A, 3, B, 2, 0.5f, C, 2);
    ck_assert(C[0] == 118.0f && C[3] == 310.0f);
    /* 1x1x1 */
    float a = 3.0f, b = -2.0f, c = 1.0f;
    tq_sgemm(false, false, 1, 1, 1, 1.0f, &a, 1, &b, 1, 1.0f, &c, 1);
    ck_assert(c == -5.0f);
    /* K = 0 leaves beta C; with beta = 0 it clears NaN */
    float z[2] = {NAN, 8.0f};
    tq_sgemm(false, false, 1, 1, 0, 1.0f, &a, 1, &b, 1, 0.0f, z, 1);
    tq_sgemm(false, false, 1, 1, 0, 1.0f, &a, 1, &b, 1, 0.5f, z + 1, 1);
    ck_assert(z[0] == 0.0f && z[1] == 4.0f);
}
END_TEST

START_TEST(test_random_small_shapes_all_layouts)
{
    tq_rng rng;
    tq_rng_seed(&rng, 11);
    const float alphas[] = {1.0f, -0.75f, 2.5f}, betas[] = {0.0f, 1.0f, 0.5f};
    for (int it = 0; it < 300; it++) {
        case_t c = {.ta = it % 3 == 2, .tb = it % 3 == 1,
                    .M = 1 + (int)tq_rng_below(&rng, 70), .N = 1 + (int)tq_rng_below(&rng, 70),
                    .K = 1 + (int)tq_rng_below(&rng, 70),
                    .alpha = alphas[it % 3 == 0 ? 0 : (it / 3) % 3],
                    .beta = betas[(it / 9) % 3]};
        if (it % 4 == 0) { /* leading dimensions beyond the minimum */
            c.lda = (c.ta ? c.M : c.K) + 1 + (int)tq_rng_below(&rng, 9);
            c.ldb = (c.tb ? c.K : c.N) + 1 + (int)tq_rng_below(&rng, 9);
            c.ldc = c.N + 1 + (int)tq_rng_below(&rng, 9);
        }
        if (it % 7 == 0) c.ta = c.tb = true; /* TT too, though no op uses it */
        run_case(&rng, c, false, "random");
    }
}
END_TEST

START_TEST(test_block_edges_and_op_shapes)
{
    tq_rng rng;
    tq_rng_seed(&rng, 12);
    /* sizes straddling the tiles (8 x 32), the k block (256), the cache blocks (128, 256), and
     * for A B^T with few rows or columns the dot-product blocks (4 x 4, k by 16 and 1024) */
    const int shapes[][3] = {{17, 33, 129}, {8, 32, 256}, {9, 31, 257}, {7, 65, 513},
                             {130, 260, 300}, {16, 1024, 27}, {64, 64, 576}, {144, 256, 32},
                             {64, 27, 256}, {256, 10, 256}, {3, 784, 40}, {129, 17, 1},
                             {20, 50, 1100}, {5, 3, 2049}, {70, 13, 300}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int layout = 0; layout < 3; layout++) {
            case_t c = {.ta = layout == 2, .tb = layout == 1, .M = shapes[s][0],
                        .N = shapes[s][1], .K = shapes[s][2], .alpha = 1.0f,
                        .beta = (float)(s % 3) * 0.5f, .ldc = shapes[s][1] + 3 * (int)(s % 2)};
            run_case(&rng, c, false, "edges");
        }
}
END_TEST

START_TEST(test_beta_zero_ignores_nan_in_c)
{
    tq_rng rng;
    tq_rng_seed(&rng, 13);
    for (int layout = 0; layout < 3; layout++) {
        case_t small = {.ta = layout == 2, .tb = layout == 1, .M = 13, .N = 37, .K = 300,
                        .alpha = 0.5f, .beta = 0.0f, .ldc = 41};
        run_case(&rng, small, true, "nan");
        case_t big = {.ta = layout == 2, .tb = layout == 1, .M = 150, .N = 300, .K = 120,
                      .alpha = 1.0f, .beta = 0.0f};
        run_case(&rng, big, true, "nan, threaded size");
    }
}
END_TEST

/* A product above the threading threshold gives the same bits on 1, 2, 3 and 4 threads, and
 * when it runs inside a parallel region (on the calling thread, as a convolution's per-image
 * products do), with either backend. */
START_TEST(test_thread_count_does_not_change_bits)
{
    tq_rng rng;
    tq_rng_seed(&rng, 14);
    /* splits by columns, by rows, and by rows into blocks that read B in place where the
     * whole product packs it; under OpenBLAS, lengths that leave a short last block */
    const int shapes[][3] = {{200, 300, 150}, {64, 1024, 144}, {300, 40, 700},
                             {100, 40, 1200}, {16, 600, 2100}, {257, 31, 1000}};
    const int saved = tq_get_threads();
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int layout = 0; layout < 3; layout++) {
            case_t c = {.ta = layout == 2, .tb = layout == 1, .M = shapes[s][0],
                        .N = shapes[s][1], .K = shapes[s][2], .alpha = 1.0f, .beta = 0.5f};
            c.lda = c.ta ? c.M : c.K;
            c.ldb = c.tb ? c.K : c.N;
            c.ldc = c.N;
            mats m = make_mats(&rng, &c, false);
            float *one = malloc(m.nc * sizeof(float)), *in_region[2];
            ck_assert(one);
            memcpy(one, m.C0, m.nc * sizeof(float));
            tq_set_threads(1);
            tq_sgemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, m.A, c.lda, m.B, c.ldb, c.beta, one,
                     c.ldc);
            for (int threads = 2; threads <= 4; threads++) {
                tq_set_threads(threads);
                memcpy(m.C, m.C0, m.nc * sizeof(float));
                tq_sgemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, m.A, c.lda, m.B, c.ldb, c.beta,
                         m.C, c.ldc);
                ck_assert_msg(memcmp(one, m.C, m.nc * sizeof(float)) == 0,
                              "%dx%dx%d layout %d (%s): 1 and %d threads differ", c.M, c.N,
                              c.K, layout, tq_sgemm_backend(), threads);
            }
            check_against_reference(&c, &m, "threads");
            /* two threads of a parallel region, each computing the whole product */
            tq_set_threads(2);
            for (int i = 0; i < 2; i++) {
                in_region[i] = malloc(m.nc * sizeof(float));
                ck_assert(in_region[i]);
                memcpy(in_region[i], m.C0, m.nc * sizeof(float));
            }
#pragma omp parallel for num_threads(2) schedule(static)
            for (int i = 0; i < 2; i++)
                tq_sgemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, m.A, c.lda, m.B, c.ldb, c.beta,
                         in_region[i], c.ldc);
            for (int i = 0; i < 2; i++) {
                ck_assert_msg(memcmp(one, in_region[i], m.nc * sizeof(float)) == 0,
                              "%dx%dx%d layout %d (%s): inside a parallel region, thread %d "
                              "differs from a call outside", c.M, c.N, c.K, layout,
                              tq_sgemm_backend(), i);
                free(in_region[i]);
            }
            free(one);
            free_mats(&m);
        }
    tq_set_threads(saved);
}
END_TEST

START_TEST(test_backend_follows_cpu_and_environment)
{
    const char *env = getenv("TQ_GEMM"), *got = tq_sgemm_backend();
    if (env && strcmp(env, "openblas") == 0)
        ck_assert_str_eq(got, "openblas");
#if defined(__x86_64__)
    else if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        ck_assert_str_eq(got, "avx512");
#endif
    else
        ck_assert_str_eq(got, "openblas");
}
END_TEST

static Suite *gemm_suite(void)
{
    Suite *s = suite_create("gemm");
    TCase *tc = tcase_create("sgemm");
    tcase_add_test(tc, test_hand_computed_products);
    tcase_add_test(tc, test_random_small_shapes_all_layouts);
    tcase_add_test(tc, test_block_edges_and_op_shapes);
    tcase_add_test(tc, test_beta_zero_ignores_nan_in_c);
    tcase_add_test(tc, test_thread_count_does_not_change_bits);
    tcase_add_test(tc, test_backend_follows_cpu_and_environment);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tq_test_run(gemm_suite()); }
