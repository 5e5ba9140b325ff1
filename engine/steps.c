/* The steps other than products, on a chunk of images in (H,W,C) order: the input table,
 * fine integers to codes, ReLU, max and average pools, batch norm and residual add. Images
 * are independent, so each runs in parallel over them with the same bits for any thread
 * count. */
#include "engine_internal.h"

#include <omp.h>

/* Below this many values a step stays on one thread. */
#define PARALLEL_MIN 32768

/* round(a / d) for d > 0, ties up, whatever the sign of a. */
static inline int64_t div_round(int64_t a, int64_t d)
{
    int64_t num = 2 * a + d, den = 2 * d, q = num / den;
    return (num % den != 0 && num < 0) ? q - 1 : q;
}

/* Writes integer v (in the unit step s computed) as element i of out's image: rescaled by
 * the step's emit, a folded ReLU applied, clamped to the codes or saturated. */
static inline void put(tq_workspace *ws, const tq_step *s, const tq_val *out, int64_t img,
                       int64_t i, int64_t v)
{
    v = tq_emit_value(&s->emit, v);
    if (s->relu && v < 0) v = 0;
    if (out->domain == TQ_VAL_CODES) tq_val_codes(ws, out, img)[i] = tq_store_code(out, v);
    else tq_val_fine(ws, out, img)[i] = tq_sat32(v);
}

/* Element i of a value's image as an integer (codes without their zp). */
static inline int64_t get(const tq_workspace *ws, const tq_val *v, int64_t img, int64_t i)
{
    if (v->domain == TQ_VAL_CODES) return (int64_t)tq_val_codes(ws, v, img)[i] - v->zp;
    return tq_val_fine(ws, v, img)[i];
}

static void input_run(const tq_engine *e, tq_workspace *ws, const tq_step *s, const uint8_t *images, int64_t n)
{
    const tq_val *out = &e->vals[s->out];
    const int64_t C = e->c, HW = (int64_t)e->h * e->w;
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && n * out->numel >= PARALLEL_MIN)
    for (int64_t b = 0; b < n; b++) {
        const uint8_t *img = images + b * C * HW;
        for (int64_t c = 0; c < C; c++) {
            const int32_t *lut = s->lut + c * 256;
            if (out->domain == TQ_VAL_CODES) {
                uint8_t *dst = tq_val_codes(ws, out, b) + c;
                for (int64_t p = 0; p < HW; p++) dst[p * C] = (uint8_t)lut[img[c * HW + p]];
            } else {
                int32_t *dst = tq_val_fine(ws, out, b) + c;
                for (int64_t p = 0; p < HW; p++) dst[p * C] = lut[img[c * HW + p]];
            }
        }
    }
}

/* Runs of a value's image through a step's per-channel requantization (TO_CODES, BN): the
 * channel pattern repeats every n_chan values and the step's constants every period. */
static void rowquant_run(const tq_engine *e, tq_workspace *ws, const tq_step *s, int64_t n)
{
    const tq_val *in = &e->vals[s->in], *out = &e->vals[s->out];
    const int64_t period = s->rq.period;
    const bool codes = out->domain == TQ_VAL_CODES;
    const int64_t lo = codes ? tq_step_lo(s, out) : s->relu ? 0 : INT32_MIN;
    /* the direct path's epilogue, 8 values at a time (these steps have no zero-point
     * correction: their sums come from fine integers) */
    const bool wide = e->direct && period % 8 == 0;
    const tq_qconv_epilogue ep = {.kind = codes ? TQ_QCONV_CODES : TQ_QCONV_FINE, .mult = s->rq.mult,
                                  .bias = s->rq.bias, .shift = s->rq.shift, .offset = s->rq.offset,
                                  .mask = s->rq.mask, .lo = lo, .hi = codes ? out->hi : INT32_MAX,
                                  .zp = codes ? out->zp : 0};
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && n * in->numel >= PARALLEL_MIN)
    for (int64_t b = 0; b < n; b++) {
        const int32_t *x = tq_val_fine(ws, in, b);
        if (wide) {
            tq_qconv_requant(x, in->numel, period, &ep, codes ? (void *)tq_val_codes(ws, out, b)
                                                              : (void *)tq_val_fine(ws, out, b));
            continue;
        }
        for (int64_t j = 0; j < in->numel; j += period) {
            const int64_t len = in->numel - j < period ? in->numel - j : period;
            if (codes) tq_rowquant_codes(x + j, len, &s->rq, lo, out->hi, out->zp, tq_val_codes(ws, out, b) + j);
            else tq_rowquant_fine(x + j, len, &s->rq, lo, tq_val_fine(ws, out, b) + j);
        }
    }
}

/* ReLU is max(code, code of 0): the same on codes (zp) as on fine integers (0). */
static void relu_run(const tq_engine *e, tq_workspace *ws, const tq_step *s, int64_t n)
{
    const tq_val *in = &e->vals[s->in], *out = &e->vals[s->out];
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && n * in->numel >= PARALLEL_MIN)
    for (int64_t b = 0; b < n; b++) {
        if (in->domain == TQ_VAL_CODES) {
            const uint8_t *x = tq_val_codes(ws, in, b), zp = (uint8_t)in->zp;
            uint8_t *y = tq_val_codes(ws, out, b);
            for (int64_t i = 0; i < in->numel; i++) y[i] = x[i] > zp ? x[i] : zp;
        } else {
            const int32_t *x = tq_val_fine(ws, in, b);
            int32_t *y = tq_val_fine(ws, out, b);
            for (int64_t i = 0; i < in->numel; i++) y[i] = x[i] > 0 ? x[i] : 0;
        }
    }
}

/* Max pool, channels innermost so that the max runs over contiguous rows of C values; 2x2
 * windows of stride 2 (LeNet-5, the VGG-style convnet) take their four taps in one pass.
 * Stored codes order as the codes do (zp is added to all), so bytes compare as they are. */
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MAXPOOL_IMAGE(T, src, dst)                                                             \
    for (int32_t oy = 0; oy < out->h; oy++)                                                   \
        for (int32_t ox = 0; ox < out->w; ox++) {                                             \
            T *restrict y = (dst) + ((int64_t)oy * out->w + ox) * C;                          \
            const T *x0 = (src) + ((int64_t)oy * s->stride * in->w + ox * s->stride) * C;     \
            if (s->kernel == 2 && s->stride == 2) {                                           \
                const T *restrict a = x0, *restrict b = x0 + C, *restrict c0 = x0 + in->w * C, \
                                  *restrict d = c0 + C;                                       \
                for (int64_t c = 0; c < C; c++) y[c] = MAX(MAX(a[c], b[c]), MAX(c0[c], d[c])); \
                continue;                                                                     \
            }                                                                                 \
            for (int64_t c = 0; c < C; c++) y[c] = x0[c];                                     \
            for (int ky = 0; ky < s->kernel; ky++)                                            \
                for (int kx = 0; kx < s->kernel; kx++) {                                      \
                    const T *restrict x = x0 + ((int64_t)ky * in->w + kx) * C;                \
                    for (int64_t c = 0; c < C; c++) y[c] = MAX(x[c], y[c]);                   \
                }                                                                             \
        }

/* A 2x2 window of stride 2 on codes, a pair of input rows at a time: their maximum first, over
 * whole rows (contiguous bytes, which the compiler vectorizes), then each pixel's maximum
 * with its right neighbour. */
static void maxpool2_codes(const tq_val *in, const tq_val *out, const uint8_t *src, uint8_t *dst)
{
    const int64_t C = in->c, line = (int64_t)in->w * C;
    uint8_t rows[4096];
    for (int32_t oy = 0; oy < out->h; oy++) {
        const uint8_t *restrict a = src + 2 * oy * line, *restrict b = a + line;
        for (int64_t i = 0; i < line; i++) rows[i] = a[i] > b[i] ? a[i] : b[i];
        uint8_t *restrict y = dst + (int64_t)oy * out->w * C;
        for (int32_t ox = 0; ox < out->w; ox++)
            for (int64_t c = 0; c < C; c++) {
                const uint8_t l = rows[2 * ox * C + c], r = rows[(2 * ox + 1) * C + c];
                y[ox * C + c] = l > r ? l : r;
            }
    }
}

static void maxpool_run(const tq_engine *e, tq_workspace *ws, const tq_step *s, int64_t n)
{
    const tq_val *in = &e->vals[s->in], *out = &e->vals[s->out];
    const int64_t C = in->c;
    const bool pairs = in->domain == TQ_VAL_CODES && s->kernel == 2 && s->stride == 2 &&
                       (int64_t)in->w * C <= 4096;
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && n * in->numel >= PARALLEL_MIN)
    for (int64_t b = 0; b < n; b++) {
        if (pairs) {
            maxpool2_codes(in, out, tq_val_codes(ws, in, b), tq_val_codes(ws, out, b));
        } else if (in->domain == TQ_VAL_CODES) {
            MAXPOOL_IMAGE(uint8_t, tq_val_codes(ws, in, b), tq_val_codes(ws, out, b))
        } else {
            MAXPOOL_IMAGE(int32_t, tq_val_fine(ws, in, b), tq_val_fine(ws, out, b))
        }
    }
}
#undef MAXPOOL_IMAGE
#undef MAX

/* Average pools: the window's sum divided with rounding (in the input's unit), then the
 * emit's rescaling to the output. A global pool is one window over the whole plane. */
static void avgpool_run(const tq_engine *e, tq_workspace *ws, const tq_step *s, int64_t n, bool global)
{
    const tq_val *in = &e->vals[s->in], *out = &e->vals[s->out];
    const int64_t C = in->c;
    const int kh = global ? in->h : s->kernel, kw = global ? in->w : s->kernel;
    const int stride = global ? 1 : s->stride;
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && n * in->numel >= PARALLEL_MIN)
    for (int64_t b = 0; b < n; b++)
        for (int32_t oy = 0; oy < out->h; oy++)
            for (int32_t ox = 0; ox < out->w; ox++)
                for (int64_t c = 0; c < C; c++) {
                    int64_t sum = 0;
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kw; kx++)
                            sum += get(ws, in, b, ((int64_t)(oy * stride + ky) * in->w + ox * stride + kx) * C + c);
                    put(ws, s, out, b, ((int64_t)oy * out->w + ox) * C + c,
                        div_round(sum, (int64_t)kh * kw));
                }
}

static void add_run(const tq_engine *e, tq_workspace *ws, const tq_step *s, int64_t n)
{
    const tq_val *a = &e->vals[s->in], *c = &e->vals[s->in2], *out = &e->vals[s->out];
    const bool codes = out->domain == TQ_VAL_CODES;
    const int64_t lo = codes ? tq_step_lo(s, out) : s->relu ? 0 : INT32_MIN;
    const tq_qconv_epilogue ep = {.kind = codes ? TQ_QCONV_CODES : TQ_QCONV_FINE,
                                  .shift = s->add.shift, .offset = s->add.offset,
                                  .mask = s->add.mask, .lo = lo, .hi = codes ? out->hi : INT32_MAX,
                                  .zp = codes ? out->zp : 0};
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && n * a->numel >= PARALLEL_MIN)
    for (int64_t b = 0; b < n; b++) {
        if (e->direct)
            tq_qconv_add(tq_val_fine(ws, a, b), tq_val_fine(ws, c, b), a->numel, s->add.ma,
                         s->add.mb, s->add.bias, &ep,
                         codes ? (void *)tq_val_codes(ws, out, b) : (void *)tq_val_fine(ws, out, b));
        else if (codes)
            tq_add_codes(tq_val_fine(ws, a, b), tq_val_fine(ws, c, b), a->numel, &s->add, lo,
                         out->hi, out->zp, tq_val_codes(ws, out, b));
        else
            tq_add_fine(tq_val_fine(ws, a, b), tq_val_fine(ws, c, b), a->numel, &s->add, lo,
                        tq_val_fine(ws, out, b));
    }
}

void tq_engine_step_run(const tq_engine *e, tq_workspace *ws, const tq_step *s,
                        const uint8_t *images, int64_t n, float *logits)
{
    switch (s->kind) {
    case TQ_STEP_INPUT: input_run(e, ws, s, images, n); break;
    case TQ_STEP_QLAYER: tq_engine_qlayer_run(e, ws, s, n, logits); break;
    case TQ_STEP_TO_CODES: rowquant_run(e, ws, s, n); break;
    case TQ_STEP_RELU: relu_run(e, ws, s, n); break;
    case TQ_STEP_MAXPOOL:
        if (!(e->direct && s->pool_fused)) maxpool_run(e, ws, s, n);
        break;
    case TQ_STEP_AVGPOOL: avgpool_run(e, ws, s, n, false); break;
    case TQ_STEP_GAP: avgpool_run(e, ws, s, n, true); break;
    case TQ_STEP_BN: rowquant_run(e, ws, s, n); break;
    case TQ_STEP_ADD: add_run(e, ws, s, n); break;
    }
}
