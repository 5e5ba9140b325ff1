/* `tinyqat compare`: train (or load) a float model, then for each recipe the PTQ accuracy
 * with each calibrator and the QAT accuracy after a few epochs from the best PTQ, printed as
 * one table and written as CSV, Markdown and JSON. */
#include "checkpoint.h"
#include "cli.h"
#include "ptq.h"

#include <stdlib.h>
#include <string.h>

static const tq_cli_opt compare_opts[] = {
    {"model", "NAME", "zoo model to train when no --model-file is given (default lenet5)"},
    {"model-file", "FILE", "start from this float checkpoint instead of training"},
    {"data", "SPEC", "data set (default fashion-mnist)"},
    {"epochs", "N", "float training epochs (default 3)"},
    {"recipes", "LIST", "comma-separated recipes (default int8,w4a8,w4a4,w2a2,fp8; also int8-sq, w4a16-awq, ...)"},
    {"calibs", "LIST", "activation calibrators to try (default max,percentile,mse,entropy)"},
    {"calib-batches", "N", "training batches to calibrate on (default 32)"},
    {"keep", "WHAT", "first and last layers: none, float or int8 (default: the recipe's)"},
    {"qat-epochs", "N", "QAT epochs per recipe (default 1)"},
    {"qat-lr", "X", "QAT rate, cosine-decayed (default: 1% of --model-file's float rate; --lr if trained here)"},
    {"optim", "NAME", "optimizer for float training and QAT: sgd, adam, adamw (default adam)"},
    {"lr", "X", "float training learning rate (default 1e-3 adam, 0.05 sgd)"},
    {"batch", "N", "batch size (default 64)"},
    {"seed", "N", "random seed (default 1)"},
    {"threads", "N", "threads (default: all cores)"},
    {"out", "PREFIX", "write PREFIX.csv, PREFIX.md and the float checkpoint PREFIX-float.tqc (default compare)"},
    {"json", "FILE", "write the table as JSON (rows: recipe, method, accuracy)"},
    {"quiet", NULL, "print only the table"},
    {0},
};
static const tq_cli_cmd compare_cmd = {
    "compare", "[options]",
    "Compare PTQ (each calibrator) against QAT, recipe by recipe, on one float model.",
    compare_opts, 0};

#define MAX_ITEMS 16
typedef struct row {
    char recipe[96];
    double ptq[4];   /* by tq_calib_kind; NAN when not tried */
    int best;        /* calibrator of the best PTQ */
    double qat;
} row;

static int split_list(char *s, char **items)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok && n < MAX_ITEMS; tok = strtok(NULL, ","))
        if (*tok) items[n++] = tok;
    return n;
}

/* The float model is kept as its parameter and state buffers; each experiment starts from
 * a copy of them with the quantizers removed. */
typedef struct snapshot {
    float *params, *state;
} snapshot;

static void restore(tq_model *m, const snapshot *s)
{
    tq_detach_quantizers(m);
    for (int i = 0; i < tq_model_qlayer_count(m); i++) tq_model_set_input_mul(m, i, NULL, 0, &(tq_error){0});
    memcpy(tq_model_params(m), s->params, (size_t)tq_model_param_count(m) * sizeof(float));
    memcpy(tq_model_state(m), s->state, (size_t)tq_model_state_count(m) * sizeof(float));
}

typedef struct experiment {
    tq_run *run;
    const tq_dataset *train, *test;
    snapshot snap;
    int calib_batches, qat_epochs;
    double qat_lr;
    int keep; /* tq_keep_kind, or -1 for the recipe's own */
    tq_reporter *rep;
} experiment;

static tq_status ptq_accuracy(experiment *x, const tq_recipe *r, int calib, double *acc,
                              tq_error *err)
{
    restore(x->run->model, &x->snap);
    if (tq_ptq_run(x->run->model, r, calib, x->train, x->run->mean, x->run->std,
                   x->calib_batches, x->run->batch, x->run->seed, err))
        return err->status;
    return tq_evaluate(x->run->model, x->test, x->run->mean, x->run->std, 256, acc, NULL, err);
}

static tq_status qat_accuracy(experiment *x, const tq_recipe *r, int calib, double *acc,
                              tq_error *err)
{
    double ptq;
    if (ptq_accuracy(x, r, calib, &ptq, err)) return err->status;
    tq_run q = *x->run;
    q.optim = NULL;
    q.epoch = 0;
    q.epochs = x->qat_epochs;
    int64_t steps = (x->train->n + q.batch - 1) / q.batch;
    q.schedule = (tq_schedule){.kind = TQ_SCHEDULE_COSINE, .lr = (float)x->qat_lr,
                               .total_steps = steps * x->qat_epochs};
    tq_status st = TQ_STATUS_OK;
    while (st == TQ_STATUS_OK && q.epoch < q.epochs)
        st = tq_train_epoch(&q, x->train, x->rep, NULL, err);
    tq_optim_free(q.optim);
    if (st) return st;
    return tq_evaluate(x->run->model, x->test, x->run->mean, x->run->std, 256, acc, NULL, err);
}

static tq_status run_recipe(experiment *x, const char *name, char **calibs, int n_calibs,
                            row *out, tq_error *err)
{
    tq_recipe r;
    if (tq_recipe_make(name, NULL, NULL, &r, err)) return err->status;
    if (x->keep >= 0) r.keep = (tq_keep_kind)x->keep;
    memset(out, 0, sizeof *out);
    snprintf(out->recipe, sizeof out->recipe, "%s", name);
    for (int k = 0; k < 4; k++) out->ptq[k] = -1;
    out->best = -1;
    for (int i = 0; i < n_calibs; i++) {
        tq_calib_kind k;
        TQ_ASSERT(tq_calib_parse(calibs[i], &k));
        if (ptq_accuracy(x, &r, (int)k, &out->ptq[k], err)) return err->status;
        if (out->best < 0 || out->ptq[k] > out->ptq[out->best]) out->best = (int)k;
        tq_report_line(x->rep, "  %-8s ptq-%-10s %.4f", name, calibs[i], out->ptq[k]);
    }
    if (qat_accuracy(x, &r, out->best, &out->qat, err)) return err->status;
    tq_report_line(x->rep, "  %-8s qat (from ptq-%s) %.4f", name, tq_calib_name(out->best), out->qat);
    return TQ_STATUS_OK;
}

/* The table, in the same columns for the terminal and Markdown ('|' separators) or CSV. */
static void print_table(FILE *f, char sep, double float_acc, const row *rows, int n)
{
    bool md = sep == '|';
    const char *cols[] = {"recipe", "float", "ptq-max", "ptq-percentile", "ptq-mse",
                          "ptq-entropy", "best ptq", "qat", "qat - best ptq"};
    int ncols = 9;
    for (int c = 0; c < ncols; c++)
        fprintf(f, md ? "| %s " : (c ? ",%s" : "%s"), cols[c]);
    fprintf(f, md ? "|\n" : "\n");
    if (md) {
        for (int c = 0; c < ncols; c++) fprintf(f, c ? "| ---: " : "| --- ");
        fprintf(f, "|\n");
    }
    for (int i = 0; i < n; i++) {
        const row *r = &rows[i];
        fprintf(f, md ? "| %s | %.2f" : "%s,%.4f", r->recipe, md ? 100 * float_acc : float_acc);
        for (int k = 0; k < 4; k++) {
            if (r->ptq[k] < 0) fprintf(f, md ? " | -" : ",");
            else fprintf(f, md ? " | %.2f" : ",%.4f", md ? 100 * r->ptq[k] : r->ptq[k]);
        }
        double best = r->ptq[r->best];
        if (md)
            fprintf(f, " | %.2f (%s) | %.2f | %+.2f |\n", 100 * best, tq_calib_name(r->best),
                    100 * r->qat, 100 * (r->qat - best));
        else
            fprintf(f, ",%.4f,%.4f,%.4f\n", best, r->qat, r->qat - best);
    }
}

static tq_status write_reports(const char *prefix, const char *json_path, const char *model,
                               const char *data, double float_acc, const row *rows, int n,
                               tq_error *err)
{
    char path[4096];
    for (int pass = 0; pass < 2; pass++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f) return tq_fail(err, TQ_STATUS_NOMEM, "compare: out of memory");
        print_table(f, pass ? '|' : ',', float_acc, rows, n);
        fclose(f);
        snprintf(path, sizeof path, "%s.%s", prefix, pass ? "md" : "csv");
        tq_status st = tq_write_file_atomic(path, buf, len, err);
        free(buf);
        if (st) return st;
    }
    if (!json_path) return TQ_STATUS_OK;
    tq_json j;
    tq_json_begin(&j);
    tq_json_str(&j, "command", "compare");
    tq_json_str(&j, "model", model);
    tq_json_str(&j, "data", data);
    tq_json_num(&j, "float_accuracy", float_acc);
    tq_json_open(&j, "rows", '[');
    for (int i = 0; i < n; i++) {
        char method[32];
        for (int k = -1; k < 5; k++) {
            double acc;
            if (k == -1) snprintf(method, sizeof method, "float"), acc = float_acc;
            else if (k == 4) snprintf(method, sizeof method, "qat"), acc = rows[i].qat;
            else if (rows[i].ptq[k] < 0) continue;
            else snprintf(method, sizeof method, "ptq-%s", tq_calib_name(k)), acc = rows[i].ptq[k];
            tq_json_open(&j, NULL, '{');
            tq_json_str(&j, "recipe", rows[i].recipe);
            tq_json_str(&j, "method", method);
            tq_json_num(&j, "accuracy", acc);
            tq_json_close(&j, '{');
        }
    }
    tq_json_close(&j, '[');
    tq_status st = tq_json_save(&j, json_path, err);
    tq_json_free(&j);
    return st;
}

int tq_cmd_compare(int argc, char **argv)
{
    const tq_cli_cmd *cmd = &compare_cmd;
    tq_cli_args a;
    int rc = tq_cli_parse(cmd, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    long long epochs = 3, calib_batches = 32, qat_epochs = 1, batch = 64, seed = 1;
    if (!tq_cli_threads(cmd, &a) || !tq_cli_int(cmd, &a, "epochs", 1, 100000, &epochs) ||
        !tq_cli_int(cmd, &a, "calib-batches", 1, 1 << 20, &calib_batches) ||
        !tq_cli_int(cmd, &a, "qat-epochs", 1, 100000, &qat_epochs) ||
        !tq_cli_int(cmd, &a, "batch", 1, 65536, &batch) ||
        !tq_cli_int(cmd, &a, "seed", 0, 1LL << 62, &seed))
        return TQ_EXIT_USAGE;
    const char *optim = tq_cli_get(cmd, &a, "optim");
    tq_optim_kind kind = TQ_OPTIM_ADAM;
    if (optim && !tq_optim_kind_parse(optim, &kind))
        return tq_cli_usage_error(cmd, "--optim: expected sgd, adam or adamw, got '%s'", optim);
    double lr = kind == TQ_OPTIM_SGD ? 0.05 : 1e-3, qat_lr = -1;
    if (!tq_cli_float(cmd, &a, "lr", 0, 1e12, &lr) || !tq_cli_float(cmd, &a, "qat-lr", 0, 1e12, &qat_lr))
        return TQ_EXIT_USAGE;
    tq_keep_kind keep_kind;
    int keep = -1;
    const char *keep_s = tq_cli_get(cmd, &a, "keep");
    if (keep_s && !tq_keep_parse(keep_s, &keep_kind))
        return tq_cli_usage_error(cmd, "--keep: expected none, float or int8, got '%s'", keep_s);

    char recipes_buf[512], calibs_buf[256], *recipes[MAX_ITEMS], *calibs[MAX_ITEMS];
    const char *rl = tq_cli_get(cmd, &a, "recipes"), *cl = tq_cli_get(cmd, &a, "calibs");
    snprintf(recipes_buf, sizeof recipes_buf, "%s", rl ? rl : "int8,w4a8,w4a4,w2a2,fp8");
    snprintf(calibs_buf, sizeof calibs_buf, "%s", cl ? cl : "max,percentile,mse,entropy");
    int n_recipes = split_list(recipes_buf, recipes), n_calibs = split_list(calibs_buf, calibs);
    tq_error err = {0};
    tq_recipe probe;
    for (int i = 0; i < n_recipes; i++)
        if (tq_recipe_make(recipes[i], NULL, NULL, &probe, &err))
            return tq_cli_usage_error(cmd, "--recipes: %s", err.msg);
    for (int i = 0; i < n_calibs; i++) {
        tq_calib_kind k;
        if (!tq_calib_parse(calibs[i], &k))
            return tq_cli_usage_error(cmd, "--calibs: expected max, percentile, mse or entropy, got '%s'", calibs[i]);
    }
    if (!n_recipes || !n_calibs) return tq_cli_usage_error(cmd, "empty --recipes or --calibs");

    const char *prefix = tq_cli_get(cmd, &a, "out"), *json_path = tq_cli_get(cmd, &a, "json");
    if (!prefix) prefix = "compare";
    char float_path[4096], csv_path[4096];
    snprintf(float_path, sizeof float_path, "%s-float.tqc", prefix);
    snprintf(csv_path, sizeof csv_path, "%s.csv", prefix);
    if (tq_ckpt_check_writable(csv_path, &err) || (json_path && tq_ckpt_check_writable(json_path, &err)))
        return tq_cli_fail(cmd, &err);
    tq_reporter rep = tq_reporter_stdout(tq_cli_flag(cmd, &a, "quiet"));

    /* The float model: loaded, or trained now. */
    tq_run run = {0};
    const char *model_file = tq_cli_get(cmd, &a, "model-file"), *spec = tq_cli_get(cmd, &a, "data");
    if (model_file && tq_run_load(model_file, &run, &err)) return tq_cli_fail(cmd, &err);
    if (qat_lr < 0) qat_lr = model_file ? tq_qat_default_lr(&run) : lr;
    if (!spec) spec = model_file ? run.data_name : "fashion-mnist";
    tq_dataset train = {0}, test = {0};
    row rows[MAX_ITEMS];
    double float_acc = 0;
    if (tq_dataset_open(spec, TQ_SPLIT_TRAIN, &train, &err) ||
        tq_dataset_open(spec, TQ_SPLIT_TEST, &test, &err)) {
        rc = tq_cli_fail(cmd, &err);
        goto done;
    }
    if (!model_file) {
        const char *name = tq_cli_get(cmd, &a, "model");
        tq_rng rng;
        tq_rng_seed(&rng, (uint64_t)seed);
        run.model = tq_model_create(name ? name : "lenet5", train.c, train.h, train.w,
                                    train.classes, &rng, &err);
        if (!run.model) {
            rc = tq_cli_fail(cmd, &err);
            goto done;
        }
        run.optim_cfg = tq_optim_defaults(kind);
        if (kind == TQ_OPTIM_SGD) run.optim_cfg.momentum = 0.9f;
        run.batch = (int32_t)batch;
        run.seed = (uint64_t)seed;
        run.epochs = epochs;
        run.schedule = (tq_schedule){.kind = TQ_SCHEDULE_CONSTANT, .lr = (float)lr};
        tq_dataset_stats(&train, run.mean, run.std);
        snprintf(run.data_name, sizeof run.data_name, "%s", spec);
        tq_report_line(&rep, "float: training %s on %s for %lld epochs", name ? name : "lenet5",
                       train.name, epochs);
        while (run.epoch < run.epochs) {
            tq_epoch_stats st;
            if (tq_train_epoch(&run, &train, &rep, &st, &err)) {
                rc = tq_cli_fail(cmd, &err);
                goto done;
            }
            tq_report_line(&rep, "  epoch %lld/%lld  loss %.4f  train acc %.4f  %.0f img/s",
                           (long long)st.epoch, epochs, st.loss, st.accuracy, st.images_per_s);
        }
        if (tq_run_save(&run, float_path, &err)) {
            rc = tq_cli_fail(cmd, &err);
            goto done;
        }
    }
    run.optim_cfg = tq_optim_defaults(kind);
    if (kind == TQ_OPTIM_SGD) run.optim_cfg.momentum = 0.9f;
    run.batch = (int32_t)batch;
    run.seed = (uint64_t)seed;
    if (keep_s) keep = (int)keep_kind;
    experiment x = {.run = &run, .train = &train, .test = &test, .keep = keep,
                    .calib_batches = (int)calib_batches, .qat_epochs = (int)qat_epochs,
                    .qat_lr = qat_lr, .rep = &rep};
    size_t np = (size_t)tq_model_param_count(run.model), ns = (size_t)tq_model_state_count(run.model);
    x.snap.params = malloc(np * sizeof(float) + 1);
    x.snap.state = malloc(ns * sizeof(float) + 1);
    if (!x.snap.params || !x.snap.state) {
        tq_fail(&err, TQ_STATUS_NOMEM, "compare: out of memory");
        rc = tq_cli_fail(cmd, &err);
    } else {
        tq_detach_quantizers(run.model);
        memcpy(x.snap.params, tq_model_params(run.model), np * sizeof(float));
        memcpy(x.snap.state, tq_model_state(run.model), ns * sizeof(float));
        if (tq_evaluate(run.model, &test, run.mean, run.std, 256, &float_acc, NULL, &err))
            rc = tq_cli_fail(cmd, &err);
        tq_report_line(&rep, "float accuracy %.4f", float_acc);
        for (int i = 0; !rc && i < n_recipes; i++)
            if (run_recipe(&x, recipes[i], calibs, n_calibs, &rows[i], &err)) rc = tq_cli_fail(cmd, &err);
        if (!rc) {
            printf("\n%s on %s (%lld test images), accuracy in %%:\n\n", tq_model_name(run.model),
                   test.name, (long long)test.n);
            print_table(stdout, '|', float_acc, rows, n_recipes);
            if (write_reports(prefix, json_path, tq_model_name(run.model), test.name, float_acc,
                              rows, n_recipes, &err))
                rc = tq_cli_fail(cmd, &err);
            else
                tq_report_line(&rep, "\nwrote %s.csv and %s.md%s%s", prefix, prefix,
                               json_path ? " and " : "", json_path ? json_path : "");
        }
    }
    free(x.snap.params);
    free(x.snap.state);
done:
    tq_dataset_free(&train);
    tq_dataset_free(&test);
    tq_run_free(&run);
    return rc;
}
