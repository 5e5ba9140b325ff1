/* `tinyqat train`, `tinyqat eval` and `tinyqat info`. */
#include "checkpoint.h"
#include "cli.h"
#include "eval_int.h"
#include "report_out.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The options of every command that trains: optimizer, schedule, batch, seed. */
#define TRAINING_OPTS(default_schedule)                                                   \
    {"optim", "NAME", "sgd, adam or adamw (default adam)"},                                \
    {"lr", "X", "learning rate, decayed by --schedule (default 1e-3 for adam/adamw, "      \
                "0.05 for sgd)"},                                                          \
    {"momentum", "X", "SGD momentum (default 0.9)"},                                       \
    {"nesterov", NULL, "Nesterov momentum for SGD"},                                       \
    {"wd", "X", "weight decay (default 0; 0.01 for adamw)"},                               \
    {"schedule", "NAME", "constant, step or cosine (default " default_schedule ")"},       \
    {"warmup", "N", "linear warm-up steps (default 0)"},                                   \
    {"step-size", "N", "epochs between decays for --schedule step (default 1)"},           \
    {"gamma", "X", "decay factor for --schedule step (default 0.1)"},                      \
    {"clip", "X", "clip the gradient norm to X (default off)"},                            \
    {"batch", "N", "batch size (default 64)"},                                             \
    {"seed", "N", "random seed (default 1)"}

static const tq_cli_opt train_opts[] = {
    {"model", "NAME", "mlp, lenet5, convnet or resnet20 (default lenet5)"},
    {"data", "SPEC", "mnist:DIR, fashion-mnist[:DIR], cifar10:DIR[:test_batch], pngdir:DIR (default fashion-mnist)"},
    {"epochs", "N", "epochs to train in all (default 5)"},
    TRAINING_OPTS("constant"),
    {"val", "FRACTION", "hold out this fraction of the training set for validation (default 0)"},
    {"threads", "N", "threads (default: all cores)"},
    {"out", "FILE", "checkpoint to write after every epoch (default MODEL.tqc)"},
    {"resume", "FILE", "continue the run saved in FILE"},
    {"json", "FILE", "write the figures as JSON"},
    {"quiet", NULL, "print only the final accuracy line"},
    {0},
};
static const tq_cli_cmd train_cmd = {
    "train", "[options]", "Train a float model from the zoo and save it as a checkpoint.",
    train_opts, 0};

/* Options shared by every command that trains: optimizer, schedule, batch, seed. */
static bool parse_optim(const tq_cli_cmd *cmd, const tq_cli_args *a, tq_run *run, double *lr)
{
    const char *name = tq_cli_get(cmd, a, "optim");
    tq_optim_kind kind = TQ_OPTIM_ADAM;
    if (name && !tq_optim_kind_parse(name, &kind)) {
        tq_cli_usage_error(cmd, "--optim: expected sgd, adam or adamw, got '%s'", name);
        return false;
    }
    run->optim_cfg = tq_optim_defaults(kind);
    if (kind == TQ_OPTIM_SGD) run->optim_cfg.momentum = 0.9f;
    *lr = kind == TQ_OPTIM_SGD ? 0.05 : 1e-3;
    double momentum = run->optim_cfg.momentum, wd = run->optim_cfg.weight_decay, clip = 0;
    if (!tq_cli_float(cmd, a, "lr", 0, 1e12, lr) ||
        !tq_cli_float(cmd, a, "momentum", 0, 0.999999, &momentum) ||
        !tq_cli_float(cmd, a, "wd", 0, 1, &wd) || !tq_cli_float(cmd, a, "clip", 0, 1e12, &clip))
        return false;
    run->optim_cfg.momentum = (float)momentum;
    run->optim_cfg.weight_decay = (float)wd;
    run->optim_cfg.nesterov = tq_cli_flag(cmd, a, "nesterov");
    run->clip_norm = (float)clip;
    long long batch = 64, seed = 1;
    if (!tq_cli_int(cmd, a, "batch", 1, 65536, &batch) ||
        !tq_cli_int(cmd, a, "seed", 0, (long long)1 << 62, &seed))
        return false;
    run->batch = (int32_t)batch;
    run->seed = (uint64_t)seed;
    return true;
}

/* The schedule spans all planned epochs; steps per epoch come from the data set size. */
static bool parse_schedule(const tq_cli_cmd *cmd, const tq_cli_args *a, tq_run *run, double lr,
                           int64_t steps_per_epoch, tq_schedule_kind default_kind)
{
    tq_schedule *s = &run->schedule;
    memset(s, 0, sizeof *s);
    s->kind = default_kind;
    const char *name = tq_cli_get(cmd, a, "schedule");
    if (name && !tq_schedule_kind_parse(name, &s->kind)) {
        tq_cli_usage_error(cmd, "--schedule: expected constant, step or cosine, got '%s'", name);
        return false;
    }
    long long warmup = 0, step_epochs = 1;
    double gamma = 0.1;
    if (!tq_cli_int(cmd, a, "warmup", 0, 1LL << 40, &warmup) ||
        !tq_cli_int(cmd, a, "step-size", 1, 1LL << 20, &step_epochs) ||
        !tq_cli_float(cmd, a, "gamma", 0, 1, &gamma))
        return false;
    s->lr = (float)lr;
    s->gamma = (float)gamma;
    s->warmup_steps = warmup;
    s->step_size = step_epochs * steps_per_epoch;
    s->total_steps = run->epochs * steps_per_epoch;
    return true;
}

static int64_t steps_per_epoch(const tq_dataset *d, int32_t batch)
{
    return (d->n + batch - 1) / batch;
}

/* Set by SIGINT: the training loop finishes its step and stops. A signal handler can only
 * talk through a flag like this one. */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Saves the interrupted run and says how to continue it: `tinyqat CMD --resume`, with the
 * options the checkpoint does not record (resume_opts: "" or " --keep-last"...). */
static int save_interrupted(const tq_cli_cmd *cmd, tq_run *run, const char *out,
                            const char *resume_opts)
{
    tq_error err = {0};
    if (tq_run_save(run, out, &err)) return tq_cli_fail(cmd, &err);
    fprintf(stderr,
            "\ntinyqat %s: interrupted after epoch %lld, batch %lld; saved %s\n"
            "continue with: tinyqat %s --resume %s --epochs %lld --out %s%s\n",
            cmd->name, (long long)run->epoch, (long long)run->batch_in_epoch, out, cmd->name,
            out, (long long)run->epochs, out, resume_opts);
    return 130;
}

/* Trains run for its remaining epochs, evaluating and checkpointing after each. A NaN loss
 * or a failure leaves the checkpoint of the last good epoch as it was. With val and
 * run->best, an epoch better on val than run->best replaces it before the checkpoint is
 * written, so that the checkpoint knows every epoch it holds. */
static int train_epochs(const tq_cli_cmd *cmd, tq_run *run, const tq_dataset *train,
                        const tq_dataset *val, const tq_dataset *test, const char *out,
                        const char *resume_opts, tq_json *json, tq_reporter *rep,
                        double *final_acc, tq_curves *curves, tq_clip_log *clips)
{
    tq_error err = {0};
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    run->stop = &interrupted;
    int rc = 0;
    tq_json_open(json, "epochs", '[');
    while (!rc && run->epoch < run->epochs) {
        tq_epoch_stats st;
        double acc = 0, loss = 0;
        tq_status s = tq_train_epoch(run, train, rep, &st, &err);
        if (s == TQ_STATUS_INTERRUPTED) {
            rc = save_interrupted(cmd, run, out, resume_opts);
            break;
        }
        double val_acc = -1;
        if (s || tq_evaluate(run->model, test, run->mean, run->std, 256, &acc, &loss, &err) ||
            (val && tq_evaluate(run->model, val, run->mean, run->std, 256, &val_acc, NULL, &err))) {
            rc = tq_cli_fail(cmd, &err);
            break;
        }
        tq_best_epoch *best = run->best;
        if (val && best && val_acc > best->val_acc) {
            if (tq_snapshot_take(&best->weights, run->model, &err)) {
                rc = tq_cli_fail(cmd, &err);
                break;
            }
            best->val_acc = val_acc;
            best->epoch = st.epoch;
        }
        if (tq_run_save(run, out, &err)) {
            rc = tq_cli_fail(cmd, &err);
            break;
        }
        char val_str[32] = "";
        if (val) snprintf(val_str, sizeof val_str, "  val acc %.4f", val_acc);
        tq_report_line(rep,
                       "epoch %lld/%lld  loss %.4f  train acc %.4f%s  test acc %.4f  "
                       "%.0f img/s  %.1f s",
                       (long long)st.epoch, (long long)run->epochs, st.loss, st.accuracy,
                       val_str, acc, st.images_per_s, st.seconds);
        tq_json_open(json, NULL, '{');
        tq_json_int(json, "epoch", st.epoch);
        tq_json_num(json, "loss", st.loss);
        tq_json_num(json, "train_accuracy", st.accuracy);
        tq_json_num(json, "test_loss", loss);
        if (val) tq_json_num(json, "val_accuracy", val_acc);
        tq_json_num(json, "accuracy", acc);
        tq_json_num(json, "images_per_s", st.images_per_s);
        tq_json_num(json, "seconds", st.seconds);
        tq_json_close(json, '{');
        if (curves) /* the report's figures; a clipped fraction it cannot measure is left out */
            tq_curves_add(curves, "QAT", "qat", (double)st.epoch, st.loss, st.accuracy,
                          val ? val_acc : NAN);
        if (clips)
            tq_clip_log_add(clips, run->model, train, run->mean, run->std, (double)st.epoch,
                            &(tq_error){0});
        *final_acc = acc;
    }
    tq_json_close(json, '[');
    sigaction(SIGINT, &old, NULL);
    run->stop = NULL;
    return rc;
}

int tq_cmd_train(int argc, char **argv)
{
    const tq_cli_cmd *cmd = &train_cmd;
    tq_cli_args a;
    int rc = tq_cli_parse(cmd, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    if (!tq_cli_threads(cmd, &a)) return TQ_EXIT_USAGE;

    tq_run run = {0};
    double lr;
    long long epochs = 5;
    if (!parse_optim(cmd, &a, &run, &lr) || !tq_cli_int(cmd, &a, "epochs", 1, 100000, &epochs))
        return TQ_EXIT_USAGE;
    run.epochs = epochs;
    double val_fraction = 0;
    if (!tq_cli_float(cmd, &a, "val", 0, 0.9, &val_fraction)) return TQ_EXIT_USAGE;
    run.val_fraction = (float)val_fraction;
    run.split_seed = run.seed;
    const char *model_name = tq_cli_get(cmd, &a, "model");
    const char *data_spec = tq_cli_get(cmd, &a, "data");
    const char *resume = tq_cli_get(cmd, &a, "resume");
    const char *json_path = tq_cli_get(cmd, &a, "json");
    char default_out[128];
    snprintf(default_out, sizeof default_out, "%s.tqc", model_name ? model_name : "lenet5");
    const char *out = tq_cli_get(cmd, &a, "out");
    if (!out) out = default_out;
    tq_reporter rep = tq_reporter_stdout(tq_cli_flag(cmd, &a, "quiet"));
    tq_error err = {0};

    /* Refuse unwritable outputs now, not after an hour of training. */
    if (tq_ckpt_check_writable(out, &err) ||
        (json_path && tq_check_writable(json_path, "JSON output", &err)))
        return tq_cli_fail(cmd, &err);

    if (resume) {
        tq_run saved = {0};
        if (tq_run_load(resume, &saved, &err)) return tq_cli_fail(cmd, &err);
        if (model_name && strcmp(model_name, tq_model_name(saved.model)) != 0) {
            /* the message first: the name lives in the model that tq_run_free releases */
            rc = tq_cli_usage_error(cmd, "--model %s does not match %s, a checkpoint of model %s "
                                    "(resuming needs no --model)",
                                    model_name, resume, tq_model_name(saved.model));
            tq_run_free(&saved);
            return rc;
        }
        if (saved.epoch >= run.epochs) {
            rc = tq_cli_usage_error(cmd, "--resume %s: the run has trained %lld epochs; give a "
                                    "larger --epochs to continue it", resume, (long long)saved.epoch);
            tq_run_free(&saved);
            return rc;
        }
        saved.epochs = run.epochs;
        tq_run_forget_best(&saved); /* train does not choose among its epochs */
        run = saved;
        if (!data_spec) data_spec = run.data_name;
    }
    if (!data_spec) data_spec = "fashion-mnist";
    if (strlen(data_spec) >= sizeof run.data_name) { /* the checkpoint records it whole */
        tq_run_free(&run);
        return tq_cli_usage_error(cmd, "--data: longer than %zu characters",
                                  sizeof run.data_name - 1);
    }

    tq_dataset train, val, test;
    if (tq_run_open_data(&run, data_spec, &train, &val, &test, &err)) {
        tq_run_free(&run);
        return tq_cli_fail(cmd, &err);
    }
    if (!resume) {
        tq_rng rng;
        tq_rng_seed(&rng, run.seed);
        run.model = tq_model_create(model_name ? model_name : "lenet5", train.c, train.h, train.w,
                                    train.classes, &rng, &err);
        if (!run.model || !parse_schedule(cmd, &a, &run, lr, steps_per_epoch(&train, run.batch),
                                          TQ_SCHEDULE_CONSTANT)) {
            tq_dataset_free(&train);
            tq_dataset_free(&val);
            tq_dataset_free(&test);
            return run.model ? TQ_EXIT_USAGE : tq_cli_fail(cmd, &err);
        }
        tq_dataset_stats(&train, run.mean, run.std);
        snprintf(run.data_name, sizeof run.data_name, "%s", data_spec);
    } else {
        run.schedule.total_steps = run.epochs * steps_per_epoch(&train, run.batch);
    }

    tq_report_line(&rep, "train %s on %s: %lld images, %lld parameters, %lld epochs, %d threads, %s sgemm",
                   tq_model_name(run.model), train.name, (long long)train.n,
                   (long long)tq_model_param_count(run.model), (long long)run.epochs,
                   tq_get_threads(), tq_sgemm_backend());
    tq_json json;
    tq_json_begin(&json);
    tq_json_str(&json, "command", "train");
    tq_json_str(&json, "model", tq_model_name(run.model));
    tq_json_str(&json, "data", train.name);
    tq_json_int(&json, "threads", tq_get_threads());
    tq_json_str(&json, "gemm", tq_sgemm_backend());
    double acc = 0;
    rc = train_epochs(cmd, &run, &train, run.val_fraction > 0 ? &val : NULL, &test, out, "",
                      &json, &rep, &acc, NULL, NULL);
    tq_json_num(&json, "accuracy", acc);
    if (!rc && json_path && tq_json_save(&json, json_path, &err)) rc = tq_cli_fail(cmd, &err);
    if (!rc) {
        tq_report_line(&rep, "saved %s", out);
        printf("accuracy: %.4f\n", acc);
    }
    tq_json_free(&json);
    tq_dataset_free(&train);
    tq_dataset_free(&val);
    tq_dataset_free(&test);
    tq_run_free(&run);
    return rc;
}

/* ---- qat: the training loop on a quantized model, scales fixed or learned */

static const tq_cli_opt qat_opts[] = {
    {"model-file", "FILE", "quantized checkpoint from tinyqat ptq (required, unless --resume)"},
    {"resume", "FILE", "continue the QAT run saved in FILE (after an epoch, or interrupted) with "
                       "its own optimizer, schedule, batch and seed; --epochs changes the total"},
    {"data", "SPEC", "data set (default: the one the model was trained on)"},
    {"epochs", "N", "QAT epochs (default 1; with --resume, the run's own)"},
    TRAINING_OPTS("cosine"),
    {"threads", "N", "threads (default: all cores)"},
    {"out", "FILE", "checkpoint to write after every epoch (required)"},
    {"fold-bn-at-end", NULL, "train with batch norm unfolded, then fold it into the layers "
                             "before it and recompute their weight scales"},
    {"keep-last", NULL, "end with the last epoch (default with a validation split: the epoch best "
                        "on it, the PTQ start included)"},
    {"scales", "WHAT", "fixed (keep the PTQ amax) or learn (LSQ: amax learns with the weights, same "
                       "optimizer and rate, no weight decay) for every quantizer (default: as each "
                       "quantizer's spec says, fixed unless scale=learn)"},
    {"json", "FILE", "write the figures as JSON"},
    {"report", "DIR", "write an HTML report with pictures to DIR (index.html, one SVG a figure, report.json)"},
    {"quiet", NULL, "print only the final accuracy line"},
    {0},
};
static const tq_cli_cmd qat_cmd = {
    "qat", "--model-file FILE --out FILE [options]",
    "Quantization-aware training: fine-tune a PTQ checkpoint with its scales fixed\n"
    "(straight-through estimator with clipping in backward), or learned with --scales learn\n"
    "(LSQ: amax gets a gradient, initialised from the PTQ amax). Without --lr, QAT starts at 1%\n"
    "of the learning rate the float model was trained with: safe where PTQ lost little; 2-bit\n"
    "recipes usually gain more at 10-50% (tinyqat compare tries 1%, 10% and 50% and chooses\n"
    "on the held-out images). With a validation split, QAT ends with its best epoch there.\n"
    "A run stopped by Ctrl-C continues with --resume and ends with the bits of a run never\n"
    "interrupted (at the same --threads); a finished one continues to a larger --epochs.",
    qat_opts, 0};

/* Folds batch norm into the layers before it after QAT and takes the weight amax of those
 * layers afresh from their folded weights. The other layers keep the amax QAT trained them
 * with, and every layer its activation scales. */
static tq_status fold_after_qat(tq_model *m, tq_error *err)
{
    int n = tq_model_layer_count(m);
    bool *was_folded = calloc((size_t)n, sizeof *was_folded);
    if (!was_folded) return tq_fail(err, TQ_STATUS_NOMEM, "qat: out of memory");
    for (int i = 0; i < n; i++) {
        tq_layer_info info;
        tq_model_layer(m, i, &info);
        was_folded[i] = info.folded;
    }
    tq_status st = tq_model_fold_batchnorms(m, err) < 0 ? err->status : TQ_STATUS_OK;
    for (int i = 0; st == TQ_STATUS_OK && i < n; i++) {
        tq_layer_info bn, into;
        tq_model_layer(m, i, &bn);
        if (!bn.folded || was_folded[i]) continue;
        tq_model_layer(m, bn.src, &into);
        tq_qlayer *l = tq_model_qlayer(m, into.qlayer);
        if (!l->weight_q) continue;
        tq_qstate state = tq_quantizer_state(l->weight_q);
        tq_quantizer_reset(l->weight_q);
        st = tq_quantizer_calibrate_weight(l->weight_q, l->weight, err);
        tq_quantizer_set_state(l->weight_q, state);
    }
    free(was_folded);
    return st;
}

/* What `qat --report` keeps as it runs: the start's predictions and epoch 0 of the curves. */
typedef struct qat_figs {
    tq_curves *curves;
    tq_clip_log *clips;
    int32_t *start_pred, *pred;
} qat_figs;

static void qat_figs_free(qat_figs *f)
{
    free(f->curves);
    free(f->clips);
    free(f->start_pred);
    free(f->pred);
}

static tq_status qat_figs_start(qat_figs *f, tq_run *run, const tq_dataset *train,
                                const tq_dataset *val, const tq_dataset *test, double *start_acc,
                                tq_error *err)
{
    double val_acc = NAN;
    f->curves = calloc(1, sizeof *f->curves);
    f->clips = calloc(1, sizeof *f->clips);
    if (!f->curves || !f->clips || tq_report_buffers(test, &f->start_pred, &f->pred, err))
        return tq_fail(err, TQ_STATUS_NOMEM, "report: out of memory");
    if (tq_report_accuracy(run, test, f->start_pred, start_acc, err) ||
        (val->n && tq_evaluate(run->model, val, run->mean, run->std, 256, &val_acc, NULL, err)) ||
        tq_clip_log_add(f->clips, run->model, train, run->mean, run->std, 0, err))
        return err->status;
    tq_curves_add(f->curves, "QAT", "qat", 0, NAN, NAN, val_acc);
    return TQ_STATUS_OK;
}

static bool has_quantizers(tq_model *m)
{
    for (int i = 0; i < tq_model_qlayer_count(m); i++) {
        tq_qlayer *l = tq_model_qlayer(m, i);
        if (l->weight_q || l->input_q) return true;
    }
    return false;
}

/* The run QAT trains: a PTQ checkpoint with a new optimizer, schedule, batch and seed from
 * the options, or (resume) a QAT run where it stopped. A usage exit code or 0. */
static int setup_qat(const tq_cli_cmd *cmd, const tq_cli_args *a, tq_run *run,
                     const tq_run *opts, double *lr, long long epochs, const char *path,
                     bool resume, const tq_dataset *train)
{
    if (!resume) {
        if (!tq_cli_get(cmd, a, "lr")) *lr = tq_qat_default_lr(run);
        tq_optim_free(run->optim);
        tq_optim_free(run->scale_optim);
        run->optim = run->scale_optim = NULL;
        run->optim_cfg = opts->optim_cfg;
        run->clip_norm = opts->clip_norm;
        run->batch = opts->batch;
        run->seed = opts->seed; /* the split keeps its own seed */
        run->epoch = 0;
        run->epochs = epochs;
        tq_run_forget_best(run);
        return parse_schedule(cmd, a, run, *lr, steps_per_epoch(train, run->batch),
                              TQ_SCHEDULE_COSINE) ? 0 : TQ_EXIT_USAGE;
    }
    /* A PTQ checkpoint is at epoch 0, batch 0 too: QAT starts from it with --model-file. */
    if (run->epoch == 0 && run->batch_in_epoch == 0)
        return tq_cli_usage_error(cmd, "--resume %s: no QAT step was taken from it yet (start "
                                  "QAT with --model-file %s)", path, path);
    if (tq_cli_get(cmd, a, "epochs")) {
        run->epochs = epochs;
        run->schedule.total_steps = epochs * steps_per_epoch(train, run->batch);
    }
    if (run->epoch >= run->epochs)
        return tq_cli_usage_error(cmd, "--resume %s: the run has trained all its %lld epochs "
                                  "(give a larger --epochs)", path, (long long)run->epochs);
    *lr = run->schedule.lr;
    return 0;
}

/* The options a resumed run needs again, for the message that says how to continue it. */
static void resume_options(const tq_cli_cmd *cmd, const tq_cli_args *a, char *buf, size_t len)
{
    const char *data = tq_cli_get(cmd, a, "data");
    snprintf(buf, len, "%s%s%s%s", data ? " --data " : "", data ? data : "",
             tq_cli_flag(cmd, a, "keep-last") ? " --keep-last" : "",
             tq_cli_flag(cmd, a, "fold-bn-at-end") ? " --fold-bn-at-end" : "");
}

/* With a validation split, QAT ends with its best epoch there, the PTQ start included: the
 * best so far starts as the weights training starts from, unless the resumed run has one. */
static tq_status start_best(tq_run *run, const tq_dataset *val, tq_error *err)
{
    if (run->best) return TQ_STATUS_OK;
    if (!(run->best = calloc(1, sizeof *run->best)))
        return tq_fail(err, TQ_STATUS_NOMEM, "qat: out of memory");
    run->best->epoch = run->epoch;
    if (tq_snapshot_init(&run->best->weights, run->model, err) ||
        tq_evaluate(run->model, val, run->mean, run->std, 256, &run->best->val_acc, NULL, err))
        return err->status;
    return TQ_STATUS_OK;
}

/* After the last epoch: back to the best one (keep_best), batch norm folded (fold), saved
 * without the best epoch (the run is over). *acc: the test accuracy of what is saved. */
static int finish_qat(const tq_cli_cmd *cmd, tq_run *run, bool keep_best, bool fold,
                      const tq_dataset *test, const char *out, tq_json *json, tq_reporter *rep,
                      double *acc)
{
    tq_error err = {0};
    if (keep_best) {
        tq_best_epoch *best = run->best;
        tq_report_line(rep, "kept epoch %lld: validation accuracy %.4f%s", (long long)best->epoch,
                       best->val_acc, best->epoch ? "" : " (the PTQ start; no epoch did better)");
        tq_json_int(json, "kept_epoch", best->epoch);
        if (best->epoch != run->epoch) {
            tq_snapshot_restore(&best->weights, run->model);
            if (tq_evaluate(run->model, test, run->mean, run->std, 256, acc, NULL, &err))
                return tq_cli_fail(cmd, &err);
        }
    }
    tq_run_forget_best(run);
    if (fold) {
        double unfolded = *acc;
        if (fold_after_qat(run->model, &err) ||
            tq_evaluate(run->model, test, run->mean, run->std, 256, acc, NULL, &err))
            return tq_cli_fail(cmd, &err);
        tq_report_line(rep, "batch norm folded after QAT: accuracy %.4f (unfolded %.4f)", *acc,
                       unfolded);
        tq_json_num(json, "unfolded_accuracy", unfolded);
    }
    return tq_run_save(run, out, &err) ? tq_cli_fail(cmd, &err) : 0;
}

/* --scales fixed|learn on every quantizer; 0 or an exit code. A resumed run keeps the scales
 * (and their optimizer) it was trained with. Folding batch norm after QAT takes the weight
 * amax of the folded layers afresh from their weights, which would discard learned ones. */
static int set_scales(const tq_cli_cmd *cmd, const tq_cli_args *a, tq_model *m, bool resume)
{
    const char *s = tq_cli_get(cmd, a, "scales");
    if (s && resume)
        return tq_cli_usage_error(cmd, "--scales: a resumed run keeps the scales it was trained "
                                  "with (fixed or learned)");
    if (s && strcmp(s, "fixed") && strcmp(s, "learn"))
        return tq_cli_usage_error(cmd, "--scales: expected fixed or learn, got '%s'", s);
    tq_error err = {0};
    if (s && tq_model_set_learn_scales(m, !strcmp(s, "learn"), &err))
        return tq_cli_usage_error(cmd, "--scales learn: %s", err.msg);
    if (tq_model_learned_amax_count(m) && tq_cli_flag(cmd, a, "fold-bn-at-end"))
        return tq_cli_usage_error(cmd, "--fold-bn-at-end recomputes the weight scales from the "
                                  "folded weights: it cannot keep learned scales");
    return 0;
}

int tq_cmd_qat(int argc, char **argv)
{
    const tq_cli_cmd *cmd = &qat_cmd;
    tq_cli_args a;
    int rc = tq_cli_parse(cmd, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    if (!tq_cli_threads(cmd, &a)) return TQ_EXIT_USAGE;
    tq_run opts = {0};
    double lr;
    long long epochs = 1;
    if (!parse_optim(cmd, &a, &opts, &lr) || !tq_cli_int(cmd, &a, "epochs", 1, 100000, &epochs))
        return TQ_EXIT_USAGE;
    const char *in = tq_cli_get(cmd, &a, "model-file"), *out = tq_cli_get(cmd, &a, "out");
    const char *resume = tq_cli_get(cmd, &a, "resume"), *json_path = tq_cli_get(cmd, &a, "json");
    const char *report = tq_cli_get(cmd, &a, "report");
    if (in && resume) return tq_cli_usage_error(cmd, "--model-file and --resume: give one of them");
    if (report && resume)
        return tq_cli_usage_error(cmd, "--report: not with --resume (the report starts from the PTQ model)");
    if (!(in || resume) || !out)
        return tq_cli_usage_error(cmd, "--model-file (or --resume) and --out are required");
    if (resume) in = resume;
    tq_reporter rep = tq_reporter_stdout(tq_cli_flag(cmd, &a, "quiet"));
    tq_error err = {0};
    if (tq_ckpt_check_writable(out, &err) ||
        (json_path && tq_check_writable(json_path, "JSON output", &err)) ||
        (report && tq_report_check_dir(report, &err)))
        return tq_cli_fail(cmd, &err);
    tq_run run = {0};
    if (tq_run_load(in, &run, &err)) return tq_cli_fail(cmd, &err);
    if (!has_quantizers(run.model)) {
        tq_run_free(&run);
        err = (tq_error){0};
        tq_fail(&err, TQ_STATUS_ARG, "%s has no quantizers: quantize it with tinyqat ptq first", in);
        return tq_cli_fail(cmd, &err);
    }
    const char *spec = tq_cli_get(cmd, &a, "data");
    if (!spec) spec = run.data_name;
    /* QAT trains on the images the float model trained on: its validation split stays out. */
    tq_dataset train, val, test;
    if (tq_run_open_data(&run, spec, &train, &val, &test, &err)) {
        tq_run_free(&run);
        return tq_cli_fail(cmd, &err);
    }
    rc = setup_qat(cmd, &a, &run, &opts, &lr, epochs, in, resume != NULL, &train);
    if (!rc) rc = set_scales(cmd, &a, run.model, resume != NULL);
    if (!rc) {
        if (resume)
            tq_report_line(&rep, "qat %s on %s: resumed after epoch %lld, batch %lld, of %lld; %s",
                           tq_model_name(run.model), train.name, (long long)run.epoch,
                           (long long)run.batch_in_epoch, (long long)run.epochs,
                           tq_optim_kind_name(run.optim_cfg.kind));
        else
            tq_report_line(&rep, "qat %s on %s: %lld epochs, %s from lr %g", tq_model_name(run.model),
                           train.name, (long long)run.epochs, tq_optim_kind_name(run.optim_cfg.kind), lr);
        tq_json json;
        tq_json_begin(&json);
        tq_json_str(&json, "command", "qat");
        tq_json_str(&json, "model", tq_model_name(run.model));
        tq_json_str(&json, "data", train.name);
        tq_json_num(&json, "lr", lr);
        double acc = 0, start_acc = 0;
        bool keep_best = val.n && !tq_cli_flag(cmd, &a, "keep-last");
        char resume_opts[4200];
        resume_options(cmd, &a, resume_opts, sizeof resume_opts);
        qat_figs figs = {0};
        if (!keep_best) tq_run_forget_best(&run);
        else if (start_best(&run, &val, &err)) rc = tq_cli_fail(cmd, &err);
        /* the start's figure, so that the epochs' can be read against it */
        else if (run.epoch == 0)
            tq_report_line(&rep, "epoch 0/%lld (the PTQ start)  val acc %.4f", (long long)run.epochs,
                           run.best->val_acc);
        if (!rc && report && qat_figs_start(&figs, &run, &train, &val, &test, &start_acc, &err))
            rc = tq_cli_fail(cmd, &err);
        if (!rc)
            rc = train_epochs(cmd, &run, &train, val.n ? &val : NULL, &test, out, resume_opts,
                              &json, &rep, &acc, figs.curves, figs.clips);
        if (!rc)
            rc = finish_qat(cmd, &run, keep_best, tq_cli_flag(cmd, &a, "fold-bn-at-end"), &test,
                            out, &json, &rep, &acc);
        tq_json_num(&json, "accuracy", acc);
        if (!rc && json_path && tq_json_save(&json, json_path, &err)) rc = tq_cli_fail(cmd, &err);
        if (!rc && report &&
            (tq_report_accuracy(&run, &test, figs.pred, &acc, &err) ||
             tq_report_qat(report, &run, figs.curves, figs.clips, &test, figs.start_pred, figs.pred,
                           start_acc, acc, &err)))
            rc = tq_cli_fail(cmd, &err);
        qat_figs_free(&figs);
        if (!rc) printf("accuracy: %.4f\n", acc);
        tq_json_free(&json);
    }
    tq_dataset_free(&train);
    tq_dataset_free(&val);
    tq_dataset_free(&test);
    tq_run_free(&run);
    return rc;
}

/* ---- eval */

static const tq_cli_opt eval_opts[] = {
    {"model-file", "FILE", "checkpoint to evaluate (required)"},
    {"data", "SPEC", "data set (default: the one the model was trained on)"},
    {"batch", "N", "batch size (default 256)"},
    {"threads", "N", "threads (default: all cores)"},
    {"engine", "NAME", "float (fake quant, the default) or int (the integer engine)"},
    {"compare", NULL, "with --engine int: compare with fake quant on the same images"},
    {"json", "FILE", "write the figures as JSON"},
    {"quiet", NULL, "print only the accuracy line"},
    {"dump", "FILE", "also write the test images, labels and logits (binary, see cli/dump.c)"},
    {"dump-codes", "N", "with --dump: also tinyqat's codes at every quantized layer's input, for "
                        "the first N images (default 0)"},
    {"dump-images", "N", "with --dump: only the first N test images (default all)"},
    {0},
};
static const tq_cli_cmd eval_cmd = {
    "eval", "--model-file FILE [options]",
    "Evaluate a checkpoint (float or quantized) on the test split.", eval_opts, 0};

int tq_cmd_eval(int argc, char **argv)
{
    const tq_cli_cmd *cmd = &eval_cmd;
    tq_cli_args a;
    int rc = tq_cli_parse(cmd, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *engine = tq_cli_get(cmd, &a, "engine");
    if (engine && strcmp(engine, "int") == 0) return tq_eval_int(cmd, &a);
    if (engine && strcmp(engine, "float") != 0)
        return tq_cli_usage_error(cmd, "--engine: expected float or int, got '%s'", engine);
    if (tq_cli_flag(cmd, &a, "compare"))
        return tq_cli_usage_error(cmd, "--compare: only with --engine int");
    long long batch = 256, dump_images = 0, dump_codes = 0;
    if (!tq_cli_threads(cmd, &a) || !tq_cli_int(cmd, &a, "batch", 1, 65536, &batch) ||
        !tq_cli_int(cmd, &a, "dump-images", 1, (long long)1 << 40, &dump_images) ||
        !tq_cli_int(cmd, &a, "dump-codes", 0, (long long)1 << 40, &dump_codes))
        return TQ_EXIT_USAGE;
    const char *path = tq_cli_get(cmd, &a, "model-file");
    if (!path) return tq_cli_usage_error(cmd, "--model-file is required");
    const char *json_path = tq_cli_get(cmd, &a, "json"), *dump = tq_cli_get(cmd, &a, "dump");
    tq_reporter rep = tq_reporter_stdout(tq_cli_flag(cmd, &a, "quiet"));
    tq_error err = {0};
    if (json_path && tq_check_writable(json_path, "JSON output", &err)) return tq_cli_fail(cmd, &err);
    if (dump && tq_check_writable(dump, "dump", &err)) return tq_cli_fail(cmd, &err);
    tq_run run = {0};
    if (tq_run_load(path, &run, &err)) return tq_cli_fail(cmd, &err);
    const char *spec = tq_cli_get(cmd, &a, "data");
    if (!spec) spec = run.data_name;
    tq_dataset test = {0};
    double acc = 0, loss = 0;
    if (tq_dataset_open(spec, TQ_SPLIT_TEST, &test, &err) ||
        tq_run_check_data(&run, spec, &test, &err) ||
        tq_evaluate(run.model, &test, run.mean, run.std, (int32_t)batch, &acc, &loss, &err) ||
        (dump && tq_eval_dump(&run, &test, dump_images, dump_codes, dump, &err))) {
        tq_dataset_free(&test);
        tq_run_free(&run);
        return tq_cli_fail(cmd, &err);
    }
    tq_report_line(&rep, "%s on %s: %lld test images, loss %.4f", tq_model_name(run.model),
                   test.name, (long long)test.n, loss);
    if (json_path) {
        tq_json json;
        tq_json_begin(&json);
        tq_json_str(&json, "command", "eval");
        tq_json_str(&json, "model", tq_model_name(run.model));
        tq_json_str(&json, "data", test.name);
        tq_json_int(&json, "images", test.n);
        tq_json_num(&json, "loss", loss);
        tq_json_num(&json, "accuracy", acc);
        if (tq_json_save(&json, json_path, &err)) rc = tq_cli_fail(cmd, &err);
        tq_json_free(&json);
    }
    if (!rc) printf("accuracy: %.4f\n", acc);
    tq_dataset_free(&test);
    tq_run_free(&run);
    return rc;
}

/* ---- info */

static const tq_cli_opt info_opts[] = {{0}};
static const tq_cli_cmd info_cmd = {
    "info", "FILE", "Show a checkpoint: model, layers, shapes, parameter count, quantizers.\n"
    "For FILE.onnx (an exported model): inputs, outputs, opset, op counts, initializers.",
    info_opts, 1};

int tq_cmd_info(int argc, char **argv)
{
    const tq_cli_cmd *cmd = &info_cmd;
    tq_cli_args a;
    int rc = tq_cli_parse(cmd, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    if (a.n_positional != 1) return tq_cli_usage_error(cmd, "expected one checkpoint file");
    if (tq_is_onnx_path(a.positional[0])) return tq_info_onnx(a.positional[0]);
    tq_error err = {0};
    tq_run run = {0};
    if (tq_run_load(a.positional[0], &run, &err)) return tq_cli_fail(cmd, &err);
    int32_t c, h, w, classes;
    tq_model_input(run.model, &c, &h, &w, &classes);
    printf("checkpoint %s\nmodel %s, input (%d,%d,%d), %d classes, data %s, %lld epochs trained\n",
           a.positional[0], tq_model_name(run.model), c, h, w, classes, run.data_name,
           (long long)run.epoch);
    if (run.val_fraction > 0)
        printf("validation split: %g of the training set held out (seed %llu)\n",
               (double)run.val_fraction, (unsigned long long)run.split_seed);
    tq_model_describe(run.model, stdout);
    tq_print_quantizers(run.model, stdout);
    tq_model_bytes_print(run.model, stdout);
    tq_run_free(&run);
    return 0;
}
