/* u8 x s8 -> s32 products with AVX2 for CPUs without AVX-512 VNNI: codes widened to 16 bits
 * and multiplied in pairs by vpmaddwd, which is exact (255 * 128 * 2 fits an int32), unlike
 * vpmaddubsw, whose 16-bit pair sums saturate. Tiles of 2 rows of a by 16 output channels. */
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

/* Stores R rows of one tile from its pair sums: pairs added within 128-bit halves, then the
 * 64-bit quarters put in channel order; the int32 sums, or the epilogue's bytes. */
static TQ_AVX2 __attribute__((noinline)) void finish(int R, __m256i pairs[][4], int64_t j0,
                                                     const tq_qweights *w,
                                                     const tq_qepilogue *ep, void *out,
                                                     int64_t ldo)
{
    const int64_t nj = w->n - j0 < 16 ? w->n - j0 : 16;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int r = 0; r < R; r++) {
        const __m256i lo = _mm256_permute4x64_epi64(_mm256_hadd_epi32(pairs[r][0], pairs[r][1]), 0xd8),
                      hi = _mm256_permute4x64_epi64(_mm256_hadd_epi32(pairs[r][2], pairs[r][3]), 0xd8);
        if (!ep) {
            int32_t *c = (int32_t *)out + r * ldo + j0;
            if (nj == 16) {
                _mm256_storeu_si256((__m256i *)c, lo);
                _mm256_storeu_si256((__m256i *)(c + 8), hi);
            } else {
                _mm256_maskstore_epi32(c, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nj), lane), lo);
                _mm256_maskstore_epi32(c + 8,
                                       _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nj - 8), lane), hi);
            }
            continue;
        }
        int32_t sums[16];
        _mm256_storeu_si256((__m256i *)sums, lo);
        _mm256_storeu_si256((__m256i *)(sums + 8), hi);
        uint8_t *y = (uint8_t *)out + r * ldo + j0;
        for (int64_t j = 0; j < nj; j++) y[j] = (uint8_t)tq_qepilogue_value(sums[j], j0 + j, ep);
    }
}

/* One tile: R rows of a by the 16 output channels of one group, over all of k. Per step the
 * group's 64 bytes become four vectors of 16-bit codes (4 channels x 4 values of k each), a
 * row's 4 bytes are widened and repeated to match, and vpmaddwd leaves in each 32-bit lane
 * the sum of two products: lanes 2c and 2c+1 of vector q are the halves of channel 4q + c. */
static TQ_AVX2_INLINE void tile(const int R, int64_t steps, const uint8_t *a, int64_t lda,
                                const int8_t *wg, int64_t j0, const tq_qweights *w,
                                const tq_qepilogue *ep, void *out, int64_t ldo)
{
    __m256i acc[2][4];
    for (int r = 0; r < R; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = _mm256_setzero_si256();
    for (int64_t s = 0; s < steps; s++) {
        __m256i b[4];
        for (int q = 0; q < 4; q++)
            b[q] = _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)(wg + s * 64 + 16 * q)));
        for (int r = 0; r < R; r++) {
            int32_t quad;
            memcpy(&quad, a + r * lda + 4 * s, 4);
            const __m256i x = _mm256_cvtepu8_epi16(_mm_set1_epi32(quad));
            for (int q = 0; q < 4; q++)
                acc[r][q] = _mm256_add_epi32(acc[r][q], _mm256_madd_epi16(x, b[q]));
        }
    }
    /* to memory, and finished in a function of its own: with the code after the loop
     * inline, GCC copies the accumulators around and spills one inside the loop */
    __m256i pairs[2][4];
    for (int r = 0; r < R; r++)
        for (int q = 0; q < 4; q++) _mm256_store_si256(&pairs[r][q], acc[r][q]);
    finish(R, pairs, j0, w, ep, out, ldo);
}

static TQ_AVX2 __attribute__((noinline)) void tile2(int64_t steps, const uint8_t *a,
                                                    int64_t lda, const int8_t *wg, int64_t j0,
                                                    const tq_qweights *w,
                                                    const tq_qepilogue *ep, void *out,
                                                    int64_t ldo)
{
    tile(2, steps, a, lda, wg, j0, w, ep, out, ldo);
}

static TQ_AVX2 __attribute__((noinline)) void tile1(int64_t steps, const uint8_t *a,
                                                    int64_t lda, const int8_t *wg, int64_t j0,
                                                    const tq_qweights *w,
                                                    const tq_qepilogue *ep, void *out,
                                                    int64_t ldo)
{
    tile(1, steps, a, lda, wg, j0, w, ep, out, ldo);
}

/* Rows of a kept in cache while every group passes over them. */
enum { PANEL = 64 };

void TQ_AVX2 tq_qgemm_avx2_rows(int64_t i0, int64_t i1, const uint8_t *a, int64_t lda,
                                const tq_qweights *w, const tq_qepilogue *ep, void *out,
                                int64_t ldo)
{
    const int64_t steps = w->k4 / 4, groups = w->n16 / 16, out_size = ep ? 1 : 4;
    for (int64_t p0 = i0; p0 < i1; p0 += PANEL) {
        const int64_t p1 = i1 - p0 < PANEL ? i1 : p0 + PANEL;
        for (int64_t g = 0; g < groups; g++) {
            const int8_t *wg = w->data + g * steps * 64;
            int64_t i = p0;
            for (; i + 2 <= p1; i += 2)
                tile2(steps, a + i * lda, lda, wg, 16 * g, w, ep,
                      (char *)out + i * ldo * out_size, ldo);
            if (i < p1)
                tile1(steps, a + i * lda, lda, wg, 16 * g, w, ep,
                      (char *)out + i * ldo * out_size, ldo);
        }
    }
}

#endif
