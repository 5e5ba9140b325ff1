/* What the integer engine can run: every Linear and Conv2d with quantizing integer quantizers
 * (per-tensor or per-output-channel weights, per-tensor activations); a one-line refusal
 * naming the layer otherwise. */
#include "engine_internal.h"

#include <stdio.h>
#include <string.h>

/* "int4:channel=0", "mxfp4", "e4m3:block=32": the format and how scales are shared. */
static const char *spec_short(const tq_quantizer *q, char *buf, size_t len)
{
    const tq_qspec *s = tq_quantizer_spec(q);
    char name[16];
    if (s->scale == TQ_SCALE_E8M0 || s->scale == TQ_SCALE_NVFP4) {
        tq_qspec_format(s, buf, len);
        char *colon = strchr(buf, ':');
        if (colon) *colon = '\0';
        return buf;
    }
    tq_format_name(tq_quantizer_format(q), name, sizeof name);
    if (s->block == TQ_BLOCK_CHANNEL) snprintf(buf, len, "%s:channel=%d", name, s->axis);
    else if (s->block == TQ_BLOCK_BLOCK) snprintf(buf, len, "%s:block=%d", name, s->block_size);
    else snprintf(buf, len, "%s", name);
    return buf;
}

/* One quantizer: calibrated, quantizing, integer codes of at most 8 bits on float scales. */
static tq_status check_quantizer(const tq_quantizer *q, const char *layer, const char *what,
                                 tq_error *err)
{
    char spec[64];
    spec_short(q, spec, sizeof spec);
    const tq_qspec *s = tq_quantizer_spec(q);
    tq_format f = tq_quantizer_format(q);
    if (tq_quantizer_state(q) != TQ_QSTATE_QUANTIZING || tq_quantizer_amax_count(q) == 0)
        return tq_fail(err, TQ_STATUS_ARG,
                       "engine: layer %s: the %s quantizer is %s, not quantizing with a fixed "
                       "amax (calibrate the model first: tinyqat ptq)",
                       layer, what, tq_qstate_name(tq_quantizer_state(q)));
    if (s->scale != TQ_SCALE_FLOAT)
        return tq_fail(err, TQ_STATUS_ARG,
                       "engine: layer %s: %s are %s, a block-scaled format (MX/NVFP4); the "
                       "integer engine needs int2..int8 codes with float scales",
                       layer, what, spec);
    if (tq_format_is_float(f))
        return tq_fail(err, TQ_STATUS_ARG,
                       "engine: layer %s: %s are %s, a floating-point format (FP8/FP4); the "
                       "integer engine needs int2..int8 codes",
                       layer, what, spec);
    return TQ_STATUS_OK;
}

tq_status tq_engine_check_qlayer(tq_model *m, int qi, tq_error *err)
{
    tq_qlayer *l = tq_model_qlayer(m, qi);
    if (!l->weight_q && !l->input_q)
        return tq_fail(err, TQ_STATUS_ARG,
                       "engine: layer %s is float (no quantizers; a float model, or --keep "
                       "float); the integer engine needs integer weights and inputs on every "
                       "Linear and Conv2d",
                       l->name);
    if (!l->weight_q)
        return tq_fail(err, TQ_STATUS_ARG,
                       "engine: layer %s keeps float weights; the integer engine needs integer "
                       "weights on every Linear and Conv2d",
                       l->name);
    if (!l->input_q)
        return tq_fail(err, TQ_STATUS_ARG,
                       "engine: layer %s has no input quantizer (a weight-only recipe such as "
                       "w4a16); the integer engine needs integer activations too",
                       l->name);
    if (check_quantizer(l->weight_q, l->name, "weights", err) ||
        check_quantizer(l->input_q, l->name, "inputs", err))
        return err->status;
    char spec[64];
    const tq_qspec *ws = tq_quantizer_spec(l->weight_q), *as = tq_quantizer_spec(l->input_q);
    int axis = ws->axis < 0 ? ws->axis + l->weight->ndim : ws->axis;
    if (ws->block == TQ_BLOCK_BLOCK || (ws->block == TQ_BLOCK_CHANNEL && axis != 0))
        return tq_fail(err, TQ_STATUS_ARG,
                       "engine: layer %s: weights are %s; the integer engine needs per-tensor "
                       "or per-output-channel (channel=0) weight scales",
                       l->name, spec_short(l->weight_q, spec, sizeof spec));
    tq_format wf = tq_quantizer_format(l->weight_q);
    if (wf.kind == TQ_FORMAT_UINT && wf.bits == 8)
        return tq_fail(err, TQ_STATUS_ARG,
                       "engine: layer %s: weights are uint8; the integer engine multiplies "
                       "signed 8-bit weights (int2..int8, uint2..uint7)",
                       l->name);
    if (as->block != TQ_BLOCK_TENSOR)
        return tq_fail(err, TQ_STATUS_ARG,
                       "engine: layer %s: inputs are %s; the integer engine needs one scale per "
                       "activation tensor",
                       l->name, spec_short(l->input_q, spec, sizeof spec));
    return TQ_STATUS_OK;
}

double tq_engine_input_scale(tq_model *m, int qi)
{
    tq_qlayer *l = tq_model_qlayer(m, qi);
    float one = 0.0f, scale = 0.0f;
    tq_tensor x = {.data = &one, .ndim = 1, .shape = {1}, .numel = 1};
    tq_error err = {0};
    /* per tensor (checked): one scale whatever the shape */
    if (tq_quantizer_codes(l->input_q, &x, NULL, &scale, &err)) return 0.0;
    return scale;
}
