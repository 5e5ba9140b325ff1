/* The model description: one line per layer with its kind, per-sample output shape and
 * parameter count, then the totals. */
#include "layers_internal.h"

#include <stdio.h>

const char *tq_layer_kind_name(const tq_layer *l)
{
    switch (l->kind) {
    case TQ_LAYER_LINEAR: return "linear";
    case TQ_LAYER_CONV2D: return "conv2d";
    case TQ_LAYER_BATCHNORM: return l->ndim == 3 ? "batchnorm2d" : "batchnorm1d";
    case TQ_LAYER_MAXPOOL2D: return "maxpool2d";
    case TQ_LAYER_AVGPOOL2D: return "avgpool2d";
    case TQ_LAYER_GLOBAL_AVGPOOL: return "global_avgpool";
    case TQ_LAYER_RELU: return "relu";
    case TQ_LAYER_DROPOUT: return "dropout";
    case TQ_LAYER_FLATTEN: return "flatten";
    case TQ_LAYER_ADD: return "add";
    }
    return "unknown";
}

/* "3x3/2 p1", "p=0.5", "+ layer1.0.relu" and the like. */
static void layer_detail(const tq_model *m, const tq_layer *l, char *buf, size_t len)
{
    buf[0] = '\0';
    switch (l->kind) {
    case TQ_LAYER_CONV2D:
    case TQ_LAYER_MAXPOOL2D:
    case TQ_LAYER_AVGPOOL2D:
        snprintf(buf, len, "%dx%d/%d p%d", l->kernel, l->kernel, l->stride, l->pad);
        break;
    case TQ_LAYER_DROPOUT:
        snprintf(buf, len, "p=%g", (double)l->p);
        break;
    case TQ_LAYER_ADD:
        snprintf(buf, len, "%s + %s", l->src < 0 ? "input" : m->layers[l->src].name,
                 l->src2 < 0 ? "input" : m->layers[l->src2].name);
        break;
    default:
        break;
    }
}

void tq_model_describe(const tq_model *m, FILE *out)
{
    fprintf(out, "model %s: input %dx%dx%d, %d classes\n", m->name, m->c, m->h, m->w, m->classes);
    fprintf(out, "  %-24s %-15s %-34s %-12s %10s\n", "layer", "kind", "detail", "output", "params");
    for (int i = 0; i < m->n_layers; i++) {
        const tq_layer *l = &m->layers[i];
        char shape[48], detail[TQ_LAYER_NAME_MAX * 2 + 8];
        layer_detail(m, l, detail, sizeof detail);
        fprintf(out, "  %-24s %-15s %-34s %-12s %10lld\n", l->name, tq_layer_kind_name(l), detail,
                tq_model_shape_str(m, i, shape, sizeof shape), (long long)l->n_params);
    }
    fprintf(out, "  total: %lld parameters in %d tensors, %lld batch-norm state values, "
                 "%d quantizable layers\n",
            (long long)m->n_params, m->n_params_t, (long long)m->n_state, m->n_qlayers);
}
