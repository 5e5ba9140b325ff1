/* Block formats: which amax each element of a tensor uses (per-tensor, per-channel,
 * per-block), block abs max, and the scales amax implies (float, E8M0, NVFP4). */
#include "quant_internal.h"

#define TENSOR_CHUNK 16384 /* elements per parallel run of a per-tensor quantizer */

bool tq_layout_of(const tq_qspec *s, const tq_tensor *x, tq_layout *l, const char *who,
                  tq_error *err)
{
    memset(l, 0, sizeof *l);
    l->kind = s->block;
    if (s->block == TQ_BLOCK_TENSOR) {
        l->outer = l->inner = 1;
        l->n = l->block_size = x->numel;
        l->nblocks = l->count = 1;
        return true;
    }
    int axis = s->axis < 0 ? x->ndim + s->axis : s->axis;
    if (axis < 0 || axis >= x->ndim) {
        char sh[64];
        tq_fail(err, TQ_STATUS_SHAPE, "%s: axis %d does not exist in a tensor of shape %s", who,
                s->axis, tq_shape_str(x, sh, sizeof sh));
        return false;
    }
    l->outer = l->inner = 1;
    for (int d = 0; d < axis; d++) l->outer *= x->shape[d];
    for (int d = axis + 1; d < x->ndim; d++) l->inner *= x->shape[d];
    l->n = x->shape[axis];
    if (s->block == TQ_BLOCK_CHANNEL) {
        l->block_size = 1;
        l->nblocks = l->count = l->n;
        return true;
    }
    l->block_size = s->block_size;
    l->nblocks = (l->n + l->block_size - 1) / l->block_size;
    l->count = l->outer * l->nblocks * l->inner;
    return true;
}

int64_t tq_layout_span_count(const tq_layout *l)
{
    if (l->kind == TQ_BLOCK_TENSOR) return (l->n + TENSOR_CHUNK - 1) / TENSOR_CHUNK;
    if (l->kind == TQ_BLOCK_BLOCK && l->inner == 1) return l->outer * l->nblocks;
    return l->outer * l->n;
}

tq_span tq_layout_span(const tq_layout *l, int64_t k)
{
    if (l->kind == TQ_BLOCK_TENSOR) {
        int64_t start = k * TENSOR_CHUNK, len = l->n - start;
        return (tq_span){start, len < TENSOR_CHUNK ? len : TENSOR_CHUNK, 0, false};
    }
    if (l->kind == TQ_BLOCK_CHANNEL) return (tq_span){k * l->inner, l->inner, k % l->n, false};
    if (l->inner == 1) {
        int64_t o = k / l->nblocks, b = k % l->nblocks, first = b * l->block_size;
        int64_t len = l->n - first;
        return (tq_span){o * l->n + first, len < l->block_size ? len : l->block_size, k, false};
    }
    int64_t o = k / l->n, c = k % l->n;
    return (tq_span){k * l->inner, l->inner, (o * l->nblocks + c / l->block_size) * l->inner,
                     true};
}

void tq_layout_block_absmax(const tq_layout *l, const float *x, float *amax)
{
    for (int64_t j = 0; j < l->count; j++) amax[j] = 0.0f;
    int64_t spans = tq_layout_span_count(l);
    for (int64_t k = 0; k < spans; k++) {
        tq_span s = tq_layout_span(l, k);
        const float *xs = x + s.start;
        if (s.vec) {
            float *a = amax + s.sidx;
            for (int64_t i = 0; i < s.len; i++) a[i] = fmaxf(a[i], fabsf(xs[i]));
        } else {
            float m = amax[s.sidx];
            for (int64_t i = 0; i < s.len; i++) m = fmaxf(m, fabsf(xs[i]));
            amax[s.sidx] = m;
        }
    }
}

static int elem_emax(tq_format f)
{
    switch (f.kind) {
    case TQ_FORMAT_E4M3: return 8;
    case TQ_FORMAT_E5M2: return 15;
    case TQ_FORMAT_E2M1: return 2;
    default: return 0; /* intN as 1.(N-2) fixed point: largest value just under 2 */
    }
}

int tq_e8m0_exponent(float amax, tq_format elem)
{
    int k;
    (void)frexpf(amax, &k); /* amax = m * 2^k, m in [0.5, 1): floor(log2 amax) = k - 1 */
    int e = k - 1 - elem_emax(elem);
    return e < -127 ? -127 : e > 127 ? 127 : e;
}

float tq_nvfp4_global_scale(float global_amax) { return global_amax / (448.0f * 6.0f); }

float tq_nvfp4_block_scale(float block_amax, float global_scale)
{
    if (!(global_scale > 0.0f)) return 0.0f;
    tq_format e4m3 = {TQ_FORMAT_E4M3, 8, false};
    return tq_format_round(e4m3, block_amax / 6.0f / global_scale);
}

void tq_scales_from_amax(const tq_qspec *s, tq_format f, const float *amax, int64_t count,
                         float global_amax, float *scale)
{
    float qmax = tq_format_max(f);
    float g = tq_nvfp4_global_scale(global_amax);
    /* intN elements of MX blocks carry N-2 fraction bits */
    int frac = f.kind == TQ_FORMAT_INT ? f.bits - 2 : 0;
    for (int64_t j = 0; j < count; j++) {
        float a = amax[j];
        if (!(a > 0.0f)) {
            scale[j] = 0.0f;
            continue;
        }
        switch (s->scale) {
        case TQ_SCALE_FLOAT: scale[j] = a / qmax; break;
        case TQ_SCALE_E8M0: scale[j] = ldexpf(1.0f, tq_e8m0_exponent(a, f) - frac); break;
        case TQ_SCALE_NVFP4: scale[j] = tq_nvfp4_block_scale(a, g) * g; break;
        }
    }
}
