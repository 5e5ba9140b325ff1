/* u8 x s8 -> s32 products with AVX-512 VNNI (vpdpbusd): tiles of up to 12 rows of a by up
 * to 4 groups of 16 output channels held in registers, ending in an int32 store or in the
 * fused requantization of tq_qgemm_requant. */
#include "qgemm_internal.h"

#include <string.h>

/* The tests also compile this file over an emulation of the intrinsics (TQ_VNNI_EMULATED,
 * with TQ_VNNI_ROWS naming the entry point), so the kernels are checked on any CPU. */
#ifndef TQ_VNNI_EMULATED
#if TQ_HAVE_VNNI
#include <immintrin.h>
#define TQ_VNNI_ROWS tq_qgemm_vnni_rows
/* Optimized even in Debug builds, as autograd/avx512.h does: at -O0 every accumulator
 * lives on the stack and the sanitized tests crawl. */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__OPTIMIZE__)
#define TQ_VNNI \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"), optimize("O2")))
#else
#define TQ_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#endif
#endif
#endif

#if defined(TQ_VNNI_ROWS)

#define TQ_VNNI_INLINE TQ_VNNI inline __attribute__((always_inline))

/* acc += the four u8 x s8 products of each 32-bit lane of x and b. Written in assembly
 * where possible: with the intrinsic, GCC 12 copies every accumulator to another register
 * and back on each step, and spills some inside the loop. */
#ifdef TQ_VNNI_EMULATED
#define DPBUSD(acc, x, b) ((acc) = _mm512_dpbusd_epi32((acc), (x), (b)))
#else
#define DPBUSD(acc, x, b) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(b))
#endif

/* Rows of a kept in cache while every chunk of output groups passes over them: a multiple
 * of each tile height (12, 6). */
enum { PANEL = 96 };

static TQ_VNNI_INLINE __mmask16 lanes(int64_t n)
{
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

/* The requantization constants of one group of 16 output channels, split into even and odd
 * channels: vpmuldq multiplies the low 32 bits of each 64-bit lane, so each half holds
 * (mult, shift) pairs as they sit in memory, one channel per 64-bit lane. */
typedef struct epi_consts {
    __m512i bias, mult_even, mult_odd, shift_even, shift_odd, round_even, round_odd;
    __m512i frac_even, frac_odd; /* the fraction bits (all ones for shift 0): ties where 0 */
} epi_consts;

static TQ_VNNI_INLINE epi_consts epi_load(const tq_qepilogue *ep, int64_t j, __mmask16 m)
{
    epi_consts k;
    k.bias = ep->bias ? _mm512_maskz_loadu_epi32(m, ep->bias + j) : _mm512_setzero_si512();
    const __m512i p0 = _mm512_maskz_loadu_epi64((__mmask8)(m & 0xff), ep->rq + j),
                  p1 = _mm512_maskz_loadu_epi64((__mmask8)(m >> 8), ep->rq + j + 8);
    const __m512i even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14),
                  odd = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
    k.mult_even = _mm512_permutex2var_epi64(p0, even, p1);
    k.mult_odd = _mm512_permutex2var_epi64(p0, odd, p1);
    k.shift_even = _mm512_srli_epi64(k.mult_even, 32);
    k.shift_odd = _mm512_srli_epi64(k.mult_odd, 32);
    /* 2^(shift-1), and 0 for shift 0, as tq_requant_apply adds */
    const __m512i one = _mm512_set1_epi64(1);
    k.round_even = _mm512_srli_epi64(_mm512_sllv_epi64(one, k.shift_even), 1);
    k.round_odd = _mm512_srli_epi64(_mm512_sllv_epi64(one, k.shift_odd), 1);
    const __m512i fe = _mm512_sub_epi64(_mm512_sllv_epi64(one, k.shift_even), one),
                  fo = _mm512_sub_epi64(_mm512_sllv_epi64(one, k.shift_odd), one);
    k.frac_even = _mm512_mask_mov_epi64(fe, _mm512_testn_epi64_mask(fe, fe), _mm512_set1_epi64(-1));
    k.frac_odd = _mm512_mask_mov_epi64(fo, _mm512_testn_epi64_mask(fo, fo), _mm512_set1_epi64(-1));
    return k;
}

/* tq_qepilogue_value on 16 sums: 64-bit products, rounding shifts and clamps on the even
 * and odd channels, put back together as 32-bit lanes. */
static TQ_VNNI_INLINE __m512i epi_apply(__m512i acc, const epi_consts *k, __m512i lo,
                                        __m512i hi, __m512i offset)
{
    const __m512i v = _mm512_add_epi32(acc, k->bias);
    __m512i ye = _mm512_mul_epi32(v, k->mult_even),
            yo = _mm512_mul_epi32(_mm512_srli_epi64(v, 32), k->mult_odd);
    /* the half added, an arithmetic shift, and at an exact tie (no fraction bits) the even
     * neighbour: the lowest bit cleared, as tq_requant_apply */
    const __m512i te = _mm512_add_epi64(ye, k->round_even), to = _mm512_add_epi64(yo, k->round_odd);
    const __m512i even = _mm512_set1_epi64(~(int64_t)1);
    ye = _mm512_srav_epi64(te, k->shift_even);
    yo = _mm512_srav_epi64(to, k->shift_odd);
    ye = _mm512_mask_and_epi64(ye, _mm512_testn_epi64_mask(te, k->frac_even), ye, even);
    yo = _mm512_mask_and_epi64(yo, _mm512_testn_epi64_mask(to, k->frac_odd), yo, even);
    ye = _mm512_min_epi64(_mm512_max_epi64(ye, lo), hi);
    yo = _mm512_min_epi64(_mm512_max_epi64(yo, lo), hi);
    const __m512i y = _mm512_mask_blend_epi32((__mmask16)0xaaaa, ye, _mm512_slli_epi64(yo, 32));
    return _mm512_add_epi32(y, offset);
}

/* Where the tiles read and write: fixed for one chunk of output groups. */
typedef struct tile_args {
    int64_t steps, lda, gstride, j0, n, ldo, out_size;
    const int8_t *wg; /* the first group's weights */
    const tq_qepilogue *ep;
} tile_args;

/* The epilogue of one R x 16G tile whose sums are in sums (16G per row). */
static TQ_VNNI __attribute__((noinline)) void epilogue(int R, int G, const int32_t *sums,
                                                       const tile_args *t, uint8_t *y)
{
    const tq_qepilogue *ep = t->ep;
    const __m512i lo = _mm512_set1_epi64(ep->lo), hi = _mm512_set1_epi64(ep->hi),
                  offset = _mm512_set1_epi32(ep->offset);
    for (int g = 0; g < G; g++) {
        const int64_t j = t->j0 + 16 * g;
        const __mmask16 m = lanes(t->n - j);
        const epi_consts k = epi_load(ep, j, m);
        for (int r = 0; r < R; r++) {
            const __m512i acc = _mm512_load_si512(sums + (r * G + g) * 16);
            /* int8 and uint8 outputs are the same low bytes */
            _mm512_mask_cvtepi32_storeu_epi8(y + r * t->ldo + j, m,
                                              epi_apply(acc, &k, lo, hi, offset));
        }
    }
}

/* One tile: R rows of a (from row i) by G groups of 16 output channels from t->j0, over all
 * of k. Each step broadcasts 4 bytes of a row to every lane and multiplies them with the
 * 64-byte operand of each group: R + G loads for R * G vpdpbusd. acc is the caller's array
 * of R * G vectors, sized exactly so that the compiler keeps it in registers. */
static TQ_VNNI_INLINE void tile_body(const int R, const int G, __m512i *acc, const tile_args *t,
                                     const uint8_t *a, void *out)
{
    const int64_t lda = t->lda, gstride = t->gstride;
    const int8_t *wg = t->wg;
#pragma GCC unroll 64
    for (int r = 0; r < R * G; r++) acc[r] = _mm512_setzero_si512();
    for (int64_t s = 0; s < t->steps; s++) {
        __m512i b[4];
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) b[g] = _mm512_load_si512(wg + g * gstride + s * 64);
#pragma GCC unroll 16
        for (int r = 0; r < R; r++) {
            int32_t quad;
            memcpy(&quad, a + r * lda + 4 * s, 4);
            const __m512i x = _mm512_set1_epi32(quad);
#pragma GCC unroll 4
            for (int g = 0; g < G; g++) DPBUSD(acc[r * G + g], x, b[g]);
        }
    }
    /* The sums go to memory either way: with an epilogue, to a buffer it reads back in a
     * function of its own (with it inline, GCC spills the accumulators inside the loop). */
    int32_t sums[R * G * 16] __attribute__((aligned(64)));
    int32_t *c = t->ep ? sums : out;
    const int64_t ldc = t->ep ? 16 * G : t->ldo;
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
        const int64_t j = 16 * g;
        const __mmask16 m = t->ep ? (__mmask16)0xffff : lanes(t->n - t->j0 - j);
        int32_t *cg = t->ep ? c + j : c + t->j0 + j;
#pragma GCC unroll 16
        for (int r = 0; r < R; r++) _mm512_mask_storeu_epi32(cg + r * ldc, m, acc[r * G + g]);
    }
    if (t->ep) epilogue(R, G, sums, t, out);
}

/* One function per tile shape, each with its own exactly sized accumulators: inlined into
 * one large function, GCC spills them. */
#define DEFINE_TILE(R, G)                                                                 \
    static TQ_VNNI __attribute__((noinline)) void tile_##R##x##G(                        \
        const tile_args *t, const uint8_t *a, void *out)                                  \
    {                                                                                     \
        __m512i acc[R * G];                                                               \
        tile_body(R, G, acc, t, a, out);                                                  \
    }
DEFINE_TILE(6, 4)
DEFINE_TILE(12, 2)
DEFINE_TILE(12, 1)
DEFINE_TILE(4, 4)
DEFINE_TILE(4, 2)
DEFINE_TILE(4, 1)
DEFINE_TILE(2, 4)
DEFINE_TILE(2, 2)
DEFINE_TILE(2, 1)
DEFINE_TILE(1, 4)
DEFINE_TILE(1, 2)
DEFINE_TILE(1, 1)
#undef DEFINE_TILE

typedef void tile_fn(const tile_args *t, const uint8_t *a, void *out);

/* Rows i0 .. i1 against G groups from g0: full tiles of the first height, then 4, 2, 1. */
static TQ_VNNI void rows_by_groups(tile_fn *const heights[4], const int full, int64_t i0,
                                   int64_t i1, const uint8_t *a, int64_t lda,
                                   const tq_qweights *w, int64_t g0, const tq_qepilogue *ep,
                                   void *out, int64_t ldo)
{
    const int64_t steps = w->k4 / 4;
    const tile_args t = {.steps = steps, .lda = lda, .gstride = steps * 64, .j0 = 16 * g0,
                         .n = w->n, .ldo = ldo, .out_size = ep ? 1 : (int64_t)sizeof(int32_t),
                         .wg = w->data + g0 * steps * 64, .ep = ep};
    int64_t i = i0;
#define RUN(fn) fn(&t, a + i * lda, (char *)out + i * ldo * t.out_size)
    for (; i + full <= i1; i += full) RUN(heights[0]);
    for (; i + 4 <= i1; i += 4) RUN(heights[1]);
    if (i + 2 <= i1) {
        RUN(heights[2]);
        i += 2;
    }
    if (i < i1) RUN(heights[3]);
#undef RUN
}

void TQ_VNNI TQ_VNNI_ROWS(int64_t i0, int64_t i1, const uint8_t *a, int64_t lda,
                          const tq_qweights *w, const tq_qepilogue *ep, void *out, int64_t ldo)
{
    static tile_fn *const by4[4] = {tile_6x4, tile_4x4, tile_2x4, tile_1x4},
                          *const by2[4] = {tile_12x2, tile_4x2, tile_2x2, tile_1x2},
                          *const by1[4] = {tile_12x1, tile_4x1, tile_2x1, tile_1x1};
    const int64_t groups = w->n16 / 16;
    for (int64_t p0 = i0; p0 < i1; p0 += PANEL) {
        const int64_t p1 = i1 - p0 < PANEL ? i1 : p0 + PANEL;
        int64_t g = 0;
        for (; g + 4 <= groups; g += 4) rows_by_groups(by4, 6, p0, p1, a, lda, w, g, ep, out, ldo);
        if (groups - g >= 2) {
            rows_by_groups(by2, 12, p0, p1, a, lda, w, g, ep, out, ldo);
            g += 2;
        }
        if (g < groups) rows_by_groups(by1, 12, p0, p1, a, lda, w, g, ep, out, ldo);
    }
}

#endif
