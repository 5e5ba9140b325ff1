/* The model builder: appends layer records with their per-sample output shapes, checking
 * that each layer fits its input, and registers parameter tensors and batch-norm state. */
#include "layers_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tq_model *tq_model_new(const char *name, int32_t c, int32_t h, int32_t w, tq_error *err)
{
    if (!name || strlen(name) >= TQ_LAYER_NAME_MAX) {
        tq_fail(err, TQ_STATUS_ARG, "model: name must be 1..%d characters", TQ_LAYER_NAME_MAX - 1);
        return NULL;
    }
    if (c < 1 || h < 1 || w < 1) {
        tq_fail(err, TQ_STATUS_ARG, "model %s: input %dx%dx%d must have positive C, H and W", name,
                c, h, w);
        return NULL;
    }
    tq_model *m = calloc(1, sizeof *m);
    if (!m) {
        tq_fail(err, TQ_STATUS_NOMEM, "model %s: out of memory", name);
        return NULL;
    }
    strcpy(m->name, name);
    m->c = c;
    m->h = h;
    m->w = w;
    m->next_src = TQ_MODEL_INPUT;
    return m;
}

const char *tq_model_shape_str(const tq_model *m, int handle, char *buf, size_t len)
{
    if (handle == TQ_MODEL_INPUT)
        snprintf(buf, len, "%dx%dx%d", m->c, m->h, m->w);
    else if (m->layers[handle].ndim == 3)
        snprintf(buf, len, "%dx%dx%d", m->layers[handle].shape[0], m->layers[handle].shape[1],
                 m->layers[handle].shape[2]);
    else
        snprintf(buf, len, "%d", m->layers[handle].shape[0]);
    return buf;
}

/* Per-sample shape of a handle's output. */
static int32_t src_ndim(const tq_model *m, int h) { return h < 0 ? 3 : m->layers[h].ndim; }
static const int32_t *src_shape(const tq_model *m, int h, int32_t *input)
{
    if (h >= 0) return m->layers[h].shape;
    input[0] = m->c;
    input[1] = m->h;
    input[2] = m->w;
    return input;
}

/* A new layer reading from next_src, or NULL after recording why. */
static tq_layer *append(tq_model *m, const char *name, tq_layer_kind kind)
{
    if (!m || m->err.status != TQ_STATUS_OK) return NULL;
    if (m->finished) {
        tq_fail(&m->err, TQ_STATUS_ARG, "model %s: cannot add layer %s after tq_model_finish",
                m->name, name ? name : "(null)");
        return NULL;
    }
    if (!name || !name[0] || strlen(name) >= TQ_LAYER_NAME_MAX - 8) {
        tq_fail(&m->err, TQ_STATUS_ARG, "model %s: layer name must be 1..%d characters", m->name,
                TQ_LAYER_NAME_MAX - 9);
        return NULL;
    }
    for (int i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i].name, name) == 0) {
            tq_fail(&m->err, TQ_STATUS_ARG, "model %s: layer name %s is used twice", m->name, name);
            return NULL;
        }
    if (m->n_layers == m->cap_layers) {
        int cap = m->cap_layers ? 2 * m->cap_layers : 16;
        tq_layer *layers = realloc(m->layers, (size_t)cap * sizeof *layers);
        if (!layers) {
            tq_fail(&m->err, TQ_STATUS_NOMEM, "model %s: out of memory adding %s", m->name, name);
            return NULL;
        }
        m->layers = layers;
        m->cap_layers = cap;
    }
    tq_layer *l = &m->layers[m->n_layers];
    memset(l, 0, sizeof *l);
    strcpy(l->name, name);
    l->kind = kind;
    l->src = m->next_src;
    l->src2 = TQ_MODEL_INPUT;
    l->weight = l->bias = l->qlayer = -1;
    int32_t in[3];
    l->ndim = src_ndim(m, l->src);
    memcpy(l->shape, src_shape(m, l->src, in), sizeof l->shape);
    return l;
}

/* Makes the last appended layer current and returns its handle. */
static int commit(tq_model *m)
{
    m->next_src = m->n_layers;
    return m->n_layers++;
}

static int fail_layer(tq_model *m, tq_status status, const tq_layer *l, const char *fmt,
                      const char *detail)
{
    char in[48];
    tq_model_shape_str(m, l->src, in, sizeof in);
    tq_fail(&m->err, status, "model %s: layer %s (%s) %s, got input %s%s", m->name, l->name,
            tq_layer_kind_name(l), fmt, in, detail ? detail : "");
    return TQ_MODEL_ERROR;
}

/* Registers a parameter tensor of the layer; returns its index or -1. */
static int add_param(tq_model *m, tq_layer *l, const char *suffix, int32_t ndim,
                     const int32_t *shape, int64_t fan_in, float init_value)
{
    if (m->n_params_t == m->cap_params_t) {
        int cap = m->cap_params_t ? 2 * m->cap_params_t : 16;
        tq_param *p = realloc(m->params, (size_t)cap * sizeof *p);
        if (!p) {
            tq_fail(&m->err, TQ_STATUS_NOMEM, "model %s: out of memory adding %s", m->name,
                    l->name);
            return -1;
        }
        m->params = p;
        m->cap_params_t = cap;
    }
    tq_param *p = &m->params[m->n_params_t];
    memset(p, 0, sizeof *p);
    if (!tq_shape_set(&p->t, ndim, shape)) {
        tq_fail(&m->err, TQ_STATUS_ARG, "model %s: layer %s: bad %s shape", m->name, l->name,
                suffix);
        return -1;
    }
    snprintf(p->name, sizeof p->name, "%s.%s", l->name, suffix);
    p->offset = m->n_params;
    p->fan_in = fan_in;
    p->init_value = init_value;
    m->n_params += p->t.numel;
    l->n_params += p->t.numel;
    return m->n_params_t++;
}

int tq_model_linear(tq_model *m, const char *name, int32_t out, bool bias)
{
    tq_layer *l = append(m, name, TQ_LAYER_LINEAR);
    if (!l) return TQ_MODEL_ERROR;
    if (l->ndim != 1) return fail_layer(m, TQ_STATUS_SHAPE, l, "needs a flat input", " (add a flatten layer first)");
    if (out < 1) return fail_layer(m, TQ_STATUS_ARG, l, "needs at least 1 output feature", NULL);
    int32_t in = l->shape[0];
    l->weight = add_param(m, l, "weight", 2, (int32_t[]){out, in}, in, 0.0f);
    if (bias) l->bias = add_param(m, l, "bias", 1, (int32_t[]){out}, in, 0.0f);
    if (l->weight < 0 || (bias && l->bias < 0)) return TQ_MODEL_ERROR;
    l->qlayer = m->n_qlayers++;
    l->shape[0] = out;
    return commit(m);
}

/* Output size of a window sweep, or 0 when the input is smaller than the window. */
static int32_t window_out(int32_t in, int kernel, int stride, int pad)
{
    int32_t span = in + 2 * pad - kernel;
    return span < 0 ? 0 : span / stride + 1;
}

/* Shapes a conv or pooling layer; false after recording an error. */
static bool spatial(tq_model *m, tq_layer *l, int32_t channels, int kernel, int stride, int pad)
{
    char detail[128];
    if (l->ndim != 3) {
        fail_layer(m, TQ_STATUS_SHAPE, l, "needs a CxHxW input", NULL);
        return false;
    }
    if (kernel < 1 || stride < 1 || pad < 0 || pad >= kernel) {
        snprintf(detail, sizeof detail, " (kernel %d, stride %d, pad %d)", kernel, stride, pad);
        fail_layer(m, TQ_STATUS_ARG, l, "needs kernel >= 1, stride >= 1, 0 <= pad < kernel", detail);
        return false;
    }
    int32_t oh = window_out(l->shape[1], kernel, stride, pad);
    int32_t ow = window_out(l->shape[2], kernel, stride, pad);
    if (oh < 1 || ow < 1) {
        snprintf(detail, sizeof detail, ": the model input %dx%dx%d is too small", m->c, m->h,
                 m->w);
        char need[128];
        snprintf(need, sizeof need, "needs at least %dx%d pixels (kernel %d, pad %d)",
                 kernel - 2 * pad, kernel - 2 * pad, kernel, pad);
        fail_layer(m, TQ_STATUS_SHAPE, l, need, detail);
        return false;
    }
    l->kernel = kernel;
    l->stride = stride;
    l->pad = pad;
    l->shape[0] = channels;
    l->shape[1] = oh;
    l->shape[2] = ow;
    return true;
}

int tq_model_conv2d(tq_model *m, const char *name, int32_t out, int kernel, int stride, int pad,
                    bool bias)
{
    tq_layer *l = append(m, name, TQ_LAYER_CONV2D);
    if (!l) return TQ_MODEL_ERROR;
    if (out < 1) return fail_layer(m, TQ_STATUS_ARG, l, "needs at least 1 output channel", NULL);
    int32_t in = l->shape[0];
    if (!spatial(m, l, out, kernel, stride, pad)) return TQ_MODEL_ERROR;
    int64_t fan_in = (int64_t)in * kernel * kernel;
    l->weight = add_param(m, l, "weight", 4, (int32_t[]){out, in, kernel, kernel}, fan_in, 0.0f);
    if (bias) l->bias = add_param(m, l, "bias", 1, (int32_t[]){out}, fan_in, 0.0f);
    if (l->weight < 0 || (bias && l->bias < 0)) return TQ_MODEL_ERROR;
    l->qlayer = m->n_qlayers++;
    return commit(m);
}

int tq_model_batchnorm(tq_model *m, const char *name)
{
    tq_layer *l = append(m, name, TQ_LAYER_BATCHNORM);
    if (!l) return TQ_MODEL_ERROR;
    int32_t c = l->shape[0];
    l->weight = add_param(m, l, "weight", 1, &c, 0, 1.0f);
    l->bias = add_param(m, l, "bias", 1, &c, 0, 0.0f);
    if (l->weight < 0 || l->bias < 0) return TQ_MODEL_ERROR;
    l->state_offset = m->n_state;
    m->n_state += 2 * (int64_t)c;
    return commit(m);
}

static int pool(tq_model *m, const char *name, tq_layer_kind kind, int kernel, int stride)
{
    tq_layer *l = append(m, name, kind);
    if (!l) return TQ_MODEL_ERROR;
    if (!spatial(m, l, l->shape[0], kernel, stride, 0)) return TQ_MODEL_ERROR;
    return commit(m);
}

int tq_model_maxpool2d(tq_model *m, const char *name, int kernel, int stride)
{
    return pool(m, name, TQ_LAYER_MAXPOOL2D, kernel, stride);
}

int tq_model_avgpool2d(tq_model *m, const char *name, int kernel, int stride)
{
    return pool(m, name, TQ_LAYER_AVGPOOL2D, kernel, stride);
}

int tq_model_global_avgpool(tq_model *m, const char *name)
{
    tq_layer *l = append(m, name, TQ_LAYER_GLOBAL_AVGPOOL);
    if (!l) return TQ_MODEL_ERROR;
    if (l->ndim != 3) return fail_layer(m, TQ_STATUS_SHAPE, l, "needs a CxHxW input", NULL);
    l->ndim = 1;
    return commit(m);
}

int tq_model_relu(tq_model *m, const char *name)
{
    return append(m, name, TQ_LAYER_RELU) ? commit(m) : TQ_MODEL_ERROR;
}

int tq_model_dropout(tq_model *m, const char *name, float p)
{
    tq_layer *l = append(m, name, TQ_LAYER_DROPOUT);
    if (!l) return TQ_MODEL_ERROR;
    if (!(p >= 0.0f && p < 1.0f)) {
        char detail[48];
        snprintf(detail, sizeof detail, " (p = %g)", (double)p);
        return fail_layer(m, TQ_STATUS_ARG, l, "needs 0 <= p < 1", detail);
    }
    l->p = p;
    return commit(m);
}

int tq_model_flatten(tq_model *m, const char *name)
{
    tq_layer *l = append(m, name, TQ_LAYER_FLATTEN);
    if (!l) return TQ_MODEL_ERROR;
    l->shape[0] = (int32_t)tq_shape_numel(l->ndim, l->shape);
    l->ndim = 1;
    return commit(m);
}

static bool valid_handle(const tq_model *m, int h)
{
    return h == TQ_MODEL_INPUT || (h >= 0 && h < m->n_layers);
}

int tq_model_add(tq_model *m, const char *name, int a, int b)
{
    if (m && m->err.status == TQ_STATUS_OK && (!valid_handle(m, a) || !valid_handle(m, b))) {
        tq_fail(&m->err, TQ_STATUS_ARG, "model %s: add %s: handles %d and %d must be earlier layers",
                m->name, name ? name : "(null)", a, b);
        return TQ_MODEL_ERROR;
    }
    tq_model_from(m, a);
    tq_layer *l = append(m, name, TQ_LAYER_ADD);
    if (!l) return TQ_MODEL_ERROR;
    l->src2 = b;
    int32_t in[3];
    if (src_ndim(m, b) != l->ndim ||
        memcmp(src_shape(m, b, in), l->shape, (size_t)l->ndim * sizeof(int32_t)) != 0) {
        char other[64], detail[96];
        tq_model_shape_str(m, b, other, sizeof other);
        snprintf(detail, sizeof detail, " and %s", other);
        return fail_layer(m, TQ_STATUS_SHAPE, l, "needs two inputs of one shape", detail);
    }
    return commit(m);
}

void tq_model_from(tq_model *m, int handle)
{
    if (!m || m->err.status != TQ_STATUS_OK) return;
    if (!valid_handle(m, handle)) {
        tq_fail(&m->err, TQ_STATUS_ARG, "model %s: tq_model_from: %d is not a layer handle",
                m->name, handle);
        return;
    }
    m->next_src = handle;
}
