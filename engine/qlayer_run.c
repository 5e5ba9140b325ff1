/* A Linear or Conv2d on codes: im2col over (kh, kw, C) rows (a convolution) or the input
 * rows themselves (a Linear), the u8 x s8 product, the zero-point correction, then per output
 * channel the multiplier and bias to the next tensor, or dequantization to the logits.
 * Row blocks go to threads; each block's result does not depend on who computes it. */
#include "engine_internal.h"

#include <omp.h>
#include <string.h>

/* GCC turns short copy loops back into calls to memcpy and memset, which cost more than
 * the copies of a few channels. */
#if defined(__GNUC__) && !defined(__clang__)
#define TQ_NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define TQ_NO_LIBCALLS
#endif

/* Copies n bytes as 8-byte words, up to 7 bytes past n. The caller leaves room for the
 * overrun: it lands where later copies write, in the row's zeroed tail, or in the slack of
 * the buffers. */
TQ_NO_LIBCALLS static inline void copy_words(uint8_t *restrict dst, const uint8_t *restrict src, int64_t n)
{
    for (int64_t i = 0; i < n; i += 8) memcpy(dst + i, src + i, 8);
}

/* The chunk's images with a border of `pad` codes of 0 (zp) around each, so that im2col
 * needs no bounds checks: image b at padded + b * Hp * Wp * C. */
static void pad_images(const tq_engine *e, tq_workspace *ws, const tq_step *s, int64_t n)
{
    const tq_val *in = &e->vals[s->in];
    const int64_t C = in->c, Wp = in->w + 2 * s->pad, Hp = in->h + 2 * s->pad;
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
    for (int64_t b = 0; b < n; b++) {
        uint8_t *dst = ws->padded + b * Hp * Wp * C;
        const uint8_t *src = tq_val_codes(ws, in, b);
        memset(dst, in->zp, (size_t)(Hp * Wp * C));
        for (int64_t y = 0; y < in->h; y++)
            memcpy(dst + ((y + s->pad) * Wp + s->pad) * C, src + y * in->w * C, (size_t)(in->w * C));
    }
}

/* Rows r0 .. r0+rows of the convolution's im2col matrix, each K bytes (those up to lda meet
 * zero weights and may hold anything).
 * Row r is output pixel r % P of image r / P. In (H,W,C) order the taps of one kernel row
 * are k * C contiguous bytes of the (padded) image. */
TQ_NO_LIBCALLS static void im2col(const tq_engine *e, tq_workspace *ws, const tq_step *s, int64_t r0,
                                  int64_t rows, uint8_t *a, int64_t lda)
{
    const tq_val *in = &e->vals[s->in], *out = &e->vals[s->out];
    const int64_t C = in->c, k = s->kernel, P = (int64_t)out->h * out->w;
    const int64_t Wp = in->w + 2 * s->pad, Hp = in->h + 2 * s->pad;
    int64_t img = r0 / P, oy = r0 % P / out->w, ox = r0 % P % out->w; /* of row r, stepped */
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *src = s->pad ? ws->padded + img * Hp * Wp * C : tq_val_codes(ws, in, img);
        src += (oy * s->stride * Wp + ox * s->stride) * C;
        uint8_t *row = a + r * lda;
        if (k * C <= 8) /* a kernel row in one word (LeNet's first layer) */
            for (int64_t ky = 0; ky < k; ky++) memcpy(row + ky * k * C, src + ky * Wp * C, 8);
        else
            for (int64_t ky = 0; ky < k; ky++) copy_words(row + ky * k * C, src + ky * Wp * C, k * C);
        if (++ox == out->w) {
            ox = 0;
            if (++oy == out->h) {
                oy = 0;
                img++;
            }
        }
    }
}

/* Accumulators of rows r0.. (output pixels; images for a Linear) to the output value. The
 * product saw codes + zp, so each sum is corrected by zp * the weight row's sum. */
static void requantize(const tq_engine *e, tq_workspace *ws, const tq_step *s, int64_t r0, int64_t rows,
                       const int32_t *acc, float *logits)
{
    const int64_t O = s->w.n;
    if (s->out < 0) { /* a Linear's logits: one row per image */
        const int64_t zp = e->vals[s->in].zp;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t o = 0; o < O; o++) {
                int64_t v = acc[r * O + o] - zp * s->w.row_sum[o];
                logits[(r0 + r) * O + o] = (float)((double)v * s->deq_scale[o] + s->deq_bias[o]);
            }
        return;
    }
    const tq_val *out = &e->vals[s->out];
    const tq_rowquant *q = &s->rq;
    const int64_t P = (int64_t)out->h * out->w;
    /* codes clamp to the format (and 0 with a ReLU); fine integers saturate (and ReLU) */
    const bool codes = out->domain == TQ_VAL_CODES;
    const int64_t lo = codes ? tq_step_lo(s, out) : s->relu ? 0 : INT32_MIN;
    /* the rows of one image are consecutive pixels: their outputs are contiguous */
    for (int64_t r = 0; r < rows;) {
        const int64_t img = (r0 + r) / P, p = (r0 + r) % P;
        const int64_t run = rows - r < P - p ? rows - r : P - p;
        for (int64_t j = 0; j < run * O; j += q->period) {
            const int64_t len = run * O - j < q->period ? run * O - j : q->period;
            const int32_t *a = acc + r * O + j;
            if (codes)
                tq_rowquant_codes(a, len, q, lo, out->hi, out->zp, tq_val_codes(ws, out, img) + p * O + j);
            else
                tq_rowquant_fine(a, len, q, lo, tq_val_fine(ws, out, img) + p * O + j);
        }
        r += run;
    }
}

void tq_engine_qlayer_run(const tq_engine *e, tq_workspace *ws, const tq_step *s, int64_t n,
                          float *logits)
{
    if (e->direct) {
        tq_engine_qlayer_direct(e, ws, s, n, logits);
        return;
    }
    const tq_val *in = &e->vals[s->in];
    if (!s->is_conv) {
        /* a Linear reads its input rows in place: the row stride covers k4, padding zeroed */
        const int64_t block = 16, blocks = (n + block - 1) / block;
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
        for (int64_t k = 0; k < blocks; k++) {
            const int64_t r0 = k * block, rows = n - r0 < block ? n - r0 : block;
            int32_t *acc = ws->scr_acc[omp_get_thread_num()];
            tq_qgemm(rows, tq_val_codes(ws, in, r0), in->stride, &s->w, acc, s->w.n);
            requantize(e, ws, s, r0, rows, acc, logits);
        }
        return;
    }
    const tq_val *out = &e->vals[s->out];
    const int64_t m = n * out->h * out->w, lda = s->w.k4;
    if (s->pad) pad_images(e, ws, s, n);
    const int64_t blocks = (m + TQ_ENGINE_ROW_BLOCK - 1) / TQ_ENGINE_ROW_BLOCK;
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
    for (int64_t k = 0; k < blocks; k++) {
        const int64_t r0 = k * TQ_ENGINE_ROW_BLOCK;
        const int64_t rows = m - r0 < TQ_ENGINE_ROW_BLOCK ? m - r0 : TQ_ENGINE_ROW_BLOCK;
        const int t = omp_get_thread_num();
        im2col(e, ws, s, r0, rows, ws->scr_a[t], lda);
        tq_qgemm(rows, ws->scr_a[t], lda, &s->w, ws->scr_acc[t], s->w.n);
        requantize(e, ws, s, r0, rows, ws->scr_acc[t], logits);
    }
}
