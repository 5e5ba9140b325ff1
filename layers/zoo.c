/* The model zoo: mlp, lenet5, a small VGG-style convnet and the CIFAR ResNet-20 of
 * He et al. (projection shortcuts), sized from the input shape and class count. */
#include "layers_internal.h"

#include <stdio.h>
#include <string.h>

static void build_mlp(tq_model *m, int32_t classes)
{
    tq_model_flatten(m, "flatten");
    tq_model_linear(m, "fc1", 256, true);
    tq_model_relu(m, "relu1");
    tq_model_linear(m, "fc2", 256, true);
    tq_model_relu(m, "relu2");
    tq_model_linear(m, "fc3", classes, true);
}

static void build_lenet5(tq_model *m, int32_t classes)
{
    tq_model_conv2d(m, "conv1", 6, 5, 1, 2, true);
    tq_model_relu(m, "relu1");
    tq_model_maxpool2d(m, "pool1", 2, 2);
    tq_model_conv2d(m, "conv2", 16, 5, 1, 0, true);
    tq_model_relu(m, "relu2");
    tq_model_maxpool2d(m, "pool2", 2, 2);
    tq_model_flatten(m, "flatten");
    tq_model_linear(m, "fc1", 120, true);
    tq_model_relu(m, "relu3");
    tq_model_linear(m, "fc2", 84, true);
    tq_model_relu(m, "relu4");
    tq_model_linear(m, "fc3", classes, true);
}

/* conv3x3 (no bias: batch norm follows) - BN - ReLU, numbered from 1. */
static void conv_bn_relu(tq_model *m, int i, int32_t channels)
{
    char conv[16], bn[16], relu[16];
    snprintf(conv, sizeof conv, "conv%d", i);
    snprintf(bn, sizeof bn, "bn%d", i);
    snprintf(relu, sizeof relu, "relu%d", i);
    tq_model_conv2d(m, conv, channels, 3, 1, 1, false);
    tq_model_batchnorm(m, bn);
    tq_model_relu(m, relu);
}

static void build_convnet(tq_model *m, int32_t classes)
{
    conv_bn_relu(m, 1, 32);
    conv_bn_relu(m, 2, 32);
    tq_model_maxpool2d(m, "pool1", 2, 2);
    conv_bn_relu(m, 3, 64);
    conv_bn_relu(m, 4, 64);
    tq_model_maxpool2d(m, "pool2", 2, 2);
    conv_bn_relu(m, 5, 128);
    tq_model_maxpool2d(m, "pool3", 2, 2);
    tq_model_global_avgpool(m, "avgpool");
    tq_model_linear(m, "fc", classes, true);
}

/* A basic block: conv3x3-BN-ReLU-conv3x3-BN, plus the input or, when the shape changes,
 * its 1x1 conv + BN projection; then ReLU. */
static void basic_block(tq_model *m, const char *prefix, int32_t in, int32_t planes, int stride)
{
    char name[TQ_LAYER_NAME_MAX];
#define NAME(suffix) (snprintf(name, sizeof name, "%s.%s", prefix, suffix), name)
    int input = m->next_src;
    tq_model_conv2d(m, NAME("conv1"), planes, 3, stride, 1, false);
    tq_model_batchnorm(m, NAME("bn1"));
    tq_model_relu(m, NAME("relu1"));
    tq_model_conv2d(m, NAME("conv2"), planes, 3, 1, 1, false);
    int main_path = tq_model_batchnorm(m, NAME("bn2"));
    int shortcut = input;
    if (stride != 1 || in != planes) {
        tq_model_from(m, input);
        tq_model_conv2d(m, NAME("shortcut.0"), planes, 1, stride, 0, false);
        shortcut = tq_model_batchnorm(m, NAME("shortcut.1"));
    }
    tq_model_add(m, NAME("add"), main_path, shortcut);
    tq_model_relu(m, NAME("relu2"));
#undef NAME
}

static void build_resnet20(tq_model *m, int32_t classes)
{
    tq_model_conv2d(m, "conv1", 16, 3, 1, 1, false);
    tq_model_batchnorm(m, "bn1");
    tq_model_relu(m, "relu");
    int32_t in = 16;
    for (int stage = 0; stage < 3; stage++) {
        int32_t planes = 16 << stage;
        for (int b = 0; b < 3; b++) {
            char prefix[24];
            snprintf(prefix, sizeof prefix, "layer%d.%d", stage + 1, b);
            basic_block(m, prefix, in, planes, stage > 0 && b == 0 ? 2 : 1);
            in = planes;
        }
    }
    tq_model_global_avgpool(m, "avgpool");
    tq_model_linear(m, "fc", classes, true);
}

static const struct {
    const char *name;
    void (*build)(tq_model *m, int32_t classes);
} zoo[] = {
    {"mlp", build_mlp},
    {"lenet5", build_lenet5},
    {"convnet", build_convnet},
    {"resnet20", build_resnet20},
};

tq_model *tq_model_create(const char *zoo_name, int32_t c, int32_t h, int32_t w,
                          int32_t classes, tq_rng *rng, tq_error *err)
{
    return tq_model_create_sized(zoo_name, c, h, w, classes, -1, rng, err);
}

tq_model *tq_model_create_sized(const char *zoo_name, int32_t c, int32_t h, int32_t w,
                                int32_t classes, int64_t n_params, tq_rng *rng, tq_error *err)
{
    size_t n = sizeof zoo / sizeof zoo[0], k = 0;
    while (k < n && (!zoo_name || strcmp(zoo_name, zoo[k].name) != 0)) k++;
    if (k == n) {
        tq_fail(err, TQ_STATUS_ARG,
                "model: unknown zoo model '%s' (expected one of: mlp, lenet5, convnet, resnet20)",
                zoo_name ? zoo_name : "(null)");
        return NULL;
    }
    if (classes < 2) {
        tq_fail(err, TQ_STATUS_ARG, "model %s: needs at least 2 classes, got %d", zoo_name, classes);
        return NULL;
    }
    tq_model *m = tq_model_new(zoo_name, c, h, w, err);
    if (!m) return NULL;
    zoo[k].build(m, classes);
    /* The builder has counted the parameters without allocating them: a shape that does not
     * match (a corrupt checkpoint) fails here, before any large allocation. */
    if (n_params >= 0 && m->err.status == TQ_STATUS_OK && m->n_params != n_params) {
        tq_fail(err, TQ_STATUS_FORMAT, "model %s on (%d,%d,%d): %lld parameters, expected %lld",
                zoo_name, c, h, w, (long long)m->n_params, (long long)n_params);
        tq_model_free(m);
        return NULL;
    }
    if (tq_model_finish(m, rng, err) != TQ_STATUS_OK) {
        tq_model_free(m);
        return NULL;
    }
    return m;
}
