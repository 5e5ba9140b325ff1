/* The training and evaluation loops: batches from a loader, forward on the tape, loss,
 * backward, optimizer step; the tape is reset every step so memory is reused. */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Correct predictions in a batch; each image's predicted class into pred when not NULL. */
static int64_t count_correct(const tq_tensor *logits, const int32_t *labels, int32_t *pred)
{
    int n = logits->shape[0], k = logits->shape[1];
    int64_t correct = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits->data + (int64_t)i * k;
        int best = 0;
        for (int j = 1; j < k; j++)
            if (z[j] > z[best]) best = j;
        correct += best == labels[i];
        if (pred) pred[i] = best;
    }
    return correct;
}

/* A batch of inputs in a reusable buffer, viewed as a tensor of the filled size. */
typedef struct batch_buf {
    float *x;
    int32_t *labels;
    tq_tensor view;
} batch_buf;

static bool batch_buf_init(batch_buf *b, const tq_dataset *d, int32_t batch)
{
    b->x = malloc((size_t)batch * d->c * d->h * d->w * sizeof(float));
    b->labels = malloc((size_t)batch * sizeof(int32_t));
    memset(&b->view, 0, sizeof b->view);
    return b->x && b->labels;
}

static void batch_buf_view(batch_buf *b, const tq_dataset *d, int32_t n)
{
    tq_shape_set(&b->view, 4, (int32_t[]){n, d->c, d->h, d->w});
    b->view.data = b->x;
    b->view.grad = NULL;
}

static void batch_buf_free(batch_buf *b)
{
    free(b->x);
    free(b->labels);
}

static tq_loader *make_loader(const tq_dataset *d, int32_t batch, bool shuffle, bool augment,
                              uint64_t seed, const float *mean, const float *std, tq_error *err)
{
    tq_loader_config cfg = {.batch = batch, .shuffle = shuffle, .augment = augment,
                            .drop_last = false, .seed = seed};
    memcpy(cfg.mean, mean, sizeof cfg.mean);
    memcpy(cfg.std, std, sizeof cfg.std);
    return tq_loader_new(d, &cfg, err);
}

static uint64_t mix_seed(uint64_t seed, int64_t epoch)
{
    return seed * 0x9E3779B97F4A7C15ULL + (uint64_t)epoch * 0xD1B54A32D192ED03ULL + 1;
}

tq_status tq_train_epoch(tq_run *run, const tq_dataset *train, tq_reporter *rep,
                         tq_epoch_stats *stats, tq_error *err)
{
    int64_t n_params = tq_model_param_count(run->model);
    if (!run->optim) {
        run->optim = tq_optim_new(&run->optim_cfg, n_params, err);
        if (!run->optim) return err->status;
    }
    /* learned scales: their own optimizer, as the weights' but without weight decay */
    int64_t n_amax = tq_model_learned_amax_count(run->model);
    if (n_amax && run->scale_optim && tq_optim_param_count(run->scale_optim) != n_amax)
        return tq_fail(err, TQ_STATUS_ARG, "train: the scale optimizer holds %lld values, the "
                       "model learns %lld amax", (long long)tq_optim_param_count(run->scale_optim),
                       (long long)n_amax);
    if (n_amax && !run->scale_optim) {
        tq_optim_config cfg = run->optim_cfg;
        cfg.weight_decay = 0.0f;
        run->scale_optim = tq_optim_new(&cfg, n_amax, err);
        if (!run->scale_optim) return err->status;
    }
    float *amax_buf = n_amax ? malloc(2 * (size_t)n_amax * sizeof *amax_buf) : NULL;
    if (n_amax && !amax_buf) return tq_fail(err, TQ_STATUS_NOMEM, "train: out of memory");
    bool augment = strcmp(train->name, "cifar10") == 0;
    tq_loader *loader = make_loader(train, run->batch, true, augment, run->seed, run->mean,
                                    run->std, err);
    if (!loader) {
        free(amax_buf);
        return err->status;
    }
    tq_tape *tape = tq_tape_new();
    batch_buf b;
    if (!tape || !batch_buf_init(&b, train, run->batch)) {
        tq_loader_free(loader);
        tq_tape_free(tape);
        free(amax_buf);
        return tq_fail(err, TQ_STATUS_NOMEM, "train: out of memory");
    }
    tq_loader_start_epoch(loader, run->epoch);
    /* Dropout masks follow (seed, epoch) and the steps taken, so a resumed run agrees. */
    if (run->batch_in_epoch == 0) tq_rng_seed(&run->rng, mix_seed(run->seed, run->epoch));

    float *params = tq_model_params(run->model), *grads = tq_model_grads(run->model);
    int64_t batches = tq_loader_batch_count(loader), seen = 0, correct = 0;
    double loss_sum = 0.0, t0 = now_seconds();
    tq_status st = TQ_STATUS_OK;
    for (int64_t i = run->batch_in_epoch; i < batches; i++) {
        if (run->stop && *run->stop) {
            st = tq_fail(err, TQ_STATUS_INTERRUPTED, "interrupted at epoch %lld, batch %lld of %lld",
                         (long long)run->epoch + 1, (long long)i, (long long)batches);
            break;
        }
        int32_t n = tq_loader_fill(loader, i, b.x, b.labels);
        batch_buf_view(&b, train, n);
        tq_tape_reset(tape);
        tq_tensor *logits = tq_model_forward(run->model, tape, &b.view, &run->rng);
        tq_tensor *loss = tq_softmax_cross_entropy(tape, logits, b.labels);
        if (!loss) {
            st = tq_fail(err, tq_tape_error(tape)->status, "%s", tq_tape_error(tape)->msg);
            break;
        }
        int64_t step = tq_optim_steps(run->optim);
        if (!isfinite(loss->data[0])) {
            const char *where = tq_model_first_nonfinite(run->model);
            st = tq_fail(err, TQ_STATUS_NUMERIC,
                         "loss is %f at epoch %lld, step %lld; first non-finite values in %s "
                         "(try a lower --lr or --clip)",
                         (double)loss->data[0], (long long)run->epoch + 1, (long long)step,
                         where ? where : "the loss");
            break;
        }
        tq_model_zero_grad(run->model);
        if (n_amax) tq_model_zero_amax_grad(run->model);
        if (tq_backward(tape, loss) != TQ_STATUS_OK) {
            st = tq_fail(err, tq_tape_error(tape)->status, "%s", tq_tape_error(tape)->msg);
            break;
        }
        if (run->clip_norm > 0) tq_clip_grad_norm(grads, n_params, run->clip_norm);
        float lr = tq_schedule_lr(&run->schedule, step);
        tq_optim_step(run->optim, params, grads, lr);
        if (n_amax) tq_learned_amax_step(run->model, run->scale_optim, lr, amax_buf);
        run->batch_in_epoch = i + 1;
        loss_sum += (double)loss->data[0] * n;
        correct += count_correct(logits, b.labels, NULL);
        seen += n;
        tq_report_progress(rep, "train", i + 1, batches, loss_sum / seen, (double)correct / seen);
    }
    double seconds = now_seconds() - t0;
    free(amax_buf);
    batch_buf_free(&b);
    tq_tape_free(tape);
    tq_loader_free(loader);
    if (st != TQ_STATUS_OK) return st;
    run->epoch++;
    run->batch_in_epoch = 0;
    if (stats)
        *stats = (tq_epoch_stats){.epoch = run->epoch, .loss = seen ? loss_sum / (double)seen : 0,
                                  .accuracy = seen ? (double)correct / (double)seen : 0, .seconds = seconds,
                                  .images_per_s = seen ? (double)seen / seconds : 0};
    return TQ_STATUS_OK;
}

/* One pass over d in order, without a tape: accuracy, mean loss and, when pred is not NULL,
 * each image's predicted class. */
static tq_status evaluate_pass(tq_model *model, const tq_dataset *d, const float *mean,
                               const float *std, int32_t batch, double *accuracy, double *loss,
                               int32_t *pred, tq_error *err)
{
    tq_loader *loader = make_loader(d, batch, false, false, 0, mean, std, err);
    if (!loader) return err->status;
    tq_tape *tape = tq_tape_new();
    batch_buf b;
    if (!tape || !batch_buf_init(&b, d, batch)) {
        tq_loader_free(loader);
        tq_tape_free(tape);
        return tq_fail(err, TQ_STATUS_NOMEM, "evaluate: out of memory");
    }
    tq_loader_start_epoch(loader, 0);
    int64_t batches = tq_loader_batch_count(loader), seen = 0, correct = 0;
    double loss_sum = 0.0;
    tq_status st = TQ_STATUS_OK;
    for (int64_t i = 0; i < batches; i++) {
        int32_t n = tq_loader_fill(loader, i, b.x, b.labels);
        batch_buf_view(&b, d, n);
        tq_tape_reset(tape);
        tq_tape_set_recording(tape, false);
        tq_tape_set_training(tape, false);
        tq_tensor *logits = tq_model_forward(model, tape, &b.view, NULL);
        tq_tensor *l = tq_softmax_cross_entropy(tape, logits, b.labels);
        if (!l) {
            st = tq_fail(err, tq_tape_error(tape)->status, "%s", tq_tape_error(tape)->msg);
            break;
        }
        loss_sum += (double)l->data[0] * n;
        correct += count_correct(logits, b.labels, pred ? pred + seen : NULL);
        seen += n;
    }
    batch_buf_free(&b);
    tq_tape_free(tape);
    tq_loader_free(loader);
    if (st != TQ_STATUS_OK) return st;
    if (accuracy) *accuracy = seen ? (double)correct / (double)seen : 0.0;
    if (loss) *loss = seen ? loss_sum / (double)seen : 0.0;
    return TQ_STATUS_OK;
}

tq_status tq_evaluate(tq_model *model, const tq_dataset *d, const float *mean, const float *std,
                      int32_t batch, double *accuracy, double *loss, tq_error *err)
{
    return evaluate_pass(model, d, mean, std, batch, accuracy, loss, NULL, err);
}

tq_status tq_predict(tq_model *model, const tq_dataset *d, const float *mean, const float *std,
                     int32_t batch, int32_t *pred, double *accuracy, tq_error *err)
{
    return evaluate_pass(model, d, mean, std, batch, accuracy, NULL, pred, err);
}

void tq_run_forget_best(tq_run *run)
{
    if (run->best) tq_snapshot_free(&run->best->weights);
    free(run->best);
    run->best = NULL;
}

void tq_run_free(tq_run *run)
{
    if (!run) return;
    tq_model_free(run->model);
    tq_optim_free(run->optim);
    tq_optim_free(run->scale_optim);
    tq_run_forget_best(run);
    run->model = NULL;
    run->optim = run->scale_optim = NULL;
}

double tq_qat_default_lr(const tq_run *float_run)
{
    float lr = float_run->schedule.lr;
    return lr > 0 ? 0.01 * lr : 1e-5;
}
