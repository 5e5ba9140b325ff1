/* The read-only view of a model's graph (tq_model_layer) that exporters and the integer
 * engine walk: each layer's kind, inputs, shapes, window and batch-norm values. */
#include "layers_internal.h"

#include <string.h>

int tq_model_layer_count(const tq_model *m) { return m->n_layers; }

void tq_model_layer(const tq_model *m, int i, tq_layer_info *out)
{
    TQ_ASSERT(m->finished && i >= 0 && i < m->n_layers);
    const tq_layer *l = &m->layers[i];
    memset(out, 0, sizeof *out);
    out->name = l->name;
    out->kind = l->kind;
    out->kind_name = tq_layer_kind_name(l);
    out->src = l->src;
    out->src2 = l->src2;
    if (l->src == TQ_MODEL_INPUT) {
        out->in_ndim = 3;
        out->in_shape[0] = m->c;
        out->in_shape[1] = m->h;
        out->in_shape[2] = m->w;
    } else {
        out->in_ndim = m->layers[l->src].ndim;
        memcpy(out->in_shape, m->layers[l->src].shape, sizeof out->in_shape);
    }
    out->ndim = l->ndim;
    memcpy(out->shape, l->shape, sizeof out->shape);
    out->kernel = l->kernel;
    out->stride = l->stride;
    out->pad = l->pad;
    out->p = l->p;
    out->qlayer = l->qlayer;
    if (l->kind == TQ_LAYER_BATCHNORM) {
        out->folded = l->folded;
        out->gamma = m->params[l->weight].t.data;
        out->beta = m->params[l->bias].t.data;
        out->running_mean = l->bn.running_mean;
        out->running_var = l->bn.running_var;
        out->eps = l->bn.eps;
    }
}
