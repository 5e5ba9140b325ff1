/* Figure 7: the straight-through estimator. Forward, fake quant is a staircase; backward, the
 * STE passes the gradient where the value is within range and zeroes it outside (both taken
 * from the fake-quant op itself). During QAT, the fraction of values outside is the fraction
 * that gets no gradient through the quantizer. */
#include "report_out.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAIR_POINTS 601

/* Fraction of x's values outside [lo, amax], amax per tensor or per leading channel; x is
 * first multiplied by mul along axis 1 when given (the input multiplier SmoothQuant and AWQ
 * leave before the quantizer). */
static double outside(const float *x, int64_t n, const tq_quantizer *q, const tq_tensor *shape,
                      const tq_tensor *mul)
{
    int64_t na = tq_quantizer_amax_count(q), clipped = 0;
    const float *amax = tq_quantizer_amax(q);
    if (!amax || (na != 1 && n % na)) return NAN;
    bool is_uint = tq_quantizer_format(q).kind == TQ_FORMAT_UINT;
    int64_t per = n / na, channels = mul ? mul->numel : 1;
    int64_t inner = mul && shape->ndim > 1 ? n / ((int64_t)shape->shape[0] * channels) : 1;
    if (mul && (shape->ndim < 2 || shape->shape[1] != channels)) return NAN;
    for (int64_t i = 0; i < n; i++) {
        float a = amax[na == 1 ? 0 : i / per], v = mul ? x[i] * mul->data[(i / inner) % channels] : x[i];
        clipped += v > a || v < (is_uint ? 0 : -a);
    }
    return n ? (double)clipped / (double)n : NAN;
}

tq_status tq_clip_log_add(tq_clip_log *log, tq_model *m, const tq_dataset *d, const float *mean,
                          const float *std, double epoch, tq_error *err)
{
    if (log->n_epochs == TQ_CLIP_MAX) return TQ_STATUS_OK;
    int32_t n = d->n < 256 ? (int32_t)d->n : 256;
    tq_loader_config cfg = {.batch = n};
    memcpy(cfg.mean, mean, sizeof cfg.mean);
    memcpy(cfg.std, std, sizeof cfg.std);
    tq_loader *loader = tq_loader_new(d, &cfg, err);
    if (!loader) return err->status;
    tq_loader_start_epoch(loader, 0);
    float *x = malloc((size_t)n * d->c * d->h * d->w * sizeof *x);
    int32_t *labels = malloc((size_t)n * sizeof *labels);
    tq_tape *tape = tq_tape_new();
    tq_status st = TQ_STATUS_OK;
    /* The batch: the first layer's recorded input is this tensor itself, read below. */
    tq_tensor view = {.data = x};
    if (!x || !labels || !tape) st = tq_fail(err, TQ_STATUS_NOMEM, "report: out of memory");
    if (!st) {
        tq_loader_fill(loader, 0, x, labels);
        tq_shape_set(&view, 4, (int32_t[]){n, d->c, d->h, d->w});
        tq_tape_set_recording(tape, false);
        tq_tape_set_training(tape, false);
        if (!tq_model_forward(m, tape, &view, NULL))
            st = tq_fail(err, tq_tape_error(tape)->status, "report: %s", tq_tape_error(tape)->msg);
    }
    int e = log->n_epochs;
    for (int i = 0; !st && i < tq_model_qlayer_count(m) && i < TQ_CLIP_MAX; i++) {
        const tq_qlayer *l = tq_model_qlayer(m, i);
        const tq_tensor *in = tq_model_qlayer_input(m, i);
        snprintf(log->names[i], sizeof log->names[i], "%s", l->name);
        log->weights[e][i] = l->weight_q ? outside(l->weight->data, l->weight->numel, l->weight_q,
                                                   l->weight, NULL) : NAN;
        log->inputs[e][i] = l->input_q && in ? outside(in->data, in->numel, l->input_q, in,
                                                       l->input_mul) : NAN;
        log->n_layers = i + 1;
    }
    if (!st) log->epoch[log->n_epochs++] = epoch;
    free(x);
    free(labels);
    tq_tape_free(tape);
    tq_loader_free(loader);
    return st;
}

/* The quantizer the staircase shows: the first per-tensor input quantizer, else weights. */
static tq_quantizer *pick_quantizer(tq_model *m, const char **layer, bool *is_input)
{
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < tq_model_qlayer_count(m); i++) {
            tq_qlayer *l = tq_model_qlayer(m, i);
            tq_quantizer *q = pass ? l->weight_q : l->input_q;
            if (q && tq_quantizer_amax(q) && tq_quantizer_amax_count(q) == 1 &&
                tq_quantizer_spec(q)->scale == TQ_SCALE_FLOAT) {
                *layer = l->name;
                *is_input = pass == 0;
                return q;
            }
        }
    return NULL;
}

static void staircase(tq_report *r, tq_figure *f, tq_model *m)
{
    const char *layer;
    bool is_input;
    tq_quantizer *q = pick_quantizer(m, &layer, &is_input);
    if (!q) return;
    float amax = tq_quantizer_amax(q)[0];
    bool is_uint = tq_quantizer_format(q).kind == TQ_FORMAT_UINT;
    tq_tensor *x = tq_tensor_new(1, (int32_t[]){STAIR_POINTS}, true);
    tq_tape *t = tq_tape_new();
    if (!x || !t) goto done;
    double lo = is_uint ? -0.5 * amax : -1.5 * amax, hi = 1.5 * amax;
    for (int i = 0; i < STAIR_POINTS; i++) x->data[i] = (float)(lo + (hi - lo) * i / (STAIR_POINTS - 1));
    memset(x->grad, 0, STAIR_POINTS * sizeof(float));
    tq_qstate state = tq_quantizer_state(q);
    tq_quantizer_set_state(q, TQ_QSTATE_QUANTIZING);
    tq_tensor *y = tq_quantize(t, x, q);
    bool ok = y && tq_backward(t, tq_sum(t, y)) == TQ_STATUS_OK;
    tq_quantizer_set_state(q, state);
    if (!ok) goto done;
    double xs[STAIR_POINTS], ys[STAIR_POINTS], gs[STAIR_POINTS];
    for (int i = 0; i < STAIR_POINTS; i++) xs[i] = x->data[i], ys[i] = y->data[i], gs[i] = x->grad[i];
    char fname[16], title[96];
    tq_format_name(tq_quantizer_format(q), fname, sizeof fname);
    snprintf(title, sizeof title, "forward: %s %s, %s", layer, is_input ? "input" : "weights", fname);
    tq_panel *p = tq_figure_panel(r, f, title, "x", "fake_quant(x)");
    tq_panel_series(r, p, TQ_SERIES_LINE, "identity", -1, xs, xs, STAIR_POINTS);
    tq_panel_series(r, p, TQ_SERIES_LINE, "fake quant", 0, xs, ys, STAIR_POINTS);
    double pm[2] = {-amax, amax};
    tq_series *s = tq_panel_series(r, p, TQ_SERIES_VLINE, "±amax", 3, pm, pm, is_uint ? 1 : 2);
    if (s && is_uint) s->x[0] = s->y[0] = amax;
    if (s) s->dashed = true;
    p = tq_figure_panel(r, f, "backward: the STE's gradient mask", "x", "d fake_quant / dx");
    tq_panel_series(r, p, TQ_SERIES_LINE, "gradient passed", 2, xs, gs, STAIR_POINTS);
    if (p) p->y_from_zero = true;
done:
    tq_tape_free(t);
    tq_tensor_free(x);
}

static void clip_panel(tq_report *r, tq_figure *f, const tq_clip_log *log, bool inputs)
{
    tq_panel *p = tq_figure_panel(r, f, inputs ? "inputs outside the range (one batch)"
                                               : "latent weights outside the range",
                                  "QAT epoch", "fraction clipped");
    if (!p) return;
    p->y_from_zero = true;
    for (int i = 0; i < log->n_layers; i++) {
        double v[TQ_CLIP_MAX];
        for (int e = 0; e < log->n_epochs; e++) v[e] = inputs ? log->inputs[e][i] : log->weights[e][i];
        tq_panel_series(r, p, TQ_SERIES_LINE, inputs ? log->names[i] : "", i, log->epoch, v,
                        log->n_epochs);
    }
}

void tq_fig_ste(tq_report *r, tq_model *m, const tq_clip_log *log)
{
    tq_figure *f = tq_report_figure(r, "ste", "The straight-through estimator",
        "Forward, fake quant maps x onto a staircase that is flat beyond +-amax. Its true "
        "derivative is zero almost everywhere, so QAT's backward pass uses the STE instead: the "
        "gradient passes unchanged where x is within range and is zeroed outside (the mask is "
        "the fake-quant op's own backward on these points). Below, during QAT, the fraction of "
        "each layer's values outside the range: values that get no gradient through the "
        "quantizer.");
    if (!f) return;
    f->cols = 2;
    staircase(r, f, m);
    if (log && log->n_epochs) {
        clip_panel(r, f, log, true);
        clip_panel(r, f, log, false);
    }
}
