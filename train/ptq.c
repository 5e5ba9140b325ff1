/* Post-training quantization: attach a recipe's quantizers, calibrate activations on
 * training batches, and show per layer what was chosen. */
#include "ptq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const calib_names[] = {
    [TQ_CALIB_MAX] = "max", [TQ_CALIB_PERCENTILE] = "percentile",
    [TQ_CALIB_MSE] = "mse", [TQ_CALIB_ENTROPY] = "entropy"};

bool tq_calib_parse(const char *s, tq_calib_kind *out)
{
    for (int k = 0; k < (int)(sizeof calib_names / sizeof *calib_names); k++)
        if (strcmp(s, calib_names[k]) == 0) {
            *out = (tq_calib_kind)k;
            return true;
        }
    return false;
}

const char *tq_calib_name(tq_calib_kind k)
{
    /* a name for every value, so that a message never prints past the table */
    return (unsigned)k < sizeof calib_names / sizeof *calib_names ? calib_names[k] : "unknown";
}

void tq_detach_quantizers(tq_model *m)
{
    for (int i = 0; i < tq_model_qlayer_count(m); i++)
        tq_qlayer_set_quantizers(tq_model_qlayer(m, i), NULL, NULL);
}

static tq_quantizer *make_quantizer(const tq_qspec *spec, tq_qstate state, const char *layer,
                                    const char *what, tq_error *err)
{
    tq_error e = {0};
    tq_quantizer *q = tq_quantizer_new(spec, &e);
    if (!q) {
        tq_fail(err, e.status, "%s %s: %s", layer, what, e.msg);
        return NULL;
    }
    tq_quantizer_set_state(q, state);
    return q;
}

tq_status tq_attach_recipe(tq_model *m, const tq_recipe *r, int calib, tq_error *err)
{
    tq_qspec int8_w, int8_a;
    tq_error e = {0};
    TQ_ASSERT(tq_qspec_parse("int8:channel=0", &int8_w, &e) == TQ_STATUS_OK);
    TQ_ASSERT(tq_qspec_parse("int8", &int8_a, &e) == TQ_STATUS_OK);
    int n = tq_model_qlayer_count(m);
    for (int k = 0; k < r->n_overrides; k++) {
        bool found = false;
        for (int i = 0; i < n && !found; i++)
            found = strcmp(tq_model_qlayer(m, i)->name, r->overrides[k].layer) == 0;
        if (!found)
            return tq_fail(err, TQ_STATUS_ARG, "recipe %s: no Linear or Conv2d layer named %s",
                           r->name, r->overrides[k].layer);
    }
    for (int i = 0; i < n; i++) {
        tq_qlayer *l = tq_model_qlayer(m, i);
        bool edge = i == 0 || i == n - 1;
        tq_qlayer_set_quantizers(l, NULL, NULL);
        const tq_layer_override *ov = NULL;
        for (int k = 0; k < r->n_overrides; k++)
            if (strcmp(r->overrides[k].layer, l->name) == 0) ov = &r->overrides[k];
        if (!ov && edge && r->keep == TQ_KEEP_FLOAT) continue;
        bool int8 = !ov && edge && r->keep == TQ_KEEP_INT8;
        tq_qspec ws = int8 ? int8_w : r->weights, as = int8 ? int8_a : r->acts;
        bool has_w = r->has_weights, has_a = r->has_acts;
        if (ov) {
            ws = ov->weights;
            as = ov->acts;
            has_w = ov->has_weights;
            has_a = ov->has_acts;
        }
        if (calib >= 0) as.calib = (tq_calib_kind)calib;
        tq_quantizer *wq = NULL, *iq = NULL;
        if (int8 || has_w) {
            wq = make_quantizer(&ws, TQ_QSTATE_QUANTIZING, l->name, "weights", err);
            if (!wq) return err->status;
            if (tq_quantizer_calibrate_weight(wq, l->weight, &e)) {
                tq_quantizer_free(wq);
                return tq_fail(err, e.status, "%s weights: %s", l->name, e.msg);
            }
        }
        if (int8 || has_a) {
            iq = make_quantizer(&as, TQ_QSTATE_CALIBRATING, l->name, "input", err);
            if (!iq) {
                tq_quantizer_free(wq);
                return err->status;
            }
            if (r->keep_histograms) tq_quantizer_keep_histogram(iq);
        }
        tq_qlayer_set_quantizers(l, wq, iq);
    }
    return TQ_STATUS_OK;
}

typedef struct forward_ctx {
    tq_model *m;
    tq_tape *tape;
} forward_ctx;

/* One forward without recording: the calibrating quantizers observe their inputs. */
static tq_status forward_batch(tq_tensor *x, void *ctx, tq_error *err)
{
    forward_ctx *c = ctx;
    tq_tape_reset(c->tape);
    tq_tape_set_recording(c->tape, false);
    tq_tape_set_training(c->tape, false);
    if (!tq_model_forward(c->m, c->tape, x, NULL))
        return tq_fail(err, tq_tape_error(c->tape)->status, "calibrate: %s",
                       tq_tape_error(c->tape)->msg);
    return TQ_STATUS_OK;
}

tq_status tq_calibrate(tq_model *m, const tq_dataset *train, const float *mean,
                       const float *std, int batches, int32_t batch, uint64_t seed,
                       tq_error *err)
{
    forward_ctx c = {m, tq_tape_new()};
    if (!c.tape) return tq_fail(err, TQ_STATUS_NOMEM, "calibrate: out of memory");
    tq_status st = tq_for_calib_batches(train, mean, std, batches, batch, seed, forward_batch, &c, err);
    for (int i = 0; st == TQ_STATUS_OK && i < tq_model_qlayer_count(m); i++) {
        tq_qlayer *l = tq_model_qlayer(m, i);
        if (!l->input_q || tq_quantizer_state(l->input_q) != TQ_QSTATE_CALIBRATING) continue;
        tq_error e = {0};
        if (tq_quantizer_finish_calibration(l->input_q, &e))
            st = tq_fail(err, e.status, "%s input: %s", l->name, e.msg);
        else
            tq_quantizer_set_state(l->input_q, TQ_QSTATE_QUANTIZING);
    }
    tq_tape_free(c.tape);
    return st;
}

/* Weight SQNR of one layer's quantizer, in dB. */
static double weight_sqnr(const tq_qlayer *l)
{
    float *wq = malloc((size_t)l->weight->numel * sizeof(float));
    tq_error e = {0};
    double s = NAN;
    if (wq && tq_quantizer_apply(l->weight_q, l->weight, wq, &e) == TQ_STATUS_OK)
        s = tq_sqnr_db(l->weight->data, wq, l->weight->numel);
    free(wq);
    return s;
}

void tq_print_quantizers(tq_model *m, FILE *out)
{
    bool any = false;
    for (int i = 0; i < tq_model_qlayer_count(m); i++) {
        tq_qlayer *l = tq_model_qlayer(m, i);
        if (!l->weight_q && !l->input_q) continue;
        if (!any) fprintf(out, "quantizers:\n");
        any = true;
        char buf[256];
        fprintf(out, "  %-22s weights %s", l->name,
                l->weight_q ? tq_quantizer_describe(l->weight_q, buf, sizeof buf) : "float");
        /* inf: the weights are their own quantized values (GPTQ leaves them so, and QAT
         * can) */
        double sqnr = l->weight_q ? weight_sqnr(l) : 0;
        if (l->weight_q) fprintf(out, ", SQNR %.1f dB%s", sqnr, isinf(sqnr) ? " (weights on the grid)" : "");
        fprintf(out, "\n  %-22s input   %s\n", "",
                l->input_q ? tq_quantizer_describe(l->input_q, buf, sizeof buf) : "float");
    }
    if (!any) fprintf(out, "quantizers: none (float model)\n");
}
