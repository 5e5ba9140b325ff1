/* Check suite for layers/: zoo parameter counts against hand-computed totals, the buffer
 * layout, initialisation, output shapes, finite-difference gradients of small models,
 * batch-norm running statistics, a small training run, quantizer slots and error messages. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "tq_test.h"

/* ---- a counting fake quantizer: multiplies by `factor` so its use shows in the output.
 * Weak, so the real quant module replaces these once it is linked in. */
struct tq_quantizer {
    float factor;
    int calls;
    int *frees;
};

__attribute__((weak)) tq_tensor *tq_quantize(tq_tape *t, tq_tensor *x, tq_quantizer *q)
{
    q->calls++;
    return tq_scale(t, x, q->factor);
}

__attribute__((weak)) void tq_quantizer_free(tq_quantizer *q)
{
    if (!q) return;
    (*q->frees)++;
    free(q);
}

static tq_quantizer *fake_quantizer(float factor, int *frees)
{
    tq_quantizer *q = calloc(1, sizeof *q);
    ck_assert_ptr_nonnull(q);
    q->factor = factor;
    q->frees = frees;
    return q;
}

/* ---- helpers */

static tq_model *zoo(const char *name, int32_t c, int32_t h, int32_t w, uint64_t seed)
{
    tq_rng rng;
    tq_rng_seed(&rng, seed);
    tq_error err = {0};
    tq_model *m = tq_model_create(name, c, h, w, 10, &rng, &err);
    ck_assert_msg(m != NULL, "%s: %s", name, err.msg);
    return m;
}

static void finish(tq_model *m, uint64_t seed)
{
    tq_rng rng;
    tq_rng_seed(&rng, seed);
    tq_error err = {0};
    ck_assert_msg(tq_model_finish(m, &rng, &err) == TQ_STATUS_OK, "%s", err.msg);
}

static tq_tensor *input_batch(tq_tape *t, tq_rng *rng, int32_t n, int32_t c, int32_t h, int32_t w)
{
    tq_tensor *x = tq_tape_tensor(t, 4, (int32_t[]){n, c, h, w}, false);
    ck_assert_ptr_nonnull(x);
    tq_tensor_fill_uniform(x, rng, -1, 1);
    return x;
}

static const struct {
    const char *name;
    int32_t c, h, w;
    int64_t params;
} counts[] = {
    /* 784*256+256 + 256*256+256 + 256*10+10 */
    {"mlp", 1, 28, 28, 269322},
    /* 3072*256+256 + 65792 + 2570 */
    {"mlp", 3, 32, 32, 855050},
    /* conv1 1*6*25+6 = 156, 6x28x28 -> pool 6x14x14; conv2 6*16*25+16 = 2416, 16x10x10 ->
     * pool 16x5x5 = 400; fc1 400*120+120 = 48120; fc2 120*84+84 = 10164; fc3 84*10+10 = 850 */
    {"lenet5", 1, 28, 28, 61706},
    /* conv1 3*6*25+6 = 456, 6x32x32 -> 6x16x16 -> conv2 16x12x12 -> 16x6x6 = 576;
     * fc1 576*120+120 = 69240 */
    {"lenet5", 3, 32, 32, 456 + 2416 + 69240 + 10164 + 850},
    /* convs 3*32*9 = 864, 32*32*9 = 9216, 32*64*9 = 18432, 64*64*9 = 36864, 64*128*9 = 73728;
     * batch norms 2*(32+32+64+64+128) = 640; fc 128*10+10 = 1290 */
    {"convnet", 3, 32, 32, 864 + 9216 + 18432 + 36864 + 73728 + 640 + 1290},
    {"convnet", 1, 28, 28, 288 + 9216 + 18432 + 36864 + 73728 + 640 + 1290},
    /* conv1 432 + bn1 32; stage 1: 3 * (2*2304 + 2*32) = 14016; stage 2: block 0 4608 + 9216
     * + 2*64 + shortcut 512 + 64 = 14528, blocks 1-2: 2 * (2*9216 + 128) = 37120; stage 3:
     * block 0 18432 + 36864 + 256 + 2048 + 128 = 57728, blocks 1-2: 2 * (2*36864 + 256) =
     * 147968; fc 64*10+10 = 650 */
    {"resnet20", 3, 32, 32, 432 + 32 + 14016 + 14528 + 37120 + 57728 + 147968 + 650},
};

/* ---- parameter counts and layout */

START_TEST(test_zoo_parameter_counts)
{
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        tq_model *m = zoo(counts[i].name, counts[i].c, counts[i].h, counts[i].w, 1);
        ck_assert_msg(tq_model_param_count(m) == counts[i].params, "%s %dx%dx%d: %lld, expected %lld",
                      counts[i].name, counts[i].c, counts[i].h, counts[i].w,
                      (long long)tq_model_param_count(m), (long long)counts[i].params);
        int32_t c, h, w, classes;
        tq_model_input(m, &c, &h, &w, &classes);
        ck_assert(c == counts[i].c && h == counts[i].h && w == counts[i].w && classes == 10);
        ck_assert_str_eq(tq_model_name(m), counts[i].name);
        tq_model_free(m);
    }
    ck_assert_int_eq(counts[6].params, 272474);
}
END_TEST

START_TEST(test_resnet20_structure)
{
    tq_model *m = zoo("resnet20", 3, 32, 32, 1);
    /* 21 batch norms over 16 + 6*16 + 6*32+32 + 6*64+64 = 784 channels, two values each */
    ck_assert_int_eq(tq_model_state_count(m), 2 * 784);
    /* conv1, 18 block convs, 2 shortcut convs, fc */
    ck_assert_int_eq(tq_model_qlayer_count(m), 22);
    ck_assert_str_eq(tq_model_qlayer(m, 0)->name, "conv1");
    ck_assert_str_eq(tq_model_qlayer(m, 21)->name, "fc");
    ck_assert(!tq_model_qlayer(m, 21)->is_conv && tq_model_qlayer(m, 1)->is_conv);
    ck_assert_str_eq(tq_model_tensor(m, 0)->name, "conv1.weight");
    ck_assert_str_eq(tq_model_tensor(m, 1)->name, "bn1.weight");
    ck_assert_str_eq(tq_model_tensor(m, 2)->name, "bn1.bias");
    ck_assert_str_eq(tq_model_tensor(m, 3)->name, "layer1.0.conv1.weight");
    tq_tensor *sc = tq_model_tensor_by_name(m, "layer2.0.shortcut.0.weight");
    ck_assert_ptr_nonnull(sc);
    ck_assert(sc->ndim == 4 && sc->shape[0] == 32 && sc->shape[1] == 16 && sc->shape[2] == 1);
    ck_assert_ptr_nonnull(tq_model_tensor_by_name(m, "layer3.0.shortcut.1.bias"));
    ck_assert_ptr_null(tq_model_tensor_by_name(m, "layer1.0.shortcut.0.weight"));
    ck_assert_ptr_null(tq_model_tensor_by_name(m, "layer2.1.shortcut.0.weight"));
    tq_tensor *fc = tq_model_tensor_by_name(m, "fc.weight");
    ck_assert(fc->ndim == 2 && fc->shape[0] == 10 && fc->shape[1] == 64);
    ck_assert_ptr_null(tq_model_tensor_by_name(m, "layer1.0.conv1.bias")); /* no conv bias */
    tq_model_free(m);
}
END_TEST

START_TEST(test_tensors_tile_the_buffers)
{
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        tq_model *m = zoo(counts[i].name, counts[i].c, counts[i].h, counts[i].w, 2);
        float *p = tq_model_params(m), *g = tq_model_grads(m);
        int64_t next = 0;
        for (int k = 0; k < tq_model_tensor_count(m); k++) {
            tq_tensor *t = tq_model_tensor(m, k);
            ck_assert_msg(t->data == p + next, "%s: %s starts at %td, expected %lld", counts[i].name,
                          t->name, t->data - p, (long long)next);
            ck_assert(t->grad == g + next);
            ck_assert_int_eq(t->numel, tq_shape_numel(t->ndim, t->shape));
            ck_assert_ptr_eq(tq_model_tensor_by_name(m, t->name), t);
            next += t->numel;
        }
        ck_assert_int_eq(next, tq_model_param_count(m));
        /* every gradient starts at zero and zero_grad clears it again */
        for (int64_t k = 0; k < next; k++) ck_assert(g[k] == 0.0f);
        g[next - 1] = 3.0f;
        tq_model_zero_grad(m);
        ck_assert(g[next - 1] == 0.0f);
        tq_model_free(m);
    }
}
END_TEST

/* ---- initialisation */

START_TEST(test_init_bounds_and_reproducibility)
{
    const char *names[] = {"mlp", "lenet5", "convnet", "resnet20"};
    for (size_t i = 0; i < 4; i++) {
        tq_model *a = zoo(names[i], 3, 32, 32, 7), *b = zoo(names[i], 3, 32, 32, 7);
        tq_model *c = zoo(names[i], 3, 32, 32, 8);
        size_t bytes = (size_t)tq_model_param_count(a) * sizeof(float);
        ck_assert_msg(memcmp(tq_model_params(a), tq_model_params(b), bytes) == 0, "%s", names[i]);
        ck_assert_msg(memcmp(tq_model_params(a), tq_model_params(c), bytes) != 0, "%s", names[i]);
        for (int q = 0; q < tq_model_qlayer_count(a); q++) {
            tq_qlayer *l = tq_model_qlayer(a, q);
            tq_tensor *w = l->weight;
            int64_t fan_in = w->numel / w->shape[0];
            float bound = 1.0f / sqrtf((float)fan_in), maxabs = 0.0f;
            double mean = 0.0;
            for (int64_t k = 0; k < w->numel; k++) {
                ck_assert_msg(fabsf(w->data[k]) <= bound, "%s %s", names[i], w->name);
                maxabs = fmaxf(maxabs, fabsf(w->data[k]));
                mean += w->data[k];
            }
            /* uniform over the whole range, centred: the largest of n draws nears the bound */
            if (w->numel >= 1000) {
                ck_assert_msg(maxabs > 0.99f * bound, "%s %s max %g of %g", names[i], w->name,
                              (double)maxabs, (double)bound);
                TQ_ASSERT_NEAR(mean / (double)w->numel, 0.0, 0.05 * bound);
            }
            if (l->bias)
                for (int64_t k = 0; k < l->bias->numel; k++)
                    ck_assert(fabsf(l->bias->data[k]) <= bound);
        }
        for (int k = 0; k < tq_model_tensor_count(a); k++) {
            tq_tensor *t = tq_model_tensor(a, k);
            const char *dot = strrchr(t->name, '.');
            bool bn = strstr(t->name, "bn") || strstr(t->name, "shortcut.1");
            for (int64_t e = 0; bn && e < t->numel; e++)
                ck_assert(t->data[e] == (strcmp(dot, ".weight") == 0 ? 1.0f : 0.0f));
        }
        /* running means 0, then running variances 1, per batch norm */
        const float *s = tq_model_state(a);
        double sum = 0.0;
        for (int64_t k = 0; k < tq_model_state_count(a); k++) {
            ck_assert(s[k] == 0.0f || s[k] == 1.0f);
            sum += s[k];
        }
        TQ_ASSERT_NEAR(sum, tq_model_state_count(a) / 2, 0);
        tq_model_free(a);
        tq_model_free(b);
        tq_model_free(c);
    }
}
END_TEST

/* ---- forward shapes */

START_TEST(test_zoo_forward_shapes)
{
    const char *names[] = {"mlp", "lenet5", "convnet", "resnet20"};
    const int32_t inputs[2][3] = {{1, 28, 28}, {3, 32, 32}};
    tq_rng rng;
    tq_rng_seed(&rng, 3);
    tq_tape *t = tq_tape_new();
    for (int i = 0; i < 4; i++)
        for (int s = 0; s < 2; s++)
            for (int training = 0; training < 2; training++) {
                tq_model *m = zoo(names[i], inputs[s][0], inputs[s][1], inputs[s][2], 4);
                tq_tape_reset(t);
                tq_tape_set_training(t, training);
                tq_tape_set_recording(t, training);
                tq_tensor *x = input_batch(t, &rng, 3, inputs[s][0], inputs[s][1], inputs[s][2]);
                tq_tensor *y = tq_model_forward(m, t, x, &rng);
                ck_assert_msg(y != NULL, "%s: %s", names[i], tq_tape_error(t)->msg);
                ck_assert(y->ndim == 2 && y->shape[0] == 3 && y->shape[1] == 10);
                for (int64_t k = 0; k < y->numel; k++) ck_assert(isfinite(y->data[k]));
                tq_model_free(m);
            }
    tq_tape_free(t);
}
END_TEST

/* After the first step, a training step of the same shape takes no new memory. */
START_TEST(test_training_step_steady_state)
{
    tq_model *m = zoo("resnet20", 3, 8, 8, 1);
    tq_rng rng;
    tq_rng_seed(&rng, 2);
    tq_tape *t = tq_tape_new();
    int32_t labels[4] = {0, 1, 2, 3};
    size_t after_first = 0;
    for (int step = 0; step < 3; step++) {
        tq_tape_reset(t);
        if (step == 1) after_first = tq_tape_malloc_count(t);
        tq_tensor *x = input_batch(t, &rng, 4, 3, 8, 8);
        tq_tensor *loss = tq_softmax_cross_entropy(t, tq_model_forward(m, t, x, &rng), labels);
        ck_assert_int_eq(tq_backward(t, loss), TQ_STATUS_OK);
    }
    ck_assert_uint_eq(tq_tape_malloc_count(t), after_first);
    /* every parameter tensor received a gradient */
    for (int k = 0; k < tq_model_tensor_count(m); k++) {
        tq_tensor *p = tq_model_tensor(m, k);
        double norm = 0.0;
        for (int64_t e = 0; e < p->numel; e++) norm += fabs(p->grad[e]);
        ck_assert_msg(norm > 0.0, "%s has no gradient", p->name);
    }
    tq_tape_free(t);
    tq_model_free(m);
}
END_TEST

/* ---- gradients of whole models w.r.t. their parameter buffer */

typedef struct model_ctx {
    tq_model *m;
    int32_t n, c, h, w;
    const float *x;
    const int32_t *labels;
    uint64_t dropout_seed;
} model_ctx;

static tq_tensor *fn_model_loss(tq_tape *t, tq_tensor **in, void *ctx)
{
    (void)in; /* the parameter buffer: the model's tensors point into it */
    model_ctx *c = ctx;
    tq_tensor *x = tq_tape_tensor(t, 4, (int32_t[]){c->n, c->c, c->h, c->w}, false);
    memcpy(x->data, c->x, (size_t)x->numel * sizeof(float));
    tq_rng rng; /* the same dropout mask in every evaluation */
    tq_rng_seed(&rng, c->dropout_seed);
    return tq_softmax_cross_entropy(t, tq_model_forward(c->m, t, x, &rng), c->labels);
}

/* max_skip: an early parameter moves every ReLU input of its channel (after batch norm,
 * many sit near zero), so some cross a kink within +-eps; those are skipped, not passed. */
static void gradcheck_model(tq_model *m, int32_t n, int32_t c, int32_t h, int32_t w, int classes,
                            double max_skip)
{
    tq_rng rng;
    tq_rng_seed(&rng, 11);
    float *x = malloc((size_t)(n * c * h * w) * sizeof(float));
    int32_t *labels = malloc((size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < (int64_t)n * c * h * w; i++) x[i] = 2.0f * tq_rng_uniform(&rng) - 1.0f;
    for (int i = 0; i < n; i++) labels[i] = i % classes;
    model_ctx ctx = {m, n, c, h, w, x, labels, 99};
    tq_tensor buf = {.data = tq_model_params(m), .grad = tq_model_grads(m)};
    ck_assert(tq_shape_set(&buf, 1, (int32_t[]){(int32_t)tq_model_param_count(m)}));
    tq_tensor *in[] = {&buf};
    tq_gradcheck_opts o = tq_gradcheck_defaults();
    o.eps = 1e-3;
    o.skip_kinks = true;
    TQ_ASSERT_GRADCHECK(fn_model_loss, &ctx, in, 1, &o, max_skip);
    free(x);
    free(labels);
}

START_TEST(test_gradcheck_small_convnet)
{
    tq_error err = {0};
    tq_model *m = tq_model_new("small", 2, 6, 6, &err);
    tq_model_conv2d(m, "conv1", 3, 3, 1, 1, true);
    tq_model_batchnorm(m, "bn1");
    tq_model_relu(m, "relu1");
    tq_model_maxpool2d(m, "pool1", 2, 2);
    tq_model_conv2d(m, "conv2", 4, 2, 1, 0, false);
    tq_model_avgpool2d(m, "pool2", 2, 1);
    tq_model_flatten(m, "flatten");
    tq_model_dropout(m, "drop", 0.25f);
    tq_model_linear(m, "fc1", 5, true);
    tq_model_batchnorm(m, "bn2");
    tq_model_relu(m, "relu2");
    tq_model_linear(m, "fc2", 3, true);
    finish(m, 5);
    /* conv1 2*3*9+3, bn1 6, conv2 3*4*4, fc1 4*5+5, bn2 10, fc2 5*3+3 */
    ck_assert_int_eq(tq_model_param_count(m), 57 + 6 + 48 + 25 + 10 + 18);
    gradcheck_model(m, 4, 2, 6, 6, 3, 0.2);
    tq_model_free(m);
}
END_TEST

START_TEST(test_gradcheck_residual_blocks)
{
    tq_error err = {0};
    tq_model *m = tq_model_new("tiny_resnet", 2, 4, 4, &err);
    int stem = tq_model_relu(m, "stem");
    /* identity shortcut */
    tq_model_conv2d(m, "layer1.0.conv1", 2, 3, 1, 1, false);
    tq_model_batchnorm(m, "layer1.0.bn1");
    tq_model_relu(m, "layer1.0.relu1");
    tq_model_conv2d(m, "layer1.0.conv2", 2, 3, 1, 1, false);
    int main1 = tq_model_batchnorm(m, "layer1.0.bn2");
    tq_model_add(m, "layer1.0.add", main1, stem);
    int block1 = tq_model_relu(m, "layer1.0.relu2");
    /* projection shortcut with stride 2 */
    tq_model_conv2d(m, "layer2.0.conv1", 3, 3, 2, 1, false);
    tq_model_batchnorm(m, "layer2.0.bn1");
    tq_model_relu(m, "layer2.0.relu1");
    tq_model_conv2d(m, "layer2.0.conv2", 3, 3, 1, 1, false);
    int main2 = tq_model_batchnorm(m, "layer2.0.bn2");
    tq_model_from(m, block1);
    tq_model_conv2d(m, "layer2.0.shortcut.0", 3, 1, 2, 0, false);
    int sc = tq_model_batchnorm(m, "layer2.0.shortcut.1");
    tq_model_add(m, "layer2.0.add", main2, sc);
    tq_model_relu(m, "layer2.0.relu2");
    tq_model_global_avgpool(m, "avgpool");
    tq_model_linear(m, "fc", 3, true);
    finish(m, 6);
    /* layer1.0: 2 convs 2*2*9, 2 bns 2*2; layer2.0: convs 3*2*9 and 3*3*9, 3 bns 2*3,
     * shortcut conv 3*2; fc 3*3+3 */
    ck_assert_int_eq(tq_model_param_count(m), 2 * 36 + 2 * 4 + 54 + 81 + 3 * 6 + 6 + 12);
    gradcheck_model(m, 4, 2, 4, 4, 3, 0.1);
    tq_model_free(m);
}
END_TEST

/* ---- batch norm */

START_TEST(test_batchnorm1d_running_stats)
{
    tq_error err = {0};
    tq_model *m = tq_model_new("bn1d", 2, 1, 1, &err);
    tq_model_flatten(m, "flatten");
    tq_model_batchnorm(m, "bn");
    finish(m, 1);
    tq_tape *t = tq_tape_new();
    /* channel 0: 1,2,3,6 (mean 3, unbiased var 14/3); channel 1: 0,0,4,-4 (mean 0, var 32/3) */
    const float v[] = {1, 0, 2, 0, 3, 4, 6, -4};
    tq_tensor *x = tq_tape_tensor(t, 2, (int32_t[]){4, 2}, false);
    memcpy(x->data, v, sizeof v);
    tq_tensor *y = tq_model_forward(m, t, x, NULL);
    ck_assert_msg(y != NULL, "%s", tq_tape_error(t)->msg);
    const float *s = tq_model_state(m);
    TQ_ASSERT_NEAR(s[0], 0.1 * 3.0, 1e-6);
    TQ_ASSERT_NEAR(s[1], 0.0, 1e-6);
    TQ_ASSERT_NEAR(s[2], 0.9 + 0.1 * 14.0 / 3.0, 1e-5);
    TQ_ASSERT_NEAR(s[3], 0.9 + 0.1 * 32.0 / 3.0, 1e-5);
    /* training output uses the batch statistics (biased variance 3.5) */
    TQ_ASSERT_NEAR(y->data[0], (1.0 - 3.0) / sqrt(3.5 + 1e-5), 1e-4);
    /* evaluation uses the running ones and leaves them alone */
    tq_tape_reset(t);
    tq_tape_set_training(t, false);
    x = tq_tape_tensor(t, 2, (int32_t[]){1, 2}, false);
    x->data[0] = 2.0f;
    x->data[1] = -1.0f;
    y = tq_model_forward(m, t, x, NULL);
    ck_assert_ptr_nonnull(y);
    TQ_ASSERT_NEAR(y->data[0], (2.0 - 0.3) / sqrt(0.9 + 1.4 / 3.0 + 1e-5), 1e-5);
    TQ_ASSERT_NEAR(y->data[1], -1.0 / sqrt(0.9 + 3.2 / 3.0 + 1e-5), 1e-5);
    TQ_ASSERT_NEAR(s[0], 0.3, 1e-6);
    tq_tape_free(t);
    tq_model_free(m);
}
END_TEST

START_TEST(test_batchnorm2d_running_stats)
{
    tq_error err = {0};
    tq_model *m = tq_model_new("bn2d", 2, 2, 2, &err);
    tq_model_batchnorm(m, "bn");
    tq_model_global_avgpool(m, "avgpool");
    finish(m, 1);
    tq_tape *t = tq_tape_new();
    /* two samples; channel 0 holds 0..7 (mean 3.5, unbiased var 6), channel 1 holds 5 */
    float v[16];
    for (int n = 0; n < 2; n++)
        for (int k = 0; k < 4; k++) {
            v[n * 8 + k] = (float)(n * 4 + k);
            v[n * 8 + 4 + k] = 5.0f;
        }
    tq_tensor *x = tq_tape_tensor(t, 4, (int32_t[]){2, 2, 2, 2}, false);
    memcpy(x->data, v, sizeof v);
    ck_assert_ptr_nonnull(tq_model_forward(m, t, x, NULL));
    const float *s = tq_model_state(m);
    TQ_ASSERT_NEAR(s[0], 0.35, 1e-6);
    TQ_ASSERT_NEAR(s[1], 0.5, 1e-6);
    TQ_ASSERT_NEAR(s[2], 0.9 + 0.6, 1e-5);
    TQ_ASSERT_NEAR(s[3], 0.9, 1e-6);
    tq_tape_reset(t);
    tq_tape_set_training(t, false);
    x = tq_tape_tensor(t, 4, (int32_t[]){2, 2, 2, 2}, false);
    memcpy(x->data, v, sizeof v);
    tq_tensor *y = tq_model_forward(m, t, x, NULL);
    ck_assert_ptr_nonnull(y);
    /* sample 0, channel 0: mean of (0..3 - 0.35)/sqrt(1.5+eps) */
    TQ_ASSERT_NEAR(y->data[0], (1.5 - 0.35) / sqrt(1.5 + 1e-5), 1e-5);
    TQ_ASSERT_NEAR(y->data[1], (5.0 - 0.5) / sqrt(0.9 + 1e-5), 1e-5);
    tq_tape_free(t);
    tq_model_free(m);
}
END_TEST

/* ---- a tiny MLP learns a separable problem with plain SGD on the buffer */

static void separable_batch(tq_tape *t, tq_rng *rng, int n, tq_tensor **x, int32_t *labels)
{
    *x = tq_tape_tensor(t, 2, (int32_t[]){n, 2}, false);
    for (int i = 0; i < n; i++) {
        float a, b;
        do { /* a margin of 0.1 around the line a + 2b = 0.3 */
            a = 4.0f * tq_rng_uniform(rng) - 2.0f;
            b = 4.0f * tq_rng_uniform(rng) - 2.0f;
        } while (fabsf(a + 2.0f * b - 0.3f) < 0.1f);
        (*x)->data[2 * i] = a;
        (*x)->data[2 * i + 1] = b;
        labels[i] = a + 2.0f * b > 0.3f;
    }
}

START_TEST(test_tiny_mlp_learns)
{
    tq_error err = {0};
    tq_model *m = tq_model_new("tiny_mlp", 2, 1, 1, &err);
    tq_model_flatten(m, "flatten");
    tq_model_linear(m, "fc1", 16, true);
    tq_model_relu(m, "relu");
    tq_model_linear(m, "fc2", 2, true);
    finish(m, 21);
    tq_rng rng;
    tq_rng_seed(&rng, 22);
    tq_tape *t = tq_tape_new();
    int32_t labels[256];
    tq_tensor *x;
    float *p = tq_model_params(m), *g = tq_model_grads(m);
    for (int step = 0; step < 100; step++) {
        tq_tape_reset(t);
        tq_model_zero_grad(m);
        separable_batch(t, &rng, 32, &x, labels);
        tq_tensor *loss = tq_softmax_cross_entropy(t, tq_model_forward(m, t, x, &rng), labels);
        ck_assert_int_eq(tq_backward(t, loss), TQ_STATUS_OK);
        for (int64_t k = 0; k < tq_model_param_count(m); k++) p[k] -= 0.2f * g[k];
    }
    tq_tape_reset(t);
    tq_tape_set_training(t, false);
    tq_tape_set_recording(t, false);
    separable_batch(t, &rng, 256, &x, labels);
    tq_tensor *y = tq_model_forward(m, t, x, &rng);
    ck_assert_ptr_nonnull(y);
    int correct = 0;
    for (int i = 0; i < 256; i++) correct += (y->data[2 * i + 1] > y->data[2 * i]) == labels[i];
    ck_assert_msg(correct > 0.95 * 256, "accuracy %d/256", correct);
    tq_tape_free(t);
    tq_model_free(m);
}
END_TEST

/* ---- quantizer slots */

START_TEST(test_quantizer_slots_are_applied)
{
    tq_error err = {0};
    tq_model *m = tq_model_new("q", 3, 1, 1, &err);
    tq_model_flatten(m, "flatten");
    tq_model_linear(m, "fc", 2, true);
    finish(m, 3);
    ck_assert_int_eq(tq_model_qlayer_count(m), 1);
    tq_qlayer *l = tq_model_qlayer(m, 0);
    ck_assert_str_eq(l->name, "fc");
    ck_assert_ptr_eq(l->weight, tq_model_tensor_by_name(m, "fc.weight"));
    ck_assert_ptr_eq(l->bias, tq_model_tensor_by_name(m, "fc.bias"));
    ck_assert(l->weight_q == NULL && l->input_q == NULL);

    tq_tape *t = tq_tape_new();
    tq_tensor *x = tq_tape_tensor(t, 2, (int32_t[]){1, 3}, false);
    memcpy(x->data, (float[]){0.5f, -1.0f, 2.0f}, 3 * sizeof(float));
    tq_tensor *y = tq_model_forward(m, t, x, NULL);
    float plain[2] = {y->data[0] - l->bias->data[0], y->data[1] - l->bias->data[1]};
    ck_assert(fabsf(plain[0]) > 1e-3f);

    int frees = 0;
    tq_quantizer *wq = fake_quantizer(2.0f, &frees), *iq = fake_quantizer(-3.0f, &frees);
    tq_qlayer_set_quantizers(l, wq, iq);
    y = tq_model_forward(m, t, x, NULL);
    ck_assert(wq->calls == 1 && iq->calls == 1);
    for (int o = 0; o < 2; o++)
        TQ_ASSERT_NEAR(y->data[o] - l->bias->data[o], -6.0f * plain[o], 1e-5);
    /* the weight slot only; the replaced input quantizer is freed */
    tq_qlayer_set_quantizers(l, wq, NULL);
    ck_assert_int_eq(frees, 1);
    y = tq_model_forward(m, t, x, NULL);
    ck_assert_int_eq(wq->calls, 2);
    for (int o = 0; o < 2; o++) TQ_ASSERT_NEAR(y->data[o] - l->bias->data[o], 2.0f * plain[o], 1e-5);
    tq_tape_free(t);
    tq_model_free(m); /* frees the weight quantizer still in its slot */
    ck_assert_int_eq(frees, 2);
}
END_TEST

START_TEST(test_conv_quantizer_slots_are_called)
{
    tq_model *m = zoo("resnet20", 3, 8, 8, 1);
    int frees = 0;
    tq_quantizer *q[22][2];
    for (int i = 0; i < 22; i++) {
        q[i][0] = fake_quantizer(1.0f, &frees);
        q[i][1] = fake_quantizer(1.0f, &frees);
        tq_qlayer_set_quantizers(tq_model_qlayer(m, i), q[i][0], q[i][1]);
    }
    tq_rng rng;
    tq_rng_seed(&rng, 1);
    tq_tape *t = tq_tape_new();
    ck_assert_ptr_nonnull(tq_model_forward(m, t, input_batch(t, &rng, 2, 3, 8, 8), &rng));
    for (int i = 0; i < 22; i++) ck_assert(q[i][0]->calls == 1 && q[i][1]->calls == 1);
    tq_tape_free(t);
    tq_model_free(m);
    ck_assert_int_eq(frees, 44);
}
END_TEST

/* ---- errors and description */

START_TEST(test_errors_name_the_problem)
{
    tq_rng rng;
    tq_rng_seed(&rng, 1);
    tq_error err = {0};
    ck_assert_ptr_null(tq_model_create("vgg16", 3, 32, 32, 10, &rng, &err));
    ck_assert_int_eq(err.status, TQ_STATUS_ARG);
    ck_assert_str_eq(err.msg,
                     "model: unknown zoo model 'vgg16' (expected one of: mlp, lenet5, convnet, resnet20)");
    tq_error_clear(&err);
    ck_assert_ptr_null(tq_model_create("lenet5", 1, 8, 8, 10, &rng, &err));
    ck_assert_int_eq(err.status, TQ_STATUS_SHAPE);
    ck_assert_str_eq(err.msg, "model lenet5: layer conv2 (conv2d) needs at least 5x5 pixels "
                              "(kernel 5, pad 0), got input 6x4x4: the model input 1x8x8 is too small");
    tq_error_clear(&err);
    ck_assert_ptr_null(tq_model_create("convnet", 3, 4, 4, 10, &rng, &err));
    ck_assert_msg(strstr(err.msg, "layer pool3 (maxpool2d)") && strstr(err.msg, "got input 128x1x1"),
                  "%s", err.msg);

    /* builder misuse */
    tq_error_clear(&err);
    tq_model *m = tq_model_new("bad", 1, 4, 4, &err);
    ck_assert_int_eq(tq_model_linear(m, "fc", 3, true), TQ_MODEL_ERROR);
    ck_assert_int_eq(tq_model_relu(m, "relu"), TQ_MODEL_ERROR); /* the first error stays */
    ck_assert_int_eq(tq_model_finish(m, &rng, &err), TQ_STATUS_SHAPE);
    ck_assert_str_eq(err.msg, "model bad: layer fc (linear) needs a flat input, got input 1x4x4 "
                              "(add a flatten layer first)");
    tq_model_free(m);

    tq_error_clear(&err);
    m = tq_model_new("bad", 1, 4, 4, &err);
    int a = tq_model_conv2d(m, "conv", 2, 3, 1, 1, false);
    ck_assert_int_eq(tq_model_add(m, "add", a, TQ_MODEL_INPUT), TQ_MODEL_ERROR);
    ck_assert_int_eq(tq_model_finish(m, &rng, &err), TQ_STATUS_SHAPE);
    ck_assert_str_eq(err.msg, "model bad: layer add (add) needs two inputs of one shape, got input "
                              "2x4x4 and 1x4x4");
    tq_model_free(m);

    tq_error_clear(&err);
    m = tq_model_new("bad", 1, 4, 4, &err);
    tq_model_relu(m, "relu");
    tq_model_relu(m, "relu");
    ck_assert_int_eq(tq_model_finish(m, &rng, &err), TQ_STATUS_ARG);
    ck_assert_str_eq(err.msg, "model bad: layer name relu is used twice");
    tq_model_free(m);

    tq_error_clear(&err);
    m = tq_model_new("bad", 1, 4, 4, &err);
    tq_model_relu(m, "relu");
    ck_assert_int_eq(tq_model_finish(m, &rng, &err), TQ_STATUS_SHAPE);
    ck_assert_str_eq(err.msg, "model bad: the last layer must give flat logits, got 1x4x4 per sample");
    tq_model_free(m);

    /* a forward on the wrong input shape */
    m = zoo("mlp", 1, 28, 28, 1);
    tq_tape *t = tq_tape_new();
    ck_assert_ptr_null(tq_model_forward(m, t, input_batch(t, &rng, 2, 3, 28, 28), &rng));
    ck_assert_str_eq(tq_tape_error(t)->msg, "model mlp: expected input (N,1,28,28), got (2,3,28,28)");
    tq_tape_free(t);
    tq_model_free(m);
}
END_TEST

START_TEST(test_describe_lists_layers_and_totals)
{
    tq_model *m = zoo("resnet20", 3, 32, 32, 1);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    tq_model_describe(m, f);
    fclose(f);
    ck_assert_msg(strstr(text, "model resnet20: input 3x32x32, 10 classes\n"), "%s", text);
    /* header + one line per layer + total: 3 stem + 9 blocks of 7 + 2 shortcuts x 2 + 2 */
    int lines = 0;
    for (char *c = text; *c; c++) lines += *c == '\n';
    ck_assert_int_eq(lines, 2 + 3 + 63 + 4 + 2 + 1);
    const char *expect[] = {"layer2.0.shortcut.0", "conv2d", "1x1/2 p0", "32x16x16", "512"};
    char *line = strstr(text, "  layer2.0.shortcut.0 ");
    ck_assert_ptr_nonnull(line);
    char *end = strchr(line, '\n');
    *end = '\0';
    for (int i = 0; i < 5; i++) ck_assert_msg(strstr(line, expect[i]), "%s lacks %s", line, expect[i]);
    *end = '\n';
    ck_assert_ptr_nonnull(strstr(text, "layer3.2.bn2 + layer3.1.relu2"));
    ck_assert_ptr_nonnull(strstr(text, "total: 272474 parameters"));
    free(text);
    tq_model_free(m);
}
END_TEST

/* Inference without a tape record runs conv -> batch norm -> ReLU chains as one fused op:
 * the logits must be the bits of the unfused path (same evaluation, recording on). */
START_TEST(test_fused_inference_matches_unfused)
{
    tq_model *m = zoo("resnet20", 3, 8, 8, 5);
    tq_rng rng;
    tq_rng_seed(&rng, 6);
    tq_tape *t = tq_tape_new();
    tq_tensor *x = tq_tensor_new(4, (int32_t[]){3, 3, 8, 8}, false);
    tq_tensor_fill_uniform(x, &rng, -1, 1);
    /* two training forwards move the running statistics away from (0, 1) */
    for (int i = 0; i < 2; i++) {
        tq_tape_reset(t);
        ck_assert_ptr_nonnull(tq_model_forward(m, t, x, &rng));
    }
    float logits[2][30];
    for (int recording = 0; recording < 2; recording++) {
        tq_tape_reset(t);
        tq_tape_set_training(t, false);
        tq_tape_set_recording(t, recording);
        tq_tensor *y = tq_model_forward(m, t, x, &rng);
        ck_assert_msg(y != NULL, "%s", tq_tape_error(t)->msg);
        ck_assert_int_eq(y->numel, 30);
        memcpy(logits[recording], y->data, sizeof logits[0]);
    }
    ck_assert_mem_eq(logits[0], logits[1], sizeof logits[0]);
    tq_tensor_free(x);
    tq_tape_free(t);
    tq_model_free(m);
}
END_TEST

static Suite *layers_suite(void)
{
    Suite *s = suite_create("layers");
    TCase *model = tcase_create("model");
    tcase_add_test(model, test_zoo_parameter_counts);
    tcase_add_test(model, test_resnet20_structure);
    tcase_add_test(model, test_tensors_tile_the_buffers);
    tcase_add_test(model, test_init_bounds_and_reproducibility);
    tcase_add_test(model, test_zoo_forward_shapes);
    tcase_add_test(model, test_fused_inference_matches_unfused);
    tcase_add_test(model, test_training_step_steady_state);
    tcase_add_test(model, test_errors_name_the_problem);
    tcase_add_test(model, test_describe_lists_layers_and_totals);
    suite_add_tcase(s, model);

    TCase *grad = tcase_create("gradients");
    tcase_add_test(grad, test_gradcheck_small_convnet);
    tcase_add_test(grad, test_gradcheck_residual_blocks);
    suite_add_tcase(s, grad);

    TCase *behaviour = tcase_create("behaviour");
    tcase_add_test(behaviour, test_batchnorm1d_running_stats);
    tcase_add_test(behaviour, test_batchnorm2d_running_stats);
    tcase_add_test(behaviour, test_tiny_mlp_learns);
    tcase_add_test(behaviour, test_quantizer_slots_are_applied);
    tcase_add_test(behaviour, test_conv_quantizer_slots_are_called);
    suite_add_tcase(s, behaviour);
    return s;
}

int main(void) { return tq_test_run(layers_suite()); }
