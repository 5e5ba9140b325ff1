/* Batch-norm folding: a Linear or Conv2d followed by batch norm becomes one layer with the
 * same evaluation outputs, and the batch norm a pass-through. */
#include "layers_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The Linear/Conv2d feeding batch norm bi and nothing else, or -1. */
static int foldable_into(const tq_model *m, int bi)
{
    int p = m->layers[bi].src;
    if (p < 0) return -1;
    const tq_layer *l = &m->layers[p];
    if (l->kind != TQ_LAYER_LINEAR && l->kind != TQ_LAYER_CONV2D) return -1;
    for (int i = 0; i < m->n_layers; i++)
        if (i != bi && (m->layers[i].src == p || (m->layers[i].kind == TQ_LAYER_ADD && m->layers[i].src2 == p)))
            return -1;
    return p;
}

/* A layer without bias adds the batch norm's beta instead: that tensor is in the parameter
 * buffer, so QAT trains it and checkpoints keep it, and the zoo's models keep their layout. */
static void redirect_bias(tq_model *m, tq_layer *bn, int p)
{
    tq_qlayer *q = &m->qlayers[m->layers[p].qlayer];
    if (!q->bias) q->bias = &m->params[bn->bias].t;
    bn->folded = true;
}

int tq_model_fold_batchnorms(tq_model *m, tq_error *err)
{
    if (!m || !m->finished) {
        tq_fail(err, TQ_STATUS_ARG, "fold_batchnorms: needs a finished model");
        return -1;
    }
    int n = 0;
    for (int i = 0; i < m->n_layers; i++) {
        tq_layer *bn = &m->layers[i];
        int p = bn->kind == TQ_LAYER_BATCHNORM && !bn->folded ? foldable_into(m, i) : -1;
        if (p < 0) continue;
        tq_qlayer *q = &m->qlayers[m->layers[p].qlayer];
        float *gamma = m->params[bn->weight].t.data, *beta = m->params[bn->bias].t.data;
        tq_tensor *w = q->weight; /* (O,...) */
        int64_t row = w->numel / w->shape[0];
        for (int32_t c = 0; c < w->shape[0]; c++) {
            /* A negative or NaN running variance (never from training, possible in a
             * hand-edited file) counts as zero; eps > 0 keeps the divisor finite. */
            float var = bn->bn.running_var[c];
            double sd = sqrt((var > 0.0f ? (double)var : 0.0) + (double)bn->bn.eps);
            float g = sd > 0.0 ? (float)(gamma[c] / sd) : 0.0f;
            for (int64_t k = 0; k < row; k++) w->data[c * row + k] *= g;
            float b = q->bias ? q->bias->data[c] : 0.0f;
            float folded = (b - bn->bn.running_mean[c]) * g + beta[c];
            if (q->bias) q->bias->data[c] = folded;
            else beta[c] = folded;
        }
        redirect_bias(m, bn, p);
        n++;
    }
    return n;
}

tq_status tq_model_mark_folded(tq_model *m, const char *bn_name, tq_error *err)
{
    if (!m || !m->finished) return tq_fail(err, TQ_STATUS_ARG, "mark_folded: needs a finished model");
    for (int i = 0; i < m->n_layers; i++) {
        tq_layer *bn = &m->layers[i];
        if (strcmp(bn->name, bn_name) != 0) continue;
        int p = bn->kind == TQ_LAYER_BATCHNORM ? foldable_into(m, i) : -1;
        if (p < 0)
            return tq_fail(err, TQ_STATUS_ARG,
                           "model %s: layer %s is not a batch norm after a Linear or Conv2d",
                           m->name, bn_name);
        if (!bn->folded) redirect_bias(m, bn, p);
        return TQ_STATUS_OK;
    }
    return tq_fail(err, TQ_STATUS_ARG, "model %s: no layer named %s", m->name, bn_name);
}

const char *tq_model_folded_names(const tq_model *m, char *buf, size_t len)
{
    size_t used = 0;
    if (len) buf[0] = 0;
    for (int i = 0; i < m->n_layers; i++) {
        if (!m->layers[i].folded) continue;
        int k = snprintf(buf + used, len - used, "%s%s", used ? "," : "", m->layers[i].name);
        if (k < 0 || (size_t)k >= len - used) break;
        used += (size_t)k;
    }
    return buf;
}
