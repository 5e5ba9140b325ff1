/* Learned scales across a model (quantizer spec option scale=learn): switching them on, and
 * the optimizer step that updates every learned amax after the weights' step. */
#include "train.h"

#include <string.h>

/* Every quantizer of m, layer by layer, weights before inputs; NULL past the last. */
static tq_quantizer *quantizer_at(tq_model *m, int k, const char **layer, const char **slot)
{
    int n = tq_model_qlayer_count(m);
    for (int i = 0; i < n; i++) {
        tq_qlayer *l = tq_model_qlayer(m, i);
        tq_quantizer *q[2] = {l->weight_q, l->input_q};
        for (int j = 0; j < 2; j++) {
            if (!q[j] || k--) continue;
            if (layer) *layer = l->name;
            if (slot) *slot = j ? "input" : "weights";
            return q[j];
        }
    }
    return NULL;
}

tq_status tq_model_set_learn_scales(tq_model *m, bool on, tq_error *err)
{
    const char *layer, *slot;
    tq_quantizer *q;
    tq_error e = {0};
    for (int k = 0; on && (q = quantizer_at(m, k, &layer, &slot)); k++)
        if (tq_qspec_check_learnable(tq_quantizer_spec(q), &e))
            return tq_fail(err, TQ_STATUS_ARG, "layer %s %s: %s", layer, slot, e.msg);
    for (int k = 0; (q = quantizer_at(m, k, &layer, &slot)); k++)
        if (tq_quantizer_set_learn_scale(q, on, &e))
            return tq_fail(err, e.status, "layer %s %s: %s", layer, slot, e.msg);
    return TQ_STATUS_OK;
}

int64_t tq_model_learned_amax_count(tq_model *m)
{
    int64_t n = 0;
    tq_quantizer *q;
    for (int k = 0; (q = quantizer_at(m, k, NULL, NULL)); k++)
        if (tq_quantizer_learns_scale(q)) n += tq_quantizer_amax_count(q);
    return n;
}

void tq_model_zero_amax_grad(tq_model *m)
{
    tq_quantizer *q;
    for (int k = 0; (q = quantizer_at(m, k, NULL, NULL)); k++) {
        float *g = tq_quantizer_amax_grad(q);
        if (g) memset(g, 0, (size_t)tq_quantizer_amax_count(q) * sizeof *g);
    }
}

void tq_learned_amax_step(tq_model *m, tq_optim *o, float lr, float *buf)
{
    int64_t n = 0;
    tq_quantizer *q;
    for (int k = 0; (q = quantizer_at(m, k, NULL, NULL)); k++) {
        const float *g = tq_quantizer_amax_grad(q);
        if (!g) continue;
        int64_t c = tq_quantizer_amax_count(q);
        memcpy(buf + n, tq_quantizer_amax(q), (size_t)c * sizeof *buf);
        memcpy(buf + tq_optim_param_count(o) + n, g, (size_t)c * sizeof *buf);
        n += c;
    }
    TQ_ASSERT(n == tq_optim_param_count(o));
    tq_optim_step(o, buf, buf + n, lr);
    n = 0;
    for (int k = 0; (q = quantizer_at(m, k, NULL, NULL)); k++) {
        if (!tq_quantizer_amax_grad(q)) continue;
        tq_quantizer_set_learned_amax(q, buf + n);
        n += tq_quantizer_amax_count(q);
    }
}
