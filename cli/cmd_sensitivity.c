/* `tinyqat sensitivity`: which layers a recipe hurts most, and a mixed-precision recipe
 * file meeting an accuracy target. */
#include "checkpoint.h"
#include "cli.h"
#include "report_out.h"
#include "sensitivity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const tq_cli_opt sens_opts[] = {
    {"model-file", "FILE", "float checkpoint (required)"},
    {"recipe", "NAME", "recipe to probe (required), e.g. w4a4"},
    {"target-drop", "POINTS", "propose a mix losing at most this many accuracy points"},
    {"out", "FILE", "recipe file for the proposal (default mixed.recipe)"},
    {"calib-batches", "N", "training batches to calibrate on (default 8)"},
    {"data", "SPEC", "data set (default: the one the model was trained on)"},
    {"batch", "N", "calibration batch size (default 64)"},
    {"seed", "N", "which calibration batches are drawn (default 1)"},
    {"threads", "N", "threads (default: all cores)"},
    {"report", "DIR", "write an HTML report with pictures to DIR (index.html, one SVG a figure, report.json)"},
    {0},
};
static const tq_cli_cmd sens_cmd = {
    "sensitivity", "--model-file FILE --recipe NAME [--target-drop POINTS --out FILE]",
    "Quantize one layer at a time, and all layers but one, with a recipe; report per layer the\n"
    "accuracy change and the weight and input SQNR, most sensitive first. With --target-drop,\n"
    "move the most sensitive layers to int8, then float, until the target is met, and write\n"
    "the mix as a recipe file for `ptq --recipe-file`.",
    sens_opts, 0};

static void print_rows(const tq_sens_row *rows, int n)
{
    printf("%-20s %9s %9s %10s %10s\n", "layer", "alone", "all-but", "w SQNR", "in SQNR");
    for (int i = 0; i < n; i++)
        printf("%-20s %+8.2fp %+8.2fp %8.1fdB %8.1fdB\n", rows[i].name,
               100 * (rows[i].alone_acc - rows[i].float_acc),
               100 * (rows[i].all_but_acc - rows[i].float_acc), rows[i].weight_sqnr,
               rows[i].input_sqnr);
}

static tq_status write_proposal(const char *path, const char *recipe, const tq_recipe *mix,
                                tq_error *err)
{
    const char *names[TQ_RECIPE_MAX_OVERRIDES];
    for (int i = 0; i < mix->n_overrides; i++)
        names[i] = mix->overrides[i].has_weights ? "int8" : "float";
    return tq_recipe_save(path, recipe, mix->overrides, names, mix->n_overrides, err);
}

int tq_cmd_sensitivity(int argc, char **argv)
{
    const tq_cli_cmd *cmd = &sens_cmd;
    tq_cli_args a;
    int rc = tq_cli_parse(cmd, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    long long batches = 8, batch = 64, seed = 1;
    double target = -1;
    if (!tq_cli_threads(cmd, &a) || !tq_cli_int(cmd, &a, "calib-batches", 1, 1 << 20, &batches) ||
        !tq_cli_int(cmd, &a, "batch", 1, 65536, &batch) ||
        !tq_cli_int(cmd, &a, "seed", 0, 1LL << 62, &seed) ||
        !tq_cli_float(cmd, &a, "target-drop", 0, 100, &target))
        return TQ_EXIT_USAGE;
    const char *in = tq_cli_get(cmd, &a, "model-file"), *name = tq_cli_get(cmd, &a, "recipe");
    const char *out = tq_cli_get(cmd, &a, "out");
    if (!in || !name) return tq_cli_usage_error(cmd, "--model-file and --recipe are required");
    if (!out) out = "mixed.recipe";
    tq_error err = {0};
    tq_recipe r;
    if (tq_recipe_make(name, NULL, NULL, &r, &err)) return tq_cli_usage_error(cmd, "%s", err.msg);
    const char *report = tq_cli_get(cmd, &a, "report");
    if ((target >= 0 && tq_check_writable(out, "recipe file", &err)) ||
        (report && tq_report_check_dir(report, &err)))
        return tq_cli_fail(cmd, &err);
    tq_run run = {0};
    if (tq_run_load(in, &run, &err)) return tq_cli_fail(cmd, &err);
    const char *spec = tq_cli_get(cmd, &a, "data");
    if (!spec) spec = run.data_name;
    /* With a validation split, sensitivities and the proposal are measured on it, and the
     * test set only reports the proposal's accuracy. */
    tq_dataset train = {0}, val = {0}, test = {0};
    double float_acc = 0, mix_acc = 0, mix_test = 0;
    int n = tq_model_qlayer_count(run.model);
    tq_sens_row *rows = calloc((size_t)(n ? n : 1), sizeof *rows);
    tq_sens_ctx c = {.train = &train, .test = &test, .mean = run.mean, .std = run.std,
                     .calib_batches = (int)batches, .batch = (int32_t)batch, .seed = (uint64_t)seed};
    tq_recipe mix;
    tq_detach_quantizers(run.model);
    if (!rows) rc = tq_cli_fail(cmd, &(tq_error){TQ_STATUS_NOMEM, "out of memory"});
    else if (tq_run_open_data(&run, spec, &train, &val, &test, &err))
        rc = tq_cli_fail(cmd, &err);
    const char *measured_on = val.n ? "held-out training images" : "the test set";
    if (!rc && val.n) c.test = &val;
    if (!rc && (tq_evaluate(run.model, c.test, run.mean, run.std, 256, &float_acc, NULL, &err) ||
                tq_sensitivity(run.model, &r, &c, float_acc, rows, &err)))
        rc = tq_cli_fail(cmd, &err);
    if (!rc) {
        printf("recipe %s, float accuracy %.4f on %s (%lld images); accuracy change in points:\n",
               name, float_acc, measured_on, (long long)c.test->n);
        print_rows(rows, n);
    }
    if (!rc && report &&
        tq_report_sensitivity(report, &run, &r, &c, rows, n, float_acc, &err))
        rc = tq_cli_fail(cmd, &err);
    if (!rc && target >= 0) {
        tq_sens_ctx on_test = c;
        on_test.test = &test;
        if (tq_mixed_precision(run.model, &r, &c, rows, float_acc, target, &mix, &mix_acc, &err) ||
            tq_sens_accuracy(run.model, &mix, &on_test, &mix_test, &err) ||
            write_proposal(out, name, &mix, &err))
            rc = tq_cli_fail(cmd, &err);
        else
            printf("proposal: %d layer(s) above %s, accuracy %.4f (%+.2f points) on %s, %.4f on the "
                   "test set: %s\n", mix.n_overrides, name, mix_acc, 100 * (mix_acc - float_acc),
                   measured_on, mix_test, out);
    }
    free(rows);
    tq_dataset_free(&train);
    tq_dataset_free(&val);
    tq_dataset_free(&test);
    tq_run_free(&run);
    return rc;
}
