/* `tinyqat eval --engine int [--compare]`: a quantized checkpoint run by the integer engine on
 * the test split: accuracy and loss, and with --compare the differences from fake quant. */
#include "checkpoint.h"
#include "eval_int.h"

#include <math.h>
#include <stdlib.h>

double tq_cross_entropy_of(const float *z, int32_t k, int32_t label)
{
    double top = z[0], sum = 0.0;
    for (int32_t j = 1; j < k; j++) top = z[j] > top ? z[j] : top;
    for (int32_t j = 0; j < k; j++) sum += exp((double)z[j] - top);
    return top + log(sum) - z[label];
}

/* Accuracy and mean cross-entropy of the engine alone. */
static tq_status engine_pass(tq_engine *e, const tq_dataset *d, int32_t batch, double *acc,
                             double *loss, tq_error *err)
{
    const int32_t k = tq_engine_classes(e);
    const int64_t image = (int64_t)d->c * d->h * d->w;
    float *z = malloc((size_t)batch * (size_t)k * sizeof *z);
    if (!z) return tq_fail(err, TQ_STATUS_NOMEM, "eval: out of memory");
    int64_t correct = 0;
    double sum = 0.0;
    for (int64_t i0 = 0; i0 < d->n; i0 += batch) {
        int64_t n = d->n - i0 < batch ? d->n - i0 : batch;
        if (tq_engine_run(e, d->images + i0 * image, n, z, err)) {
            free(z);
            return err->status;
        }
        for (int64_t i = 0; i < n; i++) {
            const float *zi = z + i * k;
            int32_t best = 0, label = d->labels[i0 + i];
            for (int32_t j = 1; j < k; j++)
                if (zi[j] > zi[best]) best = j;
            sum += tq_cross_entropy_of(zi, k, label);
            correct += best == label;
        }
    }
    free(z);
    *acc = d->n ? (double)correct / (double)d->n : 0.0;
    *loss = d->n ? sum / (double)d->n : 0.0;
    return TQ_STATUS_OK;
}

static void report_compare(tq_reporter *rep, const tq_int_compare *c)
{
    double n = c->images > 0 ? (double)c->images : 1.0, codes = c->codes > 0 ? (double)c->codes : 1.0;
    tq_report_line(rep, "against fake quant: %lld of %lld images classified differently, largest "
                   "logit difference %.4g", (long long)c->differ, (long long)c->images,
                   c->max_logit_diff);
    tq_report_line(rep, "activation codes: %lld compared, %lld (%.4g%%) one step apart "
                   "(requantization rounding), %lld more than one step apart where all before "
                   "agreed (a bug), %lld after an earlier difference (propagated)",
                   (long long)c->codes, (long long)c->codes_one_step,
                   100.0 * (double)c->codes_one_step / codes, (long long)c->codes_more,
                   (long long)c->codes_propagated);
    tq_report_line(rep, "accuracy: fake quant %.4f, integer engine %.4f",
                   (double)c->correct_fq / n, (double)c->correct_int / n);
}

static void json_compare(tq_json *j, const tq_int_compare *c)
{
    double n = c->images > 0 ? (double)c->images : 1.0, codes = c->codes > 0 ? (double)c->codes : 1.0;
    tq_json_open(j, "compare", '{');
    tq_json_num(j, "fake_quant_accuracy", (double)c->correct_fq / n);
    tq_json_int(j, "images_differing", c->differ);
    tq_json_num(j, "max_logit_diff", c->max_logit_diff);
    tq_json_int(j, "codes_compared", c->codes);
    tq_json_int(j, "codes_one_step", c->codes_one_step);
    tq_json_int(j, "codes_more", c->codes_more);
    tq_json_int(j, "codes_more_propagated", c->codes_propagated);
    tq_json_num(j, "fraction_one_step", (double)c->codes_one_step / codes);
    tq_json_num(j, "fraction_more", (double)c->codes_more / codes);
    tq_json_close(j, '{');
}

int tq_eval_int(const tq_cli_cmd *cmd, const tq_cli_args *a)
{
    long long batch = 256;
    if (!tq_cli_threads(cmd, a) || !tq_cli_int(cmd, a, "batch", 1, 65536, &batch))
        return TQ_EXIT_USAGE;
    if (tq_cli_get(cmd, a, "dump") || tq_cli_get(cmd, a, "dump-codes") ||
        tq_cli_get(cmd, a, "dump-images"))
        return tq_cli_usage_error(cmd, "--dump writes fake quant's logits and codes: not with "
                                       "--engine int (--compare compares the two)");
    const char *path = tq_cli_get(cmd, a, "model-file");
    if (!path) return tq_cli_usage_error(cmd, "--model-file is required");
    const char *json_path = tq_cli_get(cmd, a, "json");
    const bool compare = tq_cli_flag(cmd, a, "compare");
    tq_reporter rep = tq_reporter_stdout(tq_cli_flag(cmd, a, "quiet"));
    tq_error err = {0};
    if (json_path && tq_check_writable(json_path, "JSON output", &err)) return tq_cli_fail(cmd, &err);
    tq_run run = {0};
    if (tq_run_load(path, &run, &err)) return tq_cli_fail(cmd, &err);
    const char *spec = tq_cli_get(cmd, a, "data");
    tq_dataset test = {0};
    tq_engine *e = NULL;
    tq_int_compare c = {0};
    double acc = 0, loss = 0;
    int rc = 0;
    if (tq_dataset_open(spec ? spec : run.data_name, TQ_SPLIT_TEST, &test, &err) ||
        !(e = tq_engine_build(run.model, run.mean, run.std, &err)) ||
        tq_run_check_data(&run, spec ? spec : run.data_name, &test, &err) ||
        (!compare && engine_pass(e, &test, (int32_t)batch, &acc, &loss, &err)) ||
        (compare && tq_int_compare_run(e, run.model, &test, run.mean, run.std, (int32_t)batch,
                                       &c, &err))) {
        rc = tq_cli_fail(cmd, &err);
        goto done;
    }
    if (compare && c.images > 0) {
        acc = (double)c.correct_int / (double)c.images;
        loss = c.loss_int / (double)c.images;
    }
    tq_report_line(&rep, "%s on %s: %lld test images, integer engine (%s products), loss %.4f",
                   tq_model_name(run.model), test.name, (long long)test.n, tq_engine_backend(), loss);
    if (compare) report_compare(&rep, &c);
    if (json_path) {
        tq_json json;
        tq_json_begin(&json);
        tq_json_str(&json, "command", "eval");
        tq_json_str(&json, "engine", "int");
        tq_json_str(&json, "products", tq_engine_backend());
        tq_json_str(&json, "model", tq_model_name(run.model));
        tq_json_str(&json, "data", test.name);
        tq_json_int(&json, "images", test.n);
        tq_json_num(&json, "loss", loss);
        tq_json_num(&json, "accuracy", acc);
        if (compare) json_compare(&json, &c);
        if (tq_json_save(&json, json_path, &err)) rc = tq_cli_fail(cmd, &err);
        tq_json_free(&json);
    }
    if (!rc) printf("accuracy: %.4f\n", acc);
done:
    tq_engine_free(e);
    tq_dataset_free(&test);
    tq_run_free(&run);
    return rc;
}
