/* Direct convolutions on 16-bit centered codes: weight packing, the plain C path (the
 * definition) and the choice of the AVX2 one. */
#include "qconv_internal.h"

#include <stdlib.h>
#include <string.h>

tq_status tq_qconv_weights_pack(const int8_t *codes, int64_t n, int32_t k, int64_t kc,
                                tq_qconv_weights *out, tq_error *err)
{
    memset(out, 0, sizeof *out);
    if (n < 1 || k < 1 || kc < 1)
        return tq_fail(err, TQ_STATUS_ARG, "qconv: pack needs n, k, kc >= 1");
    const int64_t n8 = (n + 7) / 8, steps = (kc + 1) / 2;
    const size_t count = (size_t)(n8 * k * steps * 16);
    out->data = aligned_alloc(32, (count * sizeof *out->data + 31) / 32 * 32);
    if (!out->data)
        return tq_fail(err, TQ_STATUS_NOMEM, "qconv: out of memory packing %lld weights",
                       (long long)(n * k * kc));
    memset(out->data, 0, count * sizeof *out->data);
    for (int64_t o = 0; o < n; o++)
        for (int32_t ky = 0; ky < k; ky++)
            for (int64_t j = 0; j < kc; j++) {
                const int64_t at = (((o / 8) * k + ky) * steps + j / 2) * 16 + (o % 8) * 2 + j % 2;
                out->data[at] = codes[(o * k + ky) * kc + j];
            }
    out->n = n;
    out->n8 = n8;
    out->k = k;
    out->kc = kc;
    out->steps = steps;
    return TQ_STATUS_OK;
}

void tq_qconv_weights_free(tq_qconv_weights *w)
{
    free(w->data);
    memset(w, 0, sizeof *w);
}

void tq_qconv_store(const tq_qconv_epilogue *ep, int64_t o0, int64_t count, const int32_t *sums,
                    void *out)
{
    if (ep->kind == TQ_QCONV_CODES) {
        uint8_t *y = out;
        for (int64_t j = 0; j < count; j++) y[j] = (uint8_t)tq_qconv_value(sums[j], o0 + j, ep);
    } else {
        int32_t *y = out;
        for (int64_t j = 0; j < count; j++) y[j] = (int32_t)tq_qconv_value(sums[j], o0 + j, ep);
    }
}

/* The sums of 8 channels (group grp) at the pixel whose taps start at px. */
static void sums8(const tq_qconv_weights *w, const tq_qconv_geom *g, const int16_t *px,
                  int64_t grp, int32_t sums[8])
{
    memset(sums, 0, 8 * sizeof *sums);
    for (int32_t ky = 0; ky < w->k; ky++) {
        const int16_t *xr = px + ky * g->tap_row_step;
        const int16_t *wr = w->data + ((grp * w->k + ky) * w->steps) * 16;
        for (int64_t s = 0; s < w->steps; s++)
            for (int j = 0; j < 8; j++)
                sums[j] += xr[2 * s] * wr[s * 16 + 2 * j] + xr[2 * s + 1] * wr[s * 16 + 2 * j + 1];
    }
}

/* The plain C path: one output pixel, 8 channels at a time, in the packed order. */
void tq_qconv_run_ref(const tq_qconv_weights *w, const tq_qconv_epilogue *ep, const int16_t *x,
                      const tq_qconv_geom *g, void *out)
{
    const size_t out_size = ep->kind == TQ_QCONV_CODES ? 1 : sizeof(int32_t);
    for (int64_t r = 0; r < g->rows; r++) {
        const int64_t oy = r / g->out_w, ox = r % g->out_w, f = g->pool2 ? 2 : 1;
        const int16_t *px = x + f * oy * g->line_step + f * ox * g->pixel_step;
        for (int64_t grp = 0; grp < w->n8; grp++) {
            int32_t sums[8], other[8];
            sums8(w, g, px, grp, sums);
            for (int win = 1; g->pool2 && win < 4; win++) {
                sums8(w, g, px + (win / 2) * g->line_step + (win % 2) * g->pixel_step, grp, other);
                for (int j = 0; j < 8; j++) sums[j] = other[j] > sums[j] ? other[j] : sums[j];
            }
            const int64_t o0 = 8 * grp, count = w->n - o0 < 8 ? w->n - o0 : 8;
            tq_qconv_store(ep, o0, count, sums,
                           (char *)out + (size_t)(r * g->out_stride + o0) * out_size);
        }
    }
}

static void requant_ref(const int32_t *a, int64_t count, int64_t period,
                        const tq_qconv_epilogue *ep, void *out)
{
    for (int64_t j = 0; j < count; j++) {
        const int64_t v = tq_qconv_value(a[j], j % period, ep);
        if (ep->kind == TQ_QCONV_CODES) ((uint8_t *)out)[j] = (uint8_t)v;
        else ((int32_t *)out)[j] = (int32_t)v;
    }
}

static void add_ref(const int32_t *a, const int32_t *b, int64_t count, int32_t ma, int32_t mb,
                    int64_t bias, const tq_qconv_epilogue *ep, void *out)
{
    for (int64_t j = 0; j < count; j++) {
        const int64_t v = tq_qconv_round((int64_t)a[j] * ma + (int64_t)b[j] * mb + bias, ep);
        if (ep->kind == TQ_QCONV_CODES) ((uint8_t *)out)[j] = (uint8_t)v;
        else ((int32_t *)out)[j] = (int32_t)v;
    }
}

#if TQ_HAVE_QCONV_AVX2
#include <pthread.h>
#include <stdio.h>

#include "qkernels.h"

static bool g_avx2;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    g_avx2 = strcmp(tq_qgemm_backend(), "avx2") == 0;
}

bool tq_qconv_available(void)
{
    pthread_once(&g_once, choose);
    return g_avx2;
}

void tq_qconv_run(const tq_qconv_weights *w, const tq_qconv_epilogue *ep, const int16_t *x,
                  const tq_qconv_geom *g, void *out)
{
    if (tq_qconv_available()) tq_qconv_run_avx2(w, ep, x, g, out);
    else tq_qconv_run_ref(w, ep, x, g, out);
}

void tq_qconv_requant(const int32_t *a, int64_t count, int64_t period, const tq_qconv_epilogue *ep,
                      void *out)
{
    if (tq_qconv_available()) tq_qconv_requant_avx2(a, count, period, ep, out);
    else requant_ref(a, count, period, ep, out);
}

void tq_qconv_add(const int32_t *a, const int32_t *b, int64_t count, int32_t ma, int32_t mb,
                  int64_t bias, const tq_qconv_epilogue *ep, void *out)
{
    if (tq_qconv_available()) tq_qconv_add_avx2(a, b, count, ma, mb, bias, ep, out);
    else add_ref(a, b, count, ma, mb, bias, ep, out);
}
#else
bool tq_qconv_available(void) { return false; }

void tq_qconv_run(const tq_qconv_weights *w, const tq_qconv_epilogue *ep, const int16_t *x,
                  const tq_qconv_geom *g, void *out)
{
    tq_qconv_run_ref(w, ep, x, g, out);
}

void tq_qconv_requant(const int32_t *a, int64_t count, int64_t period, const tq_qconv_epilogue *ep,
                      void *out)
{
    requant_ref(a, count, period, ep, out);
}

void tq_qconv_add(const int32_t *a, const int32_t *b, int64_t count, int32_t ma, int32_t mb,
                  int64_t bias, const tq_qconv_epilogue *ep, void *out)
{
    add_ref(a, b, count, ma, mb, bias, ep, out);
}
#endif
