/* Quantizers as QDQ: an input quantizer becomes QuantizeLinear -> DequantizeLinear (-> Clip
 * for a grid narrower than its container), a weight quantizer an initializer of codes
 * followed by DequantizeLinear; the scales are fake quant's own (tq_quantizer_codes). */
#include "onnx_internal.h"

#include <stdlib.h>
#include <string.h>

/* Scale and zero-point initializers (`prefix`_scale, `prefix`_zero_point) of one shape. */
static void scale_inits(tq_onnx_ex *x, const char *prefix, int ndim, const int64_t *dims,
                        const float *scales, int64_t n, int32_t elem_type)
{
    tq_ob *b = &x->b;
    tq_ob_init_float(b, tq_ob_str(b, "%s_scale", prefix), ndim, dims, scales);
    size_t bytes = tq_onnx_storage_bytes(elem_type, n);
    uint8_t *zeros = tq_ob_alloc(b, bytes); /* 0 in every type here, FP8 +0 included */
    if (zeros) tq_ob_init_raw(b, tq_ob_str(b, "%s_zero_point", prefix), elem_type, ndim, dims,
                              zeros, bytes);
}

static int resolve_axis(int axis, int ndim) { return axis < 0 ? axis + ndim : axis; }

const char *tq_onnx_emit_input(tq_onnx_ex *x, const tq_layer_info *l, const tq_qlayer *q,
                               const char *in)
{
    tq_ob *b = &x->b;
    const char *name = l->name;
    int sample_ndim = l->in_ndim, ndim = sample_ndim + 1;
    int32_t channels = l->in_shape[0];
    if (q->input_mul) {
        int64_t dims[4] = {1, channels, 1, 1};
        char *mul = tq_ob_str(b, "%s.input_mul", name);
        char *out = tq_ob_str(b, "%s.input_scaled", name);
        tq_ob_init_float(b, mul, ndim, dims, q->input_mul->data);
        tq_ob_node(b, "Mul", out, 2, (const char *[]){in, mul}, out);
        in = out;
    }
    if (!q->input_q) return in;
    tq_onnx_qtype t;
    if (tq_onnx_qtype_of(q->input_q, false, name, &t, x->err)) return NULL;
    /* The scales of a quantizer with fixed amax do not depend on the values: ask for those
     * of one sample of the right shape. */
    int32_t shape[TQ_MAX_DIMS] = {1};
    for (int i = 0; i < sample_ndim; i++) shape[i + 1] = l->in_shape[i];
    tq_tensor *probe = tq_tensor_new(ndim, shape, false);
    if (!probe) return tq_fail(x->err, TQ_STATUS_NOMEM, "onnx: out of memory"), NULL;
    int64_t ns = tq_quantizer_scale_count(q->input_q, probe, x->err);
    float *scales = ns > 0 ? tq_ob_alloc(b, (size_t)ns * sizeof *scales) : NULL;
    tq_status st = scales ? tq_quantizer_codes(q->input_q, probe, NULL, scales, x->err)
                          : tq_fail(x->err, TQ_STATUS_NOMEM, "onnx: out of memory");
    tq_tensor_free(probe);
    if (st) return NULL;
    for (int64_t i = 0; i < ns; i++)
        if (!(scales[i] > 0.0f))
            return tq_fail(x->err, TQ_STATUS_ARG,
                           "onnx: layer %s: activation amax is 0 (QuantizeLinear cannot divide "
                           "by a zero scale); calibrate on data that reaches this layer",
                           name),
                   NULL;
    int axis = resolve_axis(tq_quantizer_spec(q->input_q)->axis, ndim);
    int64_t sdims[1] = {ns};
    char *prefix = tq_ob_str(b, "%s.input", name);
    scale_inits(x, prefix, ns > 1 ? 1 : 0, sdims, scales, ns, t.elem_type);
    char *scale = tq_ob_str(b, "%s_scale", prefix), *zp = tq_ob_str(b, "%s_zero_point", prefix);
    char *codes = tq_ob_str(b, "%s.input_codes", name), *dq = tq_ob_str(b, "%s.input_dq", name);
    Onnx__NodeProto *qn =
        tq_ob_node(b, "QuantizeLinear", codes, 3, (const char *[]){in, scale, zp}, codes);
    Onnx__NodeProto *dn =
        tq_ob_node(b, "DequantizeLinear", dq, 3, (const char *[]){codes, scale, zp}, dq);
    if (ns > 1) {
        tq_ob_attr_int(b, qn, "axis", axis);
        tq_ob_attr_int(b, dn, "axis", axis);
    }
    const char *out = dq;
    if (t.clip) {
        /* qmin * s and qmax * s: the products DequantizeLinear forms for the grid's ends */
        float *lo = tq_ob_alloc(b, (size_t)ns * sizeof *lo), *hi = tq_ob_alloc(b, (size_t)ns * sizeof *hi);
        if (!lo || !hi) return tq_fail(x->err, TQ_STATUS_NOMEM, "onnx: out of memory"), NULL;
        for (int64_t i = 0; i < ns; i++) {
            lo[i] = t.qmin * scales[i];
            hi[i] = t.qmax * scales[i];
        }
        char *lo_name = tq_ob_str(b, "%s.input_min", name), *hi_name = tq_ob_str(b, "%s.input_max", name);
        char *clipped = tq_ob_str(b, "%s.input_clipped", name);
        if (ns == 1) {
            tq_ob_init_float(b, lo_name, 0, NULL, lo);
            tq_ob_init_float(b, hi_name, 0, NULL, hi);
            tq_ob_node(b, "Clip", clipped, 3, (const char *[]){dq, lo_name, hi_name}, clipped);
        } else { /* Clip takes scalars only: per-channel bounds go through Max and Min */
            int64_t dims[TQ_MAX_DIMS];
            for (int i = 0; i < ndim; i++) dims[i] = i == axis ? ns : 1;
            char *upper = tq_ob_str(b, "%s.input_upper", name);
            tq_ob_init_float(b, lo_name, ndim, dims, lo);
            tq_ob_init_float(b, hi_name, ndim, dims, hi);
            tq_ob_node(b, "Min", upper, 2, (const char *[]){dq, hi_name}, upper);
            tq_ob_node(b, "Max", clipped, 2, (const char *[]){upper, lo_name}, clipped);
        }
        out = clipped;
    }
    if (x->opt->expose_codes) {
        char *cast = tq_ob_str(b, "codes.%s", name), *qin = tq_ob_str(b, "qin.%s", name);
        Onnx__NodeProto *cn = tq_ob_node(b, "Cast", cast, 1, (const char *[]){codes}, cast);
        tq_ob_attr_int(b, cn, "to", TQ_ONNX_FLOAT);
        /* an Identity, as two layers may quantize the same tensor (a block's input) */
        tq_ob_node(b, "Identity", qin, 1, (const char *[]){in}, qin);
        int64_t dims[3];
        for (int i = 0; i < sample_ndim; i++) dims[i] = l->in_shape[i];
        tq_ob_output(b, tq_ob_value(b, cast, TQ_ONNX_FLOAT, sample_ndim, dims));
        tq_ob_output(b, tq_ob_value(b, qin, TQ_ONNX_FLOAT, sample_ndim, dims));
    }
    if (t.opset > x->opset) x->opset = t.opset;
    x->quantizers++;
    return out;
}

const char *tq_onnx_emit_weight(tq_onnx_ex *x, const tq_layer_info *l, const tq_qlayer *q)
{
    tq_ob *b = &x->b;
    const tq_tensor *w = q->weight;
    int64_t dims[TQ_MAX_DIMS];
    for (int i = 0; i < w->ndim; i++) dims[i] = w->shape[i];
    if (!q->weight_q) {
        char *name = tq_ob_str(b, "%s.weight", l->name);
        tq_ob_init_float(b, name, w->ndim, dims, w->data);
        return name;
    }
    tq_onnx_qtype t;
    if (tq_onnx_qtype_of(q->weight_q, true, l->name, &t, x->err)) return NULL;
    int64_t ns = tq_quantizer_scale_count(q->weight_q, w, x->err);
    if (ns < 0) return NULL;
    float *scales = tq_ob_alloc(b, (size_t)ns * sizeof *scales);
    float *codes = malloc((size_t)w->numel * sizeof *codes);
    size_t bytes = tq_onnx_storage_bytes(t.elem_type, w->numel);
    uint8_t *stored = tq_ob_alloc(b, bytes);
    if (!scales || !codes || !stored) {
        free(codes);
        return tq_fail(x->err, TQ_STATUS_NOMEM, "onnx: out of memory"), NULL;
    }
    if (tq_quantizer_codes(q->weight_q, w, codes, scales, x->err)) {
        free(codes);
        return NULL;
    }
    tq_onnx_store_codes(t.elem_type, tq_quantizer_format(q->weight_q), codes, w->numel, stored);
    free(codes);
    char *cname = tq_ob_str(b, "%s.weight_codes", l->name);
    tq_ob_init_raw(b, cname, t.elem_type, w->ndim, dims, stored, bytes);

    const tq_qspec *s = tq_quantizer_spec(q->weight_q);
    int axis = resolve_axis(s->axis, w->ndim);
    int64_t sdims[TQ_MAX_DIMS] = {ns};
    int sndim = 0;
    if (s->block == TQ_BLOCK_CHANNEL) sndim = 1;
    if (s->block == TQ_BLOCK_BLOCK) { /* the weight's shape with the axis cut into blocks */
        sndim = w->ndim;
        for (int i = 0; i < w->ndim; i++)
            sdims[i] = i == axis ? (dims[i] + s->block_size - 1) / s->block_size : dims[i];
        int64_t count = 1;
        for (int i = 0; i < sndim; i++) count *= sdims[i];
        TQ_ASSERT(count == ns); /* tinyqat lays block scales out as [outer][blocks][inner] */
    }
    char *prefix = tq_ob_str(b, "%s.weight", l->name);
    scale_inits(x, prefix, sndim, sdims, scales, ns, t.elem_type);
    char *scale = tq_ob_str(b, "%s_scale", prefix), *zp = tq_ob_str(b, "%s_zero_point", prefix);
    char *dq = tq_ob_str(b, "%s.weight_dq", l->name);
    Onnx__NodeProto *dn =
        tq_ob_node(b, "DequantizeLinear", dq, 3, (const char *[]){cname, scale, zp}, dq);
    if (s->block != TQ_BLOCK_TENSOR) tq_ob_attr_int(b, dn, "axis", axis);
    if (s->block == TQ_BLOCK_BLOCK) tq_ob_attr_int(b, dn, "block_size", s->block_size);
    if (t.opset > x->opset) x->opset = t.opset;
    x->quantizers++;
    return dq;
}
