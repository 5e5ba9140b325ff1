/* tinyqat layers: Linear, Conv2d, BatchNorm, pooling, activations, dropout and residual
 * blocks; the model container (named layers, one contiguous parameter buffer) and the
 * model zoo (mlp, lenet5, convnet, resnet20). Linear and Conv2d carry two quantizer slots. */
#ifndef TINYQAT_LAYERS_H
#define TINYQAT_LAYERS_H

#include <stdio.h>

#include "autograd.h"
#include "quant.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tq_model tq_model;

/* A Linear or Conv2d layer as the quantization code sees it. The model owns the quantizers
 * put in its slots (NULL = float) and frees them. */
typedef struct tq_qlayer {
    const char *name;      /* "conv1", "layer2.0.conv2", "fc" */
    bool is_conv;
    tq_tensor *weight;     /* (out,in) or (O,C,kh,kw); points into the parameter buffer */
    tq_tensor *bias;       /* (out) or NULL */
    tq_quantizer *weight_q;
    tq_quantizer *input_q;
} tq_qlayer;

/* Zoo names: "mlp", "lenet5", "convnet", "resnet20". Sized from the input (C,H,W) and the
 * number of classes; parameters initialised as PyTorch does (Kaiming-uniform) from rng. */
tq_model *tq_model_create(const char *zoo_name, int32_t c, int32_t h, int32_t w,
                          int32_t classes, tq_rng *rng, tq_error *err);
void tq_model_free(tq_model *m);
const char *tq_model_name(const tq_model *m);
/* The input shape and class count the model was made for. */
void tq_model_input(const tq_model *m, int32_t *c, int32_t *h, int32_t *w, int32_t *classes);

/* Logits (N,classes) for x (N,C,H,W). Training behaviour (batch statistics, dropout) follows
 * tq_tape_training(t); rng drives dropout. */
tq_tensor *tq_model_forward(tq_model *m, tq_tape *t, tq_tensor *x, tq_rng *rng);

/* All parameters in one buffer, their gradients in another of the same length. */
int64_t tq_model_param_count(const tq_model *m);
float *tq_model_params(tq_model *m);
float *tq_model_grads(tq_model *m);
void tq_model_zero_grad(tq_model *m);
/* Named parameter tensors ("conv1.weight", "bn1.bias", ...), in buffer order. */
int tq_model_tensor_count(const tq_model *m);
tq_tensor *tq_model_tensor(tq_model *m, int i);

/* Non-trained state (batch-norm running mean and variance) in one buffer. */
int64_t tq_model_state_count(const tq_model *m);
float *tq_model_state(tq_model *m);

/* Linear and Conv2d layers in forward order. */
int tq_model_qlayer_count(const tq_model *m);
tq_qlayer *tq_model_qlayer(tq_model *m, int i);
/* Puts quantizers in a layer's slots (either may be NULL), freeing the ones it replaces. */
void tq_qlayer_set_quantizers(tq_qlayer *l, tq_quantizer *weight_q, tq_quantizer *input_q);

/* The parameter tensor with this name ("layer1.0.bn1.weight"), or NULL if there is none. */
tq_tensor *tq_model_tensor_by_name(tq_model *m, const char *name);

/* Layers, output shapes and parameter counts, one line per layer. */
void tq_model_describe(const tq_model *m, FILE *out);

/* ---------------------------------------------------------------- building by hand
 * The zoo is built with these; they also make small custom models. Start with
 * tq_model_new, add layers in forward order, then tq_model_finish lays out the buffers and
 * initialises the parameters. Each layer reads the output of the layer added before it
 * (or the input), unless tq_model_from chose another one; each returns its handle.
 * A builder error is kept in the model (first wins): later calls return TQ_MODEL_ERROR
 * and tq_model_finish reports it. */

#define TQ_MODEL_INPUT (-1) /* handle of the model input */
#define TQ_MODEL_ERROR (-2)

tq_model *tq_model_new(const char *name, int32_t c, int32_t h, int32_t w, tq_error *err);
int tq_model_linear(tq_model *m, const char *name, int32_t out, bool bias);
int tq_model_conv2d(tq_model *m, const char *name, int32_t out, int kernel, int stride, int pad,
                    bool bias);
/* BatchNorm2d on (C,H,W) outputs, BatchNorm1d on flat ones; momentum 0.1, eps 1e-5. */
int tq_model_batchnorm(tq_model *m, const char *name);
int tq_model_maxpool2d(tq_model *m, const char *name, int kernel, int stride);
int tq_model_avgpool2d(tq_model *m, const char *name, int kernel, int stride);
int tq_model_global_avgpool(tq_model *m, const char *name);
int tq_model_relu(tq_model *m, const char *name);
int tq_model_dropout(tq_model *m, const char *name, float p);
int tq_model_flatten(tq_model *m, const char *name);
/* Elementwise sum of two earlier outputs of the same shape (a residual connection). */
int tq_model_add(tq_model *m, const char *name, int a, int b);
/* The next layer reads the output of `handle` (e.g. a shortcut branch from a block's input). */
void tq_model_from(tq_model *m, int handle);
/* Requires a flat output (the logits); draws the initial parameters from rng. On failure
 * the model stays unusable and must be freed. */
tq_status tq_model_finish(tq_model *m, tq_rng *rng, tq_error *err);

#ifdef __cplusplus
}
#endif
#endif
