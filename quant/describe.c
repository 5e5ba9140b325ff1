/* One-line description of a quantizer for `tinyqat info`. */
#include "quant_internal.h"

#include <stdio.h>

static const char *calib_name(tq_calib_kind c)
{
    switch (c) {
    case TQ_CALIB_MAX: return "max";
    case TQ_CALIB_PERCENTILE: return "percentile";
    case TQ_CALIB_MSE: return "mse";
    case TQ_CALIB_ENTROPY: return "entropy";
    }
    return "?";
}

const char *tq_quantizer_describe(const tq_quantizer *q, char *buf, size_t len)
{
    char spec[128], fmt[16], blocks[96], amax[128];
    const tq_qspec *s = &q->spec;
    tq_qspec_format(s, spec, sizeof spec);
    tq_format_name(q->format, fmt, sizeof fmt);
    const char *scales = s->scale == TQ_SCALE_E8M0    ? ", E8M0 scales"
                         : s->scale == TQ_SCALE_NVFP4 ? ", E4M3 scales + fp32 global"
                                                      : "";
    if (s->block == TQ_BLOCK_TENSOR) snprintf(blocks, sizeof blocks, "per-tensor");
    else if (s->block == TQ_BLOCK_CHANNEL) snprintf(blocks, sizeof blocks, "per-channel axis %d", s->axis);
    else snprintf(blocks, sizeof blocks, "blocks of %d along axis %d%s", s->block_size, s->axis, scales);
    if (q->amax_count == 0) {
        snprintf(amax, sizeof amax, "no amax");
    } else {
        float lo = q->amax[0], hi = q->amax[0];
        for (int64_t i = 1; i < q->amax_count; i++) {
            lo = fminf(lo, q->amax[i]);
            hi = fmaxf(hi, q->amax[i]);
        }
        if (s->block == TQ_BLOCK_BLOCK && q->amax_count == 1)
            snprintf(amax, sizeof amax, "block amax from data, clipped at %.6g", (double)hi);
        else if (q->amax_count == 1)
            snprintf(amax, sizeof amax, "amax %.6g", (double)hi);
        else
            snprintf(amax, sizeof amax, "%lld amax in [%.6g, %.6g]", (long long)q->amax_count,
                     (double)lo, (double)hi);
    }
    const char *uns = q->unsigned_chosen                               ? " (calibration saw no negative values)"
                      : s->auto_unsigned && s->format.kind == TQ_FORMAT_INT &&
                              s->scale == TQ_SCALE_FLOAT && q->amax_count > 0 && !q->from_weights
                          ? " (kept signed)"
                          : "";
    snprintf(buf, len, "%s: %s%s, %s, %s%s, %s, %s", spec, fmt, uns, blocks,
             q->from_weights ? "from weights" : "calib=", q->from_weights ? "" : calib_name(s->calib),
             amax, tq_qstate_name(q->state));
    return buf;
}
