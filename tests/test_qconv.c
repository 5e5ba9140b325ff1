/* Check suite for the direct convolutions on 16-bit codes (engine/qconv.h): the plain C path
 * and the AVX2 one (where the CPU has AVX2) against an independent direct convolution in
 * int64 over random shapes and edges (odd kernel rows, channel counts not a multiple of 8,
 * strides, padding, the extreme codes and weights), equal to the bit; the epilogue against
 * the engine's tq_rowquant (the same rounding, half to even, and clamps) on both the 32-bit
 * and the 64-bit clamp, and its exact ties; a fused 2x2 max pool against pooling the outputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "qconv_internal.h"
#include "tq_test.h"

enum { PATH_REF, PATH_DISPATCHED, PATH_AVX2, N_PATHS };

static bool have_avx2(void)
{
#if TQ_HAVE_QCONV_AVX2
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
#else
    return false;
#endif
}

static void run_path(int path, const tq_qconv_weights *w, const tq_qconv_epilogue *ep,
                     const int16_t *x, const tq_qconv_geom *g, void *out)
{
    if (path == PATH_REF) tq_qconv_run_ref(w, ep, x, g, out);
    else if (path == PATH_DISPATCHED) tq_qconv_run(w, ep, x, g, out);
#if TQ_HAVE_QCONV_AVX2
    else tq_qconv_run_avx2(w, ep, x, g, out);
#endif
}

/* A random layer: n channels, k x k kernel over C channels, stride, on an image of h x w
 * padded by pad; codes of an int8 (zp 128) or uint8 input, weights int8. */
typedef struct layer {
    int64_t n, C, h, w, pad, stride, k, oh, ow, hp, wp;
    int16_t *x;       /* padded, centered, 16 elements of slack */
    int8_t *weights;  /* (n, k, k, C) */
    tq_qconv_weights packed;
    tq_rowquant rq;
    int32_t *mult;    /* rq's first n values and zeros to n8 * 8 */
    int64_t *bias;
} layer;

typedef enum fill { FILL_RANDOM, FILL_MAX, FILL_MIN } fill;

static void layer_make(layer *L, tq_rng *rng, int64_t n, int64_t C, int64_t h, int64_t w,
                       int64_t k, int64_t stride, int64_t pad, bool unsigned_in, fill how,
                       double scale)
{
    memset(L, 0, sizeof *L);
    L->n = n, L->C = C, L->h = h, L->w = w, L->k = k, L->stride = stride, L->pad = pad;
    L->hp = h + 2 * pad, L->wp = w + 2 * pad;
    L->oh = (L->hp - k) / stride + 1, L->ow = (L->wp - k) / stride + 1;
    const int64_t xs = L->hp * L->wp * C + 16;
    L->x = calloc((size_t)xs, sizeof *L->x);
    L->weights = malloc((size_t)(n * k * k * C));
    ck_assert(L->x && L->weights);
    const int lo = unsigned_in ? 0 : -128, hi = unsigned_in ? 255 : 127;
    for (int64_t y = 0; y < h; y++)
        for (int64_t i = 0; i < w * C; i++)
            L->x[((y + pad) * L->wp + pad) * C + i] =
                (int16_t)(how == FILL_RANDOM ? lo + (int)tq_rng_below(rng, (uint32_t)(hi - lo + 1))
                          : how == FILL_MAX  ? hi
                                             : lo);
    /* the slack is read against zero weights: any value */
    for (int64_t i = L->hp * L->wp * C; i < xs; i++) L->x[i] = (int16_t)(tq_rng_below(rng, 512) - 256);
    for (int64_t i = 0; i < n * k * k * C; i++)
        L->weights[i] = how == FILL_MAX ? 127 : how == FILL_MIN ? -128
                                                               : (int8_t)(tq_rng_below(rng, 256) - 128);
    tq_error err = {0};
    ck_assert_int_eq(tq_qconv_weights_pack(L->weights, n, (int32_t)k, k * C, &L->packed, &err),
                     TQ_STATUS_OK);
    double *m = malloc((size_t)n * sizeof *m), *c = malloc((size_t)n * sizeof *c);
    ck_assert(m && c);
    for (int64_t o = 0; o < n; o++) {
        m[o] = scale * (0.2 + tq_rng_uniform(rng)) * (o % 5 == 4 ? -1.0 : 1.0);
        c[o] = (tq_rng_uniform(rng) - 0.5) * 40.0;
    }
    ck_assert_int_eq(tq_rowquant_make(&L->rq, m, c, NULL, 0, n, &err), TQ_STATUS_OK);
    L->mult = calloc((size_t)(L->packed.n8 * 8), sizeof *L->mult);
    L->bias = calloc((size_t)(L->packed.n8 * 8), sizeof *L->bias);
    ck_assert(L->mult && L->bias);
    memcpy(L->mult, L->rq.mult, (size_t)n * sizeof *L->mult);
    memcpy(L->bias, L->rq.bias, (size_t)n * sizeof *L->bias);
    free(m);
    free(c);
}

static void layer_free(layer *L)
{
    free(L->x);
    free(L->weights);
    free(L->mult);
    free(L->bias);
    tq_qconv_weights_free(&L->packed);
    tq_rowquant_free(&L->rq);
}

static tq_qconv_geom layer_geom(const layer *L, int64_t out_stride)
{
    return (tq_qconv_geom){.rows = L->oh * L->ow, .out_w = (int32_t)L->ow,
                           .pixel_step = L->stride * L->C, .line_step = L->stride * L->wp * L->C,
                           .tap_row_step = L->wp * L->C, .out_stride = out_stride};
}

/* The sums of a plain direct convolution, int64, from the unpacked weights. */
static int64_t direct_sum(const layer *L, int64_t oy, int64_t ox, int64_t o)
{
    int64_t acc = 0;
    for (int64_t ky = 0; ky < L->k; ky++)
        for (int64_t kx = 0; kx < L->k; kx++)
            for (int64_t c = 0; c < L->C; c++)
                acc += (int64_t)L->x[((oy * L->stride + ky) * L->wp + ox * L->stride + kx) * L->C + c] *
                       L->weights[((o * L->k + ky) * L->k + kx) * L->C + c];
    return acc;
}

/* Every path and output kind against the direct sums, the epilogue's values of them, and
 * tq_rowquant's on the same sums; a row's slot past its last group of 8 stays untouched, and
 * with rows packed n apart (a convolution's), the junk past n lands only where it is
 * overwritten. */
static void check_layer_at(const layer *L, const char *what, int64_t stride)
{
    const int64_t rows = L->oh * L->ow;
    int32_t *sums = malloc((size_t)(rows * L->n) * sizeof *sums);
    ck_assert_ptr_nonnull(sums);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < L->n; o++) {
            const int64_t s = direct_sum(L, r / L->ow, r % L->ow, o);
            ck_assert(s > INT32_MIN && s < INT32_MAX);
            sums[r * L->n + o] = (int32_t)s;
        }
    const tq_qconv_geom g = layer_geom(L, stride);
    for (int kind = TQ_QCONV_CODES; kind <= TQ_QCONV_SUMS; kind++) {
        const bool relu = L->n % 2;
        const tq_qconv_epilogue ep = {
            .kind = (tq_qconv_out)kind, .mult = L->mult, .bias = L->bias, .shift = L->rq.shift,
            .offset = L->rq.offset, .mask = L->rq.mask,
            .lo = kind == TQ_QCONV_CODES ? (relu ? 0 : -128) : relu ? 0 : INT32_MIN,
            .hi = kind == TQ_QCONV_CODES ? 127 : INT32_MAX, .zp = kind == TQ_QCONV_CODES ? 128 : 0};
        /* what tq_rowquant makes of the same sums, row by row */
        uint8_t *want8 = malloc((size_t)(rows * L->n));
        int32_t *want32 = malloc((size_t)(rows * L->n) * sizeof *want32);
        ck_assert(want8 && want32);
        for (int64_t r = 0; r < rows; r++) {
            const int32_t *a = sums + r * L->n;
            if (kind == TQ_QCONV_CODES)
                tq_rowquant_codes_ref(a, L->n, &L->rq, ep.lo, ep.hi, ep.zp, want8 + r * L->n);
            else if (kind == TQ_QCONV_FINE)
                tq_rowquant_fine_ref(a, L->n, &L->rq, ep.lo, want32 + r * L->n);
            else
                memcpy(want32 + r * L->n, a, (size_t)L->n * sizeof *a);
        }
        for (int path = 0; path < N_PATHS; path++) {
            if (path == PATH_AVX2 && !have_avx2()) continue;
            const size_t size = kind == TQ_QCONV_CODES ? 1 : 4;
            uint8_t *out = malloc((size_t)(rows * stride) * size);
            ck_assert_ptr_nonnull(out);
            memset(out, 0x5a, (size_t)(rows * stride) * size);
            run_path(path, &L->packed, &ep, L->x, &g, out);
            for (int64_t r = 0; r < rows; r++) {
                const uint8_t *row = out + (size_t)(r * stride) * size;
                if (kind == TQ_QCONV_CODES)
                    ck_assert_msg(memcmp(row, want8 + r * L->n, (size_t)L->n) == 0,
                                  "%s: path %d codes of row %lld differ", what, path, (long long)r);
                else
                    ck_assert_msg(memcmp(row, want32 + r * L->n, (size_t)L->n * 4) == 0,
                                  "%s: path %d kind %d row %lld differs", what, path, kind, (long long)r);
                /* junk may go up to the row's last group of 8 within its slot */
                const int64_t n8 = L->packed.n8 * 8, junk = n8 < stride ? n8 : stride;
                for (size_t b = (size_t)junk * size; b < (size_t)stride * size; b++)
                    ck_assert_msg(row[b] == 0x5a, "%s: path %d wrote past its groups", what, path);
            }
            free(out);
        }
        free(want8);
        free(want32);
    }
    free(sums);
}

/* Rows n apart (a convolution's outputs) and 3 further apart (a Linear's, in a value's slot). */
static void check_layer(const layer *L, const char *what)
{
    check_layer_at(L, what, L->n);
    check_layer_at(L, what, L->n + 3);
}

START_TEST(test_edge_shapes)
{
    tq_rng rng;
    tq_rng_seed(&rng, 31);
    /* n, C, h, w, k, stride, pad: odd kernel rows (k C odd), 1 channel, a row shorter than a
     * tile, groups of 8 and 16 and one more, 1x1 stride 2, a Linear as one kernel row */
    const int64_t shapes[][7] = {
        {6, 1, 28, 28, 5, 1, 2}, {16, 6, 14, 14, 5, 1, 0}, {16, 3, 9, 9, 3, 1, 1},
        {1, 1, 1, 1, 1, 1, 0},   {8, 2, 3, 5, 3, 1, 1},    {9, 5, 4, 7, 3, 2, 1},
        {17, 16, 8, 8, 3, 1, 1}, {32, 16, 8, 8, 1, 2, 0},  {24, 7, 6, 6, 2, 2, 0},
        {10, 84, 1, 1, 1, 1, 0}, {120, 401, 1, 1, 1, 1, 0}, {33, 32, 5, 5, 3, 2, 1},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int64_t *s = shapes[i];
        for (int u = 0; u < 2; u++) {
            layer L;
            layer_make(&L, &rng, s[0], s[1], s[2], s[3], s[4], s[5], s[6], u, FILL_RANDOM, 1e-3);
            char what[96];
            snprintf(what, sizeof what, "shape %zu (%s input)", i, u ? "uint8" : "int8");
            check_layer(&L, what);
            layer_free(&L);
        }
    }
}
END_TEST

START_TEST(test_random_shapes)
{
    tq_rng rng;
    tq_rng_seed(&rng, 32);
    for (int t = 0; t < 60; t++) {
        const int64_t k = 1 + tq_rng_below(&rng, 5), stride = 1 + tq_rng_below(&rng, 2);
        const int64_t pad = tq_rng_below(&rng, (uint32_t)k), h = k + tq_rng_below(&rng, 9);
        const int64_t w = k + tq_rng_below(&rng, 9);
        layer L;
        /* multipliers from 2^-20 (codes, the 32-bit clamp) to 2^4 (fine integers, 64 bits) */
        const double scale = ldexp(1.0, -20 + (int)tq_rng_below(&rng, 25));
        layer_make(&L, &rng, 1 + tq_rng_below(&rng, 40), 1 + tq_rng_below(&rng, 20), h, w, k,
                   stride, pad, t % 2, FILL_RANDOM, scale);
        char what[64];
        snprintf(what, sizeof what, "random layer %d (shift %d)", t, L.rq.shift);
        check_layer(&L, what);
        layer_free(&L);
    }
}
END_TEST

/* The largest sums one sign can reach: every code at its extreme against every weight at
 * 127 or -128 (no saturation anywhere: vpmaddwd's pairs are exact); at a large multiplier
 * the fine integers saturate at the int32 range (the 64-bit clamp). */
START_TEST(test_extreme_codes)
{
    tq_rng rng;
    tq_rng_seed(&rng, 33);
    for (int how = FILL_MAX; how <= FILL_MIN; how++)
        for (int u = 0; u < 4; u++) {
            layer L;
            layer_make(&L, &rng, 19, 64, 5, 5, 3, 1, 1, u % 2, (fill)how, u < 2 ? 1e-6 : 16384.0);
            check_layer(&L, how == FILL_MAX ? "codes and weights at their maxima"
                                            : "codes and weights at their minima");
            layer_free(&L);
        }
}
END_TEST

/* Exact ties go to the even neighbour on every path: sums times 1/2 and 1/8 (powers of two
 * are exact multipliers), on the 32-bit and the 64-bit clamp, as fine integers and as int8
 * codes (stored + 128). */
START_TEST(test_ties_to_even)
{
    const int32_t sums[8] = {1, 3, 5, 7, -1, -3, -5, 6};
    const int64_t halves[8] = {0, 2, 2, 4, 0, -2, -2, 3};
    int16_t x[2 + 16] = {0};
    int8_t wcode[8 * 2];
    /* one tap per output: x = (1, 0), weights (sum, 0) gives sum */
    x[0] = 1;
    for (int o = 0; o < 8; o++) {
        wcode[2 * o] = (int8_t)sums[o];
        wcode[2 * o + 1] = 0;
    }
    tq_error err = {0};
    tq_qconv_weights w;
    ck_assert_int_eq(tq_qconv_weights_pack(wcode, 8, 1, 2, &w, &err), TQ_STATUS_OK);
    for (int variant = 0; variant < 2; variant++) {
        /* sums / 2 at shift 30 (the 64-bit clamp), (4 sums) / 8 at shift 32 (the 32-bit one) */
        double m[8], c[8] = {0};
        for (int o = 0; o < 8; o++) m[o] = variant ? 0.125 : 0.5;
        for (int o = 0; o < 8; o++) wcode[2 * o] = (int8_t)(sums[o] * (variant ? 4 : 1));
        tq_qconv_weights_free(&w);
        ck_assert_int_eq(tq_qconv_weights_pack(wcode, 8, 1, 2, &w, &err), TQ_STATUS_OK);
        tq_rowquant rq;
        ck_assert_int_eq(tq_rowquant_make(&rq, m, c, NULL, 0, 8, &err), TQ_STATUS_OK);
        ck_assert_int_eq(rq.shift, 30 + 2 * variant);
        const tq_qconv_epilogue fine = {.kind = TQ_QCONV_FINE, .mult = rq.mult, .bias = rq.bias,
                                        .shift = rq.shift, .offset = rq.offset, .mask = rq.mask,
                                        .lo = INT32_MIN, .hi = INT32_MAX};
        tq_qconv_epilogue codes = fine;
        codes.kind = TQ_QCONV_CODES, codes.lo = -128, codes.hi = 127, codes.zp = 128;
        const tq_qconv_geom g = {.rows = 1, .out_w = 1, .line_step = 2, .out_stride = 8};
        for (int path = 0; path < N_PATHS; path++) {
            if (path == PATH_AVX2 && !have_avx2()) continue;
            int32_t out[8];
            uint8_t bytes[8];
            run_path(path, &w, &fine, x, &g, out);
            run_path(path, &w, &codes, x, &g, bytes);
            for (int o = 0; o < 8; o++) {
                ck_assert_msg(out[o] == halves[o], "path %d shift %d: sum %d -> %d, expected %lld",
                              path, rq.shift, sums[o], out[o], (long long)halves[o]);
                ck_assert_int_eq(bytes[o], halves[o] + 128);
            }
        }
        tq_rowquant_free(&rq);
    }
    tq_qconv_weights_free(&w);
}
END_TEST

/* A 2x2 max pool of stride 2 fused into the convolution gives what pooling its outputs gives,
 * where every multiplier is >= 0: codes (ReLU and not) and fine integers, odd sizes (the last
 * row and column dropped), every path. */
START_TEST(test_fused_max_pool)
{
    tq_rng rng;
    tq_rng_seed(&rng, 34);
    for (int t = 0; t < 24; t++) {
        layer L;
        layer_make(&L, &rng, 1 + tq_rng_below(&rng, 24), 1 + tq_rng_below(&rng, 8),
                   4 + tq_rng_below(&rng, 9), 4 + tq_rng_below(&rng, 9), 1 + 2 * tq_rng_below(&rng, 3), 1,
                   tq_rng_below(&rng, 3), t % 2, FILL_RANDOM, ldexp(1.0, -18 + (int)tq_rng_below(&rng, 20)));
        for (int64_t o = 0; o < L.n; o++) L.mult[o] = L.mult[o] < 0 ? -L.mult[o] : L.mult[o];
        const int64_t ph = L.oh / 2, pw = L.ow / 2;
        if (ph < 1 || pw < 1) {
            layer_free(&L);
            continue;
        }
        for (int kind = TQ_QCONV_CODES; kind <= TQ_QCONV_FINE; kind++) {
            const tq_qconv_epilogue ep = {
                .kind = (tq_qconv_out)kind, .mult = L.mult, .bias = L.bias, .shift = L.rq.shift,
                .offset = L.rq.offset, .mask = L.rq.mask,
                .lo = kind == TQ_QCONV_CODES ? (t % 3 ? -128 : 0) : INT32_MIN,
                .hi = kind == TQ_QCONV_CODES ? 127 : INT32_MAX, .zp = kind == TQ_QCONV_CODES ? 128 : 0};
            const size_t size = kind == TQ_QCONV_CODES ? 1 : 4;
            /* the unpooled outputs on the plain C path (checked above), pooled by hand */
            tq_qconv_geom g = layer_geom(&L, L.n);
            uint8_t *full = malloc((size_t)(L.oh * L.ow * L.n) * size + 64);
            uint8_t *want = malloc((size_t)(ph * pw * L.n) * size + 64);
            uint8_t *got = malloc((size_t)(ph * pw * L.n) * size + 64);
            ck_assert(full && want && got);
            tq_qconv_run_ref(&L.packed, &ep, L.x, &g, full);
            for (int64_t py = 0; py < ph; py++)
                for (int64_t px = 0; px < pw; px++)
                    for (int64_t o = 0; o < L.n; o++) {
                        int64_t best = INT64_MIN;
                        for (int win = 0; win < 4; win++) {
                            const int64_t at = ((2 * py + win / 2) * L.ow + 2 * px + win % 2) * L.n + o;
                            const int64_t v = kind == TQ_QCONV_CODES ? full[at] : ((int32_t *)full)[at];
                            best = v > best ? v : best;
                        }
                        const int64_t at = (py * pw + px) * L.n + o;
                        if (kind == TQ_QCONV_CODES) want[at] = (uint8_t)best;
                        else ((int32_t *)want)[at] = (int32_t)best;
                    }
            g.pool2 = true;
            g.rows = ph * pw;
            g.out_w = (int32_t)pw;
            for (int path = 0; path < N_PATHS; path++) {
                if (path == PATH_AVX2 && !have_avx2()) continue;
                run_path(path, &L.packed, &ep, L.x, &g, got);
                ck_assert_msg(memcmp(got, want, (size_t)(ph * pw * L.n) * size) == 0,
                              "pooled layer %d kind %d: path %d differs", t, kind, path);
            }
            free(full);
            free(want);
            free(got);
        }
        layer_free(&L);
    }
}
END_TEST

/* The same epilogue on the engine's other rescalings: tq_qconv_requant against tq_rowquant's
 * plain C path (periods of 8 to 128 channels, counts not a multiple of 8), tq_qconv_add
 * against tq_add_codes/_fine, codes and fine integers, large multipliers (saturation) and
 * exact ties (factors 1/2 and 1/4). */
START_TEST(test_requant_and_add_rows)
{
    tq_rng rng;
    tq_rng_seed(&rng, 35);
    tq_error err = {0};
    enum { COUNT = 1000 };
    int32_t a[COUNT], b[COUNT], f1[COUNT], f2[COUNT];
    uint8_t c1[COUNT], c2[COUNT];
    for (int t = 0; t < 40; t++) {
        const int64_t n = 8 * (1 + tq_rng_below(&rng, 16)), count = COUNT - tq_rng_below(&rng, 20);
        double m[128], c[128];
        const double scale = ldexp(1.0, -24 + (int)tq_rng_below(&rng, 30));
        for (int64_t o = 0; o < n; o++) {
            m[o] = (tq_rng_uniform(&rng) - 0.3) * scale;
            c[o] = (tq_rng_uniform(&rng) - 0.5) * 100.0;
        }
        if (t % 4 == 0) /* exact ties: halves */
            for (int64_t o = 0; o < n; o++) m[o] = 0.5, c[o] = 0.0;
        tq_rowquant q;
        ck_assert_int_eq(tq_rowquant_make(&q, m, c, NULL, 0, n, &err), TQ_STATUS_OK);
        for (int64_t j = 0; j < count; j++) {
            a[j] = (int32_t)tq_rng_u32(&rng) >> (int)tq_rng_below(&rng, 31);
            b[j] = (int32_t)tq_rng_u32(&rng) >> (int)tq_rng_below(&rng, 31);
        }
        const int64_t lo = t % 3 ? -128 : 0;
        tq_qconv_epilogue ep = {.kind = TQ_QCONV_CODES, .mult = q.mult, .bias = q.bias, .shift = q.shift,
                                .offset = q.offset, .mask = q.mask, .lo = lo, .hi = 127, .zp = 128};
        for (int64_t j = 0; j < count; j += q.period) {
            const int64_t len = count - j < q.period ? count - j : q.period;
            tq_rowquant_codes_ref(a + j, len, &q, lo, 127, 128, c1 + j);
            tq_rowquant_fine_ref(a + j, len, &q, lo == 0 ? 0 : INT32_MIN, f1 + j);
        }
        tq_qconv_requant(a, count, q.period, &ep, c2);
        ck_assert_msg(memcmp(c1, c2, (size_t)count) == 0, "requant codes %d (shift %d)", t, q.shift);
        ep.kind = TQ_QCONV_FINE, ep.lo = lo == 0 ? 0 : INT32_MIN, ep.hi = INT32_MAX, ep.zp = 0;
        tq_qconv_requant(a, count, q.period, &ep, f2);
        ck_assert_msg(memcmp(f1, f2, (size_t)count * 4) == 0, "requant fine %d (shift %d)", t, q.shift);
        tq_rowquant_free(&q);
        /* a residual add: factors of both signs, or 1/2 and 1/4 (ties) */
        const double ra = t % 4 == 0 ? 0.5 : (tq_rng_uniform(&rng) - 0.2) * scale * 1e3,
                     rb = t % 4 == 0 ? 0.25 : (tq_rng_uniform(&rng) - 0.5) * scale * 1e3;
        const tq_addquant add = tq_addquant_make(ra, rb);
        tq_add_codes(a, b, count, &add, lo, 127, 128, c1);
        tq_add_fine(a, b, count, &add, lo == 0 ? 0 : INT32_MIN, f1);
        tq_qconv_epilogue aep = {.kind = TQ_QCONV_CODES, .shift = add.shift, .offset = add.offset,
                                 .mask = add.mask, .lo = lo, .hi = 127, .zp = 128};
        tq_qconv_add(a, b, count, add.ma, add.mb, add.bias, &aep, c2);
        ck_assert_msg(memcmp(c1, c2, (size_t)count) == 0, "add codes %d", t);
        aep.kind = TQ_QCONV_FINE, aep.lo = lo == 0 ? 0 : INT32_MIN, aep.hi = INT32_MAX, aep.zp = 0;
        tq_qconv_add(a, b, count, add.ma, add.mb, add.bias, &aep, f2);
        ck_assert_msg(memcmp(f1, f2, (size_t)count * 4) == 0, "add fine %d", t);
    }
}
END_TEST

START_TEST(test_pack_layout_and_refusal)
{
    /* 9 channels, 1 kernel row of 3: pairs (0, 1) and (2, pad) per channel, channel 8 in a
     * second group */
    int8_t codes[27];
    for (int i = 0; i < 27; i++) codes[i] = (int8_t)(i - 13);
    tq_error err = {0};
    tq_qconv_weights w;
    ck_assert_int_eq(tq_qconv_weights_pack(codes, 9, 1, 3, &w, &err), TQ_STATUS_OK);
    ck_assert_int_eq(w.n8, 2);
    ck_assert_int_eq(w.steps, 2);
    ck_assert_int_eq(w.data[0], -13);     /* channel 0, values 0 and 1 */
    ck_assert_int_eq(w.data[1], -12);
    ck_assert_int_eq(w.data[2], -10);     /* channel 1 */
    ck_assert_int_eq(w.data[16], -11);    /* step 1: channel 0's value 2, then the pad */
    ck_assert_int_eq(w.data[17], 0);
    ck_assert_int_eq(w.data[32], 11);     /* group 1: channel 8 */
    ck_assert_int_eq(w.data[34], 0);      /* channels past n are zero */
    tq_qconv_weights_free(&w);
    ck_assert_int_eq(tq_qconv_weights_pack(codes, 0, 1, 3, &w, &err), TQ_STATUS_ARG);
    ck_assert_ptr_null(w.data);
}
END_TEST

static Suite *qconv_suite(void)
{
    Suite *s = suite_create("qconv");
    TCase *tc = tcase_create("qconv");
    tcase_add_test(tc, test_edge_shapes);
    tcase_add_test(tc, test_random_shapes);
    tcase_add_test(tc, test_extreme_codes);
    tcase_add_test(tc, test_ties_to_even);
    tcase_add_test(tc, test_fused_max_pool);
    tcase_add_test(tc, test_requant_and_add_rows);
    tcase_add_test(tc, test_pack_layout_and_refusal);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (!have_avx2()) printf("test_qconv: no AVX2 here: the plain C path only\n");
    return tq_test_run(qconv_suite());
}
