/* tinyqat layers: Linear, Conv2d, BatchNorm, pooling, activations, dropout and residual
 * blocks; the model container (named layers, one contiguous parameter buffer) and the
 * model zoo (mlp, lenet5, convnet, resnet20). Linear and Conv2d carry two quantizer slots. */
#ifndef TINYQAT_LAYERS_H
#define TINYQAT_LAYERS_H

#include <stdio.h>

#include "autograd.h"
#include "quant.h"

/* A model of your own, its forward on the tape, and a zoo model (checks left out; x is a
 * batch (N,1,28,28), the tape as in autograd.h's example):
 *
 *     tq_error err = {0};
 *     tq_model *m = tq_model_new("mynet", 1, 28, 28, &err);   // the input (C,H,W)
 *     tq_model_conv2d(m, "conv1", 8, 3, 1, 1, true);          // 8 3x3 filters, stride 1, pad 1
 *     tq_model_batchnorm(m, "bn1");
 *     tq_model_relu(m, "relu1");
 *     tq_model_maxpool2d(m, "pool1", 2, 2);                   // (8,14,14)
 *     tq_model_flatten(m, "flat");
 *     tq_model_linear(m, "fc", 10, true);                     // the logits
 *     tq_rng rng;
 *     tq_rng_seed(&rng, 1);
 *     tq_model_finish(m, &rng, &err);                          // buffers laid out, weights drawn
 *     tq_model_describe(m, stdout);                            // layers, shapes, parameters
 *
 *     tq_tensor *logits = tq_model_forward(m, tape, x, &rng); // (N,10)
 *
 *     tq_model *lenet = tq_model_create("lenet5", 1, 28, 28, 10, &rng, &err);
 *
 * A residual block keeps the handles the builders return: in = tq_model_relu(m, "relu1"),
 * the branch after it ending in out = tq_model_batchnorm(m, "bn3"), then
 * tq_model_add(m, "add", out, in) (tq_model_from(m, in) first starts a projection on the
 * shortcut). Each Linear and Conv2d is a qlayer with a weight and an input quantizer slot
 * (tq_model_qlayer); tq_attach_recipe (ptq.h) fills them. */

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
    /* (in channels) multiplier of the input before input_q, or NULL: the part of a
     * per-input-channel rescaling (SmoothQuant, AWQ) that no earlier layer could absorb. */
    tq_tensor *input_mul;
} tq_qlayer;

/* Zoo names: "mlp", "lenet5", "convnet", "resnet20". Sized from the input (C,H,W) and the
 * number of classes; parameters initialised as PyTorch does (Kaiming-uniform) from rng. */
tq_model *tq_model_create(const char *zoo_name, int32_t c, int32_t h, int32_t w,
                          int32_t classes, tq_rng *rng, tq_error *err);
/* As tq_model_create, but fails before allocating anything unless the model has exactly
 * n_params parameters (n_params < 0: any), for loading checkpoints safely. */
tq_model *tq_model_create_sized(const char *zoo_name, int32_t c, int32_t h, int32_t w,
                                int32_t classes, int64_t n_params, tq_rng *rng, tq_error *err);
void tq_model_free(tq_model *m);
const char *tq_model_name(const tq_model *m);
/* The input shape and class count the model was made for. */
void tq_model_input(const tq_model *m, int32_t *c, int32_t *h, int32_t *w, int32_t *classes);

/* Logits (N,classes) for x (N,C,H,W). Training behaviour (batch statistics, dropout) follows
 * tq_tape_training(t); rng drives dropout. */
tq_tensor *tq_model_forward(tq_model *m, tq_tape *t, tq_tensor *x, tq_rng *rng);
/* Inference only: the forward of layers 0..last (tq_model_layer's indices), returning the
 * output of layer `last` (the input itself for -1). For work that needs only early layers'
 * outputs (tq_model_qlayer_input of a layer reading one of them; of a later layer it is
 * not valid). */
tq_tensor *tq_model_forward_to(tq_model *m, tq_tape *t, tq_tensor *x, int last);

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

/* After a forward whose result was not finite: the first parameter tensor, or else the first
 * layer whose output in that forward, holds a NaN or an infinity (NULL if none does). Valid
 * until the tape of that forward is reset. */
const char *tq_model_first_nonfinite(const tq_model *m);

/* ---------------------------------------------------------------- rescaling and folding
 * Both keep the float function of the model; call them before attaching quantizers (a
 * weight quantizer's amax is not recomputed). */

/* Multiplies qlayer qi's weights by s[c] along the input channel (axis 1) and divides its
 * input by s[c] (c < in channels, s finite and > 0). The division goes into the weights and
 * bias of the Linear/Conv2d before it when that layer feeds only this one (directly or
 * through ReLU, dropout or a folded batch norm, which commute with a positive per-channel
 * scale); otherwise into the layer's input_mul. Returns 1 (folded), 0 (input_mul) or -1. */
int tq_model_scale_input(tq_model *m, int qi, const float *s, tq_error *err);
/* Sets (mul NULL: removes) qlayer qi's input_mul, as a checkpoint load does. */
tq_status tq_model_set_input_mul(tq_model *m, int qi, const float *mul, int64_t n,
                                 tq_error *err);
/* The input of qlayer qi in the last forward, before input_mul and input_q (NULL before
 * any forward). Valid until that forward's tape is reset. */
tq_tensor *tq_model_qlayer_input(tq_model *m, int qi);
/* qlayer qi's op (linear, or conv with its stride and padding) on x with weights w, no
 * bias and no quantizers: for measuring a layer's output error. */
tq_tensor *tq_model_qlayer_apply(tq_model *m, int qi, tq_tape *t, tq_tensor *x, tq_tensor *w);

/* Folds every batch norm that directly follows a Linear or Conv2d feeding only it:
 * w' = w g, b' = (b - mean) g + beta with g = gamma / sqrt(var + eps). The batch norm then
 * passes its input through, in training too. A layer without bias takes the batch norm's
 * beta tensor as its bias (still in the parameter buffer, so trained and saved). Returns
 * how many were folded, or -1. */
int tq_model_fold_batchnorms(tq_model *m, tq_error *err);
/* Marks one batch norm folded without touching any value (checkpoint load). */
tq_status tq_model_mark_folded(tq_model *m, const char *bn_name, tq_error *err);
/* Names of the folded batch norms, comma-separated ("" if none), into buf. */
const char *tq_model_folded_names(const tq_model *m, char *buf, size_t len);

/* Layers, output shapes and parameter counts, one line per layer. */
void tq_model_describe(const tq_model *m, FILE *out);

/* ---------------------------------------------------------------- the graph, read-only
 * What the model computes, layer by layer, for code that translates it into another form
 * (ONNX export, the integer engine). Layers are in forward order; each reads the output of
 * `src` (and, for ADD, `src2`), an earlier layer's index or TQ_MODEL_INPUT. */

typedef enum tq_layer_kind {
    TQ_LAYER_LINEAR,         /* y = x W^T + b; its weights and quantizers: tq_model_qlayer */
    TQ_LAYER_CONV2D,         /* square kernel, stride, zero padding on every side */
    TQ_LAYER_BATCHNORM,      /* eval: (x - mean) / sqrt(var + eps) * gamma + beta */
    TQ_LAYER_MAXPOOL2D,      /* no padding */
    TQ_LAYER_AVGPOOL2D,      /* no padding */
    TQ_LAYER_GLOBAL_AVGPOOL, /* (C,H,W) -> (C) */
    TQ_LAYER_RELU,
    TQ_LAYER_DROPOUT,        /* identity in inference */
    TQ_LAYER_FLATTEN,        /* (C,H,W) -> (C*H*W), row-major */
    TQ_LAYER_ADD,            /* src + src2 */
} tq_layer_kind;

typedef struct tq_layer_info {
    const char *name;
    tq_layer_kind kind;
    const char *kind_name;   /* "conv2d", "batchnorm2d", ... as `info` prints them */
    int src, src2;
    int32_t in_ndim, in_shape[3]; /* per-sample input shape (of src) */
    int32_t ndim, shape[3];  /* per-sample output shape: (C,H,W) or (F) */
    int kernel, stride, pad; /* conv and pooling */
    float p;                 /* dropout */
    int qlayer;              /* LINEAR/CONV2D: index for tq_model_qlayer; -1 otherwise */
    /* BATCHNORM: folded ones pass their input through (the layer before absorbed them). */
    bool folded;
    const float *gamma, *beta, *running_mean, *running_var; /* shape[0] values each */
    float eps;
} tq_layer_info;

int tq_model_layer_count(const tq_model *m);
/* Layer i (0 <= i < count) into *out; pointers stay valid while the model lives. */
void tq_model_layer(const tq_model *m, int i, tq_layer_info *out);

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
