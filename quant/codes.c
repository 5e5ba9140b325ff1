/* Fake quant split into codes and scales, for code that stores or multiplies the codes
 * (ONNX export, the integer engine), and the bit pattern of a grid value. */
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
