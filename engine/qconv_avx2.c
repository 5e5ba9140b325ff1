/* The AVX2 direct convolution: tiles of up to 6 output pixels by 8 or 16 output channels, the
 * int32 sums of each in registers (vpmaddwd on a broadcast pair of taps against 8 channels'
 * pairs of weights), then the engine's requantization on 8 channels at once. */
#include "qconv_internal.h"

#if TQ_HAVE_QCONV_AVX2
#include <immintrin.h>
#include <string.h>

/* Optimized even in Debug builds, as autograd/avx512.h does. */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__OPTIMIZE__)
#define TQ_AVX2 __attribute__((target("avx2"), optimize("O2")))
#else
#define TQ_AVX2 __attribute__((target("avx2")))
#endif
#define TQ_AVX2_INLINE TQ_AVX2 inline __attribute__((always_inline))

enum { MAX_R = 6, MAX_Q = 2 };

/* Pixels (rows) per tile and groups of 8 channels per tile: 6 x 2 keeps 12 accumulators, 2
 * weight vectors and a broadcast in the 16 registers. */
static TQ_AVX2_INLINE void tile(const int R, const int Q, const int16_t *const *xr, int32_t k,
                                int64_t steps, int64_t tap_row_step, const int16_t *wg,
                                int64_t q_stride, int32_t sums[MAX_R][MAX_Q * 8])
{
    __m256i acc[MAX_R][MAX_Q];
    for (int r = 0; r < R; r++)
        for (int q = 0; q < Q; q++) acc[r][q] = _mm256_setzero_si256();
    for (int32_t ky = 0; ky < k; ky++) {
        const int16_t *p[MAX_R];
        for (int r = 0; r < R; r++) p[r] = xr[r] + ky * tap_row_step;
        const int16_t *wk = wg + ky * steps * 16;
        for (int64_t s = 0; s < steps; s++) {
            __m256i wv[MAX_Q];
            for (int q = 0; q < Q; q++)
                wv[q] = _mm256_load_si256((const __m256i *)(wk + q * q_stride + s * 16));
            for (int r = 0; r < R; r++) {
                int32_t pair;
                memcpy(&pair, p[r] + 2 * s, sizeof pair);
                const __m256i xb = _mm256_set1_epi32(pair);
                for (int q = 0; q < Q; q++)
                    acc[r][q] = _mm256_add_epi32(acc[r][q], _mm256_madd_epi16(xb, wv[q]));
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int q = 0; q < Q; q++) _mm256_storeu_si256((__m256i *)&sums[r][8 * q], acc[r][q]);
}

#define DEFINE_TILE(R, Q)                                                                       \
    static TQ_AVX2 __attribute__((noinline)) void tile_##R##x##Q(                              \
        const int16_t *const *xr, int32_t k, int64_t steps, int64_t tap_row_step,                \
        const int16_t *wg, int64_t q_stride, int32_t sums[MAX_R][MAX_Q * 8])                     \
    {                                                                                           \
        tile(R, Q, xr, k, steps, tap_row_step, wg, q_stride, sums);                              \
    }
DEFINE_TILE(1, 1)
DEFINE_TILE(2, 1)
DEFINE_TILE(3, 1)
DEFINE_TILE(4, 1)
DEFINE_TILE(5, 1)
DEFINE_TILE(6, 1)
DEFINE_TILE(1, 2)
DEFINE_TILE(2, 2)
DEFINE_TILE(3, 2)
DEFINE_TILE(4, 2)
DEFINE_TILE(5, 2)
DEFINE_TILE(6, 2)
#undef DEFINE_TILE

typedef void tile_fn(const int16_t *const *, int32_t, int64_t, int64_t, const int16_t *, int64_t,
                     int32_t[MAX_R][MAX_Q * 8]);
static tile_fn *const tiles[MAX_Q][MAX_R] = {
    {tile_1x1, tile_2x1, tile_3x1, tile_4x1, tile_5x1, tile_6x1},
    {tile_1x2, tile_2x2, tile_3x2, tile_4x2, tile_5x2, tile_6x2},
};

/* The epilogue's constants for channels o0 .. o0 + 7. vpmuldq multiplies the low 32 bits of
 * each 64-bit lane, so the even channels go through one product and the odd ones, shifted
 * down, through another; their multipliers and biases are split the same way. */
typedef struct epi8 {
    __m256i mult, mult_odd, bias_even, bias_odd;
} epi8;

static TQ_AVX2 void epi8_load(const tq_qconv_epilogue *ep, int64_t o0, epi8 *c)
{
    c->mult = _mm256_loadu_si256((const __m256i *)(ep->mult + o0));
    c->mult_odd = _mm256_srli_epi64(c->mult, 32);
    /* (b0, b2, b1, b3) and (b4, b6, b5, b7), then their low and high halves together */
    const __m256i lo = _mm256_permute4x64_epi64(_mm256_loadu_si256((const __m256i *)(ep->bias + o0)), 0xd8),
                  hi = _mm256_permute4x64_epi64(_mm256_loadu_si256((const __m256i *)(ep->bias + o0 + 4)), 0xd8);
    c->bias_even = _mm256_permute2x128_si256(lo, hi, 0x20);
    c->bias_odd = _mm256_permute2x128_si256(lo, hi, 0x31);
}

/* What the epilogue shares across channels. narrow: every value before the clamp, zp added,
 * fits an int32 (shift >= 32 makes |t >> shift - offset| < 2^30), so the clamp runs on
 * 32-bit lanes with zp folded into the offset and the bounds. */
typedef struct epi_ctx {
    bool narrow;
    __m128i shift;
    __m256i mask, offset64, offset32, lo64, hi64, lo32, hi32, zp, one, gather;
} epi_ctx;

static TQ_AVX2_INLINE __m256i clamp64(__m256i v, __m256i lo, __m256i hi)
{
    v = _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
    return _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
}

/* t >> shift of t = sum * mult + bias (positive by construction), less one where that is odd
 * and t had no fraction bits: half to even, as tq_qconv_value. */
static TQ_AVX2_INLINE __m256i round_even(__m256i t, const epi_ctx *c)
{
    const __m256i tie = _mm256_cmpeq_epi64(_mm256_and_si256(t, c->mask), _mm256_setzero_si256());
    return _mm256_andnot_si256(_mm256_and_si256(tie, c->one), _mm256_srl_epi64(t, c->shift));
}

/* 8 values (codes with zp), as int32 in order, from their t of the even and the odd lanes. */
static TQ_AVX2_INLINE __m256i round_clamp(__m256i te, __m256i to, const epi_ctx *c)
{
    __m256i ue = round_even(te, c), uo = round_even(to, c);
    if (c->narrow) {
        const __m256i v = _mm256_sub_epi32(_mm256_blend_epi32(ue, _mm256_slli_epi64(uo, 32), 0xaa),
                                           c->offset32);
        return _mm256_min_epi32(_mm256_max_epi32(v, c->lo32), c->hi32);
    }
    ue = clamp64(_mm256_sub_epi64(ue, c->offset64), c->lo64, c->hi64);
    uo = clamp64(_mm256_sub_epi64(uo, c->offset64), c->lo64, c->hi64);
    return _mm256_add_epi32(_mm256_blend_epi32(ue, _mm256_slli_epi64(uo, 32), 0xaa), c->zp);
}

/* 8 channels' values from their sums (codes with zp), as int32 in channel order. */
static TQ_AVX2_INLINE __m256i epi8_apply(__m256i sum, const epi8 *k, const epi_ctx *c)
{
    const __m256i te = _mm256_add_epi64(_mm256_mul_epi32(sum, k->mult), k->bias_even);
    const __m256i to = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(sum, 32), k->mult_odd),
                                        k->bias_odd);
    return round_clamp(te, to, c);
}

static TQ_AVX2 epi_ctx epi_ctx_make(const tq_qconv_epilogue *ep)
{
    const int64_t hi = ep->kind == TQ_QCONV_CODES ? ep->hi : INT32_MAX;
    return (epi_ctx){
        .narrow = ep->shift >= 32,
        .shift = _mm_cvtsi32_si128(ep->shift),
        .mask = _mm256_set1_epi64x((int64_t)ep->mask),
        .offset64 = _mm256_set1_epi64x(ep->offset),
        .offset32 = _mm256_set1_epi32((int32_t)(uint32_t)(ep->offset - ep->zp)), /* mod 2^32 */
        .lo64 = _mm256_set1_epi64x(ep->lo),
        .hi64 = _mm256_set1_epi64x(hi),
        .lo32 = _mm256_set1_epi32((int32_t)(ep->lo + ep->zp)),
        .hi32 = _mm256_set1_epi32((int32_t)(hi + ep->zp)),
        .zp = _mm256_set1_epi32(ep->zp),
        .one = _mm256_set1_epi64x(1),
        .gather = _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0),
    };
}

/* 8 values (codes or fine) to out + j. */
static TQ_AVX2_INLINE void store8(__m256i y, const epi_ctx *c, tq_qconv_out kind, void *out, int64_t j)
{
    if (kind != TQ_QCONV_CODES) {
        _mm256_storeu_si256((__m256i *)((int32_t *)out + j), y);
        return;
    }
    const __m256i w16 = _mm256_packus_epi32(y, y), b8 = _mm256_packus_epi16(w16, w16);
    _mm_storel_epi64((__m128i *)((uint8_t *)out + j),
                     _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(b8, c->gather)));
}

static void store_tail(const tq_qconv_epilogue *ep, int64_t j, int64_t v, void *out)
{
    if (ep->kind == TQ_QCONV_CODES) ((uint8_t *)out)[j] = (uint8_t)v;
    else ((int32_t *)out)[j] = (int32_t)v;
}

void TQ_AVX2 tq_qconv_requant_avx2(const int32_t *a, int64_t count, int64_t period,
                                   const tq_qconv_epilogue *ep, void *out)
{
    const epi_ctx c = epi_ctx_make(ep);
    epi8 ks[8]; /* the constants of a period of up to 64 channels, loaded once */
    const bool kept = period <= 64;
    for (int64_t o = 0; kept && o < period; o += 8) epi8_load(ep, o, &ks[o / 8]);
    int64_t j = 0;
    for (; j + 8 <= count; j += 8) {
        const int64_t o = j % period;
        epi8 k;
        if (!kept) epi8_load(ep, o, &k);
        const __m256i y = epi8_apply(_mm256_loadu_si256((const __m256i *)(a + j)), kept ? &ks[o / 8] : &k, &c);
        store8(y, &c, ep->kind, out, j);
    }
    for (; j < count; j++) store_tail(ep, j, tq_qconv_value(a[j], j % period, ep), out);
}

void TQ_AVX2 tq_qconv_add_avx2(const int32_t *a, const int32_t *b, int64_t count, int32_t ma,
                               int32_t mb, int64_t bias, const tq_qconv_epilogue *ep, void *out)
{
    const epi_ctx c = epi_ctx_make(ep);
    const __m256i va = _mm256_set1_epi32(ma), vb = _mm256_set1_epi32(mb),
                  vbias = _mm256_set1_epi64x(bias);
    int64_t j = 0;
    for (; j + 8 <= count; j += 8) {
        const __m256i x = _mm256_loadu_si256((const __m256i *)(a + j)),
                      y = _mm256_loadu_si256((const __m256i *)(b + j));
        const __m256i te = _mm256_add_epi64(
            _mm256_add_epi64(_mm256_mul_epi32(x, va), _mm256_mul_epi32(y, vb)), vbias);
        const __m256i to = _mm256_add_epi64(
            _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), va),
                             _mm256_mul_epi32(_mm256_srli_epi64(y, 32), vb)),
            vbias);
        store8(round_clamp(te, to, &c), &c, ep->kind, out, j);
    }
    for (; j < count; j++)
        store_tail(ep, j, tq_qconv_round((int64_t)a[j] * ma + (int64_t)b[j] * mb + bias, ep), out);
}

/* Stores the first count (< 8) of 8 values of `size` bytes each: a loop, not a call to memcpy
 * (GCC turns such loops into one unless told not to). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif
static void store_part(void *dst, const void *src, int64_t count, size_t size)
{
    for (size_t i = 0; i < (size_t)count * size; i++) ((char *)dst)[i] = ((const char *)src)[i];
}

/* Stores R rows x Q groups of 8 channels (from o0) of sums through the epilogue; k holds the
 * groups' constants. A row's last group, when partial, is stored whole where `spill` rows
 * allow: its extra lanes land on the next row's first channels, stored after it (rows in
 * order, each row's groups in order), or in the row's own slack. */
static TQ_AVX2 __attribute__((noinline)) void finish(int R, int Q, int32_t sums[MAX_R][MAX_Q * 8],
                                                     const tq_qconv_epilogue *ep, const epi_ctx *c,
                                                     const epi8 *k, int64_t n, int64_t o0,
                                                     void *const *out, int spill)
{
    const size_t size = ep->kind == TQ_QCONV_CODES ? 1 : sizeof(int32_t);
    for (int r = 0; r < R; r++)
        for (int q = 0; q < Q; q++) {
            const int64_t o = o0 + 8 * q, count = n - o < 8 ? n - o : 8;
            const bool whole = count == 8 || r < spill;
            __m256i y = _mm256_loadu_si256((const __m256i *)&sums[r][8 * q]);
            if (ep->kind != TQ_QCONV_SUMS) y = epi8_apply(y, &k[q], c);
            char *dst = (char *)out[r] + (size_t)(8 * q) * size;
            if (ep->kind != TQ_QCONV_CODES) {
                if (whole) {
                    _mm256_storeu_si256((__m256i *)dst, y);
                } else {
                    int32_t part[8];
                    _mm256_storeu_si256((__m256i *)part, y);
                    store_part(dst, part, count, size);
                }
                continue;
            }
            /* codes in [0, 255]: to bytes, channels 0-3 in the low half, 4-7 in the high one,
             * then the two halves' first 4 bytes together */
            const __m256i w16 = _mm256_packus_epi32(y, y), b8 = _mm256_packus_epi16(w16, w16);
            const __m128i bytes = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(b8, c->gather));
            if (whole) {
                _mm_storel_epi64((__m128i *)dst, bytes);
            } else {
                uint8_t part[8];
                _mm_storel_epi64((__m128i *)part, bytes);
                store_part(dst, part, count, 1);
            }
        }
}

/* The rows of a convolution with its 2x2 max pool fused: a tile of the 4 pixels of one pooled
 * pixel, their sums' maximum, one epilogue. */
static TQ_AVX2 void pooled(const tq_qconv_weights *w, const tq_qconv_epilogue *ep,
                           const epi_ctx *c, const epi8 *k, const int16_t *x,
                           const tq_qconv_geom *g, int64_t grp, int Q, const int16_t *wg,
                           int64_t q_stride, void *out)
{
    const size_t out_size = ep->kind == TQ_QCONV_CODES ? 1 : sizeof(int32_t);
    const bool own_slot = 8 * w->n8 <= g->out_stride,
               next_row = w->n8 <= MAX_Q && 8 * w->n8 <= g->out_stride + w->n;
    int64_t py = 0, px = 0;
    for (int64_t r = 0; r < g->rows; r++) {
        const int16_t *at = x + 2 * py * g->line_step + 2 * px * g->pixel_step;
        const int16_t *xr[4] = {at, at + g->pixel_step, at + g->line_step,
                                at + g->line_step + g->pixel_step};
        int32_t sums[MAX_R][MAX_Q * 8];
        tiles[Q - 1][3](xr, w->k, w->steps, g->tap_row_step, wg, q_stride, sums);
        for (int q = 0; q < Q; q++) {
            __m256i m = _mm256_loadu_si256((const __m256i *)&sums[0][8 * q]);
            for (int win = 1; win < 4; win++)
                m = _mm256_max_epi32(m, _mm256_loadu_si256((const __m256i *)&sums[win][8 * q]));
            _mm256_storeu_si256((__m256i *)&sums[0][8 * q], m);
        }
        void *dst = (char *)out + (size_t)(r * g->out_stride + 8 * grp) * out_size;
        finish(1, Q, sums, ep, c, k, w->n, 8 * grp, &dst, own_slot || (next_row && r + 1 < g->rows));
        if (++px == g->out_w) {
            px = 0;
            py++;
        }
    }
}

void TQ_AVX2 tq_qconv_run_avx2(const tq_qconv_weights *w, const tq_qconv_epilogue *ep,
                               const int16_t *x, const tq_qconv_geom *g, void *out)
{
    const epi_ctx c = epi_ctx_make(ep);
    const size_t out_size = ep->kind == TQ_QCONV_CODES ? 1 : sizeof(int32_t);
    const int64_t q_stride = (int64_t)w->k * w->steps * 16;
    /* one or two groups at a time over every row, so that their weights stay in L1 */
    for (int64_t grp = 0; grp < w->n8; grp += MAX_Q) {
        const int Q = w->n8 - grp < MAX_Q ? (int)(w->n8 - grp) : MAX_Q;
        const int16_t *wg = w->data + grp * q_stride;
        epi8 k[MAX_Q];
        for (int q = 0; ep->kind != TQ_QCONV_SUMS && q < Q; q++) epi8_load(ep, 8 * (grp + q), &k[q]);
        if (g->pool2) {
            pooled(w, ep, &c, k, x, g, grp, Q, wg, q_stride, out);
            continue;
        }
        int64_t oy = 0, ox = 0;
        for (int64_t r0 = 0; r0 < g->rows; r0 += MAX_R) {
            const int R = g->rows - r0 < MAX_R ? (int)(g->rows - r0) : MAX_R;
            const int16_t *xr[MAX_R];
            void *dst[MAX_R];
            for (int r = 0; r < R; r++) {
                xr[r] = x + oy * g->line_step + ox * g->pixel_step;
                dst[r] = (char *)out + (size_t)((r0 + r) * g->out_stride + 8 * grp) * out_size;
                if (++ox == g->out_w) {
                    ox = 0;
                    oy++;
                }
            }
            /* rows whose partial group may be stored whole: all where a row's slot holds the
             * whole groups, else those before the last row when one pass stores every group
             * and the extra lanes reach no further than the next row's outputs */
            const int spill = 8 * w->n8 <= g->out_stride ? R
                              : w->n8 <= MAX_Q && 8 * w->n8 <= g->out_stride + w->n
                                  ? (r0 + R < g->rows ? R : R - 1)
                                  : 0;
            int32_t sums[MAX_R][MAX_Q * 8];
            tiles[Q - 1][R - 1](xr, w->k, w->steps, g->tap_row_step, wg, q_stride, sums);
            finish(R, Q, sums, ep, &c, k, w->n, 8 * grp, dst, spill);
        }
    }
}
#endif
