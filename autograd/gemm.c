/* tq_sgemm: packed, cache-blocked AVX-512 single-precision GEMM with an 8x32 register tile,
 * selected at run time; OpenBLAS's cblas_sgemm in fixed blocks otherwise (gemm_blocks.c). */
#include "gemm.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "avx512.h"

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
#if TQ_HAVE_AVX512
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

#if TQ_HAVE_AVX512
typedef struct conv_src conv_src;

typedef struct gemm_args {
    bool ta, tb;
    int M, N, K;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int lda, ldb, ldc;
    bool dot; /* the dot-product path (see dot_block), chosen for the whole product */
    const conv_src *conv; /* op(B) = im2col of this input (see conv_block), B unused */
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
    for (int i = 0; i < 16; i++)
        out[i] = i < nrows ? _mm512_maskz_loadu_ps(m, src + i * lds) : _mm512_setzero_ps();
    tq_transpose16(out);
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

/* ---- Convolution products: op(B) = im2col(x), never stored. Each NR-column sliver of it
 * (kc x NR floats, 32 KiB at most) is built in L1 right before the tiles that read it, with
 * exactly the values im2col stores, and the k blocking is gemm_block's: the same bits. */

struct conv_src {
    const float *x;
    int C, H, W, kh, kw, stride, pad, OH, OW;
};

/* Lanes of one 16-column half of a sliver that lie on one output row: lane l holds output
 * pixel (oy, ox0 + l); ox0 may be negative since the run need not start at lane 0. */
typedef struct lane_run {
    __mmask16 lanes;
    int oy, ox0;
} lane_run;

typedef struct sliver_cols {
    int nrun[2];
    lane_run run[2][16]; /* at most one run per lane, when OW = 1 */
} sliver_cols;

/* Where one kernel tap's row of a sliver comes from: per half, the masked loads (lanes
 * inside the plane, offset of lane 0 within a channel plane) that fill it; the other lanes
 * are the zero padding. */
typedef struct tap_src {
    int n[2];
    __mmask16 mask[2][16];
    int32_t off[2][16];
} tap_src;

static TQ_AVX512 __mmask16 lane_range(int lo, int hi)
{
    return (__mmask16)(lane_mask(hi) & ~lane_mask(lo));
}

/* Splits the columns j0 .. j0+nr of the sliver into runs on one output row. */
static TQ_AVX512 void sliver_runs(const conv_src *cv, int j0, int nr, sliver_cols *sc)
{
    for (int h = 0; h < 2; h++) {
        const int end = nr - 16 * h < 16 ? nr - 16 * h : 16;
        sc->nrun[h] = 0;
        for (int l = 0; l < end;) {
            const int j = j0 + 16 * h + l, oy = j / cv->OW, ox = j % cv->OW;
            const int len = cv->OW - ox < end - l ? cv->OW - ox : end - l;
            sc->run[h][sc->nrun[h]++] = (lane_run){lane_range(l, l + len), oy, ox - l};
            l += len;
        }
    }
}

/* The sources of tap (ki,kj): a run's lanes on an input row inside the plane, clipped to the
 * lanes whose input column ix0 + l*stride falls in [0, W). */
static TQ_AVX512 void tap_sources(const conv_src *cv, const sliver_cols *sc, int ki, int kj,
                                  tap_src *ts)
{
    const int s = cv->stride;
    for (int h = 0; h < 2; h++) {
        ts->n[h] = 0;
        for (int r = 0; r < sc->nrun[h]; r++) {
            const lane_run *run = &sc->run[h][r];
            const int iy = run->oy * s + ki - cv->pad, ix0 = run->ox0 * s + kj - cv->pad;
            if (iy < 0 || iy >= cv->H) continue;
            const int lo = ix0 >= 0 ? 0 : (-ix0 + s - 1) / s,
                      hi = ix0 >= cv->W ? 0 : (cv->W - ix0 + s - 1) / s;
            const __mmask16 m = run->lanes & lane_range(lo, hi);
            if (!m) continue;
            ts->mask[h][ts->n[h]] = m;
            ts->off[h][ts->n[h]++] = iy * cv->W + ix0;
        }
    }
}

/* Lane l of a stride-2 half reads source float 2l: the lane mask spread onto the even bits of
 * the two 16-float source vectors. */
static TQ_AVX512 void even_masks(__mmask16 m, __mmask16 *lo, __mmask16 *hi)
{
    unsigned a = 0, b = 0;
    for (int l = 0; l < 8; l++) {
        a |= ((m >> l) & 1u) << (2 * l);
        b |= ((m >> (l + 8)) & 1u) << (2 * l);
    }
    *lo = (__mmask16)a;
    *hi = (__mmask16)b;
}

/* One tap's rows of the sliver for `count` channels, planes plane_len apart and rows dstep
 * apart in dst, when each half is one masked load (or none: zero) with stride 1 or 2: the
 * common case, a tight loop. Stride 2 loads 32 consecutive floats and keeps the even ones
 * (a gather is several times slower). The source rows the next sliver reads, `ahead` floats
 * on, are prefetched: they sit one plane (page) apart, which the hardware prefetchers miss. */
static TQ_AVX512 void tap_rows_simple(const tap_src *ts, int stride, int halves,
                                      const float *plane, int64_t plane_len, int count,
                                      int64_t ahead, float *dst, int64_t dstep)
{
    __mmask16 m[2] = {0, 0}, lo[2], hi[2];
    int64_t off[2] = {0, 0};
    for (int h = 0; h < 2; h++) {
        if (ts->n[h]) {
            m[h] = ts->mask[h][0];
            off[h] = ts->off[h][0];
        }
        even_masks(m[h], &lo[h], &hi[h]);
    }
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    if (stride == 1 && halves == 2) { /* the bulk of 3x3 convolutions: no branches */
        for (int i = 0; i < count; i++, plane += plane_len, dst += dstep) {
            _mm_prefetch((const char *)(plane + off[0] + ahead), _MM_HINT_T0);
            _mm_prefetch((const char *)(plane + off[1] + ahead), _MM_HINT_T0);
            _mm512_store_ps(dst, _mm512_maskz_loadu_ps(m[0], plane + off[0]));
            _mm512_store_ps(dst + 16, _mm512_maskz_loadu_ps(m[1], plane + off[1]));
        }
        return;
    }
    for (int i = 0; i < count; i++, plane += plane_len, dst += dstep)
        for (int h = 0; h < halves; h++) {
            const float *src = plane + off[h];
            _mm_prefetch((const char *)(src + ahead), _MM_HINT_T0);
            __m512 v;
            if (stride == 1) {
                v = _mm512_maskz_loadu_ps(m[h], src);
            } else {
                _mm_prefetch((const char *)(src + ahead + 16), _MM_HINT_T0);
                v = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(lo[h], src), even,
                                           _mm512_maskz_loadu_ps(hi[h], src + 16));
            }
            _mm512_store_ps(dst + 16 * h, v);
        }
}

/* tap_rows_simple for the rest: several output rows within a half (planes narrower than
 * 16), or strides above 2, which gather. */
static TQ_AVX512 void tap_rows_general(const tap_src *ts, int stride, int halves,
                                       const float *plane, int64_t plane_len, int count,
                                       float *dst, int64_t dstep)
{
    const __m512i step = _mm512_mullo_epi32(
        _mm512_set1_epi32(stride),
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    for (int i = 0; i < count; i++, plane += plane_len, dst += dstep)
        for (int h = 0; h < halves; h++) {
            __m512 v = _mm512_setzero_ps();
            for (int r = 0; r < ts->n[h]; r++) {
                const float *src = plane + ts->off[h][r];
                v = stride == 1 ? _mm512_mask_loadu_ps(v, ts->mask[h][r], src)
                                : _mm512_mask_i32gather_ps(v, ts->mask[h][r], step, src, 4);
            }
            _mm512_store_ps(dst + 16 * h, v);
        }
}

/* Rows k0 .. k0+kc, columns j0 .. j0+nr of im2col(x) as one packed sliver (NR floats per k;
 * with nr <= 16 the kernel reads only the first 16). Filled tap by tap: a tap's sources are
 * worked out once and serve every channel, k = c*taps + tap. Masked-off lanes are never
 * read, so an offset may point before a row (or the plane). */
static TQ_AVX512 void conv_sliver(const conv_src *cv, int k0, int kc, int j0, int nr, float *dst)
{
    sliver_cols sc;
    sliver_runs(cv, j0, nr, &sc);
    const int taps = cv->kh * cv->kw, halves = nr > 16 ? 2 : 1;
    const int c_first = k0 / taps, c_last = (k0 + kc - 1) / taps;
    const int64_t plane_len = (int64_t)cv->H * cv->W;
    const int jn = j0 + NR; /* where the next sliver's sources are */
    const int64_t ahead =
        ((int64_t)(jn / cv->OW - j0 / cv->OW) * cv->W + (jn % cv->OW - j0 % cv->OW)) * cv->stride;
    for (int t = 0; t < taps; t++) {
        const int c0 = c_first + (c_first * taps + t < k0),
                  c1 = c_last - (c_last * taps + t >= k0 + kc);
        if (c0 > c1) continue;
        tap_src ts;
        tap_sources(cv, &sc, t / cv->kw, t % cv->kw, &ts);
        const float *plane = cv->x + c0 * plane_len;
        float *d = dst + (int64_t)(c0 * taps + t - k0) * NR;
        if (cv->stride <= 2 && ts.n[0] <= 1 && ts.n[1] <= 1)
            tap_rows_simple(&ts, cv->stride, halves, plane, plane_len, c1 - c0 + 1, ahead, d,
                            (int64_t)taps * NR);
        else
            tap_rows_general(&ts, cv->stride, halves, plane, plane_len, c1 - c0 + 1, d,
                             (int64_t)taps * NR);
    }
}

/* gemm_block for a convolution: the same loops and kernel calls, with each sliver of B built
 * from the input planes instead of read or packed from a stored matrix. */
static TQ_AVX512 void conv_block(const gemm_args *g, int i0, int i1, int j0, int j1)
{
    float *pa = pack_a_buf, *pb = pack_b_buf;
    for (int jc = j0; jc < j1; jc += NC) {
        const int nc = j1 - jc < NC ? j1 - jc : NC;
        for (int pc = 0; pc < g->K; pc += KC) {
            const int kc = g->K - pc < KC ? g->K - pc : KC;
            for (int ic = i0; ic < i1; ic += MC) {
                const int mc = i1 - ic < MC ? i1 - ic : MC;
                pack_a(g, ic, mc, pc, kc, pa);
                for (int jr = 0; jr < nc; jr += NR) {
                    const int nr = nc - jr < NR ? nc - jr : NR;
                    conv_sliver(g->conv, pc, kc, jc + jr, nr, pb);
                    for (int ir = 0; ir < mc; ir += MR)
                        kernel(kc, pa + (int64_t)ir * kc, pb, NR,
                               g->C + (int64_t)(ic + ir) * g->ldc + jc + jr, g->ldc,
                               mc - ir < MR ? mc - ir : MR, nr, g->alpha, g->beta, pc == 0);
                }
            }
        }
    }
}

/* C[i0 .. i1, j0 .. j1) on the calling thread. */
static TQ_AVX512 void gemm_block(const gemm_args *g, int i0, int i1, int j0, int j1)
{
    if (g->conv) {
        conv_block(g, i0, i1, j0, j1);
        return;
    }
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

bool tq_sgemm_conv(int M, const tq_conv_shape *shape, float alpha, const float *A, int lda,
                   const float *x, float beta, float *Y, int ldy)
{
    pthread_once(&g_backend_once, choose_backend);
#if TQ_HAVE_AVX512
    if (!g_use_avx512) return false;
    const tq_conv_shape *s = shape;
    const int eh = s->H + 2 * s->pad - s->kh, ew = s->W + 2 * s->pad - s->kw;
    const int OH = eh >= 0 && s->stride > 0 ? eh / s->stride + 1 : 0,
              OW = ew >= 0 && s->stride > 0 ? ew / s->stride + 1 : 0;
    const int N = OH * OW, K = s->C * s->kh * s->kw;
    if (M <= 0 || N <= 0) return true;
    if (K <= 0) { /* C = beta C, as tq_sgemm does; it reads neither A nor B */
        tq_sgemm(false, false, M, N, 0, alpha, A, lda, x, N, beta, Y, ldy);
        return true;
    }
    const conv_src cv = {.x = x, .C = s->C, .H = s->H, .W = s->W, .kh = s->kh, .kw = s->kw,
                         .stride = s->stride, .pad = s->pad, .OH = OH, .OW = OW};
    const gemm_args g = {.M = M, .N = N, .K = K, .alpha = alpha, .beta = beta, .A = A,
                         .C = Y, .lda = lda, .ldc = ldy, .conv = &cv};
    avx512_sgemm(&g);
    return true;
#else
    (void)M, (void)shape, (void)alpha, (void)A, (void)lda, (void)x, (void)beta, (void)Y, (void)ldy;
    return false;
#endif
}

void tq_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    pthread_once(&g_backend_once, choose_backend);
#if TQ_HAVE_AVX512
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
    tq_openblas_sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
