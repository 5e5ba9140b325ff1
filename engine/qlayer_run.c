/* A Linear or Conv2d on codes: im2col over (kh, kw, C) rows (a convolution) or the input
 * rows themselves (a Linear), the u8 x s8 product, the zero-point correction, then per output
 * channel the multiplier and bias to the next tensor, or dequantization to the logits.
 * Row blocks go to threads; each block's result does not depend on who computes it. */
#include "engine_internal.h"

#include <omp.h>
#include <string.h>

/* Rows r0 .. r0+rows of the convolution's im2col matrix, each K bytes then zeros to lda.
 * Row r is output pixel r % P of image r / P; padding holds the code of 0 (zp). In (H,W,C)
 * order the kernel's taps along a row of the image are k * C contiguous bytes, one copy
 * each unless the window hangs over the left or right edge. */
static void im2col(const tq_engine *e, const tq_step *s, int64_t r0, int64_t rows, uint8_t *a,
                   int64_t lda)
{
    const tq_val *in = &e->vals[s->in], *out = &e->vals[s->out];
    const int64_t C = in->c, k = s->kernel, P = (int64_t)out->h * out->w, K = C * k * k;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t img = (r0 + r) / P, p = (r0 + r) % P;
        const int64_t oy = p / out->w, ox = p % out->w;
        const int64_t ix0 = ox * s->stride - s->pad;
        const bool inside_x = ix0 >= 0 && ix0 + k <= in->w;
        const uint8_t *src = tq_val_codes(e, in, img);
        uint8_t *row = a + r * lda;
        for (int64_t ky = 0; ky < k; ky++) {
            const int64_t iy = oy * s->stride - s->pad + ky;
            uint8_t *dst = row + ky * k * C;
            if (iy < 0 || iy >= in->h) {
                memset(dst, in->zp, (size_t)(k * C));
            } else if (inside_x) {
                memcpy(dst, src + (iy * in->w + ix0) * C, (size_t)(k * C));
            } else {
                for (int64_t kx = 0; kx < k; kx++) {
                    const int64_t ix = ix0 + kx;
                    if (ix < 0 || ix >= in->w) memset(dst + kx * C, in->zp, (size_t)C);
                    else memcpy(dst + kx * C, src + (iy * in->w + ix) * C, (size_t)C);
                }
            }
        }
        memset(row + K, 0, (size_t)(lda - K));
    }
}

/* Accumulators of rows r0.. (output pixels; images for a Linear) to the output value. The
 * product saw codes + zp, so each sum is corrected by zp * the weight row's sum. */
static void requantize(const tq_engine *e, const tq_step *s, int64_t r0, int64_t rows,
                       const int32_t *acc, float *logits)
{
    const int64_t O = s->w.n;
    const int64_t zp = e->vals[s->in].zp;
    const int32_t *row_sum = s->w.row_sum;
    if (s->out < 0) { /* a Linear's logits: one row per image */
        for (int64_t r = 0; r < rows; r++)
            for (int64_t o = 0; o < O; o++) {
                int64_t v = acc[r * O + o] - zp * row_sum[o];
                logits[(r0 + r) * O + o] = (float)((double)v * s->deq_scale[o] + s->deq_bias[o]);
            }
        return;
    }
    const tq_val *out = &e->vals[s->out];
    const int64_t P = (int64_t)out->h * out->w;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t img = (r0 + r) / P, p = (r0 + r) % P;
        const int32_t *a = acc + r * O;
        if (out->domain == TQ_VAL_CODES) {
            uint8_t *y = tq_val_codes(e, out, img) + p * O;
            for (int64_t o = 0; o < O; o++)
                y[o] = tq_store_code(out, tq_affine_apply(a[o] - zp * row_sum[o], &s->aff[o]));
        } else {
            int32_t *y = tq_val_fine(e, out, img) + p * O;
            for (int64_t o = 0; o < O; o++)
                y[o] = tq_sat32(tq_affine_apply(a[o] - zp * row_sum[o], &s->aff[o]));
        }
    }
}

void tq_engine_qlayer_run(tq_engine *e, const tq_step *s, int64_t n, float *logits)
{
    const tq_val *in = &e->vals[s->in];
    if (!s->is_conv) {
        /* a Linear reads its input rows in place: the row stride covers k4, padding zeroed */
        const int64_t block = 16, blocks = (n + block - 1) / block;
#pragma omp parallel for schedule(static)
        for (int64_t k = 0; k < blocks; k++) {
            const int64_t r0 = k * block, rows = n - r0 < block ? n - r0 : block;
            int32_t *acc = e->scr_acc[omp_get_thread_num()];
            tq_qgemm(rows, tq_val_codes(e, in, r0), in->stride, &s->w, acc, s->w.n);
            requantize(e, s, r0, rows, acc, logits);
        }
        return;
    }
    const tq_val *out = &e->vals[s->out];
    const int64_t m = n * out->h * out->w, lda = s->w.k4;
    const int64_t blocks = (m + TQ_ENGINE_ROW_BLOCK - 1) / TQ_ENGINE_ROW_BLOCK;
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < blocks; k++) {
        const int64_t r0 = k * TQ_ENGINE_ROW_BLOCK;
        const int64_t rows = m - r0 < TQ_ENGINE_ROW_BLOCK ? m - r0 : TQ_ENGINE_ROW_BLOCK;
        const int t = omp_get_thread_num();
        im2col(e, s, r0, rows, e->scr_a[t], lda);
        tq_qgemm(rows, e->scr_a[t], lda, &s->w, e->scr_acc[t], s->w.n);
        requantize(e, s, r0, rows, e->scr_acc[t], logits);
    }
}
