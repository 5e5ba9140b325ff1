/* u8 x s8 -> s32 products with AVX2 for CPUs without AVX-512 VNNI: codes widened to 16 bits
 * and multiplied in pairs by vpmaddwd, which is exact (255 * 128 * 2 fits an int32), unlike
 * vpmaddubsw, whose 16-bit pair sums saturate. Tiles of 2 rows of a by 16 output channels
 * (4 rows by 8 where a group has at most 8), ending in an int32 store or in the fused
 * requantization of tq_qgemm_requant. */
#include "qgemm_internal.h"

#include <string.h>

#if TQ_HAVE_AVX2
#include <immintrin.h>

/* Optimized even in Debug builds, as autograd/avx512.h does. */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__OPTIMIZE__)
#define TQ_AVX2 __attribute__((target("avx2"), optimize("O2")))
#else
#define TQ_AVX2 __attribute__((target("avx2")))
#endif
#define TQ_AVX2_INLINE TQ_AVX2 inline __attribute__((always_inline))

/* The epilogue's constants for 8 output channels, split into even and odd channels:
 * vpmuldq multiplies the low 32 bits of each 64-bit lane, so each half holds (mult, shift)
 * pairs as they sit in memory, one channel per 64-bit lane. */
typedef struct epi8 {
    __m256i bias, mult_even, mult_odd, shift_even, shift_odd, round_even, round_odd;
    __m256i frac_even, frac_odd; /* 2^shift - 1: the fraction bits, 0 where they mark a tie */
} epi8;

/* What the tiles of one group of 16 output channels share. */
typedef struct group_ctx {
    int64_t j0, nj; /* first channel, channels stored (16 but at the right edge) */
    __m256i mask_lo, mask_hi; /* lanes of the two halves that are stored */
    const tq_qepilogue *ep;
    epi8 epi[2];
    __m256i lo, hi, offset;
} group_ctx;

static TQ_AVX2 void epi8_load(const tq_qepilogue *ep, int64_t j, int nj, __m256i mask, epi8 *k)
{
    k->bias = ep->bias ? _mm256_maskload_epi32(ep->bias + j, mask) : _mm256_setzero_si256();
    /* (mult, shift) of channels 0-3 and 4-7, missing ones 0 */
    int64_t pairs[8] = {0};
    memcpy(pairs, ep->rq + j, (size_t)(nj < 8 ? nj : 8) * sizeof *ep->rq);
    const __m256i p0 = _mm256_loadu_si256((const __m256i *)pairs),
                  p1 = _mm256_loadu_si256((const __m256i *)(pairs + 4));
    /* 64-bit quarters (0, 2, 1, 3) of each, then the low and the high halves together */
    const __m256i q0 = _mm256_permute4x64_epi64(p0, 0xd8), q1 = _mm256_permute4x64_epi64(p1, 0xd8);
    k->mult_even = _mm256_permute2x128_si256(q0, q1, 0x20); /* channels 0, 2, 4, 6 */
    k->mult_odd = _mm256_permute2x128_si256(q0, q1, 0x31);  /* channels 1, 3, 5, 7 */
    k->shift_even = _mm256_srli_epi64(k->mult_even, 32);
    k->shift_odd = _mm256_srli_epi64(k->mult_odd, 32);
    /* 2^(shift-1), and 0 for shift 0, as tq_requant_apply adds */
    const __m256i one = _mm256_set1_epi64x(1);
    k->round_even = _mm256_srli_epi64(_mm256_sllv_epi64(one, k->shift_even), 1);
    k->round_odd = _mm256_srli_epi64(_mm256_sllv_epi64(one, k->shift_odd), 1);
    /* shift 0 has no fraction bits: all ones there, so that only t = 0 (even) counts as a tie */
    const __m256i fe = _mm256_sub_epi64(_mm256_sllv_epi64(one, k->shift_even), one),
                  fo = _mm256_sub_epi64(_mm256_sllv_epi64(one, k->shift_odd), one);
    k->frac_even = _mm256_or_si256(fe, _mm256_cmpeq_epi64(fe, _mm256_setzero_si256()));
    k->frac_odd = _mm256_or_si256(fo, _mm256_cmpeq_epi64(fo, _mm256_setzero_si256()));
}

/* t >> shift (arithmetic), the lowest bit cleared where t had no fraction bits: with the half
 * added to t before, round half to even, as tq_requant_apply. */
static TQ_AVX2_INLINE __m256i shift_half_even(__m256i t, __m256i shift, __m256i frac)
{
    const __m256i sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), t);
    const __m256i r = _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(t, sign), shift), sign);
    const __m256i tie = _mm256_cmpeq_epi64(_mm256_and_si256(t, frac), _mm256_setzero_si256());
    return _mm256_andnot_si256(_mm256_and_si256(tie, _mm256_set1_epi64x(1)), r);
}

static TQ_AVX2_INLINE __m256i clamp64(__m256i y, __m256i lo, __m256i hi)
{
    y = _mm256_blendv_epi8(y, lo, _mm256_cmpgt_epi64(lo, y));
    return _mm256_blendv_epi8(y, hi, _mm256_cmpgt_epi64(y, hi));
}

/* tq_qepilogue_value on 8 sums, in channel order. */
static TQ_AVX2_INLINE __m256i epi8_apply(__m256i sum, const epi8 *k, const group_ctx *g)
{
    const __m256i v = _mm256_add_epi32(sum, k->bias);
    __m256i ye = _mm256_mul_epi32(v, k->mult_even),
            yo = _mm256_mul_epi32(_mm256_srli_epi64(v, 32), k->mult_odd);
    ye = clamp64(shift_half_even(_mm256_add_epi64(ye, k->round_even), k->shift_even, k->frac_even),
                 g->lo, g->hi);
    yo = clamp64(shift_half_even(_mm256_add_epi64(yo, k->round_odd), k->shift_odd, k->frac_odd),
                 g->lo, g->hi);
    return _mm256_add_epi32(_mm256_blend_epi32(ye, _mm256_slli_epi64(yo, 32), 0xaa), g->offset);
}

static TQ_AVX2 void group_ctx_init(group_ctx *g, const tq_qweights *w, int64_t j0,
                                   const tq_qepilogue *ep)
{
    g->j0 = j0;
    g->nj = w->n - j0 < 16 ? w->n - j0 : 16;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    g->mask_lo = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)g->nj), lane);
    g->mask_hi = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)g->nj - 8), lane);
    g->ep = ep;
    if (!ep) return;
    epi8_load(ep, j0, (int)g->nj, g->mask_lo, &g->epi[0]);
    if (g->nj > 8)
        epi8_load(ep, j0 + 8, (int)g->nj - 8, g->mask_hi, &g->epi[1]);
    else
        g->epi[1] = g->epi[0]; /* no channel stored: any constants do */
    g->lo = _mm256_set1_epi64x(ep->lo);
    g->hi = _mm256_set1_epi64x(ep->hi);
    g->offset = _mm256_set1_epi32(ep->offset);
}

/* Stores R rows of one tile from its pair sums: pairs added within 128-bit halves, then the
 * 64-bit quarters put in channel order; the int32 sums, or the epilogue's bytes. */
static TQ_AVX2 __attribute__((noinline)) void finish(int R, int Q, __m256i pairs[][4],
                                                     const group_ctx *g, void *out, int64_t ldo)
{
    /* byte 0 of each 32-bit lane to the low 4 bytes of its 128-bit half */
    const __m256i low_bytes = _mm256_setr_epi8(
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i gather = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int r = 0; r < R; r++) {
        __m256i lo = _mm256_permute4x64_epi64(_mm256_hadd_epi32(pairs[r][0], pairs[r][1]), 0xd8),
                hi = Q == 4 ? _mm256_permute4x64_epi64(
                                  _mm256_hadd_epi32(pairs[r][2], pairs[r][3]), 0xd8)
                            : _mm256_setzero_si256();
        if (!g->ep) {
            int32_t *c = (int32_t *)out + r * ldo + g->j0;
            if (g->nj == 16) {
                _mm256_storeu_si256((__m256i *)c, lo);
                _mm256_storeu_si256((__m256i *)(c + 8), hi);
            } else { /* vpmaskmovd stores are slow on some CPUs (AMD's): copy the edge */
                int32_t sums[16];
                _mm256_storeu_si256((__m256i *)sums, lo);
                _mm256_storeu_si256((__m256i *)(sums + 8), hi);
                for (int64_t j = 0; j < g->nj; j++) c[j] = sums[j];
            }
            continue;
        }
        lo = _mm256_shuffle_epi8(epi8_apply(lo, &g->epi[0], g), low_bytes);
        hi = _mm256_shuffle_epi8(epi8_apply(hi, &g->epi[1], g), low_bytes);
        /* dwords lo.0 lo.4 hi.0 hi.4: the 16 bytes in channel order */
        const __m256i both = _mm256_permutevar8x32_epi32(_mm256_unpacklo_epi32(lo, hi), gather);
        uint8_t *y = (uint8_t *)out + r * ldo + g->j0;
        if (g->nj == 16) {
            _mm_storeu_si128((__m128i *)y, _mm256_castsi256_si128(both));
        } else {
            uint8_t bytes[16];
            _mm_storeu_si128((__m128i *)bytes, _mm256_castsi256_si128(both));
            memcpy(y, bytes, (size_t)g->nj);
        }
    }
}

/* One tile: R rows of a by Q quarters (4 channels each) of one group, over all of k. Per
 * step the quarters' 16-byte slices of the group's 64 bytes become vectors of 16-bit codes
 * (4 channels x 4 values of k), a row's 4 bytes are widened and repeated to match, and
 * vpmaddwd leaves in each 32-bit lane the sum of two products: lanes 2c and 2c+1 of vector
 * q are the halves of channel 4q + c. Q = 2 serves a group of at most 8 channels (LeNet-5's
 * first convolution has 6) with half the work and twice the rows. */
static TQ_AVX2_INLINE void tile(const int R, const int Q, int64_t steps, const uint8_t *a,
                                int64_t lda, const int8_t *wg, const group_ctx *g, void *out,
                                int64_t ldo)
{
    __m256i acc[4][4];
    for (int r = 0; r < R; r++)
        for (int q = 0; q < Q; q++) acc[r][q] = _mm256_setzero_si256();
    for (int64_t s = 0; s < steps; s++) {
        __m256i b[4];
        for (int q = 0; q < Q; q++)
            b[q] = _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)(wg + s * 64 + 16 * q)));
        for (int r = 0; r < R; r++) {
            int32_t quad;
            memcpy(&quad, a + r * lda + 4 * s, 4);
            const __m256i x = _mm256_cvtepu8_epi16(_mm_set1_epi32(quad));
            for (int q = 0; q < Q; q++)
                acc[r][q] = _mm256_add_epi32(acc[r][q], _mm256_madd_epi16(x, b[q]));
        }
    }
    /* to memory, and finished in a function of its own: with the code after the loop
     * inline, GCC copies the accumulators around and spills one inside the loop */
    __m256i pairs[4][4];
    for (int r = 0; r < R; r++)
        for (int q = 0; q < Q; q++) _mm256_store_si256(&pairs[r][q], acc[r][q]);
    finish(R, Q, pairs, g, out, ldo);
}

/* One function per tile shape, each with its own exactly sized accumulators. */
#define DEFINE_TILE(R, Q)                                                                 \
    static TQ_AVX2 __attribute__((noinline)) void tile_##R##x##Q(                        \
        int64_t steps, const uint8_t *a, int64_t lda, const int8_t *wg,                   \
        const group_ctx *g, void *out, int64_t ldo)                                       \
    {                                                                                     \
        tile(R, Q, steps, a, lda, wg, g, out, ldo);                                       \
    }
DEFINE_TILE(2, 4)
DEFINE_TILE(1, 4)
DEFINE_TILE(4, 2)
DEFINE_TILE(1, 2)
#undef DEFINE_TILE

/* Rows of a kept in cache while every group passes over them. */
enum { PANEL = 64 };

void TQ_AVX2 tq_qgemm_avx2_rows(int64_t i0, int64_t i1, const uint8_t *a, int64_t lda,
                                const tq_qweights *w, const tq_qepilogue *ep, void *out,
                                int64_t ldo)
{
    const int64_t steps = w->k4 / 4, groups = w->n16 / 16, out_size = ep ? 1 : 4;
    for (int64_t p0 = i0; p0 < i1; p0 += PANEL) {
        const int64_t p1 = i1 - p0 < PANEL ? i1 : p0 + PANEL;
        for (int64_t gi = 0; gi < groups; gi++) {
            group_ctx g;
            group_ctx_init(&g, w, 16 * gi, ep);
            const int8_t *wg = w->data + gi * steps * 64;
            const bool half = g.nj <= 8;
            int64_t i = p0;
#define RUN(fn) fn(steps, a + i * lda, lda, wg, &g, (char *)out + i * ldo * out_size, ldo)
            if (half)
                for (; i + 4 <= p1; i += 4) RUN(tile_4x2);
            for (; i + 2 <= p1; i += 2) RUN(tile_2x4);
            for (; i < p1; i++) {
                if (half)
                    RUN(tile_1x2);
                else
                    RUN(tile_1x4);
            }
#undef RUN
        }
    }
}

#endif
