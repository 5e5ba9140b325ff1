/* A Linear or Conv2d on the direct path: each image's codes, less their zero point, into a
 * padded 16-bit copy (a convolution) or the chunk's rows into 16-bit rows (a Linear), then
 * tq_qconv with the requantization fused: no im2col, no int32 sums in memory. The same bits as
 * qlayer_run.c's im2col path: the sums are the corrected accumulators exactly, and the
 * epilogue is tq_rowquant's arithmetic. */
#include "engine_internal.h"

#include <omp.h>
#include <string.h>

/* Rows of a Linear per task: one thread's share of a chunk. */
enum { LINEAR_BLOCK = 16, SLACK = 16 };

static int64_t even(int64_t v) { return (v + 1) / 2 * 2; }

int64_t tq_engine_direct_scratch(const tq_engine *e, const tq_step *s)
{
    const tq_val *in = &e->vals[s->in];
    int64_t elems = LINEAR_BLOCK * even(in->numel);
    if (s->is_conv)
        elems = (int64_t)(in->h + 2 * s->pad) * (in->w + 2 * s->pad) * in->c;
    return (elems + SLACK) * (int64_t)sizeof(int16_t);
}

static tq_qconv_epilogue epilogue(const tq_engine *e, const tq_step *s)
{
    if (s->out < 0) return (tq_qconv_epilogue){.kind = TQ_QCONV_SUMS};
    const tq_val *out = &e->vals[s->out];
    const bool codes = out->domain == TQ_VAL_CODES;
    return (tq_qconv_epilogue){
        .kind = codes ? TQ_QCONV_CODES : TQ_QCONV_FINE,
        .mult = s->cw_mult,
        .bias = s->cw_bias,
        .shift = s->rq.shift,
        .offset = s->rq.offset,
        .mask = s->rq.mask,
        .lo = codes ? tq_step_lo(s, out) : s->relu ? 0 : INT32_MIN,
        .hi = codes ? out->hi : INT32_MAX,
        .zp = codes ? out->zp : 0,
    };
}

/* Image b's codes less zp into x, (H + 2 pad, W + 2 pad, C) with a border of zeros. */
static void pad_centered(const tq_engine *e, const tq_workspace *ws, const tq_step *s,
                         int64_t b, int16_t *x)
{
    const tq_val *in = &e->vals[s->in];
    const int64_t C = in->c, pad = s->pad, Wp = in->w + 2 * pad, Hp = in->h + 2 * pad;
    const int64_t line = in->w * C;
    const uint8_t *src = tq_val_codes(ws, in, b);
    const int16_t zp = (int16_t)in->zp;
    memset(x, 0, (size_t)(pad * Wp * C) * sizeof *x);
    for (int64_t y = 0; y < in->h; y++) {
        int16_t *row = x + (y + pad) * Wp * C;
        memset(row, 0, (size_t)(pad * C) * sizeof *x);
        for (int64_t i = 0; i < line; i++) row[pad * C + i] = (int16_t)(src[y * line + i] - zp);
        memset(row + pad * C + line, 0, (size_t)(pad * C) * sizeof *x);
    }
    memset(x + (in->h + pad) * Wp * C, 0, (size_t)(pad * Wp * C + SLACK) * sizeof *x);
    (void)Hp;
}

static void conv_image(const tq_engine *e, tq_workspace *ws, const tq_step *s, int64_t b,
                       int16_t *x, const tq_qconv_epilogue *ep)
{
    const tq_val *in = &e->vals[s->in], *out = &e->vals[s->fuse_pool ? s->pool_out : s->out];
    const int64_t C = in->c, Wp = in->w + 2 * s->pad;
    pad_centered(e, ws, s, b, x);
    const tq_qconv_geom g = {
        .pool2 = s->fuse_pool,
        .rows = (int64_t)out->h * out->w,
        .out_w = out->w,
        .pixel_step = s->stride * C,
        .line_step = s->stride * Wp * C,
        .tap_row_step = Wp * C,
        .out_stride = s->w.n,
    };
    void *dst = out->domain == TQ_VAL_CODES ? (void *)tq_val_codes(ws, out, b)
                                            : (void *)tq_val_fine(ws, out, b);
    tq_qconv_run(&s->cw, ep, x, &g, dst);
}

/* Rows r0 .. r0 + rows of a Linear: logits from the sums (no zero-point correction: the
 * inputs were centered), or the next value's codes or fine integers. */
static void linear_rows(const tq_engine *e, tq_workspace *ws, const tq_step *s, int64_t r0,
                        int64_t rows, int16_t *x, int32_t *sums, const tq_qconv_epilogue *ep,
                        float *logits)
{
    const tq_val *in = &e->vals[s->in];
    const int64_t K = in->numel, K2 = even(K), O = s->w.n;
    const int16_t zp = (int16_t)in->zp;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *src = tq_val_codes(ws, in, r0 + r);
        int16_t *row = x + r * K2;
        for (int64_t i = 0; i < K; i++) row[i] = (int16_t)(src[i] - zp);
        for (int64_t i = K; i < K2; i++) row[i] = 0;
    }
    memset(x + rows * K2, 0, SLACK * sizeof *x);
    tq_qconv_geom g = {.rows = rows, .out_w = 1, .line_step = K2, .out_stride = O};
    if (s->out < 0) {
        tq_qconv_run(&s->cw, ep, x, &g, sums);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t o = 0; o < O; o++)
                logits[(r0 + r) * O + o] =
                    (float)((double)sums[r * O + o] * s->deq_scale[o] + s->deq_bias[o]);
        return;
    }
    const tq_val *out = &e->vals[s->out];
    g.out_stride = out->stride;
    void *dst = out->domain == TQ_VAL_CODES ? (void *)tq_val_codes(ws, out, r0)
                                            : (void *)tq_val_fine(ws, out, r0);
    tq_qconv_run(&s->cw, ep, x, &g, dst);
}

void tq_engine_qlayer_direct(const tq_engine *e, tq_workspace *ws, const tq_step *s, int64_t n,
                             float *logits)
{
    const tq_qconv_epilogue ep = epilogue(e, s);
    if (!s->is_conv) {
        const int64_t blocks = (n + LINEAR_BLOCK - 1) / LINEAR_BLOCK;
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && blocks > 1)
        for (int64_t k = 0; k < blocks; k++) {
            const int t = omp_get_thread_num();
            const int64_t r0 = k * LINEAR_BLOCK, rows = n - r0 < LINEAR_BLOCK ? n - r0 : LINEAR_BLOCK;
            linear_rows(e, ws, s, r0, rows, (int16_t *)ws->scr_a[t], ws->scr_acc[t], &ep, logits);
        }
        return;
    }
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && n > 1)
    for (int64_t b = 0; b < n; b++)
        conv_image(e, ws, s, b, (int16_t *)ws->scr_a[omp_get_thread_num()], &ep);
}
