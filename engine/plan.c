/* Planning the integer program from the layer graph: which tensors are codes (one quantizer
 * consumes them, through ops that commute with rounding) and which fine int32 (float in fake
 * quant), at which unit, and the steps in forward order. */
#include "engine_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* What the readers of one tensor want from it. */
typedef struct want {
    bool used;
    bool fine;   /* some reader needs the value itself (add, pools, batch norm) */
    int q;       /* else the qlayer whose input codes everyone wants (-1: none yet) */
    double unit; /* the finest unit a reader asks for (0: none) */
} want;

typedef struct planner {
    tq_engine *e;
    tq_model *m;
    int n;               /* layers; index n stands for the model input */
    tq_layer_info *L;
    want *w;
    int *val_of;         /* value holding each layer's output (and the input's, at n) */
    int *bn_after;       /* layer (or input, at n) -> the batch norm folded into its
                            requantization, -1 for none */
    int cap;             /* of e->vals and e->steps */
} planner;

static int idx(const planner *p, int src) { return src == TQ_MODEL_INPUT ? p->n : src; }

static void finer(want *w, double unit)
{
    if (unit > 0 && (w->unit == 0 || unit < w->unit)) w->unit = unit;
}

/* Two qlayers whose inputs get the same codes: the same scale and format, no multiplier. */
static bool same_codes(tq_model *m, int q1, int q2)
{
    if (q1 == q2) return true;
    tq_qlayer *a = tq_model_qlayer(m, q1), *b = tq_model_qlayer(m, q2);
    tq_format fa = tq_quantizer_format(a->input_q), fb = tq_quantizer_format(b->input_q);
    return !a->input_mul && !b->input_mul && tq_engine_input_scale(m, q1) == tq_engine_input_scale(m, q2) &&
           fa.kind == fb.kind && fa.bits == fb.bits && fa.narrow == fb.narrow;
}

static void want_codes(planner *p, want *w, int q)
{
    w->used = true;
    finer(w, tq_engine_input_scale(p->m, q) / (double)(1 << TQ_ENGINE_FINE_BITS));
    if (tq_model_qlayer(p->m, q)->input_mul) w->fine = true; /* per-channel: from fine */
    if (w->fine) return;
    if (w->q < 0) w->q = q;
    else if (!same_codes(p->m, w->q, q)) w->fine = true;
}

static void want_fine(want *w, double unit)
{
    w->used = true;
    w->fine = true;
    finer(w, unit);
}

/* A reader that passes values through unchanged or commutes with rounding (ReLU, max pool,
 * flatten, dropout, a folded batch norm) wants of its input what its own readers want. */
static void want_as(planner *p, want *dst, const want *src)
{
    if (!src->used) return;
    dst->used = true;
    finer(dst, src->unit);
    if (src->fine) dst->fine = true;
    else if (src->q >= 0 && !dst->fine) {
        if (dst->q < 0) dst->q = src->q;
        else if (!same_codes(p->m, dst->q, src->q)) dst->fine = true;
    }
}

/* Walks the readers backward, so every reader's wants are known before its inputs'. */
static void gather_wants(planner *p)
{
    p->w[p->n - 1].used = true; /* the logits */
    for (int j = p->n - 1; j >= 0; j--) {
        const tq_layer_info *l = &p->L[j];
        if (!p->w[j].used) continue;
        want *src = &p->w[idx(p, l->src)];
        switch (l->kind) {
        case TQ_LAYER_LINEAR:
        case TQ_LAYER_CONV2D: want_codes(p, src, l->qlayer); break;
        case TQ_LAYER_RELU:
        case TQ_LAYER_MAXPOOL2D:
        case TQ_LAYER_FLATTEN:
        case TQ_LAYER_DROPOUT: want_as(p, src, &p->w[j]); break;
        case TQ_LAYER_BATCHNORM:
            if (l->folded || p->bn_after[idx(p, l->src)] == j) want_as(p, src, &p->w[j]);
            else want_fine(src, p->w[j].unit);
            break;
        case TQ_LAYER_AVGPOOL2D:
        case TQ_LAYER_GLOBAL_AVGPOOL: want_fine(src, p->w[j].unit); break;
        case TQ_LAYER_ADD:
            want_fine(src, p->w[j].unit);
            want_fine(&p->w[idx(p, l->src2)], p->w[j].unit);
            break;
        }
    }
}

/* ---- values and steps */

static void dims_of(const tq_layer_info *l, int32_t *c, int32_t *h, int32_t *w)
{
    *c = l->shape[0];
    *h = l->ndim == 3 ? l->shape[1] : 1;
    *w = l->ndim == 3 ? l->shape[2] : 1;
}

static int new_val(planner *p, tq_val_domain d, int32_t c, int32_t h, int32_t w)
{
    tq_engine *e = p->e;
    TQ_ASSERT(e->n_vals < p->cap);
    tq_val *v = &e->vals[e->n_vals];
    memset(v, 0, sizeof *v);
    v->domain = d;
    v->c = c;
    v->h = h;
    v->w = w;
    v->numel = (int64_t)c * h * w;
    v->stride = d == TQ_VAL_CODES ? (v->numel + 63) / 64 * 64 : (v->numel + 15) / 16 * 16;
    v->q = -1;
    v->first = v->last = -1;
    if (d == TQ_VAL_FINE) snprintf(v->fmt, sizeof v->fmt, "int32");
    return e->n_vals++;
}

/* Codes as qlayer q's input quantizer makes them. */
static int codes_val(planner *p, int q, int32_t c, int32_t h, int32_t w)
{
    int id = new_val(p, TQ_VAL_CODES, c, h, w);
    tq_val *v = &p->e->vals[id];
    tq_format f = tq_quantizer_format(tq_model_qlayer(p->m, q)->input_q);
    v->q = q;
    v->unit = tq_engine_input_scale(p->m, q);
    v->lo = (int32_t)tq_format_min(f);
    v->hi = (int32_t)tq_format_max(f);
    v->zp = f.kind == TQ_FORMAT_INT ? 128 : 0;
    tq_format_name(f, v->fmt, sizeof v->fmt);
    return id;
}

static int wanted_val(planner *p, const want *w, int32_t c, int32_t h, int32_t wd)
{
    if (!w->fine && w->q >= 0) return codes_val(p, w->q, c, h, wd);
    int id = new_val(p, TQ_VAL_FINE, c, h, wd);
    p->e->vals[id].unit = w->unit > 0 ? w->unit : 1.0 / (1 << TQ_ENGINE_FINE_BITS);
    return id;
}

/* The same kind of value as `like` with other dimensions (ReLU and max pool outputs). */
static int like_val(planner *p, int like, int32_t c, int32_t h, int32_t w)
{
    tq_val v = p->e->vals[like];
    int id = new_val(p, v.domain, c, h, w);
    v.c = c;
    v.h = h;
    v.w = w;
    v.numel = p->e->vals[id].numel;
    v.stride = p->e->vals[id].stride;
    v.first = v.last = -1;
    p->e->vals[id] = v;
    return id;
}

static tq_step *add_step(planner *p, tq_step_kind kind, const char *name, int in, int in2, int out)
{
    tq_engine *e = p->e;
    TQ_ASSERT(e->n_steps < p->cap);
    int t = e->n_steps++;
    tq_step *s = &e->steps[t];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    snprintf(s->name, sizeof s->name, "%s", name);
    s->in = in;
    s->in2 = in2;
    s->out = out;
    s->qlayer = -1;
    if (in >= 0) e->vals[in].last = t;
    if (in2 >= 0) e->vals[in2].last = t;
    if (out >= 0) e->vals[out].first = t;
    return s;
}

/* An average pool's rescaling from its input's unit to its output's (none when equal). */
static tq_emit emit_from(double from_unit, const tq_val *out)
{
    double to = out->unit;
    if (from_unit == to && out->domain == TQ_VAL_FINE) return (tq_emit){.rescale = false};
    return (tq_emit){true, tq_affine_make(to > 0 ? from_unit / to : 0.0, 0.0)};
}

/* Qlayer q's input codes from value `from`: the value itself when it already holds them,
 * else a conversion from fine integers (one per consumer quantizer). */
static int input_codes(planner *p, int from, int q, const char *name)
{
    tq_engine *e = p->e;
    if (e->vals[from].domain == TQ_VAL_CODES) {
        TQ_ASSERT(same_codes(p->m, e->vals[from].q, q));
        return from;
    }
    for (int t = 0; t < e->n_steps; t++)
        if (e->steps[t].kind == TQ_STEP_TO_CODES && e->steps[t].in == from &&
            same_codes(p->m, e->vals[e->steps[t].out].q, q))
            return e->steps[t].out;
    const tq_val *f = &e->vals[from];
    int out = codes_val(p, q, f->c, f->h, f->w);
    char label[48];
    snprintf(label, sizeof label, "%s.in", name);
    tq_step *s = add_step(p, TQ_STEP_TO_CODES, label, from, -1, out);
    s->qlayer = q;
    return out;
}

static tq_status plan_layer(planner *p, int i, tq_error *err)
{
    tq_engine *e = p->e;
    const tq_layer_info *l = &p->L[i];
    int in = p->val_of[idx(p, l->src)];
    int32_t c, h, w;
    dims_of(l, &c, &h, &w);
    tq_step *s;
    switch (l->kind) {
    case TQ_LAYER_FLATTEN:
    case TQ_LAYER_DROPOUT: p->val_of[i] = in; return TQ_STATUS_OK; /* a Linear reads (H,W,C) */
    case TQ_LAYER_BATCHNORM:
        if (l->folded || p->bn_after[idx(p, l->src)] == i) {
            p->val_of[i] = in; /* folded: into the weights, or into the requantization */
            return TQ_STATUS_OK;
        }
        if (e->vals[in].c != c)
            return tq_fail(err, TQ_STATUS_ARG,
                           "engine: layer %s: batch norm over flattened features; the integer "
                           "engine runs batch norm per channel",
                           l->name);
        p->val_of[i] = wanted_val(p, &p->w[i], c, h, w);
        s = add_step(p, TQ_STEP_BN, l->name, in, -1, p->val_of[i]);
        s->layer = i;
        return TQ_STATUS_OK;
    case TQ_LAYER_RELU:
        p->val_of[i] = like_val(p, in, e->vals[in].c, e->vals[in].h, e->vals[in].w);
        add_step(p, TQ_STEP_RELU, l->name, in, -1, p->val_of[i]);
        return TQ_STATUS_OK;
    case TQ_LAYER_MAXPOOL2D:
        p->val_of[i] = like_val(p, in, c, h, w);
        s = add_step(p, TQ_STEP_MAXPOOL, l->name, in, -1, p->val_of[i]);
        s->kernel = l->kernel;
        s->stride = l->stride;
        return TQ_STATUS_OK;
    case TQ_LAYER_AVGPOOL2D:
    case TQ_LAYER_GLOBAL_AVGPOOL:
        p->val_of[i] = wanted_val(p, &p->w[i], c, h, w);
        s = add_step(p, l->kind == TQ_LAYER_AVGPOOL2D ? TQ_STEP_AVGPOOL : TQ_STEP_GAP, l->name,
                     in, -1, p->val_of[i]);
        s->kernel = l->kernel;
        s->stride = l->stride;
        s->emit = emit_from(e->vals[in].unit, &e->vals[p->val_of[i]]);
        return TQ_STATUS_OK;
    case TQ_LAYER_ADD: {
        int in2 = p->val_of[idx(p, l->src2)];
        const tq_val *a = &e->vals[in], *b = &e->vals[in2];
        TQ_ASSERT(a->domain == TQ_VAL_FINE && b->domain == TQ_VAL_FINE); /* wanted fine */
        if (a->c != b->c || a->h != b->h || a->w != b->w)
            return tq_fail(err, TQ_STATUS_ARG,
                           "engine: layer %s adds tensors laid out differently (one flattened)",
                           l->name);
        p->val_of[i] = wanted_val(p, &p->w[i], c, h, w);
        add_step(p, TQ_STEP_ADD, l->name, in, in2, p->val_of[i]);
        return TQ_STATUS_OK;
    }
    case TQ_LAYER_LINEAR:
    case TQ_LAYER_CONV2D: {
        int codes = input_codes(p, in, l->qlayer, l->name);
        int out = -1;
        if (i < p->n - 1) out = wanted_val(p, &p->w[i], c, h, w);
        s = add_step(p, TQ_STEP_QLAYER, l->name, codes, -1, out);
        s->qlayer = l->qlayer;
        s->is_conv = l->kind == TQ_LAYER_CONV2D;
        s->kernel = l->kernel;
        s->stride = l->stride;
        s->pad = l->pad;
        s->layer = i;
        s->merged_bn = p->bn_after[i] >= 0;
        s->bn_layer = p->bn_after[i];
        e->qlayer_input[l->qlayer] = codes;
        p->val_of[i] = out;
        return TQ_STATUS_OK;
    }
    }
    return tq_fail(err, TQ_STATUS_ARG, "engine: layer %s: unknown kind", l->name);
}

/* Batch norms that directly follow the only reader of a Linear/Conv2d output. */
static void find_merged_bn(planner *p)
{
    int *readers = calloc((size_t)p->n + 1, sizeof *readers);
    TQ_ASSERT(readers);
    for (int j = 0; j < p->n; j++) {
        readers[idx(p, p->L[j].src)]++;
        if (p->L[j].kind == TQ_LAYER_ADD) readers[idx(p, p->L[j].src2)]++;
    }
    for (int j = 0; j < p->n; j++) {
        const tq_layer_info *l = &p->L[j];
        if (l->kind != TQ_LAYER_BATCHNORM || l->folded || l->src < 0) continue;
        tq_layer_kind k = p->L[l->src].kind;
        if ((k == TQ_LAYER_LINEAR || k == TQ_LAYER_CONV2D) && readers[l->src] == 1)
            p->bn_after[l->src] = j;
    }
    free(readers);
}

/* Which steps read value v. */
static int readers_of(const tq_engine *e, int v)
{
    int n = 0;
    for (int t = 0; t < e->n_steps; t++) n += (e->steps[t].in == v) + (e->steps[t].in2 == v);
    return n;
}

/* A ReLU whose input only it reads, written by a step that clamps or saturates its output
 * anyway, becomes part of that step: max(code, 0) or max(v, 0) as it writes. Its output value
 * is dropped and its readers read the input instead. */
static void fold_relus(tq_engine *e)
{
    bool *gone = calloc((size_t)(e->n_steps > 0 ? e->n_steps : 1), sizeof *gone);
    TQ_ASSERT(gone);
    for (int t = 0; t < e->n_steps; t++) {
        const tq_step *s = &e->steps[t];
        const int from = s->kind == TQ_STEP_RELU ? e->vals[s->in].first : -1;
        const tq_step_kind k = from >= 0 ? e->steps[from].kind : TQ_STEP_RELU;
        if (!(k == TQ_STEP_QLAYER || k == TQ_STEP_ADD || k == TQ_STEP_BN ||
              k == TQ_STEP_AVGPOOL || k == TQ_STEP_GAP) || readers_of(e, s->in) != 1)
            continue;
        const int in = s->in, out = s->out;
        e->steps[from].relu = true;
        gone[t] = true;
        for (int u = t + 1; u < e->n_steps; u++) {
            if (e->steps[u].in == out) e->steps[u].in = in;
            if (e->steps[u].in2 == out) e->steps[u].in2 = in;
        }
        for (int q = 0; q < e->n_qlayers; q++)
            if (e->qlayer_input[q] == out) e->qlayer_input[q] = in;
        e->steps[t].in = e->steps[t].out = -1; /* no longer reads or writes anything */
    }
    int kept = 0;
    for (int t = 0; t < e->n_steps; t++)
        if (!gone[t]) e->steps[kept++] = e->steps[t];
    e->n_steps = kept;
    free(gone);
    for (int v = 0; v < e->n_vals; v++) e->vals[v].first = e->vals[v].last = -1;
    for (int t = 0; t < e->n_steps; t++) {
        const tq_step *s = &e->steps[t];
        if (s->in >= 0) e->vals[s->in].last = t;
        if (s->in2 >= 0) e->vals[s->in2].last = t;
        if (s->out >= 0) e->vals[s->out].first = t;
    }
}

static tq_status plan(planner *p, tq_error *err)
{
    tq_engine *e = p->e;
    for (int i = 0; i < p->n; i++) tq_model_layer(p->m, i, &p->L[i]);
    const tq_layer_info *last = &p->L[p->n - 1];
    if (last->kind != TQ_LAYER_LINEAR)
        return tq_fail(err, TQ_STATUS_ARG,
                       "engine: the model ends with layer %s (%s); the integer engine needs a "
                       "Linear last, whose output it dequantizes to the logits",
                       last->name, last->kind_name);
    for (int q = 0; q < e->n_qlayers; q++)
        if (tq_engine_check_qlayer(p->m, q, err)) return err->status;
    find_merged_bn(p);
    gather_wants(p);
    const want *win = &p->w[p->n];
    int input = wanted_val(p, win, e->c, e->h, e->w);
    add_step(p, TQ_STEP_INPUT, "input", -1, -1, input);
    p->val_of[p->n] = input;
    for (int i = 0; i < p->n; i++)
        if (p->w[i].used && plan_layer(p, i, err)) return err->status;
    fold_relus(e);
    return TQ_STATUS_OK;
}

tq_status tq_engine_plan(tq_engine *e, tq_model *m, tq_error *err)
{
    planner p = {.e = e, .m = m, .n = tq_model_layer_count(m)};
    p.cap = 2 * p.n + 2;
    p.L = calloc((size_t)p.n, sizeof *p.L);
    p.w = calloc((size_t)p.n + 1, sizeof *p.w);
    p.val_of = malloc(((size_t)p.n + 1) * sizeof *p.val_of);
    p.bn_after = malloc(((size_t)p.n + 1) * sizeof *p.bn_after);
    e->vals = calloc((size_t)p.cap, sizeof *e->vals);
    e->steps = calloc((size_t)p.cap, sizeof *e->steps);
    e->qlayer_input = malloc((size_t)(e->n_qlayers > 0 ? e->n_qlayers : 1) * sizeof(int));
    tq_status st;
    if (!p.L || !p.w || !p.val_of || !p.bn_after || !e->vals || !e->steps || !e->qlayer_input) {
        st = tq_fail(err, TQ_STATUS_NOMEM, "engine: out of memory planning");
    } else {
        for (int i = 0; i <= p.n; i++) {
            p.w[i].q = -1;
            p.val_of[i] = -1;
            p.bn_after[i] = -1;
        }
        for (int q = 0; q < e->n_qlayers; q++) e->qlayer_input[q] = -1;
        st = plan(&p, err);
    }
    free(p.L);
    free(p.w);
    free(p.val_of);
    free(p.bn_after);
    return st;
}
