/* Figure 6: per layer, what quantizing it costs (accuracy change from `sensitivity`), how
 * much noise it adds (weight and input SQNR) and how much it holds (parameters). */
#include "report_out.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Input SQNR from the calibration histogram, at the quantizer's own amax. */
static double input_sqnr(const tq_qlayer *l)
{
    tq_calib_hist h;
    if (!l->input_q || !tq_quantizer_calib_hist(l->input_q, &h) ||
        tq_quantizer_amax_count(l->input_q) != 1)
        return NAN;
    double signal = 0, clip, rnd, width = h.range / h.nbins;
    for (int j = 0; j < h.nbins; j++) signal += h.counts[j] * pow((j + 0.5) * width, 2);
    tq_calib_hist_error(&h, tq_quantizer_amax(l->input_q)[0], tq_quantizer_format(l->input_q),
                        &clip, &rnd);
    return clip + rnd > 0 ? 10 * log10(signal / (clip + rnd)) : NAN;
}

static double weight_sqnr(const tq_qlayer *l)
{
    if (!l->weight_q || !tq_quantizer_amax(l->weight_q)) return NAN;
    float *wq = malloc((size_t)l->weight->numel * sizeof *wq);
    double s = NAN;
    if (wq && !tq_quantizer_apply(l->weight_q, l->weight, wq, &(tq_error){0}))
        s = tq_sqnr_db(l->weight->data, wq, l->weight->numel);
    free(wq);
    return isfinite(s) ? s : NAN;
}

void tq_fig_layers(tq_report *r, tq_model *m, const tq_sens_row *rows, int n_rows)
{
    int n = tq_model_qlayer_count(m);
    if (n > TQ_PANEL_MAX_CATS) n = TQ_PANEL_MAX_CATS;
    const char *names[TQ_PANEL_MAX_CATS];
    double alone[TQ_PANEL_MAX_CATS], all_but[TQ_PANEL_MAX_CATS], wsqnr[TQ_PANEL_MAX_CATS],
        isqnr[TQ_PANEL_MAX_CATS], params[TQ_PANEL_MAX_CATS];
    for (int i = 0; i < n; i++) {
        const tq_qlayer *l = tq_model_qlayer(m, i);
        names[i] = l->name;
        alone[i] = all_but[i] = NAN;
        for (int k = 0; rows && k < n_rows; k++)
            if (rows[k].qlayer == i) {
                alone[i] = 100 * (rows[k].alone_acc - rows[k].float_acc);
                all_but[i] = 100 * (rows[k].all_but_acc - rows[k].float_acc);
                wsqnr[i] = rows[k].weight_sqnr;
                isqnr[i] = rows[k].input_sqnr;
            }
        if (!rows) {
            wsqnr[i] = weight_sqnr(l);
            isqnr[i] = input_sqnr(l);
        }
        params[i] = (double)l->weight->numel + (l->bias ? (double)l->bias->numel : 0);
    }
    tq_figure *f = tq_report_figure(r, "layers", "Per-layer sensitivity",
        rows ? "Accuracy change (points) with only this layer quantized, and with every layer "
               "but this one; the signal-to-quantization-noise ratio of its weights and inputs "
               "with it quantized alone (higher is cleaner); its parameter count. The layers "
               "that lose most alone are the ones to keep wider in a mixed recipe."
             : "The signal-to-quantization-noise ratio of each layer's weights and inputs (the "
               "inputs from the calibration histogram; higher is cleaner, each bit adds about "
               "6 dB) and its parameter count. `tinyqat sensitivity --report` adds the accuracy "
               "each layer costs.");
    if (!f) return;
    if (rows) {
        tq_panel *p = tq_figure_panel(r, f, "accuracy change", "", "points");
        tq_panel_categories(p, names, n);
        tq_panel_series(r, p, TQ_SERIES_BARS, "only this layer quantized", 3, NULL, alone, n);
        tq_panel_series(r, p, TQ_SERIES_BARS, "all but this layer", 0, NULL, all_but, n);
        if (p) p->y_from_zero = true;
    }
    tq_panel *p = tq_figure_panel(r, f, "SQNR", "", "dB");
    tq_panel_categories(p, names, n);
    tq_panel_series(r, p, TQ_SERIES_BARS, "weights", 0, NULL, wsqnr, n);
    bool any_input = false; /* none without calibration histograms (a loaded QAT model) */
    for (int i = 0; i < n; i++) any_input |= isfinite(isqnr[i]);
    if (any_input) tq_panel_series(r, p, TQ_SERIES_BARS, "inputs", 2, NULL, isqnr, n);
    if (p) p->y_from_zero = true;
    p = tq_figure_panel(r, f, "parameters", "", "count");
    tq_panel_categories(p, names, n);
    tq_panel_series(r, p, TQ_SERIES_BARS, "", 4, NULL, params, n);
    if (p) p->ylog = true;
}
