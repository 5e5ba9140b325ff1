/* `tinyqat ptq`: quantize a trained model after training. */
#include "checkpoint.h"
#include "cli.h"
#include "ptq.h"
#include "report_out.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- ptq */

static const tq_cli_opt ptq_opts[] = {
    {"model-file", "FILE", "float (or quantized) checkpoint to start from (required)"},
    {"recipe", "NAME", "int8, int8-sq, w4a16, w4a16-awq, w4a16-gptq, w4a8, w4a8-gptq, w4a4, w2a2, fp8, ... (listed below)"},
    {"recipe-file", "FILE", "recipe with per-layer overrides ('default NAME', 'layer NAME RECIPE|float')"},
    {"alpha", "X", "SmoothQuant migration strength in [0, 1] (default 0.5)"},
    {"fold-bn", NULL, "fold batch norms into the layers before them first"},
    {"gptq-damp", "X", "GPTQ: dampening, lambda = X * mean(diag H) (default 0.01)"},
    {"gptq-act-order", NULL, "GPTQ: quantize the inputs with the largest diag H first"},
    {"gptq-float-inputs", NULL, "GPTQ: every layer's H from the float model's inputs (default: from the model with the layers before it quantized)"},
    {"gptq-batches", "N", "GPTQ: calibration batches for H (default 8, at most --calib-batches)"},
    {"weights", "SPEC", "weight quantizer spec, e.g. int4:channel=0 (replaces the recipe's); "
                        ":scale=learn lets QAT learn its amax (LSQ)"},
    {"acts", "SPEC", "activation quantizer spec, e.g. int8:calib=entropy or int4:scale=learn, or float"},
    {"calib", "NAME", "activation calibrator: max, percentile, mse, entropy (default: the spec's)"},
    {"calib-batches", "N", "training batches to calibrate on (default 32)"},
    {"keep", "WHAT", "first and last layers: none, float or int8 (default: the recipe's)"},
    {"data", "SPEC", "data set (default: the one the model was trained on)"},
    {"batch", "N", "calibration batch size (default 64)"},
    {"seed", "N", "which calibration batches are drawn (default 1)"},
    {"threads", "N", "threads (default: all cores)"},
    {"out", "FILE", "quantized checkpoint to write (required)"},
    {"json", "FILE", "write the figures as JSON"},
    {"report", "DIR", "write an HTML report with pictures to DIR (index.html, one SVG a figure, report.json)"},
    {"quiet", NULL, "print only the accuracy line"},
    {0},
};
static const tq_cli_cmd ptq_cmd = {
    "ptq", "--model-file FILE --recipe NAME --out FILE [options]",
    "Quantize a trained model after training: attach a recipe's quantizers, calibrate the\n"
    "activation scales on training batches, evaluate, and save the quantized checkpoint.\n"
    "The recipes are listed after the options.",
    ptq_opts, 0};

/* --gptq-*: options of a GPTQ recipe, refused with any other. */
static bool parse_gptq(const tq_cli_cmd *cmd, const tq_cli_args *a, tq_recipe *r)
{
    const char *names[] = {"gptq-damp", "gptq-act-order", "gptq-float-inputs", "gptq-batches"};
    for (int i = 0; i < 4; i++)
        if (tq_cli_get(cmd, a, names[i]) && r->algo != TQ_ALGO_GPTQ) {
            tq_cli_usage_error(cmd, "--%s: recipe %s does not use GPTQ (use one of the -gptq recipes)",
                               names[i], r->name);
            return false;
        }
    long long batches = r->gptq.batches;
    if (!tq_cli_float(cmd, a, "gptq-damp", 0, 1e6, &r->gptq.opts.damp) ||
        !tq_cli_int(cmd, a, "gptq-batches", 1, 1 << 20, &batches))
        return false;
    r->gptq.batches = (int)batches;
    r->gptq.opts.act_order = tq_cli_flag(cmd, a, "gptq-act-order");
    r->gptq.float_inputs = tq_cli_flag(cmd, a, "gptq-float-inputs");
    return true;
}

/* Recipe from --recipe / --recipe-file / --weights / --acts / --keep / --alpha / --fold-bn. */
static bool parse_recipe(const tq_cli_cmd *cmd, const tq_cli_args *a, tq_recipe *r)
{
    const char *name = tq_cli_get(cmd, a, "recipe"), *w = tq_cli_get(cmd, a, "weights"),
               *ac = tq_cli_get(cmd, a, "acts"), *keep = tq_cli_get(cmd, a, "keep");
    const char *file = tq_cli_get(cmd, a, "recipe-file"), *alpha = tq_cli_get(cmd, a, "alpha");
    if (!name && !w && !ac && !file) {
        tq_cli_usage_error(cmd, "give --recipe NAME, --recipe-file FILE, or --weights SPEC and/or --acts SPEC");
        return false;
    }
    tq_error err = {0};
    if (file && (name || w || ac)) {
        tq_cli_usage_error(cmd, "--recipe-file replaces --recipe, --weights and --acts");
        return false;
    }
    if (file ? tq_recipe_load(file, r, &err) != TQ_STATUS_OK
             : tq_recipe_make(name, w, ac, r, &err) != TQ_STATUS_OK) {
        tq_cli_usage_error(cmd, "%s", err.msg);
        return false;
    }
    if (keep && !tq_keep_parse(keep, &r->keep)) {
        tq_cli_usage_error(cmd, "--keep: expected none, float or int8, got '%s'", keep);
        return false;
    }
    if (alpha) {
        char *end;
        double v = strtod(alpha, &end);
        if (*end || end == alpha || !(v >= 0 && v <= 1)) {
            tq_cli_usage_error(cmd, "--alpha: expected a number in [0, 1], got '%s'", alpha);
            return false;
        }
        r->alpha = (float)v;
    }
    r->fold_bn = tq_cli_flag(cmd, a, "fold-bn");
    return parse_gptq(cmd, a, r);
}

static bool parse_calib(const tq_cli_cmd *cmd, const tq_cli_args *a, int *calib)
{
    const char *s = tq_cli_get(cmd, a, "calib");
    tq_calib_kind k;
    *calib = -1;
    if (!s) return true;
    if (!tq_calib_parse(s, &k)) {
        tq_cli_usage_error(cmd, "--calib: expected max, percentile, mse or entropy, got '%s'", s);
        return false;
    }
    *calib = (int)k;
    return true;
}

int tq_cmd_ptq(int argc, char **argv)
{
    const tq_cli_cmd *cmd = &ptq_cmd;
    tq_cli_args a;
    int rc = tq_cli_parse(cmd, argc, argv, &a);
    if (rc < 0) { /* --help: the recipes the summary announces, after the options */
        printf("\nrecipes (--recipe NAME):\n");
        tq_recipe_list(stdout);
        return 0;
    }
    if (rc) return rc;
    tq_recipe recipe;
    int calib;
    long long batches = 32, batch = 64, seed = 1;
    if (!tq_cli_threads(cmd, &a) || !parse_recipe(cmd, &a, &recipe) || !parse_calib(cmd, &a, &calib) ||
        !tq_cli_int(cmd, &a, "calib-batches", 1, 1 << 20, &batches) ||
        !tq_cli_int(cmd, &a, "batch", 1, 65536, &batch) ||
        !tq_cli_int(cmd, &a, "seed", 0, 1LL << 62, &seed))
        return TQ_EXIT_USAGE;
    const char *in = tq_cli_get(cmd, &a, "model-file"), *out = tq_cli_get(cmd, &a, "out");
    const char *json_path = tq_cli_get(cmd, &a, "json"), *report = tq_cli_get(cmd, &a, "report");
    if (!in || !out) return tq_cli_usage_error(cmd, "--model-file and --out are required");
    tq_reporter rep = tq_reporter_stdout(tq_cli_flag(cmd, &a, "quiet"));
    if (!rep.quiet) recipe.gptq.log = stdout;
    tq_error err = {0};
    if (tq_ckpt_check_writable(out, &err) ||
        (json_path && tq_check_writable(json_path, "JSON output", &err)) ||
        (report && tq_report_check_dir(report, &err)))
        return tq_cli_fail(cmd, &err);
    tq_run run = {0};
    if (tq_run_load(in, &run, &err)) return tq_cli_fail(cmd, &err);
    const char *spec = tq_cli_get(cmd, &a, "data");
    if (!spec) spec = run.data_name;
    tq_dataset train = {0}, val = {0}, test = {0}; /* val: kept out of calibration */
    double float_acc = 0, acc = 0;
    /* The report: per-image classes of both models, the weights before any rescaling. */
    int32_t *float_pred = NULL, *pred = NULL;
    tq_ranges before = {0};
    recipe.keep_histograms = report != NULL;
    if (tq_run_open_data(&run, spec, &train, &val, &test, &err) ||
        (report && tq_report_buffers(&test, &float_pred, &pred, &err)) ||
        (report && tq_ranges_take(&before, run.model, &err)) ||
        tq_report_accuracy(&run, &test, float_pred, &float_acc, &err) ||
        tq_ptq_run(run.model, &recipe, calib, &train, run.mean, run.std, (int)batches,
                   (int32_t)batch, (uint64_t)seed, &err) ||
        tq_report_accuracy(&run, &test, pred, &acc, &err)) {
        rc = tq_cli_fail(cmd, &err);
    } else {
        /* The quantized model starts a new run: QAT gets a fresh optimizer. */
        tq_optim_free(run.optim);
        tq_optim_free(run.scale_optim);
        run.optim = run.scale_optim = NULL;
        run.epoch = 0;
        tq_run_forget_best(&run);
        if (!rep.quiet) tq_print_quantizers(run.model, stdout);
        tq_report_line(&rep, "recipe %s: float accuracy %.4f, PTQ accuracy %.4f (%+.2f points)",
                       recipe.name, float_acc, acc, 100 * (acc - float_acc));
        if (tq_run_save(&run, out, &err)) rc = tq_cli_fail(cmd, &err);
    }
    if (!rc && json_path) {
        tq_json json;
        tq_json_begin(&json);
        tq_json_str(&json, "command", "ptq");
        tq_json_str(&json, "recipe", recipe.name);
        tq_json_num(&json, "float_accuracy", float_acc);
        tq_json_num(&json, "accuracy", acc);
        if (tq_json_save(&json, json_path, &err)) rc = tq_cli_fail(cmd, &err);
        tq_json_free(&json);
    }
    if (!rc && report && tq_report_ptq(report, &run, &recipe, &test, float_pred, pred, float_acc,
                                       acc, &before, &err))
        rc = tq_cli_fail(cmd, &err);
    if (!rc) printf("accuracy: %.4f\n", acc);
    free(float_pred);
    free(pred);
    tq_ranges_free(&before);
    tq_dataset_free(&train);
    tq_dataset_free(&val);
    tq_dataset_free(&test);
    tq_run_free(&run);
    return rc;
}
