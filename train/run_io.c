/* Saving and loading a run: model (name, input shape, parameters, batch-norm statistics,
 * quantizer specs and amax), optimizer state, normalisation, epoch, schedule and, in QAT, the
 * epoch best on validation so far. */
#include "checkpoint.h"
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { RUN_EPOCH, RUN_EPOCHS, RUN_BATCH, RUN_SEED, RUN_OPTIM_STEPS, RUN_OPTIM_KIND,
       RUN_NESTEROV, RUN_SCHED_KIND, RUN_WARMUP, RUN_STEP_SIZE, RUN_TOTAL_STEPS,
       RUN_BATCH_IN_EPOCH, RUN_RNG0, RUN_RNG1, RUN_I64_COUNT };
enum { RUN_MOMENTUM, RUN_WD, RUN_BETA1, RUN_BETA2, RUN_EPS, RUN_LR, RUN_MIN_LR, RUN_GAMMA,
       RUN_CLIP, RUN_VAL, RUN_F32_COUNT };

static void put_quantizer(tq_ckpt_writer *w, const char *layer, const char *slot,
                          const tq_quantizer *q)
{
    char name[TQ_CKPT_MAX_NAME], spec[256];
    tq_qspec_format(tq_quantizer_spec(q), spec, sizeof spec);
    snprintf(name, sizeof name, "q.%s.%s.spec", layer, slot);
    tq_ckpt_put_str(w, name, spec);
    snprintf(name, sizeof name, "q.%s.%s.amax", layer, slot);
    tq_ckpt_put(w, name, TQ_CKPT_F32, tq_quantizer_amax(q), tq_quantizer_amax_count(q));
    int64_t meta[2] = {tq_quantizer_state(q), tq_quantizer_unsigned_chosen(q)};
    snprintf(name, sizeof name, "q.%s.%s.meta", layer, slot);
    tq_ckpt_put(w, name, TQ_CKPT_I64, meta, 2);
}

/* QAT's best epoch so far: its weights, and its number and validation accuracy, the latter
 * as the bits of the double so that a resumed run compares exactly as an uninterrupted one. */
/* With learned scales the best epoch's amax too (fixed ones are the model's own). */
static void put_best(tq_ckpt_writer *w, const tq_best_epoch *b, tq_model *m)
{
    int64_t meta[2] = {b->epoch, 0};
    memcpy(&meta[1], &b->val_acc, sizeof b->val_acc);
    tq_ckpt_put(w, "best.params", TQ_CKPT_F32, b->weights.params, b->weights.n_params);
    tq_ckpt_put(w, "best.state", TQ_CKPT_F32, b->weights.state, b->weights.n_state);
    tq_ckpt_put(w, "best.meta", TQ_CKPT_I64, meta, 2);
    if (tq_model_learned_amax_count(m))
        tq_ckpt_put(w, "best.amax", TQ_CKPT_F32, b->weights.amax, b->weights.n_amax);
}

/* A model whose parameters went non-finite is never saved: the last good checkpoint stays. */
static tq_status check_finite(tq_model *m, const char *path, tq_error *err)
{
    for (int i = 0; i < tq_model_tensor_count(m); i++) {
        const tq_tensor *t = tq_model_tensor(m, i);
        for (int64_t j = 0; j < t->numel; j++)
            if (!isfinite(t->data[j]))
                return tq_fail(err, TQ_STATUS_NUMERIC,
                               "%s not written: parameter %s holds %f (try a lower --lr or --clip)",
                               path, t->name, (double)t->data[j]);
    }
    return TQ_STATUS_OK;
}

tq_status tq_run_save(const tq_run *run, const char *path, tq_error *err)
{
    if (check_finite(run->model, path, err)) return err->status;
    tq_ckpt_writer *w = tq_ckpt_begin(path, err);
    if (!w) return err->status;
    tq_model *m = run->model;
    int32_t c, h, wd, classes;
    tq_model_input(m, &c, &h, &wd, &classes);
    int64_t input[4] = {c, h, wd, classes};
    tq_ckpt_put_str(w, "model.name", tq_model_name(m));
    tq_ckpt_put(w, "model.input", TQ_CKPT_I64, input, 4);
    tq_ckpt_put(w, "model.params", TQ_CKPT_F32, tq_model_params(m), tq_model_param_count(m));
    tq_ckpt_put(w, "model.state", TQ_CKPT_F32, tq_model_state(m), tq_model_state_count(m));
    tq_ckpt_put_str(w, "data.name", run->data_name);
    float norm[8];
    memcpy(norm, run->mean, sizeof run->mean);
    memcpy(norm + 4, run->std, sizeof run->std);
    tq_ckpt_put(w, "data.norm", TQ_CKPT_F32, norm, 8);

    const tq_optim_config *o = &run->optim_cfg;
    const tq_schedule *s = &run->schedule;
    int64_t i64[RUN_I64_COUNT] = {
        [RUN_EPOCH] = run->epoch, [RUN_EPOCHS] = run->epochs, [RUN_BATCH] = run->batch,
        [RUN_SEED] = (int64_t)run->seed,
        [RUN_OPTIM_STEPS] = run->optim ? tq_optim_steps(run->optim) : 0,
        [RUN_OPTIM_KIND] = o->kind, [RUN_NESTEROV] = o->nesterov, [RUN_SCHED_KIND] = s->kind,
        [RUN_WARMUP] = s->warmup_steps, [RUN_STEP_SIZE] = s->step_size,
        [RUN_TOTAL_STEPS] = s->total_steps, [RUN_BATCH_IN_EPOCH] = run->batch_in_epoch,
        [RUN_RNG0] = (int64_t)run->rng.s[0], [RUN_RNG1] = (int64_t)run->rng.s[1]};
    float f32[RUN_F32_COUNT] = {
        [RUN_MOMENTUM] = o->momentum, [RUN_WD] = o->weight_decay, [RUN_BETA1] = o->beta1,
        [RUN_BETA2] = o->beta2, [RUN_EPS] = o->eps, [RUN_LR] = s->lr, [RUN_MIN_LR] = s->min_lr,
        [RUN_GAMMA] = s->gamma, [RUN_CLIP] = run->clip_norm, [RUN_VAL] = run->val_fraction};
    tq_ckpt_put(w, "run.i64", TQ_CKPT_I64, i64, RUN_I64_COUNT);
    tq_ckpt_put(w, "run.f32", TQ_CKPT_F32, f32, RUN_F32_COUNT);
    int64_t split_seed = (int64_t)run->split_seed;
    if (run->val_fraction > 0) tq_ckpt_put(w, "data.split_seed", TQ_CKPT_I64, &split_seed, 1);
    if (run->optim)
        tq_ckpt_put(w, "optim.state", TQ_CKPT_F32, tq_optim_state(run->optim),
                    tq_optim_state_count(run->optim));
    if (run->best) put_best(w, run->best, m);
    if (run->scale_optim) { /* learned scales: steps and amax count, then the state */
        int64_t meta[2] = {tq_optim_steps(run->scale_optim),
                           tq_optim_param_count(run->scale_optim)};
        tq_ckpt_put(w, "optim.scales", TQ_CKPT_I64, meta, 2);
        tq_ckpt_put(w, "optim.scales.state", TQ_CKPT_F32, tq_optim_state(run->scale_optim),
                    tq_optim_state_count(run->scale_optim));
    }
    char folded[4096];
    if (tq_model_folded_names(m, folded, sizeof folded)[0]) tq_ckpt_put_str(w, "model.folded", folded);
    for (int i = 0; i < tq_model_qlayer_count(m); i++) {
        tq_qlayer *l = tq_model_qlayer(m, i);
        char name[TQ_CKPT_MAX_NAME];
        snprintf(name, sizeof name, "model.input_mul.%s", l->name);
        if (l->input_mul) tq_ckpt_put(w, name, TQ_CKPT_F32, l->input_mul->data, l->input_mul->numel);
        if (l->weight_q) put_quantizer(w, l->name, "w", l->weight_q);
        if (l->input_q) put_quantizer(w, l->name, "a", l->input_q);
    }
    return tq_ckpt_commit(w, err);
}

/* Restores one quantizer slot if the checkpoint has it; *q stays NULL otherwise. */
static tq_status get_quantizer(const tq_ckpt *ck, const char *path, const char *layer,
                               const char *slot, tq_quantizer **q, tq_error *err)
{
    char name[TQ_CKPT_MAX_NAME];
    snprintf(name, sizeof name, "q.%s.%s.spec", layer, slot);
    *q = NULL;
    const char *spec_str = tq_ckpt_get_str(ck, name, NULL);
    if (!spec_str) return TQ_STATUS_OK;
    tq_qspec spec;
    tq_error e = {0};
    if (tq_qspec_parse(spec_str, &spec, &e) || !(*q = tq_quantizer_new(&spec, &e)))
        return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: %s: %s", path, name, e.msg);
    int64_t n_amax = 0;
    snprintf(name, sizeof name, "q.%s.%s.amax", layer, slot);
    const float *amax = tq_ckpt_require_f32(ck, name, -1, err);
    if (!amax) return err->status;
    tq_ckpt_get_f32(ck, name, &n_amax);
    snprintf(name, sizeof name, "q.%s.%s.meta", layer, slot);
    const int64_t *meta = tq_ckpt_require_i64(ck, name, 2, err);
    if (!meta) return err->status;
    if (meta[0] < TQ_QSTATE_OFF || meta[0] > TQ_QSTATE_QUANTIZING)
        return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: %s: bad quantizer state %lld",
                       path, name, (long long)meta[0]);
    if ((n_amax > 0 && tq_quantizer_set_amax(*q, amax, n_amax, &e)) ||
        tq_quantizer_set_unsigned_chosen(*q, meta[1] != 0, &e))
        return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: %s: %s", path, name, e.msg);
    tq_quantizer_set_state(*q, (tq_qstate)meta[0]);
    if (!strcmp(slot, "w")) tq_quantizer_mark_from_weights(*q); /* as PTQ left it */
    return TQ_STATUS_OK;
}

/* Folded batch norms and stored input multipliers (SmoothQuant, AWQ). */
static tq_status load_rescaling(const tq_ckpt *ck, const char *path, tq_model *m, tq_error *err)
{
    const char *folded = tq_ckpt_get_str(ck, "model.folded", NULL);
    tq_error e = {0};
    char name[TQ_CKPT_MAX_NAME];
    while (folded && *folded) {
        size_t n = strcspn(folded, ",");
        snprintf(name, sizeof name, "%.*s", (int)n, folded);
        if (tq_model_mark_folded(m, name, &e))
            return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: model.folded: %s", path, e.msg);
        folded += n + (folded[n] == ',');
    }
    for (int i = 0; i < tq_model_qlayer_count(m); i++) {
        snprintf(name, sizeof name, "model.input_mul.%s", tq_model_qlayer(m, i)->name);
        int64_t n = 0;
        if (!tq_ckpt_get_f32(ck, name, &n)) continue;
        const float *mul = tq_ckpt_require_f32(ck, name, n, err);
        if (!mul) return err->status;
        if (tq_model_set_input_mul(m, i, mul, n, &e))
            return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: %s: %s", path, name, e.msg);
    }
    return TQ_STATUS_OK;
}

/* The model's name and input shape (C, H, W, classes) as the checkpoint records them. */
static const char *saved_model(const tq_ckpt *ck, const char *path, const int64_t **in,
                               tq_error *err)
{
    const char *name = tq_ckpt_get_str(ck, "model.name", NULL);
    if (!name) {
        tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: no model.name section", path);
        return NULL;
    }
    *in = tq_ckpt_require_i64(ck, "model.input", 4, err);
    if (!*in) return NULL;
    for (int i = 0; i < 4; i++)
        if ((*in)[i] < 1 || (*in)[i] > 65536) {
            tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: bad model input shape", path);
            return NULL;
        }
    return name;
}

/* A zoo model of the checkpoint's name and shape, made only if it has as many parameters. */
static tq_status create_model(const tq_ckpt *ck, const char *path, tq_run *run, tq_error *err)
{
    const int64_t *in;
    const char *name = saved_model(ck, path, &in, err);
    if (!name) return err->status;
    tq_rng rng;
    tq_rng_seed(&rng, 0);
    tq_error e = {0};
    int64_t n_params = -1;
    if (!tq_ckpt_get_f32(ck, "model.params", &n_params))
        return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: no model.params section", path);
    run->model = tq_model_create_sized(name, (int32_t)in[0], (int32_t)in[1], (int32_t)in[2],
                                       (int32_t)in[3], n_params, &rng, &e);
    if (!run->model) return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: %s", path, e.msg);
    return TQ_STATUS_OK;
}

/* Whether the caller's model m is the one saved: same name and input shape (the parameter
 * count is checked as they are read). */
static tq_status check_model(const tq_ckpt *ck, const char *path, tq_model *m, tq_error *err)
{
    const int64_t *in;
    const char *name = saved_model(ck, path, &in, err);
    if (!name) return err->status;
    int32_t c, h, w, classes;
    tq_model_input(m, &c, &h, &w, &classes);
    if (strcmp(name, tq_model_name(m)) != 0 || in[0] != c || in[1] != h || in[2] != w ||
        in[3] != classes)
        return tq_fail(err, TQ_STATUS_SHAPE,
                       "checkpoint %s holds model %s for %lldx%lldx%lld inputs in %lld classes, "
                       "not %s for %dx%dx%d inputs in %d classes",
                       path, name, (long long)in[0], (long long)in[1], (long long)in[2],
                       (long long)in[3], tq_model_name(m), c, h, w, classes);
    return TQ_STATUS_OK;
}

/* Parameters, batch-norm statistics, rescaling and quantizers into run->model. */
static tq_status load_model(const tq_ckpt *ck, const char *path, tq_run *run, tq_error *err)
{
    tq_model *m = run->model;
    const float *p = tq_ckpt_require_f32(ck, "model.params", tq_model_param_count(m), err);
    const float *s = p ? tq_ckpt_require_f32(ck, "model.state", tq_model_state_count(m), err) : NULL;
    if (!s) return err->status;
    memcpy(tq_model_params(m), p, (size_t)tq_model_param_count(m) * sizeof(float));
    memcpy(tq_model_state(m), s, (size_t)tq_model_state_count(m) * sizeof(float));
    if (load_rescaling(ck, path, m, err)) return err->status;
    for (int i = 0; i < tq_model_qlayer_count(m); i++) {
        tq_qlayer *l = tq_model_qlayer(m, i);
        tq_quantizer *wq = NULL, *aq = NULL;
        if (get_quantizer(ck, path, l->name, "w", &wq, err) ||
            get_quantizer(ck, path, l->name, "a", &aq, err)) {
            tq_quantizer_free(wq);
            tq_quantizer_free(aq);
            return err->status;
        }
        tq_qlayer_set_quantizers(l, wq, aq);
    }
    return TQ_STATUS_OK;
}

static tq_status load_best(const tq_ckpt *ck, const char *path, tq_run *run, tq_error *err)
{
    if (!tq_ckpt_get_f32(ck, "best.params", NULL)) return TQ_STATUS_OK;
    tq_model *m = run->model;
    const float *p = tq_ckpt_require_f32(ck, "best.params", tq_model_param_count(m), err);
    const float *s = p ? tq_ckpt_require_f32(ck, "best.state", tq_model_state_count(m), err) : NULL;
    const int64_t *meta = s ? tq_ckpt_require_i64(ck, "best.meta", 2, err) : NULL;
    if (!meta) return err->status;
    double val_acc;
    memcpy(&val_acc, &meta[1], sizeof val_acc);
    if (meta[0] < 0 || !(val_acc >= 0 && val_acc <= 1))
        return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: best.meta: value out of range", path);
    if (!(run->best = calloc(1, sizeof *run->best)) ||
        tq_snapshot_init(&run->best->weights, m, err))
        return tq_fail(err, TQ_STATUS_NOMEM, "checkpoint %s: out of memory", path);
    memcpy(run->best->weights.params, p, (size_t)run->best->weights.n_params * sizeof(float));
    memcpy(run->best->weights.state, s, (size_t)run->best->weights.n_state * sizeof(float));
    if (tq_ckpt_get_f32(ck, "best.amax", NULL)) { /* learned scales: that epoch's amax */
        int64_t n = run->best->weights.n_amax;
        const float *a = tq_ckpt_require_f32(ck, "best.amax", n, err);
        if (!a) return err->status;
        for (int64_t i = 0; i < n; i++)
            if (a[i] < 0)
                return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: best.amax[%lld] = %g "
                               "(expected >= 0)", path, (long long)i, (double)a[i]);
        if (n) memcpy(run->best->weights.amax, a, (size_t)n * sizeof(float));
    }
    run->best->epoch = meta[0];
    run->best->val_acc = val_acc;
    return TQ_STATUS_OK;
}

static tq_status load_run(const tq_ckpt *ck, const char *path, tq_run *run, tq_error *err)
{
    int64_t n_data = 0;
    const char *data = tq_ckpt_get_str(ck, "data.name", &n_data);
    if (n_data >= (int64_t)sizeof run->data_name)
        return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: data.name: longer than %zu bytes",
                       path, sizeof run->data_name - 1);
    snprintf(run->data_name, sizeof run->data_name, "%s", data ? data : "");
    const float *norm = tq_ckpt_require_f32(ck, "data.norm", 8, err);
    const int64_t *i64 = norm ? tq_ckpt_require_i64(ck, "run.i64", RUN_I64_COUNT, err) : NULL;
    const float *f32 = i64 ? tq_ckpt_require_f32(ck, "run.f32", RUN_F32_COUNT, err) : NULL;
    if (!f32) return err->status;
    memcpy(run->mean, norm, sizeof run->mean);
    memcpy(run->std, norm + 4, sizeof run->std);
    int32_t channels, h, w, classes;
    tq_model_input(run->model, &channels, &h, &w, &classes);
    for (int c = 0; c < channels && c < 4; c++)
        if (!(run->std[c] > 0))
            return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: data.norm: std must be > 0", path);
    if (i64[RUN_OPTIM_KIND] < TQ_OPTIM_SGD || i64[RUN_OPTIM_KIND] > TQ_OPTIM_ADAMW ||
        i64[RUN_SCHED_KIND] < TQ_SCHEDULE_CONSTANT || i64[RUN_SCHED_KIND] > TQ_SCHEDULE_COSINE ||
        i64[RUN_BATCH] < 1 || i64[RUN_BATCH] > 65536 || i64[RUN_EPOCH] < 0 ||
        i64[RUN_BATCH_IN_EPOCH] < 0)
        return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: run.i64: value out of range", path);
    run->epoch = i64[RUN_EPOCH];
    run->epochs = i64[RUN_EPOCHS];
    run->batch_in_epoch = i64[RUN_BATCH_IN_EPOCH];
    run->rng.s[0] = (uint64_t)i64[RUN_RNG0];
    run->rng.s[1] = (uint64_t)i64[RUN_RNG1];
    run->batch = (int32_t)i64[RUN_BATCH];
    run->seed = (uint64_t)i64[RUN_SEED];
    int64_t n_split = 0; /* older checkpoints split with the run's seed */
    const int64_t *split_seed = tq_ckpt_get_i64(ck, "data.split_seed", &n_split);
    run->split_seed = split_seed && n_split == 1 ? (uint64_t)split_seed[0] : run->seed;
    run->optim_cfg = tq_optim_defaults((tq_optim_kind)i64[RUN_OPTIM_KIND]);
    run->optim_cfg.nesterov = i64[RUN_NESTEROV] != 0;
    run->optim_cfg.momentum = f32[RUN_MOMENTUM];
    run->optim_cfg.weight_decay = f32[RUN_WD];
    run->optim_cfg.beta1 = f32[RUN_BETA1];
    run->optim_cfg.beta2 = f32[RUN_BETA2];
    run->optim_cfg.eps = f32[RUN_EPS];
    run->clip_norm = f32[RUN_CLIP];
    run->val_fraction = f32[RUN_VAL];
    if (!(run->val_fraction >= 0 && run->val_fraction < 1))
        return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: run.f32: bad validation fraction", path);
    run->schedule = (tq_schedule){.kind = (tq_schedule_kind)i64[RUN_SCHED_KIND],
                                  .lr = f32[RUN_LR], .min_lr = f32[RUN_MIN_LR],
                                  .gamma = f32[RUN_GAMMA], .step_size = i64[RUN_STEP_SIZE],
                                  .total_steps = i64[RUN_TOTAL_STEPS],
                                  .warmup_steps = i64[RUN_WARMUP]};
    int64_t n_state = 0;
    const float *state = tq_ckpt_get_f32(ck, "optim.state", &n_state);
    if (!state && i64[RUN_OPTIM_STEPS] == 0) return TQ_STATUS_OK; /* no optimizer yet */
    tq_error e = {0};
    run->optim = tq_optim_new(&run->optim_cfg, tq_model_param_count(run->model), &e);
    if (!run->optim) return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: %s", path, e.msg);
    if (n_state != tq_optim_state_count(run->optim))
        return tq_fail(err, TQ_STATUS_FORMAT,
                       "checkpoint %s: optim.state has %lld values, expected %lld", path,
                       (long long)n_state, (long long)tq_optim_state_count(run->optim));
    if (n_state) {
        if (!tq_ckpt_require_f32(ck, "optim.state", n_state, err)) return err->status;
        memcpy(tq_optim_state(run->optim), state, (size_t)n_state * sizeof(float));
    }
    tq_optim_set_steps(run->optim, i64[RUN_OPTIM_STEPS]);
    return TQ_STATUS_OK;
}

/* The learned scales' optimizer, when the run had one: it must fit the model's learned amax. */
static tq_status load_scale_optim(const tq_ckpt *ck, const char *path, tq_run *run, tq_error *err)
{
    int64_t n_meta = 0, n_state = 0;
    if (!tq_ckpt_get_i64(ck, "optim.scales", &n_meta)) return TQ_STATUS_OK;
    const int64_t *meta = tq_ckpt_require_i64(ck, "optim.scales", 2, err);
    if (!meta) return err->status;
    int64_t n_amax = tq_model_learned_amax_count(run->model);
    if (meta[1] != n_amax || n_amax < 1 || meta[0] < 0)
        return tq_fail(err, TQ_STATUS_FORMAT,
                       "checkpoint %s: optim.scales: %lld learned amax, the quantizers learn %lld",
                       path, (long long)meta[1], (long long)n_amax);
    tq_error e = {0};
    tq_optim_config cfg = run->optim_cfg;
    cfg.weight_decay = 0.0f;
    run->scale_optim = tq_optim_new(&cfg, n_amax, &e);
    if (!run->scale_optim) return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: %s", path, e.msg);
    int64_t want = tq_optim_state_count(run->scale_optim);
    const float *state = tq_ckpt_get_f32(ck, "optim.scales.state", &n_state);
    if ((want && !state) || n_state != want)
        return tq_fail(err, TQ_STATUS_FORMAT,
                       "checkpoint %s: optim.scales.state has %lld values, expected %lld", path,
                       (long long)n_state, (long long)want);
    if (want) {
        if (!tq_ckpt_require_f32(ck, "optim.scales.state", want, err)) return err->status;
        memcpy(tq_optim_state(run->scale_optim), state, (size_t)want * sizeof(float));
    }
    tq_optim_set_steps(run->scale_optim, meta[0]);
    return TQ_STATUS_OK;
}

/* The model's values, the run, its best epoch and the learned scales' optimizer, into
 * run->model. */
static tq_status load_into(const tq_ckpt *ck, const char *path, tq_run *run, tq_error *err)
{
    if (load_model(ck, path, run, err) || load_run(ck, path, run, err) ||
        load_best(ck, path, run, err) || load_scale_optim(ck, path, run, err))
        return err->status;
    return TQ_STATUS_OK;
}

tq_status tq_run_load(const char *path, tq_run *run, tq_error *err)
{
    memset(run, 0, sizeof *run);
    tq_ckpt *ck = tq_ckpt_load(path, err);
    if (!ck) return err->status;
    tq_status st = create_model(ck, path, run, err);
    if (st == TQ_STATUS_OK) st = load_into(ck, path, run, err);
    tq_ckpt_free(ck);
    if (st != TQ_STATUS_OK) tq_run_free(run);
    return st;
}

tq_status tq_run_load_model(const char *path, tq_model *m, tq_run *run, tq_error *err)
{
    memset(run, 0, sizeof *run);
    tq_ckpt *ck = tq_ckpt_load(path, err);
    if (!ck) return err->status;
    run->model = m;
    tq_status st = check_model(ck, path, m, err);
    if (st == TQ_STATUS_OK) st = load_into(ck, path, run, err);
    tq_ckpt_free(ck);
    if (st != TQ_STATUS_OK) {
        run->model = NULL; /* still the caller's */
        tq_run_free(run);
    }
    return st;
}
