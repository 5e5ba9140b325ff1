/* Lesson 4: a training loop of your own on the tape, and where fake quant sits in it.
 *
 * No model container here: a perceptron, flatten -> Linear(128) -> ReLU -> Linear(classes),
 * written with autograd's ops. Its parameters live in one buffer, its gradients in another,
 * as a model keeps them, so that one optimizer steps them all. A step is: forward on the
 * tape, loss, backward (gradients), optimizer step, tape reset (the step's activations go).
 *
 * Fake quant is one more op in the forward: tq_quantize(tape, v, q) on each Linear's input
 * and weights. A quantizer off passes v through; calibrating, it watches v; quantizing, it
 * rounds v to its grid (and in backward passes the gradient where |v| <= amax, the
 * straight-through estimator with clipping). The program trains in float (quantizers off),
 * calibrates, evaluates that (PTQ), trains one more epoch quantized (QAT), evaluates again.
 *
 *     tape_loop [DATA] [--quick]
 *
 * DATA as in lesson 1 (default fashion-mnist); two float epochs, or one with --quick. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tinyqat/data.h>
#include <tinyqat/optim.h>
#include <tinyqat/quant.h>

#define HIDDEN 128
#define BATCH 64

/* Layer i (0, 1): y = x_q(x) w_q(w)^T + b, w and b views into the buffers params and grads. */
typedef struct net {
    tq_tensor w[2], b[2];
    tq_quantizer *x_q[2], *w_q[2];
    float *params, *grads;
    int64_t n_params;
} net;

/* Makes t a view of the next numel floats of the buffers (at counts them), shaped (rows,
 * cols), or (rows) when cols is 0, and draws it uniformly in +-bound. */
static void param(net *n, tq_tensor *t, int32_t rows, int32_t cols, float bound, int64_t *at,
                  tq_rng *rng)
{
    tq_shape_set(t, cols ? 2 : 1, (int32_t[]){rows, cols});
    t->data = n->params + *at;
    t->grad = n->grads + *at;
    *at += t->numel;
    tq_tensor_fill_uniform(t, rng, -bound, bound);
}

/* Logits (N,classes) for x (N,C,H,W). Each tq_quantize is where a quantizer sits. */
static tq_tensor *forward(net *n, tq_tape *t, tq_tensor *x)
{
    tq_tensor *h = tq_flatten(t, x);
    /* Linear 1: fake quant on its input and on its weights, then the op itself */
    tq_tensor *x1 = tq_quantize(t, h, n->x_q[0]), *w1 = tq_quantize(t, &n->w[0], n->w_q[0]);
    h = tq_relu(t, tq_linear(t, x1, w1, &n->b[0]));
    /* Linear 2, the same */
    tq_tensor *x2 = tq_quantize(t, h, n->x_q[1]), *w2 = tq_quantize(t, &n->w[1], n->w_q[1]);
    return tq_linear(t, x2, w2, &n->b[1]);
}

/* One pass over d (at most max_batches): training steps at rate lr with opt, or forwards
 * only without (evaluation, calibration); the accuracy seen into *accuracy. */
static tq_status pass(net *n, tq_optim *opt, float lr, const tq_dataset *d,
                      const tq_loader_config *cfg, int64_t epoch, int64_t max_batches,
                      double *accuracy, tq_error *err)
{
    tq_loader *ld = tq_loader_new(d, cfg, err);
    tq_tape *t = tq_tape_new();
    float *x = malloc(sizeof(float) * BATCH * d->c * d->h * d->w);
    int32_t labels[BATCH];
    int64_t correct = 0, seen = 0;
    tq_status st = !ld ? err->status : t && x ? 0 : tq_fail(err, TQ_STATUS_NOMEM, "out of memory");
    if (ld) tq_loader_start_epoch(ld, epoch);
    for (int64_t i = 0; !st && i < tq_loader_batch_count(ld) && i < max_batches; i++) {
        tq_tensor batch = {.data = x};
        tq_shape_set(&batch, 4, (int32_t[]){tq_loader_fill(ld, i, x, labels), d->c, d->h, d->w});
        tq_tape_reset(t);                      /* the last step's activations go at once */
        tq_tape_set_recording(t, opt != NULL); /* forwards only: nothing to record */
        tq_tensor *logits = forward(n, t, &batch);
        tq_tensor *loss = tq_softmax_cross_entropy(t, logits, labels);
        if (loss && opt) {
            memset(n->grads, 0, sizeof(float) * n->n_params);
            if (tq_backward(t, loss) == TQ_STATUS_OK) /* d loss / d params into grads */
                tq_optim_step(opt, n->params, n->grads, lr);
        }
        if (tq_tape_error(t)->status) { /* the first error any op met */
            st = tq_fail(err, tq_tape_error(t)->status, "%s", tq_tape_error(t)->msg);
            break;
        }
        for (int32_t k = 0; k < batch.shape[0]; k++) { /* the argmax of each row */
            const float *z = logits->data + (int64_t)k * logits->shape[1];
            int32_t best = 0;
            for (int32_t j = 1; j < logits->shape[1]; j++) best = z[j] > z[best] ? j : best;
            correct += best == labels[k];
        }
        seen += batch.shape[0];
    }
    tq_loader_free(ld);
    tq_tape_free(t);
    free(x);
    *accuracy = seen ? (double)correct / (double)seen : 0;
    return st;
}

int main(int argc, char **argv)
{
    const char *data = "fashion-mnist";
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (i == 1 && argv[i][0] != '-') {
            data = argv[i];
        } else {
            fprintf(stderr, "usage: tape_loop [DATA] [--quick]\n");
            return 2;
        }
    }
    tq_error err = {0};
    tq_dataset train = {0}, test = {0};
    net n = {0};
    tq_optim *opt = NULL;
    double acc;
    if (tq_dataset_open(data, TQ_SPLIT_TRAIN, &train, &err) ||
        tq_dataset_open(data, TQ_SPLIT_TEST, &test, &err))
        goto done;
    tq_loader_config cfg = {.batch = BATCH, .shuffle = true, .seed = 1};
    tq_dataset_stats(&train, cfg.mean, cfg.std); /* inputs normalised per channel */

    /* Parameters: (HIDDEN, in) and (classes, HIDDEN) weights and their biases, one buffer,
     * drawn uniformly in +-1/sqrt(inputs) as PyTorch's Linear does. */
    int32_t rows[2] = {HIDDEN, train.classes}, cols[2] = {train.c * train.h * train.w, HIDDEN};
    n.n_params = (int64_t)rows[0] * (cols[0] + 1) + (int64_t)rows[1] * (cols[1] + 1);
    n.params = malloc(sizeof(float) * n.n_params);
    n.grads = malloc(sizeof(float) * n.n_params);
    tq_optim_config adam = tq_optim_defaults(TQ_OPTIM_ADAM);
    if (!n.params || !n.grads || !(opt = tq_optim_new(&adam, n.n_params, &err))) goto done;
    tq_rng rng;
    tq_rng_seed(&rng, 1);
    int64_t at = 0;
    tq_qspec w_spec, x_spec; /* 4-bit weights, a scale per output row; 4-bit inputs */
    if (tq_qspec_parse("int4:channel=0", &w_spec, &err) || tq_qspec_parse("int4", &x_spec, &err))
        goto done;
    for (int i = 0; i < 2; i++) {
        param(&n, &n.w[i], rows[i], cols[i], 1 / sqrtf((float)cols[i]), &at, &rng);
        param(&n, &n.b[i], rows[i], 0, 1 / sqrtf((float)cols[i]), &at, &rng);
        /* New quantizers are off: training in float passes values straight through. */
        n.w_q[i] = tq_quantizer_new(&w_spec, &err);
        n.x_q[i] = tq_quantizer_new(&x_spec, &err);
        if (!n.w_q[i] || !n.x_q[i]) goto done;
    }

    for (int e = 0; e < (quick ? 1 : 2); e++)
        if (pass(&n, opt, 1e-3f, &train, &cfg, e, INT64_MAX, &acc, &err)) goto done;
    if (pass(&n, NULL, 0, &test, &cfg, 0, INT64_MAX, &acc, &err)) goto done;
    printf("accuracy float %.4f\n", acc);

    /* PTQ: weight scales from the weights; input scales from 8 batches the quantizers watch. */
    for (int i = 0; i < 2; i++) {
        if (tq_quantizer_calibrate_weight(n.w_q[i], &n.w[i], &err)) goto done;
        tq_quantizer_set_state(n.w_q[i], TQ_QSTATE_QUANTIZING);
        tq_quantizer_set_state(n.x_q[i], TQ_QSTATE_CALIBRATING);
    }
    if (pass(&n, NULL, 0, &train, &cfg, 0, 8, &acc, &err)) goto done;
    for (int i = 0; i < 2; i++) {
        if (tq_quantizer_finish_calibration(n.x_q[i], &err)) goto done;
        tq_quantizer_set_state(n.x_q[i], TQ_QSTATE_QUANTIZING);
    }
    if (pass(&n, NULL, 0, &test, &cfg, 0, INT64_MAX, &acc, &err)) goto done;
    printf("accuracy ptq %.4f\n", acc);

    /* QAT: the same loop with fake quant in it, the scales fixed, a tenth of the rate. */
    if (pass(&n, opt, 1e-4f, &train, &cfg, 2, INT64_MAX, &acc, &err) ||
        pass(&n, NULL, 0, &test, &cfg, 0, INT64_MAX, &acc, &err))
        goto done;
    printf("accuracy qat %.4f\n", acc);
done:
    if (err.status) fprintf(stderr, "tape_loop: %s\n", err.msg);
    for (int i = 0; i < 2; i++) {
        tq_quantizer_free(n.w_q[i]);
        tq_quantizer_free(n.x_q[i]);
    }
    tq_optim_free(opt);
    free(n.params);
    free(n.grads);
    tq_dataset_free(&train);
    tq_dataset_free(&test);
    return err.status ? 1 : 0;
}
