/* Private to layers/: the model record (layers in forward order, parameter tensors, buffers)
 * shared by the builder, the forward pass, the zoo and the description. */
#ifndef TINYQAT_LAYERS_INTERNAL_H
#define TINYQAT_LAYERS_INTERNAL_H

#include "layers.h"

/* Frees a quantizer put in a slot; provided by quant/. */
void tq_quantizer_free(tq_quantizer *q);

#define TQ_LAYER_NAME_MAX 48
#define TQ_PARAM_NAME_MAX 64
#define TQ_BN_MOMENTUM 0.1f
#define TQ_BN_EPS 1e-5f

typedef struct tq_layer {
    char name[TQ_LAYER_NAME_MAX];
    tq_layer_kind kind;
    int src, src2;    /* handles of the layers feeding this one (TQ_MODEL_INPUT = x) */
    int32_t ndim;     /* output of one sample: 3 = (C,H,W), 1 = (F) */
    int32_t shape[3];
    int kernel, stride, pad;
    float p;          /* dropout */
    int weight, bias; /* indices into the model's parameter tensors, -1 = none */
    int qlayer;       /* index into the model's qlayers, -1 = none */
    bool folded;      /* batch norm folded into the layer before: passes its input through */
    int64_t state_offset; /* batch norm: running mean, then running variance */
    int64_t n_params;
    tq_batchnorm_state bn;
} tq_layer;

typedef struct tq_param {
    tq_tensor t;
    char name[TQ_PARAM_NAME_MAX];
    int64_t offset;  /* into the parameter and gradient buffers */
    int64_t fan_in;  /* > 0: uniform(+-1/sqrt(fan_in)); 0: constant init_value */
    float init_value;
} tq_param;

struct tq_model {
    char name[TQ_LAYER_NAME_MAX];
    int32_t c, h, w, classes;
    tq_layer *layers;
    int n_layers, cap_layers;
    tq_param *params;
    int n_params_t, cap_params_t;
    int64_t n_params, n_state;
    float *param_buf, *grad_buf, *state_buf;
    tq_qlayer *qlayers;
    int n_qlayers;
    tq_tensor **outs; /* forward scratch: each layer's output in the current step */
    tq_tensor *last_input; /* forward scratch: the model input of the current step */
    int next_src;     /* input of the next layer added */
    bool finished;
    tq_error err;     /* first builder error */
};

/* Per-sample shape of a handle's output ("16x32x32" or "120") into buf. */
const char *tq_model_shape_str(const tq_model *m, int handle, char *buf, size_t len);
const char *tq_layer_kind_name(const tq_layer *l);

#endif
