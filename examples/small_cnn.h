/* The model of our own design that the lessons share, built with the layer API: two
 * convolution blocks (3x3 conv, batch norm, ReLU, 2x2 max pool) and two Linear layers. */
#ifndef SMALL_CNN_H
#define SMALL_CNN_H

#include <tinyqat/layers.h>

/* For (c,h,w) images in `classes` classes; NULL (err says why) on failure. The builder keeps
 * its first error in the model, so the calls need no checks until tq_model_finish. */
static inline tq_model *small_cnn_new(int32_t c, int32_t h, int32_t w, int32_t classes,
                                      uint64_t seed, tq_error *err)
{
    tq_model *m = tq_model_new("small_cnn", c, h, w, err);
    if (!m) return NULL;
    tq_model_conv2d(m, "conv1", 16, 3, 1, 1, false); /* no bias: the batch norm has one */
    tq_model_batchnorm(m, "bn1");
    tq_model_relu(m, "relu1");
    tq_model_maxpool2d(m, "pool1", 2, 2);            /* 28x28 images: 16 x 14 x 14 */
    tq_model_conv2d(m, "conv2", 32, 3, 1, 1, false);
    tq_model_batchnorm(m, "bn2");
    tq_model_relu(m, "relu2");
    tq_model_maxpool2d(m, "pool2", 2, 2);            /* 32 x 7 x 7 */
    tq_model_flatten(m, "flatten");
    tq_model_linear(m, "fc1", 64, true);
    tq_model_relu(m, "relu3");
    tq_model_linear(m, "fc2", classes, true);        /* the logits */
    tq_rng rng;
    tq_rng_seed(&rng, seed);                         /* the initial weights */
    if (tq_model_finish(m, &rng, err) != TQ_STATUS_OK) {
        tq_model_free(m);
        return NULL;
    }
    return m;
}

#endif
