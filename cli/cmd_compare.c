/* `tinyqat compare`: train (or load) a float model, then for each recipe the PTQ accuracy
 * with each calibrator and the QAT accuracy from the best PTQ (train/compare.c), printed as
 * one table and written as CSV, Markdown and JSON. */
#include "checkpoint.h"
#include "cli.h"
#include "ptq.h"
#include "report_out.h"

#include <math.h>
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
    {"methods", "LIST", "QAT methods, each from the same PTQ start with the same epochs and rates: qat "
                        "(scales fixed), qat-lsq (scales learned, LSQ) (default qat)"},
    {"val", "FRACTION", "training images held out to choose the calibrator, QAT rate and QAT epoch (default 0.1; a --model-file keeps its own)"},
    {"keep-p", "P", "a QAT epoch replaces the PTQ start only if better on the held-out images with McNemar p at most P (default 1: any gain; 0.05: only a gain beyond chance)"},
    {"qat-lr", "X[,Y...]", "QAT rates, cosine-decayed, each run from the PTQ start (default: 1%, 10% and 50% of the float model's rate, chosen on the held-out images; 1% without a split)"},
    {"optim", "NAME", "optimizer for float training and QAT: sgd, adam, adamw (default adam)"},
    {"lr", "X", "float training learning rate (default 1e-3 adam, 0.05 sgd)"},
    {"batch", "N", "batch size (default 64)"},
    {"seed", "N", "random seed (default 1)"},
    {"threads", "N", "threads (default: all cores)"},
    {"out", "PREFIX", "write PREFIX.csv, PREFIX.md and the float checkpoint PREFIX-float.tqc (default compare)"},
    {"json", "FILE", "write the table as JSON (rows: recipe, method, accuracy)"},
    {"report", "DIR", "write an HTML report with pictures to DIR (index.html, one SVG a figure, report.json)"},
    {"report-recipe", "NAME", "the recipe the report's per-layer figures show (default: the one whose best PTQ is lowest)"},
    {"quiet", NULL, "print only the table"},
    {0},
};
static const tq_cli_cmd compare_cmd = {
    "compare", "[options]",
    "Compare PTQ (each calibrator) against QAT, recipe by recipe, on one float model.\n"
    "With --methods qat,qat-lsq each recipe gets a row with fixed scales and one with learned\n"
    "ones (LSQ), and McNemar's test between the two.",
    compare_opts, 0};

#define MAX_ITEMS 16

/* The comma-separated value s of --opt split into items (in buf, cap bytes); 0, or a usage
 * exit code when it does not fit (rather than dropping what does not). */
static int split_list(const tq_cli_cmd *cmd, const char *opt, const char *s, char *buf,
                      size_t cap, char **items, int *n)
{
    *n = 0;
    if (snprintf(buf, cap, "%s", s) >= (int)cap)
        return tq_cli_usage_error(cmd, "--%s: longer than %zu characters", opt, cap - 1);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (*n == MAX_ITEMS)
            return tq_cli_usage_error(cmd, "--%s: more than %d items", opt, MAX_ITEMS);
        items[(*n)++] = tok;
    }
    return 0;
}

/* The table, in the same columns for the terminal and Markdown ('|' separators) or CSV: a row
 * per recipe and QAT method; with learned scales a method column, and a last column that
 * compares learned with fixed scales. */
static void print_table(FILE *f, char sep, double float_acc, const tq_compare_row *rows, int n,
                        bool several_lrs, unsigned methods)
{
    bool md = sep == '|', with_method = methods & (1u << TQ_QAT_LSQ);
    bool versus = with_method && (methods & (1u << TQ_QAT_FIXED));
    /* Markdown combines into one cell what CSV keeps in columns of their own. */
    const char *md_cols[] = {"recipe", "float", "ptq-max", "ptq-percentile", "ptq-mse",
                             "ptq-entropy", "best ptq", "qat", "qat - best ptq", "images +/-",
                             "p"};
    const char *csv_cols[] = {"recipe", "float", "ptq-max", "ptq-percentile", "ptq-mse",
                              "ptq-entropy", "best ptq", "qat", "qat - best ptq", "best calib",
                              "qat epoch", "qat lr", "gained", "lost", "p"};
    int ncols = md ? 11 : 15;
    for (int c = 0; c < ncols; c++) {
        fprintf(f, md ? "| %s " : (c ? ",%s" : "%s"), md ? md_cols[c] : csv_cols[c]);
        if (c == 0 && with_method) fprintf(f, md ? "| method " : ",method");
    }
    if (versus) fprintf(f, md ? "| lsq vs qat: +/-, p " : ",lsq vs qat gained,lsq vs qat lost,lsq vs qat p");
    fprintf(f, md ? "|\n" : "\n");
    if (md) {
        for (int c = 0; c < ncols + with_method + versus; c++) fprintf(f, c ? "| ---: " : "| --- ");
        fprintf(f, "|\n");
    }
    for (int i = 0; i < n; i++) {
        const tq_compare_row *r = &rows[i];
        for (int k = 0; k < TQ_QAT_METHODS; k++) {
            const tq_qat_result *q = &r->qat[k];
            if (!q->run) continue;
            fprintf(f, md ? "| %s" : "%s", r->recipe);
            if (with_method) fprintf(f, md ? " | %s" : ",%s", tq_qat_method_name((tq_qat_method)k));
            fprintf(f, md ? " | %.2f" : ",%.4f", md ? 100 * float_acc : float_acc);
            for (int c = 0; c < TQ_COMPARE_CALIBS; c++) {
                double acc = r->ptq[c].test;
                if (acc < 0) fprintf(f, md ? " | -" : ",");
                else fprintf(f, md ? " | %.2f" : ",%.4f", md ? 100 * acc : acc);
            }
            double best = r->ptq[r->best].test, p = tq_mcnemar_p(q->gained, q->lost);
            char kept[48] = "";
            if (q->epoch && several_lrs) snprintf(kept, sizeof kept, ", lr %.2g", q->lr);
            if (md)
                fprintf(f, " | %.2f (%s) | %.2f (ep %d%s) | %+.2f | +%lld / -%lld | %.2g",
                        100 * best, tq_calib_name(r->best), 100 * q->acc.test, q->epoch, kept,
                        100 * (q->acc.test - best), (long long)q->gained, (long long)q->lost, p);
            else
                fprintf(f, ",%.4f,%.4f,%.4f,%s,%d,%.4g,%lld,%lld,%.4g", best, q->acc.test,
                        q->acc.test - best, tq_calib_name(r->best), q->epoch, q->lr,
                        (long long)q->gained, (long long)q->lost, p);
            if (versus && k == TQ_QAT_LSQ)
                fprintf(f, md ? " | +%lld / -%lld, %.2g" : ",%lld,%lld,%.4g",
                        (long long)r->lsq_gained, (long long)r->lsq_lost,
                        tq_mcnemar_p(r->lsq_gained, r->lsq_lost));
            else if (versus)
                fprintf(f, md ? " | -" : ",,,");
            fprintf(f, md ? " |\n" : "\n");
        }
    }
}

static tq_status write_reports(const char *prefix, const char *json_path, const char *model,
                               const char *data, const tq_compare *x, double float_acc,
                               const tq_compare_row *rows, int n, tq_error *err)
{
    char path[4096];
    for (int pass = 0; pass < 2; pass++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f) return tq_fail(err, TQ_STATUS_NOMEM, "compare: out of memory");
        print_table(f, pass ? '|' : ',', float_acc, rows, n, x->n_qat_lrs > 1, x->methods);
        fclose(f);
        snprintf(path, sizeof path, "%s.%s", prefix, pass ? "md" : "csv");
        tq_error e = {0};
        tq_status st = tq_write_file_atomic(path, buf, len, &e);
        free(buf);
        if (st) return tq_fail(err, st, "%s table %s", pass ? "Markdown" : "CSV", e.msg);
    }
    if (!json_path) return TQ_STATUS_OK;
    tq_json j;
    tq_json_begin(&j);
    tq_json_str(&j, "command", "compare");
    tq_json_str(&j, "model", model);
    tq_json_str(&j, "data", data);
    tq_json_num(&j, "float_accuracy", float_acc);
    tq_json_str(&j, "selected_on", x->val ? "validation" : "test");
    tq_json_int(&j, "validation_images", x->val ? x->val->n : 0);
    tq_json_int(&j, "test_images", x->test->n);
    tq_json_open(&j, "rows", '[');
    for (int i = 0; i < n; i++) {
        const tq_compare_row *r = &rows[i];
        /* float, each calibrator, then each QAT method */
        for (int k = -1; k < TQ_COMPARE_CALIBS + TQ_QAT_METHODS; k++) {
            if (k >= 0 && k < TQ_COMPARE_CALIBS && r->ptq[k].test < 0) continue;
            const tq_qat_result *q = k >= TQ_COMPARE_CALIBS ? &r->qat[k - TQ_COMPARE_CALIBS] : NULL;
            if (q && !q->run) continue;
            char method[32];
            tq_accuracy_pair acc = k < 0 ? (tq_accuracy_pair){float_acc, -1}
                                 : q ? q->acc : r->ptq[k];
            if (k < 0) snprintf(method, sizeof method, "float");
            else if (q) snprintf(method, sizeof method, "%s",
                                 tq_qat_method_name((tq_qat_method)(k - TQ_COMPARE_CALIBS)));
            else snprintf(method, sizeof method, "ptq-%s", tq_calib_name(k));
            tq_json_open(&j, NULL, '{');
            tq_json_str(&j, "recipe", r->recipe);
            tq_json_str(&j, "method", method);
            tq_json_num(&j, "accuracy", acc.test);
            if (x->val && k >= 0) tq_json_num(&j, "validation_accuracy", acc.val);
            if (q) {
                tq_json_str(&j, "from", tq_calib_name(r->best));
                tq_json_int(&j, "epoch", q->epoch);
                tq_json_num(&j, "lr", q->lr);
                if (x->val) tq_json_num(&j, "validation_p", q->val_p);
                tq_json_int(&j, "gained", q->gained);
                tq_json_int(&j, "lost", q->lost);
                tq_json_num(&j, "p_value", tq_mcnemar_p(q->gained, q->lost));
            }
            if (q == &r->qat[TQ_QAT_LSQ] && r->qat[TQ_QAT_FIXED].run) {
                tq_json_int(&j, "vs_qat_gained", r->lsq_gained);
                tq_json_int(&j, "vs_qat_lost", r->lsq_lost);
                tq_json_num(&j, "vs_qat_p_value", tq_mcnemar_p(r->lsq_gained, r->lsq_lost));
            }
            tq_json_close(&j, '{');
        }
    }
    tq_json_close(&j, '[');
    tq_status st = tq_json_save(&j, json_path, err);
    tq_json_free(&j);
    return st;
}

/* --qat-lr's comma-separated rates into rates (none when s is NULL); a usage exit code or 0. */
static int parse_rates(const tq_cli_cmd *cmd, const char *s, double *rates, int *n)
{
    char buf[512], *items[MAX_ITEMS];
    int n_items, rc = split_list(cmd, "qat-lr", s ? s : "", buf, sizeof buf, items, &n_items);
    if (rc) return rc;
    for (*n = 0; *n < n_items; ++*n) {
        char *end;
        rates[*n] = strtod(items[*n], &end);
        if (*end || !(rates[*n] > 0 && rates[*n] < 1e12))
            return tq_cli_usage_error(cmd, "--qat-lr: expected positive rates separated by commas, got '%s'", items[*n]);
    }
    return s && !*n ? tq_cli_usage_error(cmd, "--qat-lr: expected at least one rate") : 0;
}

/* --methods into a bit per tq_qat_method (default: fixed scales alone); with learned scales,
 * every recipe's quantizers must be able to learn. A usage exit code or 0. */
static int parse_methods(const tq_cli_cmd *cmd, const char *s, char *const *recipes, int n_recipes,
                         unsigned *methods)
{
    char buf[512], *items[MAX_ITEMS];
    int n, rc = split_list(cmd, "methods", s ? s : "qat", buf, sizeof buf, items, &n);
    if (rc) return rc;
    *methods = 0;
    for (int i = 0; i < n; i++) {
        tq_qat_method m;
        if (!tq_qat_method_parse(items[i], &m))
            return tq_cli_usage_error(cmd, "--methods: expected qat or qat-lsq, got '%s'", items[i]);
        *methods |= 1u << m;
    }
    if (!*methods) return tq_cli_usage_error(cmd, "--methods: expected qat and/or qat-lsq");
    tq_error err = {0};
    tq_recipe r;
    for (int i = 0; (*methods & 1u << TQ_QAT_LSQ) && i < n_recipes; i++)
        if (tq_recipe_make(recipes[i], NULL, NULL, &r, &err) ||
            (r.has_weights && tq_qspec_check_learnable(&r.weights, &err)) ||
            (r.has_acts && tq_qspec_check_learnable(&r.acts, &err)))
            return tq_cli_usage_error(cmd, "--methods qat-lsq: recipe %s: %s", recipes[i], err.msg);
    return 0;
}

/* Trains the float model compare starts from when no --model-file is given: run holds the
 * optimizer, batch, seed and epochs; saved to path. */
static tq_status train_float(tq_run *run, const char *zoo_name, const char *spec, float lr,
                             const tq_dataset *train, const tq_dataset *val, const char *path,
                             tq_curves *curves, tq_reporter *rep, tq_error *err)
{
    tq_rng rng;
    tq_rng_seed(&rng, run->seed);
    run->model = tq_model_create(zoo_name, train->c, train->h, train->w, train->classes, &rng, err);
    if (!run->model) return err->status;
    run->schedule = (tq_schedule){.kind = TQ_SCHEDULE_CONSTANT, .lr = lr};
    tq_dataset_stats(train, run->mean, run->std);
    snprintf(run->data_name, sizeof run->data_name, "%s", spec);
    tq_report_line(rep, "float: training %s on %s (%lld images, %lld held out) for %lld epochs",
                   zoo_name, train->name, (long long)train->n, (long long)val->n,
                   (long long)run->epochs);
    while (run->epoch < run->epochs) {
        tq_epoch_stats st;
        if (tq_train_epoch(run, train, rep, &st, err)) return err->status;
        tq_report_line(rep, "  epoch %lld/%lld  loss %.4f  train acc %.4f  %.0f img/s",
                       (long long)st.epoch, (long long)run->epochs, st.loss, st.accuracy,
                       st.images_per_s);
        double val_acc = NAN; /* the report's curve: held-out accuracy after each epoch */
        if (curves && val->n &&
            tq_evaluate(run->model, val, run->mean, run->std, 256, &val_acc, NULL, err))
            return err->status;
        if (curves) tq_curves_add(curves, "float", "float", (double)st.epoch, st.loss, st.accuracy, val_acc);
    }
    return tq_run_save(run, path, err);
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
    double lr = kind == TQ_OPTIM_SGD ? 0.05 : 1e-3, val_fraction = 0.1, keep_p = 1;
    if (!tq_cli_float(cmd, &a, "lr", 0, 1e12, &lr) ||
        !tq_cli_float(cmd, &a, "val", 0, 0.9, &val_fraction) ||
        !tq_cli_float(cmd, &a, "keep-p", 0, 1, &keep_p))
        return TQ_EXIT_USAGE;
    if (tq_cli_get(cmd, &a, "val") && tq_cli_get(cmd, &a, "model-file"))
        return tq_cli_usage_error(cmd, "--val: only when compare trains the float model; a --model-file keeps the split it was trained with");
    tq_keep_kind keep_kind;
    int keep = -1;
    const char *keep_s = tq_cli_get(cmd, &a, "keep");
    if (keep_s && !tq_keep_parse(keep_s, &keep_kind))
        return tq_cli_usage_error(cmd, "--keep: expected none, float or int8, got '%s'", keep_s);

    char recipes_buf[512], calibs_buf[512], *recipes[MAX_ITEMS], *calibs[MAX_ITEMS];
    const char *rl = tq_cli_get(cmd, &a, "recipes"), *cl = tq_cli_get(cmd, &a, "calibs");
    int n_recipes, n_calibs;
    if ((rc = split_list(cmd, "recipes", rl ? rl : "int8,w4a8,w4a4,w2a2,fp8", recipes_buf,
                         sizeof recipes_buf, recipes, &n_recipes)) ||
        (rc = split_list(cmd, "calibs", cl ? cl : "max,percentile,mse,entropy", calibs_buf,
                         sizeof calibs_buf, calibs, &n_calibs)))
        return rc;
    tq_error err = {0};
    tq_recipe probe;
    for (int i = 0; i < n_recipes; i++)
        if (tq_recipe_make(recipes[i], NULL, NULL, &probe, &err))
            return tq_cli_usage_error(cmd, "--recipes: %s", err.msg);
    unsigned methods = 0;
    if ((rc = parse_methods(cmd, tq_cli_get(cmd, &a, "methods"), recipes, n_recipes, &methods)))
        return rc;
    tq_calib_kind calib_kinds[MAX_ITEMS];
    for (int i = 0; i < n_calibs; i++)
        if (!tq_calib_parse(calibs[i], &calib_kinds[i]))
            return tq_cli_usage_error(cmd, "--calibs: expected max, percentile, mse or entropy, got '%s'", calibs[i]);
    if (!n_recipes || !n_calibs) return tq_cli_usage_error(cmd, "empty --recipes or --calibs");
    double qat_lrs[MAX_ITEMS];
    int n_qat_lrs = 0;
    if ((rc = parse_rates(cmd, tq_cli_get(cmd, &a, "qat-lr"), qat_lrs, &n_qat_lrs))) return rc;

    const char *prefix = tq_cli_get(cmd, &a, "out"), *json_path = tq_cli_get(cmd, &a, "json");
    const char *report = tq_cli_get(cmd, &a, "report"), *report_recipe = tq_cli_get(cmd, &a, "report-recipe");
    if (report_recipe && !report) return tq_cli_usage_error(cmd, "--report-recipe: only with --report");
    bool listed = !report_recipe;
    for (int i = 0; i < n_recipes && !listed; i++) listed = !strcmp(recipes[i], report_recipe);
    if (!listed) return tq_cli_usage_error(cmd, "--report-recipe: '%s' is not one of --recipes", report_recipe);
    if (!prefix) prefix = "compare";
    char float_path[4096], csv_path[4096], md_path[4096];
    snprintf(float_path, sizeof float_path, "%s-float.tqc", prefix);
    snprintf(csv_path, sizeof csv_path, "%s.csv", prefix);
    snprintf(md_path, sizeof md_path, "%s.md", prefix);
    if (tq_check_writable(csv_path, "CSV table", &err) ||
        tq_check_writable(md_path, "Markdown table", &err) ||
        (!tq_cli_get(cmd, &a, "model-file") && tq_ckpt_check_writable(float_path, &err)) ||
        (json_path && tq_check_writable(json_path, "JSON output", &err)) ||
        (report && tq_report_check_dir(report, &err)))
        return tq_cli_fail(cmd, &err);
    tq_reporter rep = tq_reporter_stdout(tq_cli_flag(cmd, &a, "quiet"));

    /* The float model: loaded, or trained now. */
    tq_run run = {0};
    const char *model_file = tq_cli_get(cmd, &a, "model-file"), *spec = tq_cli_get(cmd, &a, "data");
    if (model_file && tq_run_load(model_file, &run, &err)) return tq_cli_fail(cmd, &err);
    if (!spec) spec = model_file ? run.data_name : "fashion-mnist";
    if (strlen(spec) >= sizeof run.data_name) { /* the float checkpoint records it whole */
        tq_run_free(&run);
        return tq_cli_usage_error(cmd, "--data: longer than %zu characters",
                                  sizeof run.data_name - 1);
    }
    if (!model_file) {
        run.val_fraction = (float)val_fraction;
        run.seed = run.split_seed = (uint64_t)seed;
    }
    tq_dataset train, val, test;
    tq_compare_row rows[MAX_ITEMS];
    double float_acc = 0;
    tq_compare_report cr = {0};
    if (tq_run_open_data(&run, spec, &train, &val, &test, &err)) {
        tq_run_free(&run);
        return tq_cli_fail(cmd, &err);
    }
    if (report && tq_compare_report_init(&cr, report, report_recipe, &train, run.mean, run.std, &test, &err)) {
        rc = tq_cli_fail(cmd, &err);
        goto done;
    }
    if (!model_file) {
        const char *name = tq_cli_get(cmd, &a, "model");
        run.optim_cfg = tq_optim_defaults(kind);
        if (kind == TQ_OPTIM_SGD) run.optim_cfg.momentum = 0.9f;
        run.batch = (int32_t)batch;
        run.epochs = epochs;
        if (train_float(&run, name ? name : "lenet5", spec, (float)lr, &train, &val, float_path,
                        cr.curves, &rep, &err)) {
            rc = tq_cli_fail(cmd, &err);
            goto done;
        }
    }
    /* QAT rates: given, or fractions of the float model's (the 1% alone without a split) */
    if (!n_qat_lrs) {
        const double times_default[] = {1, 10, 50}; /* 1%, 10%, 50% of the float rate */
        for (int i = 0; i < (val.n ? 3 : 1); i++)
            qat_lrs[n_qat_lrs++] = times_default[i] * tq_qat_default_lr(&run);
    } else if (n_qat_lrs > 1 && !val.n) {
        rc = tq_cli_usage_error(cmd, "--qat-lr: several rates need a validation split to choose between them (train the float model with --val)");
        goto done;
    }
    if (val.n)
        tq_report_line(&rep, "choosing calibrators, QAT rates and epochs on %lld held-out training images",
                       (long long)val.n);
    else
        tq_report_line(&rep, "note: %s has no validation split (train it with --val): the best PTQ "
                       "is chosen on the test set and QAT's last epoch is kept",
                       model_file ? model_file : "the float model");
    /* From here on, seed and batch are the experiment's (calibration batches, QAT order). */
    run.optim_cfg = tq_optim_defaults(kind);
    if (kind == TQ_OPTIM_SGD) run.optim_cfg.momentum = 0.9f;
    run.batch = (int32_t)batch;
    run.seed = (uint64_t)seed;
    if (keep_s) keep = (int)keep_kind;
    tq_compare x = {.run = &run, .train = &train, .val = val.n ? &val : NULL, .test = &test,
                    .keep = keep, .methods = methods, .calib_batches = (int)calib_batches,
                    .qat_epochs = (int)qat_epochs, .qat_lrs = qat_lrs, .n_qat_lrs = n_qat_lrs,
                    .keep_p = keep_p, .rep = &rep,
                    .on_qat_epoch = report ? tq_compare_report_epoch : NULL, .on_qat_ctx = &cr};
    if (tq_compare_init(&x, &err) ||
        (report ? tq_predict(run.model, &test, run.mean, run.std, 256, cr.float_pred, &float_acc, &err)
                : tq_evaluate(run.model, &test, run.mean, run.std, 256, &float_acc, NULL, &err))) {
        rc = tq_cli_fail(cmd, &err);
        goto done;
    }
    tq_report_line(&rep, "float accuracy %.4f", float_acc);
    for (int i = 0; !rc && i < n_recipes; i++)
        if (tq_compare_recipe(&x, recipes[i], calib_kinds, n_calibs, &rows[i], &err) ||
            (report && tq_compare_report_recipe(&cr, &x, &err)))
            rc = tq_cli_fail(cmd, &err);
    if (!rc) {
        printf("\n%s on %s (%lld test images), accuracy in %%; best ptq and the QAT epoch kept "
               "chosen on %s; images +/-: test images QAT gets right that its PTQ start got wrong, "
               "and the reverse; p: McNemar's exact test of that split:\n\n",
               tq_model_name(run.model), test.name, (long long)test.n,
               x.val ? "held-out training images" : "the test set");
        print_table(stdout, '|', float_acc, rows, n_recipes, x.n_qat_lrs > 1, x.methods);
        if (write_reports(prefix, json_path, tq_model_name(run.model), test.name, &x, float_acc,
                          rows, n_recipes, &err))
            rc = tq_cli_fail(cmd, &err);
        else
            tq_report_line(&rep, "\nwrote %s.csv and %s.md%s%s", prefix, prefix,
                           json_path ? " and " : "", json_path ? json_path : "");
        if (!rc && report && tq_compare_report_finish(&cr, &x, rows, n_recipes, float_acc, &err))
            rc = tq_cli_fail(cmd, &err);
    }
    tq_compare_free(&x);
done:
    tq_compare_report_free(&cr);
    tq_dataset_free(&train);
    tq_dataset_free(&val);
    tq_dataset_free(&test);
    tq_run_free(&run);
    return rc;
}
