/* GPTQ over a whole model: layers in forward order, each one's H from its inputs on the
 * calibration batches (with the layers before it already quantized, or all in float), then
 * its weights replaced by GPTQ's dequantized codes. */
#include "ptq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

tq_gptq_config tq_gptq_config_default(void)
{
    return (tq_gptq_config){.opts = tq_gptq_defaults(), .float_inputs = false, .batches = 8,
                            .log = NULL};
}

/* The model's graph as GPTQ needs it: for each qlayer, the qlayers its input depends on. */
typedef struct gptq_plan {
    int nq;
    bool *upstream;  /* [nq][nq]: upstream[i * nq + j] when qlayer j feeds qlayer i's input */
    bool *pending;   /* [nq]: holds a weight quantizer and is not done yet */
    bool *ready;     /* [nq]: in this pass */
    int *layer_of;   /* [nq]: the layer index of each qlayer */
    int *src_of;     /* [nq]: the layer whose output it reads (TQ_MODEL_INPUT: the input) */
    int last;        /* the last layer this pass's forwards must run: the latest source */
    tq_gptq_hessian *h; /* [nq] */
} gptq_plan;

static void plan_free(gptq_plan *p)
{
    for (int i = 0; p->h && i < p->nq; i++) tq_gptq_hessian_free(&p->h[i]);
    free(p->upstream);
    free(p->pending);
    free(p->ready);
    free(p->layer_of);
    free(p->src_of);
    free(p->h);
}

/* up[l * nq + j]: qlayer j lies on a path into layer l's output (j's own layer included). */
static tq_status plan_init(gptq_plan *p, tq_model *m, tq_error *err)
{
    int nl = tq_model_layer_count(m), nq = tq_model_qlayer_count(m);
    *p = (gptq_plan){.nq = nq};
    size_t q = (size_t)(nq ? nq : 1);
    bool *up = calloc((size_t)(nl ? nl : 1) * q, sizeof *up);
    p->upstream = calloc(q * q, sizeof *p->upstream);
    p->pending = calloc(q, sizeof *p->pending);
    p->ready = calloc(q, sizeof *p->ready);
    p->layer_of = calloc(q, sizeof *p->layer_of);
    p->src_of = calloc(q, sizeof *p->src_of);
    p->h = calloc(q, sizeof *p->h);
    if (!up || !p->upstream || !p->pending || !p->ready || !p->layer_of || !p->src_of || !p->h) {
        free(up);
        plan_free(p);
        return tq_fail(err, TQ_STATUS_NOMEM, "gptq: out of memory");
    }
    for (int l = 0; l < nl; l++) {
        tq_layer_info info;
        tq_model_layer(m, l, &info);
        int srcs[2] = {info.src, info.kind == TQ_LAYER_ADD ? info.src2 : TQ_MODEL_INPUT};
        for (int s = 0; s < 2; s++)
            if (srcs[s] >= 0)
                for (int j = 0; j < nq; j++) up[(size_t)l * q + j] |= up[(size_t)srcs[s] * q + j];
        if (info.qlayer >= 0) {
            p->layer_of[info.qlayer] = l;
            p->src_of[info.qlayer] = info.src;
            /* what feeds this qlayer's input is what reached its source, not itself */
            for (int j = 0; j < nq; j++) p->upstream[(size_t)info.qlayer * q + j] = up[(size_t)l * q + j];
            up[(size_t)l * q + info.qlayer] = true;
        }
    }
    free(up);
    for (int i = 0; i < nq; i++) p->pending[i] = tq_model_qlayer(m, i)->weight_q != NULL;
    return TQ_STATUS_OK;
}

/* The qlayers whose inputs are final: every qlayer upstream already done (or, with float
 * inputs, all of them at once). Returns how many. */
static int mark_ready(gptq_plan *p, bool float_inputs)
{
    int n = 0;
    p->last = TQ_MODEL_INPUT;
    for (int i = 0; i < p->nq; i++) {
        bool ok = p->pending[i];
        for (int j = 0; ok && !float_inputs && j < p->nq; j++)
            ok = !(p->upstream[(size_t)i * p->nq + j] && p->pending[j]);
        p->ready[i] = ok;
        n += ok;
        if (ok && p->src_of[i] > p->last) p->last = p->src_of[i];
    }
    return n;
}

typedef struct pass_ctx {
    tq_model *m;
    gptq_plan *plan;
    tq_tape *tape;
} pass_ctx;

/* One calibration batch forward, as far as the ready layers' inputs; each goes into its H. */
static tq_status add_batch(tq_tensor *x, void *ctx, tq_error *err)
{
    pass_ctx *c = ctx;
    tq_tape_reset(c->tape);
    tq_tape_set_recording(c->tape, false);
    tq_tape_set_training(c->tape, false);
    if (!tq_model_forward_to(c->m, c->tape, x, c->plan->last))
        return tq_fail(err, tq_tape_error(c->tape)->status, "gptq: %s", tq_tape_error(c->tape)->msg);
    for (int i = 0; i < c->plan->nq; i++) {
        if (!c->plan->ready[i]) continue;
        tq_qlayer *l = tq_model_qlayer(c->m, i);
        tq_tensor *in = tq_model_qlayer_input(c->m, i);
        const float *mul = l->input_mul ? l->input_mul->data : NULL;
        tq_error e = {0};
        tq_status st;
        if (l->is_conv) {
            tq_layer_info info;
            tq_model_layer(c->m, c->plan->layer_of[i], &info);
            st = tq_gptq_hessian_add_conv(&c->plan->h[i], in, l->weight->shape[2],
                                          l->weight->shape[3], info.stride, info.pad, mul, &e);
        } else {
            st = tq_gptq_hessian_add_rows(&c->plan->h[i], in, mul, &e);
        }
        if (st) return tq_fail(err, st, "%s input: %s", l->name, e.msg);
    }
    return TQ_STATUS_OK;
}

static double seconds_since(clockid_t clock, const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

/* GPTQ on one ready layer from its H, which is then freed. */
static tq_status quantize_layer(tq_model *m, gptq_plan *p, int i, const tq_gptq_config *cfg,
                                tq_error *err)
{
    tq_qlayer *l = tq_model_qlayer(m, i);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tq_gptq_result res;
    tq_error e = {0};
    if (p->h[i].n == 0)
        return tq_fail(err, TQ_STATUS_ARG, "gptq: %s: no calibration inputs seen", l->name);
    if (tq_gptq_quantize(l->weight_q, l->weight, p->h[i].h, &cfg->opts, &res, &e))
        return tq_fail(err, e.status, "%s weights: %s", l->name, e.msg);
    if (cfg->log) {
        double ratio = res.err_rtn > 0 ? res.err_gptq / res.err_rtn : 1.0;
        fprintf(cfg->log,
                "gptq %-20s K %5lld, %7lld inputs: output error %.4g, round-to-nearest %.4g "
                "(x%.3f), %lld dead, %.3f s\n",
                l->name, (long long)p->h[i].k, (long long)p->h[i].n, res.err_gptq, res.err_rtn,
                ratio, (long long)res.dead, seconds_since(CLOCK_MONOTONIC, &t0));
    }
    tq_gptq_hessian_free(&p->h[i]);
    p->pending[i] = false;
    return TQ_STATUS_OK;
}

/* Every quantizer OFF for the passes (nothing observed, float activations; a layer GPTQ
 * has done computes the same in float, its weights being on the grid), saving the states. */
static void quantizers_off(tq_model *m, tq_qstate *saved)
{
    for (int i = 0; i < tq_model_qlayer_count(m); i++) {
        tq_qlayer *l = tq_model_qlayer(m, i);
        saved[2 * i] = l->weight_q ? tq_quantizer_state(l->weight_q) : TQ_QSTATE_OFF;
        saved[2 * i + 1] = l->input_q ? tq_quantizer_state(l->input_q) : TQ_QSTATE_OFF;
        if (l->weight_q) tq_quantizer_set_state(l->weight_q, TQ_QSTATE_OFF);
        if (l->input_q) tq_quantizer_set_state(l->input_q, TQ_QSTATE_OFF);
    }
}

static void quantizers_restore(tq_model *m, const tq_qstate *saved)
{
    for (int i = 0; i < tq_model_qlayer_count(m); i++) {
        tq_qlayer *l = tq_model_qlayer(m, i);
        if (l->weight_q) tq_quantizer_set_state(l->weight_q, saved[2 * i]);
        if (l->input_q) tq_quantizer_set_state(l->input_q, saved[2 * i + 1]);
    }
}

tq_status tq_gptq_model(tq_model *m, const tq_gptq_config *cfg, const tq_dataset *train,
                        const float *mean, const float *std, int batches, int32_t batch,
                        uint64_t seed, tq_error *err)
{
    gptq_plan p;
    if (plan_init(&p, m, err)) return err->status;
    int nq = p.nq;
    tq_qstate *saved = malloc(2 * (size_t)(nq ? nq : 1) * sizeof *saved);
    pass_ctx c = {m, &p, tq_tape_new()};
    tq_status st = TQ_STATUS_OK;
    if (!saved || !c.tape) st = tq_fail(err, TQ_STATUS_NOMEM, "gptq: out of memory");
    bool off = st == TQ_STATUS_OK;
    if (off) quantizers_off(m, saved);
    int n_batches = cfg->batches > 0 && cfg->batches < batches ? cfg->batches : batches;
    struct timespec t0, cpu0; /* CPU time too: on a shared machine wall time says little */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
    int passes = 0, layers = 0;
    while (st == TQ_STATUS_OK && mark_ready(&p, cfg->float_inputs) > 0) {
        passes++;
        for (int i = 0; st == TQ_STATUS_OK && i < nq; i++)
            if (p.ready[i]) {
                tq_tensor *w = tq_model_qlayer(m, i)->weight;
                st = tq_gptq_hessian_init(&p.h[i], w->numel / w->shape[0], err);
            }
        if (st == TQ_STATUS_OK)
            st = tq_for_calib_batches(train, mean, std, n_batches, batch, seed, add_batch, &c, err);
        for (int i = 0; st == TQ_STATUS_OK && i < nq; i++)
            if (p.ready[i] && (st = quantize_layer(m, &p, i, cfg, err)) == TQ_STATUS_OK) layers++;
    }
    if (st == TQ_STATUS_OK && cfg->log)
        fprintf(cfg->log,
                "gptq: %d layers in %d passes over %d calibration batches, %.2f s (%.2f s of "
                "CPU time)\n",
                layers, passes, n_batches, seconds_since(CLOCK_MONOTONIC, &t0),
                seconds_since(CLOCK_PROCESS_CPUTIME_ID, &cpu0));
    if (off) quantizers_restore(m, saved);
    free(saved);
    tq_tape_free(c.tape);
    plan_free(&p);
    return st;
}
