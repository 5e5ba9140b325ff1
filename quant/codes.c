/* Fake quant split into codes and scales, for code that stores or multiplies the codes
 * (ONNX export, the integer engine), the parts a block-scaled format stores a scale as, and
 * the bit pattern of a grid value. */
#include "quant_internal.h"

#include <stdlib.h>

int64_t tq_quantizer_scale_count(const tq_quantizer *q, const tq_tensor *x, tq_error *err)
{
    tq_layout l;
    if (!tq_layout_of(&q->spec, x, &l, "quantizer", err)) return -1;
    return l.count;
}

tq_status tq_quantizer_codes(const tq_quantizer *q, const tq_tensor *x, float *codes,
                             float *scales, tq_error *err)
{
    tq_layout l;
    if (!tq_layout_of(&q->spec, x, &l, "quantizer", err)) return err->status;
    float *amax = malloc((size_t)l.count * sizeof *amax);
    if (!amax) return tq_fail(err, TQ_STATUS_NOMEM, "quantizer: out of memory");
    tq_status st = tq_quant_prepare(q, x, &l, amax, scales, err);
    free(amax);
    if (st != TQ_STATUS_OK || !codes) return st;
    int64_t spans = tq_layout_span_count(&l);
    for (int64_t k = 0; k < spans; k++) {
        tq_span s = tq_layout_span(&l, k);
        for (int64_t i = 0; i < s.len; i++) {
            float sc = scales[s.sidx + (s.vec ? i : 0)];
            float v = x->data[s.start + i];
            /* the same division and rounding as tq_fake_quant_forward */
            codes[s.start + i] = sc > 0.0f ? tq_format_round(q->format, v / sc) : 0.0f;
        }
    }
    return TQ_STATUS_OK;
}

tq_status tq_quantizer_scale_parts(const tq_quantizer *q, const tq_tensor *x,
                                   tq_scale_parts *parts, tq_error *err)
{
    tq_layout l;
    if (!tq_layout_of(&q->spec, x, &l, "quantizer", err)) return err->status;
    float *buf = malloc(2 * (size_t)l.count * sizeof *buf);
    if (!buf) return tq_fail(err, TQ_STATUS_NOMEM, "quantizer: out of memory");
    float *amax = buf, *step = buf + l.count;
    tq_status st = tq_quant_prepare(q, x, &l, amax, step, err);
    if (st == TQ_STATUS_OK) {
        /* the global amax as tq_quant_prepare takes it: the single amax, or the largest */
        float global = q->amax[0];
        if (q->amax_count > 1) {
            global = 0.0f;
            for (int64_t j = 0; j < l.count; j++) global = fmaxf(global, amax[j]);
        }
        float g = tq_nvfp4_global_scale(global);
        for (int64_t j = 0; j < l.count; j++) {
            tq_scale_parts *p = &parts[j];
            *p = (tq_scale_parts){.step = step[j], .amax = amax[j], .exponent = -127};
            if (q->spec.scale == TQ_SCALE_E8M0 && amax[j] > 0.0f)
                p->exponent = tq_e8m0_exponent(amax[j], q->format);
            if (q->spec.scale == TQ_SCALE_NVFP4) {
                p->global_scale = g;
                p->block_scale = tq_nvfp4_block_scale(amax[j], g);
            }
        }
    }
    free(buf);
    return st;
}

uint32_t tq_format_encode(tq_format f, float v)
{
    if (!tq_format_is_float(f)) {
        int32_t k = (int32_t)v;
        return (uint32_t)k & ((1u << f.bits) - 1u);
    }
    tq_grid_entry g[256];
    int n = tq_format_grid(f, g, 256);
    for (int i = 0; i < n; i++)
        if (g[i].value == v && signbit(g[i].value) == signbit(v)) return g[i].code;
    for (int i = 0; i < n; i++)
        if (g[i].value == v) return g[i].code;
    TQ_ASSERT(!"tq_format_encode: not a grid value");
    return 0;
}
