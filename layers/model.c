/* The model container: laying out the parameter, gradient and state buffers, PyTorch-style
 * initialisation, accessors, quantizer slots and freeing. */
#include "layers_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void init_params(tq_model *m, tq_rng *rng)
{
    /* Kaiming-uniform with a = sqrt(5), as nn.Linear and nn.Conv2d do: gain sqrt(2/(1+5)),
     * bound gain * sqrt(3 / fan_in) = 1/sqrt(fan_in); their biases use the same bound. */
    for (int i = 0; i < m->n_params_t; i++) {
        tq_param *p = &m->params[i];
        if (p->fan_in > 0) {
            float bound = (float)(1.0 / sqrt((double)p->fan_in));
            tq_tensor_fill_uniform(&p->t, rng, -bound, bound);
        } else {
            for (int64_t k = 0; k < p->t.numel; k++) p->t.data[k] = p->init_value;
        }
    }
    for (int i = 0; i < m->n_layers; i++) {
        tq_layer *l = &m->layers[i];
        if (l->kind != TQ_LAYER_BATCHNORM) continue;
        for (int32_t c = 0; c < l->shape[0]; c++) {
            l->bn.running_mean[c] = 0.0f;
            l->bn.running_var[c] = 1.0f;
        }
    }
}

tq_status tq_model_finish(tq_model *m, tq_rng *rng, tq_error *err)
{
    if (!m) return tq_fail(err, TQ_STATUS_ARG, "model: tq_model_finish got no model");
    if (m->err.status != TQ_STATUS_OK) return tq_fail(err, m->err.status, "%s", m->err.msg);
    if (m->finished)
        return tq_fail(err, TQ_STATUS_ARG, "model %s: tq_model_finish called twice", m->name);
    if (!rng) return tq_fail(err, TQ_STATUS_ARG, "model %s: tq_model_finish needs an rng", m->name);
    if (m->n_layers == 0 || m->next_src != m->n_layers - 1 || m->layers[m->n_layers - 1].ndim != 1) {
        char s[48];
        tq_model_shape_str(m, m->n_layers ? m->n_layers - 1 : TQ_MODEL_INPUT, s, sizeof s);
        return tq_fail(err, TQ_STATUS_SHAPE,
                       "model %s: the last layer must give flat logits, got %s per sample",
                       m->name, s);
    }
    m->classes = m->layers[m->n_layers - 1].shape[0];

    size_t np = (size_t)(m->n_params ? m->n_params : 1), ns = (size_t)(m->n_state ? m->n_state : 1);
    m->param_buf = malloc(np * sizeof(float));
    m->grad_buf = calloc(np, sizeof(float));
    m->state_buf = malloc(ns * sizeof(float));
    m->qlayers = calloc((size_t)(m->n_qlayers ? m->n_qlayers : 1), sizeof *m->qlayers);
    m->outs = calloc((size_t)m->n_layers, sizeof *m->outs);
    if (!m->param_buf || !m->grad_buf || !m->state_buf || !m->qlayers || !m->outs)
        return tq_fail(err, TQ_STATUS_NOMEM, "model %s: out of memory for %lld parameters",
                       m->name, (long long)m->n_params);

    for (int i = 0; i < m->n_params_t; i++) {
        tq_param *p = &m->params[i];
        p->t.data = m->param_buf + p->offset;
        p->t.grad = m->grad_buf + p->offset;
        p->t.name = p->name;
    }
    for (int i = 0; i < m->n_layers; i++) {
        tq_layer *l = &m->layers[i];
        if (l->kind == TQ_LAYER_BATCHNORM) {
            l->bn.running_mean = m->state_buf + l->state_offset;
            l->bn.running_var = l->bn.running_mean + l->shape[0];
            l->bn.momentum = TQ_BN_MOMENTUM;
            l->bn.eps = TQ_BN_EPS;
        }
        if (l->qlayer >= 0) {
            tq_qlayer *q = &m->qlayers[l->qlayer];
            q->name = l->name;
            q->is_conv = l->kind == TQ_LAYER_CONV2D;
            q->weight = &m->params[l->weight].t;
            q->bias = l->bias >= 0 ? &m->params[l->bias].t : NULL;
        }
    }
    init_params(m, rng);
    m->finished = true;
    return TQ_STATUS_OK;
}

void tq_model_free(tq_model *m)
{
    if (!m) return;
    if (m->qlayers)
        for (int i = 0; i < m->n_qlayers; i++) tq_qlayer_set_quantizers(&m->qlayers[i], NULL, NULL);
    free(m->layers);
    free(m->params);
    free(m->param_buf);
    free(m->grad_buf);
    free(m->state_buf);
    free(m->qlayers);
    free(m->outs);
    free(m);
}

const char *tq_model_name(const tq_model *m) { return m->name; }

void tq_model_input(const tq_model *m, int32_t *c, int32_t *h, int32_t *w, int32_t *classes)
{
    if (c) *c = m->c;
    if (h) *h = m->h;
    if (w) *w = m->w;
    if (classes) *classes = m->classes;
}

int64_t tq_model_param_count(const tq_model *m) { return m->n_params; }
float *tq_model_params(tq_model *m) { return m->param_buf; }
float *tq_model_grads(tq_model *m) { return m->grad_buf; }

void tq_model_zero_grad(tq_model *m)
{
    if (m->grad_buf) memset(m->grad_buf, 0, (size_t)m->n_params * sizeof(float));
}

int tq_model_tensor_count(const tq_model *m) { return m->n_params_t; }

tq_tensor *tq_model_tensor(tq_model *m, int i)
{
    TQ_ASSERT(m->finished && i >= 0 && i < m->n_params_t);
    return &m->params[i].t;
}

tq_tensor *tq_model_tensor_by_name(tq_model *m, const char *name)
{
    for (int i = 0; i < m->n_params_t; i++)
        if (strcmp(m->params[i].name, name) == 0) return &m->params[i].t;
    return NULL;
}

int64_t tq_model_state_count(const tq_model *m) { return m->n_state; }
float *tq_model_state(tq_model *m) { return m->state_buf; }

int tq_model_qlayer_count(const tq_model *m) { return m->n_qlayers; }

tq_qlayer *tq_model_qlayer(tq_model *m, int i)
{
    TQ_ASSERT(m->finished && i >= 0 && i < m->n_qlayers);
    return &m->qlayers[i];
}

void tq_qlayer_set_quantizers(tq_qlayer *l, tq_quantizer *weight_q, tq_quantizer *input_q)
{
    if (l->weight_q && l->weight_q != weight_q) tq_quantizer_free(l->weight_q);
    if (l->input_q && l->input_q != input_q) tq_quantizer_free(l->input_q);
    l->weight_q = weight_q;
    l->input_q = input_q;
}
