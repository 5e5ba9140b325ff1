/* tq_sgemm: packed, cache-blocked AVX-512 single-precision GEMM with an 8x32 register tile,
 * selected at run time; OpenBLAS's cblas_sgemm otherwise. */
#include "gemm.h"

#include <cblas.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TQ_GEMM_HAVE_AVX512 1
#include <immintrin.h>
#else
#define TQ_GEMM_HAVE_AVX512 0
#endif

/* Register tile MR x NR: 16 zmm accumulators, two B loads and one broadcast per row per k.
 * KC x NR of packed B (32 KiB) stays in L1 while the MR x KC slivers of A stream from L2;
 * the packed MC x KC block of A (128 KiB) and KC x NC of B (256 KiB) fit in L2. */
enum { MR = 8, NR = 32, KC = 256, MC = 128, NC = 256 };

/* Up to this many rows of C, op(B) = B is read in place: each sliver of B serves at most 8
 * tiles, too few to repay copying it (measured: 16 x 1024 x 144 goes from 130 to 160
 * GFLOP/s). Packed or not, the arithmetic and so the bits are the same. */
#define DIRECT_B_MAX_M 64

/* A B^T goes to dot_block when C has at most DOT_MAX_M rows or DOT_MAX_N columns and k runs
 * long enough to amortize the reductions (measured: 16 x 144 x 2048 from 110 to 150 GFLOP/s,
 * 64 x 10 x 256 from 72 to 130; with 64 rows and many columns the tiles are faster). */
#define DOT_MAX_M 32
#define DOT_MAX_N 16
#define DOT_MIN_K 256

/* Below this many multiply-adds a product stays on the calling thread. */
#define TQ_GEMM_PARALLEL_MIN_MACS 4000000.0

static int g_use_avx512; /* written once under pthread_once, read-only afterwards */
static pthread_once_t g_backend_once = PTHREAD_ONCE_INIT;

static void choose_backend(void)
{
    const char *env = getenv("TQ_GEMM");
    bool want_openblas = env && strcmp(env, "openblas") == 0;
#if TQ_GEMM_HAVE_AVX512
    __builtin_cpu_init();
    g_use_avx512 = !want_openblas && __builtin_cpu_supports("avx512f") &&
                   __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                   __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("fma");
#else
    (void)want_openblas;
    g_use_avx512 = 0;
#endif
}

const char *tq_sgemm_backend(void)
{
    pthread_once(&g_backend_once, choose_backend);
    return g_use_avx512 ? "avx512" : "openblas";
}

static void openblas_sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A,
                           int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

#if TQ_GEMM_HAVE_AVX512
/* Optimized even in Debug builds: at -O0 the intrinsics spill every register and a sanitized
 * test run takes five times as long as with OpenBLAS. */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__OPTIMIZE__)
#define TQ_AVX512 \
    __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma"), optimize("O2")))
#else
#define TQ_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma")))
#endif

typedef struct gemm_args {
    bool ta, tb;
    int M, N, K;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int lda, ldb, ldc;
    bool dot; /* the dot-product path (see dot_block), chosen for the whole product */
} gemm_args;

/* Packing buffers: one pair per thread, sized by the blocking, so the hot path never
 * allocates. */
static _Thread_local float pack_a_buf[MC * KC] __attribute__((aligned(64)));
static _Thread_local float pack_b_buf[KC * NC] __attribute__((aligned(64)));

static TQ_AVX512 __mmask16 lane_mask(int n)
{
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* Loads 16 rows of src (stride lds; rows from nrows on read as zero), the first kn floats of
 * each (zero past kn), and transposes them: out[c] holds float c of the 16 rows. */
static TQ_AVX512 void load_transpose16(const float *src, int64_t lds, int nrows, int kn,
                                       __m512 out[16])
{
    const __mmask16 m = lane_mask(kn);
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++)
        r[i] = i < nrows ? _mm512_maskz_loadu_ps(m, src + i * lds) : _mm512_setzero_ps();
    for (int i = 0; i < 16; i += 2) { /* per 128-bit lane: pairs of rows interleaved */
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int q = 0; q < 16; q += 4) { /* r[q + e], lane L: rows q..q+3 of column 4L + e */
        const __m512d t0 = _mm512_castps_pd(t[q]), t1 = _mm512_castps_pd(t[q + 1]),
                      t2 = _mm512_castps_pd(t[q + 2]), t3 = _mm512_castps_pd(t[q + 3]);
        r[q] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
        r[q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
        r[q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
        r[q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    for (int e = 0; e < 4; e++) { /* gather lane L of r[e], r[4+e], r[8+e], r[12+e] */
        const __m512 v0 = _mm512_shuffle_f32x4(r[e], r[4 + e], 0x88),
                     v1 = _mm512_shuffle_f32x4(r[e], r[4 + e], 0xdd),
                     w0 = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0x88),
                     w1 = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0xdd);
        out[e] = _mm512_shuffle_f32x4(v0, w0, 0x88);
        out[8 + e] = _mm512_shuffle_f32x4(v0, w0, 0xdd);
        out[4 + e] = _mm512_shuffle_f32x4(v1, w1, 0x88);
        out[12 + e] = _mm512_shuffle_f32x4(v1, w1, 0xdd);
    }
}

/* op(A)[i0 .. i0+mc, k0 .. k0+kc) as MR-row slivers, k-major within each (MR floats per k);
 * rows past the edge are zero so the kernel always runs the full tile. */
static TQ_AVX512 void pack_a(const gemm_args *g, int i0, int mc, int k0, int kc, float *dst)
{
    if (g->ta) { /* op(A)[i][k] = A[k][i]: rows of a sliver are contiguous */
        for (int ip = 0; ip < mc; ip += MR) {
            const __mmask16 m = lane_mask(mc - ip < MR ? mc - ip : MR);
            float *d = dst + (int64_t)ip * kc;
            for (int k = 0; k < kc; k++) {
                const float *src = g->A + (int64_t)(k0 + k) * g->lda + i0 + ip;
                _mm256_store_ps(d + k * MR,
                                _mm512_castps512_ps256(_mm512_maskz_loadu_ps(m, src)));
            }
        }
        return;
    }
    for (int ip = 0; ip < mc; ip += 2 * MR) { /* two slivers from one 16-row transpose */
        const int rows = mc - ip < 2 * MR ? mc - ip : 2 * MR;
        float *d0 = dst + (int64_t)ip * kc, *d1 = d0 + (int64_t)MR * kc;
        const float *src = g->A + (int64_t)(i0 + ip) * g->lda + k0;
        for (int kb = 0; kb < kc; kb += 16) {
            const int kn = kc - kb < 16 ? kc - kb : 16;
            __m512 col[16];
            load_transpose16(src + kb, g->lda, rows, kn, col);
            for (int k = 0; k < kn; k++) {
                _mm256_store_ps(d0 + (kb + k) * MR, _mm512_castps512_ps256(col[k]));
                if (rows > MR) _mm256_store_ps(d1 + (kb + k) * MR, _mm512_extractf32x8_ps(col[k], 1));
            }
        }
    }
}

/* op(B)[k0 .. k0+kc, j0 .. j0+nc) as NR-column slivers, k-major within each (NR floats per k);
 * columns past the edge are zero. */
static TQ_AVX512 void pack_b(const gemm_args *g, int k0, int kc, int j0, int nc, float *dst)
{
    for (int jp = 0; jp < nc; jp += NR) {
        const int nr = nc - jp < NR ? nc - jp : NR;
        float *d = dst + (int64_t)jp * kc;
        if (!g->tb) {
            const __mmask16 m0 = lane_mask(nr), m1 = lane_mask(nr - 16);
            for (int k = 0; k < kc; k++) {
                const float *src = g->B + (int64_t)(k0 + k) * g->ldb + j0 + jp;
                _mm512_store_ps(d + k * NR, _mm512_maskz_loadu_ps(m0, src));
                _mm512_store_ps(d + k * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
            }
            continue;
        }
        for (int jh = 0; jh < NR; jh += 16) { /* op(B)[k][j] = B[j][k]: transpose 16 x 16 */
            const float *src = g->B + (int64_t)(j0 + jp + jh) * g->ldb + k0;
            for (int kb = 0; kb < kc; kb += 16) {
                const int kn = kc - kb < 16 ? kc - kb : 16;
                __m512 col[16];
                load_transpose16(src + kb, g->ldb, nr - jh, kn, col);
                for (int k = 0; k < kn; k++) _mm512_store_ps(d + (kb + k) * NR + jh, col[k]);
            }
        }
    }
}

/* One MR x NR tile of C over kc steps of k. Every element is a k-ordered FMA chain from zero,
 * then folded into C: the first k block as alpha acc + beta C (alpha acc alone when beta = 0),
 * later ones as alpha acc + C. Its bits depend on K's blocking only, not on where the tile
 * sits, which is what lets threads split C freely. Rows of B's sliver are ldbk floats apart:
 * NR when packed, ldb when read in place. */
static TQ_AVX512 void kernel(int kc, const float *restrict a, const float *restrict b,
                             int64_t ldbk, float *C, int64_t ldc, int mr, int nr, float alpha,
                             float beta, bool first)
{
    const __mmask16 m0 = lane_mask(nr), m1 = lane_mask(nr - 16);
    __m512 c0[MR], c1[MR];
    for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm512_setzero_ps();
    if (nr > 16) {
#pragma GCC unroll 4
        for (int k = 0; k < kc; k++) {
            const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
            for (int r = 0; r < MR; r++) {
                const __m512 ar = _mm512_set1_ps(a[r]);
                c0[r] = _mm512_fmadd_ps(ar, b0, c0[r]);
                c1[r] = _mm512_fmadd_ps(ar, b1, c1[r]);
            }
            a += MR;
            b += ldbk;
        }
    } else { /* a narrow edge (or all of a narrow C): half the work, the same chains */
#pragma GCC unroll 4
        for (int k = 0; k < kc; k++) {
            const __m512 b0 = _mm512_loadu_ps(b);
            for (int r = 0; r < MR; r++) c0[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r]), b0, c0[r]);
            a += MR;
            b += ldbk;
        }
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int r = 0; r < mr; r++) {
        float *row = C + r * ldc;
        __m512 y0, y1;
        if (first && beta == 0.0f) {
            y0 = _mm512_mul_ps(va, c0[r]);
            y1 = _mm512_mul_ps(va, c1[r]);
        } else {
            y0 = _mm512_maskz_loadu_ps(m0, row);
            y1 = _mm512_maskz_loadu_ps(m1, row + 16);
            if (first && beta != 1.0f) {
                y0 = _mm512_mul_ps(vb, y0);
                y1 = _mm512_mul_ps(vb, y1);
            }
            y0 = _mm512_fmadd_ps(va, c0[r], y0);
            y1 = _mm512_fmadd_ps(va, c1[r], y1);
        }
        _mm512_mask_storeu_ps(row, m0, y0);
        _mm512_mask_storeu_ps(row + 16, m1, y1);
    }
}

/* C[i0 .. i1, j0 .. j1) for A B^T as dot products: both operands run along k in memory, so
 * nothing is transposed or packed; for few rows of C (weight gradients) packing B^T would
 * cost about as much as the product. A DR x DC block of C keeps 16 lanes of partial sums per
 * element over DK values of k, then reduces them in a fixed order and folds the block into
 * C as the tile kernel does: the bits depend on K only, not on the split of C. */
enum { DR = 4, DC = 4, DK = 1024 };

static TQ_AVX512 void dot_block(const gemm_args *g, int i0, int i1, int j0, int j1)
{
    for (int pc = 0; pc < g->K; pc += DK) {
        const int kc = g->K - pc < DK ? g->K - pc : DK;
        const __mmask16 tail = lane_mask(kc % 16);
        for (int j = j0; j < j1; j += DC)
            for (int i = i0; i < i1; i += DR) {
                const float *a[DR], *b[DC]; /* past the edge: repeat the last row, unstored */
                for (int r = 0; r < DR; r++)
                    a[r] = g->A + (int64_t)(i + r < i1 ? i + r : i1 - 1) * g->lda + pc;
                for (int c = 0; c < DC; c++)
                    b[c] = g->B + (int64_t)(j + c < j1 ? j + c : j1 - 1) * g->ldb + pc;
                __m512 acc[DR][DC];
                for (int r = 0; r < DR; r++)
                    for (int c = 0; c < DC; c++) acc[r][c] = _mm512_setzero_ps();
                int k = 0;
                for (; k + 16 <= kc; k += 16) {
                    __m512 va[DR], vb[DC];
                    for (int r = 0; r < DR; r++) va[r] = _mm512_loadu_ps(a[r] + k);
                    for (int c = 0; c < DC; c++) vb[c] = _mm512_loadu_ps(b[c] + k);
                    for (int r = 0; r < DR; r++)
                        for (int c = 0; c < DC; c++)
                            acc[r][c] = _mm512_fmadd_ps(va[r], vb[c], acc[r][c]);
                }
                if (k < kc) {
                    __m512 va[DR], vb[DC];
                    for (int r = 0; r < DR; r++) va[r] = _mm512_maskz_loadu_ps(tail, a[r] + k);
                    for (int c = 0; c < DC; c++) vb[c] = _mm512_maskz_loadu_ps(tail, b[c] + k);
                    for (int r = 0; r < DR; r++)
                        for (int c = 0; c < DC; c++)
                            acc[r][c] = _mm512_fmadd_ps(va[r], vb[c], acc[r][c]);
                }
                for (int r = 0; r < DR && i + r < i1; r++)
                    for (int c = 0; c < DC && j + c < j1; c++) {
                        const float s = _mm512_reduce_add_ps(acc[r][c]);
                        float *y = g->C + (int64_t)(i + r) * g->ldc + j + c;
                        if (pc == 0 && g->beta == 0.0f)
                            *y = g->alpha * s;
                        else
                            *y = __builtin_fmaf(g->alpha, s,
                                                pc == 0 && g->beta != 1.0f ? g->beta * *y : *y);
                    }
            }
    }
}

/* C[i0 .. i1, j0 .. j1) on the calling thread. */
static TQ_AVX512 void gemm_block(const gemm_args *g, int i0, int i1, int j0, int j1)
{
    if (g->dot) {
        dot_block(g, i0, i1, j0, j1);
        return;
    }
    float *pa = pack_a_buf, *pb = pack_b_buf;
    const bool direct_b = !g->tb && i1 - i0 <= DIRECT_B_MAX_M;
    for (int jc = j0; jc < j1; jc += NC) {
        const int nc = j1 - jc < NC ? j1 - jc : NC;
        for (int pc = 0; pc < g->K; pc += KC) {
            const int kc = g->K - pc < KC ? g->K - pc : KC;
            if (!direct_b)
                pack_b(g, pc, kc, jc, nc, pb);
            else if (nc % NR) /* the edge sliver is packed: masked loads in the loop are slow */
                pack_b(g, pc, kc, jc + nc - nc % NR, nc % NR, pb + (int64_t)(nc - nc % NR) * kc);
            for (int ic = i0; ic < i1; ic += MC) {
                const int mc = i1 - ic < MC ? i1 - ic : MC;
                pack_a(g, ic, mc, pc, kc, pa);
                for (int jr = 0; jr < nc; jr += NR) {
                    const int nr = nc - jr < NR ? nc - jr : NR;
                    const float *b = pb + (int64_t)jr * kc;
                    int64_t ldbk = NR;
                    if (direct_b && nr == NR) {
                        b = g->B + (int64_t)pc * g->ldb + jc + jr;
                        ldbk = g->ldb;
                    }
                    for (int ir = 0; ir < mc; ir += MR)
                        kernel(kc, pa + (int64_t)ir * kc, b, ldbk,
                               g->C + (int64_t)(ic + ir) * g->ldc + jc + jr, g->ldc,
                               mc - ir < MR ? mc - ir : MR, nr, g->alpha, g->beta, pc == 0);
                }
            }
        }
    }
}

static void avx512_sgemm(const gemm_args *g)
{
    int nt = 1;
#ifdef _OPENMP
    if (!omp_in_parallel() && (double)g->M * g->N * g->K >= TQ_GEMM_PARALLEL_MIN_MACS)
        nt = omp_get_max_threads();
#endif
    if (nt <= 1) {
        gemm_block(g, 0, g->M, 0, g->N);
        return;
    }
    /* Split the longer side of C into whole tiles; any split gives the same bits (see
     * kernel), so the result does not depend on the thread count. */
    const bool by_cols = (g->N + NR - 1) / NR >= (g->M + MR - 1) / MR;
    const int unit = by_cols ? NR : MR, len = by_cols ? g->N : g->M;
    const int tiles = (len + unit - 1) / unit;
    if (nt > tiles) nt = tiles;
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
        const int t = omp_get_thread_num(), team = omp_get_num_threads();
#else
        const int t = 0, team = 1;
#endif
        int lo = (int)((int64_t)tiles * t / team) * unit,
            hi = (int)((int64_t)tiles * (t + 1) / team) * unit;
        if (hi > len) hi = len;
        if (lo < hi) {
            if (by_cols)
                gemm_block(g, 0, g->M, lo, hi);
            else
                gemm_block(g, lo, hi, 0, g->N);
        }
    }
}
#endif

void tq_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    pthread_once(&g_backend_once, choose_backend);
#if TQ_GEMM_HAVE_AVX512
    if (g_use_avx512) {
        if (K <= 0) { /* no products: C = beta C, with beta = 0 clearing NaN too */
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++)
                    C[(int64_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(int64_t)i * ldc + j];
            return;
        }
        const gemm_args g = {.ta = trans_a, .tb = trans_b, .M = M, .N = N, .K = K,
                             .alpha = alpha, .beta = beta, .A = A, .B = B, .C = C,
                             .lda = lda, .ldb = ldb, .ldc = ldc,
                             .dot = !trans_a && trans_b && K >= DOT_MIN_K &&
                                    (M <= DOT_MAX_M || N <= DOT_MAX_N)};
        avx512_sgemm(&g);
        return;
    }
#endif
    openblas_sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
