/* A Linear or Conv2d compiled: weight codes reordered to the engine's column order, packed
 * at their width and unpacked into the product's operand, and per output channel one
 * fixed-point multiplier and one bias (a batch norm after the layer folded into both). */
#include "engine_internal.h"

#include <math.h>
#include <stdlib.h>

/* Column of weight (o, c, ky, kx) in the engine's order: (ky, kx, c) for a convolution,
 * (y, x, c) of the input's (H,W,C) storage for a Linear. */
static void reorder(const float *codes, int8_t *out, int64_t O, const tq_val *in, bool conv,
                    int k)
{
    const int64_t C = in->c;
    if (conv) {
        for (int64_t o = 0; o < O; o++)
            for (int64_t c = 0; c < C; c++)
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++)
                        out[o * C * k * k + ((int64_t)ky * k + kx) * C + c] =
                            (int8_t)codes[((o * C + c) * k + ky) * k + kx];
        return;
    }
    const int64_t HW = (int64_t)in->h * in->w, K = in->numel;
    for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t p = 0; p < HW; p++) out[o * K + p * C + c] = (int8_t)codes[o * K + c * HW + p];
}

/* The weights: codes from the quantizer (fake quant's, to the bit), packed, unpacked. */
static tq_status build_weights(tq_engine *e, tq_step *s, tq_qlayer *l, double *sw,
                               tq_error *err)
{
    const tq_tensor *W = l->weight;
    const int64_t O = W->shape[0], K = W->numel / O;
    const tq_val *in = &e->vals[s->in];
    if ((s->is_conv ? (int64_t)in->c * s->kernel * s->kernel : in->numel) != K)
        return tq_fail(err, TQ_STATUS_SHAPE, "engine: layer %s: %lld weights per output for "
                       "an input of (%d,%d,%d)", s->name, (long long)K, in->c, in->h, in->w);
    int64_t n_scales = tq_quantizer_scale_count(l->weight_q, W, err);
    if (n_scales != 1 && n_scales != O)
        return err->status ? err->status
                           : tq_fail(err, TQ_STATUS_ARG, "engine: layer %s: %lld weight scales "
                                     "for %lld outputs", s->name, (long long)n_scales, (long long)O);
    float *codes = malloc((size_t)W->numel * sizeof *codes);
    float *scales = malloc((size_t)n_scales * sizeof *scales);
    int8_t *ordered = malloc((size_t)W->numel);
    tq_status st = TQ_STATUS_OK;
    if (!codes || !scales || !ordered) {
        st = tq_fail(err, TQ_STATUS_NOMEM, "engine: out of memory for layer %s", s->name);
        goto done;
    }
    if ((st = tq_quantizer_codes(l->weight_q, W, codes, scales, err))) goto done;
    for (int64_t o = 0; o < O; o++) sw[o] = scales[n_scales == 1 ? 0 : o];
    reorder(codes, ordered, O, in, s->is_conv, s->kernel);
    tq_format f = tq_quantizer_format(l->weight_q);
    tq_format_name(f, s->wfmt, sizeof s->wfmt);
    /* uintN codes need N + 1 bits as signed operands */
    int bits = tq_packed_bits_for(f.kind == TQ_FORMAT_UINT ? f.bits + 1 : f.bits);
    if ((st = tq_pack_codes(ordered, W->numel, bits, &s->wcodes, err))) goto done;
    tq_unpack_codes(&s->wcodes, ordered); /* the operand comes from the packed codes */
    st = tq_qweights_pack(ordered, O, K, &s->w, err);
    /* a convolution's kernel rows are kernel * C values of the (ky, kx, c) order */
    if (!st) st = s->is_conv ? tq_qconv_weights_pack(ordered, O, s->kernel, K / s->kernel, &s->cw, err)
                             : tq_qconv_weights_pack(ordered, O, 1, K, &s->cw, err);
done:
    free(codes);
    free(scales);
    free(ordered);
    return st;
}

tq_status tq_engine_build_qlayer(tq_engine *e, tq_step *s, tq_model *m, tq_error *err)
{
    tq_qlayer *l = tq_model_qlayer(m, s->qlayer);
    const int64_t O = l->weight->shape[0];
    s->n_chan = O;
    if (l->weight->numel / O > TQ_ENGINE_MAX_K)
        return tq_fail(err, TQ_STATUS_ARG, "engine: layer %s sums %lld inputs per output; the "
                       "integer engine sums at most %d", s->name, (long long)(l->weight->numel / O),
                       TQ_ENGINE_MAX_K);
    /* per output channel: the weights' scale, then the real output = mult * acc + offset */
    double *sw = malloc((size_t)O * sizeof *sw), *mult = malloc((size_t)O * sizeof *mult),
           *offset = malloc((size_t)O * sizeof *offset);
    tq_status st = TQ_STATUS_OK;
    if (!sw || !mult || !offset)
        st = tq_fail(err, TQ_STATUS_NOMEM, "engine: out of memory for layer %s", s->name);
    if (!st) st = build_weights(e, s, l, sw, err);
    if (st) goto done;
    tq_layer_info bn = {0};
    if (s->merged_bn) tq_model_layer(m, s->bn_layer, &bn);
    const double sx = e->vals[s->in].unit;
    for (int64_t o = 0; o < O; o++) {
        /* s_x s_w acc + b; a batch norm after it makes that k (s_x s_w acc + b - mean) + beta */
        double k = 1.0, c = l->bias ? l->bias->data[o] : 0.0;
        if (s->merged_bn) {
            k = bn.gamma[o] / sqrt((double)bn.running_var[o] + bn.eps);
            c = k * (c - bn.running_mean[o]) + bn.beta[o];
        }
        mult[o] = sx * sw[o] * k;
        offset[o] = c;
    }
    if (s->out < 0) { /* the logits, dequantized as they are */
        s->deq_scale = mult;
        s->deq_bias = offset;
        mult = offset = NULL;
        goto done;
    }
    const double u = e->vals[s->out].unit; /* codes: their scale */
    for (int64_t o = 0; o < O; o++) {
        mult[o] = u > 0 ? mult[o] / u : 0.0;
        offset[o] = u > 0 ? offset[o] / u : 0.0;
    }
    st = tq_rowquant_make(&s->rq, mult, offset, s->w.row_sum, e->vals[s->in].zp, O, err);
    if (!st) {
        const int64_t padded = s->cw.n8 * 8;
        s->cw_mult = calloc((size_t)padded, sizeof *s->cw_mult);
        s->cw_bias = calloc((size_t)padded, sizeof *s->cw_bias);
        if (!s->cw_mult || !s->cw_bias) st = tq_fail(err, TQ_STATUS_NOMEM, "engine: out of memory");
        for (int64_t o = 0; !st && o < O; o++) {
            s->cw_mult[o] = s->rq.mult[o];
            s->cw_bias[o] = s->rq.bias[o];
        }
    }
done:
    free(sw);
    free(mult);
    free(offset);
    return st;
}
