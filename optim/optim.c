/* SGD (momentum, Nesterov, L2 weight decay), Adam and AdamW over one flat parameter buffer,
 * with PyTorch's update equations; the state lives in one buffer for checkpoints. */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Below this many elements a parallel region costs more than the loop itself. */
#define TQ_OPTIM_PARALLEL_MIN 65536

struct tq_optim {
    tq_optim_config cfg;
    int64_t n;
    int64_t steps;
    int64_t state_count;
    float *state; /* SGD: momentum (n); Adam: m (n) then v (n) */
};

tq_optim_config tq_optim_defaults(tq_optim_kind kind)
{
    tq_optim_config c = {
        .kind = kind,
        .momentum = 0.0f,
        .nesterov = false,
        .weight_decay = kind == TQ_OPTIM_ADAMW ? 0.01f : 0.0f,
        .beta1 = 0.9f,
        .beta2 = 0.999f,
        .eps = 1e-8f,
    };
    return c;
}

static const char *const kind_names[] = {[TQ_OPTIM_SGD] = "sgd", [TQ_OPTIM_ADAM] = "adam",
                                         [TQ_OPTIM_ADAMW] = "adamw"};

bool tq_optim_kind_parse(const char *name, tq_optim_kind *kind)
{
    if (!name) return false;
    for (size_t i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++)
        if (kind_names[i] && strcmp(name, kind_names[i]) == 0) {
            *kind = (tq_optim_kind)i;
            return true;
        }
    return false;
}

const char *tq_optim_kind_name(tq_optim_kind kind)
{
    return (unsigned)kind < sizeof kind_names / sizeof kind_names[0] && kind_names[kind]
               ? kind_names[kind]
               : "?";
}

static const char *kind_name(tq_optim_kind kind)
{
    switch (kind) {
    case TQ_OPTIM_SGD: return "sgd";
    case TQ_OPTIM_ADAM: return "adam";
    case TQ_OPTIM_ADAMW: return "adamw";
    }
    return "?";
}

/* isfinite() and the range test in one place, so every message has the same shape. */
static bool check_range(tq_error *err, const char *opt, const char *field, float v, double lo,
                        bool lo_open, double hi, bool hi_open, const char *range)
{
    bool ok = isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    if (!ok)
        tq_fail(err, TQ_STATUS_ARG, "optim %s: %s = %g out of range (expected %s)", opt, field,
                (double)v, range);
    return ok;
}

static bool config_valid(const tq_optim_config *c, tq_error *err)
{
    const char *k = kind_name(c->kind);
    if (!check_range(err, k, "weight_decay", c->weight_decay, 0, false, INFINITY, false,
                     "a finite value >= 0"))
        return false;
    if (c->kind == TQ_OPTIM_SGD) {
        if (!check_range(err, k, "momentum", c->momentum, 0, false, 1, true, "[0, 1)"))
            return false;
        if (c->nesterov && c->momentum <= 0.0f) {
            tq_fail(err, TQ_STATUS_ARG,
                    "optim sgd: nesterov needs momentum > 0 (expected momentum in (0, 1), got %g)",
                    (double)c->momentum);
            return false;
        }
        return true;
    }
    return check_range(err, k, "beta1", c->beta1, 0, false, 1, true, "[0, 1)") &&
           check_range(err, k, "beta2", c->beta2, 0, false, 1, true, "[0, 1)") &&
           check_range(err, k, "eps", c->eps, 0, true, INFINITY, false, "a finite value > 0");
}

tq_optim *tq_optim_new(const tq_optim_config *cfg, int64_t n_params, tq_error *err)
{
    if (!cfg) {
        tq_fail(err, TQ_STATUS_ARG, "optim: config is NULL");
        return NULL;
    }
    if (cfg->kind != TQ_OPTIM_SGD && cfg->kind != TQ_OPTIM_ADAM && cfg->kind != TQ_OPTIM_ADAMW) {
        tq_fail(err, TQ_STATUS_ARG, "optim: unknown kind %d (expected sgd, adam or adamw)",
                (int)cfg->kind);
        return NULL;
    }
    if (n_params < 1) {
        tq_fail(err, TQ_STATUS_ARG, "optim %s: n_params = %lld (expected >= 1)",
                kind_name(cfg->kind), (long long)n_params);
        return NULL;
    }
    if (!config_valid(cfg, err)) return NULL;

    tq_optim *o = calloc(1, sizeof *o);
    if (!o) goto oom;
    o->cfg = *cfg;
    o->n = n_params;
    if (cfg->kind == TQ_OPTIM_SGD)
        o->state_count = cfg->momentum > 0.0f ? n_params : 0;
    else
        o->state_count = 2 * n_params;
    if (o->state_count > 0) {
        /* aligned so the vector loops start on a cache line */
        size_t bytes = ((size_t)o->state_count * sizeof(float) + 63) & ~(size_t)63;
        o->state = aligned_alloc(64, bytes);
        if (!o->state) goto oom;
        memset(o->state, 0, bytes);
    }
    return o;
oom:
    tq_optim_free(o);
    tq_fail(err, TQ_STATUS_NOMEM, "optim %s: out of memory for %lld parameters",
            kind_name(cfg->kind), (long long)n_params);
    return NULL;
}

int64_t tq_optim_param_count(const tq_optim *o) { return o->n; }

void tq_optim_free(tq_optim *o)
{
    if (!o) return;
    free(o->state);
    free(o);
}

/* ---- update kernels: elementwise, so any thread count gives the same bits */

static void sgd_plain(float *restrict p, const float *restrict g, int64_t n, float lr, float wd)
{
#pragma omp parallel for simd schedule(static) if (n > TQ_OPTIM_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) p[i] -= lr * (g[i] + wd * p[i]);
}

static void sgd_momentum(float *restrict p, const float *restrict g, float *restrict buf,
                         int64_t n, float lr, float wd, float mu, bool first, bool nesterov)
{
    if (first) {
        /* PyTorch starts the buffer at the first gradient, not at mu * 0 + g */
#pragma omp parallel for simd schedule(static) if (n > TQ_OPTIM_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) {
            float d = g[i] + wd * p[i];
            buf[i] = d;
            p[i] -= lr * (nesterov ? d + mu * d : d);
        }
    } else if (nesterov) {
#pragma omp parallel for simd schedule(static) if (n > TQ_OPTIM_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) {
            float d = g[i] + wd * p[i];
            float b = mu * buf[i] + d;
            buf[i] = b;
            p[i] -= lr * (d + mu * b);
        }
    } else {
#pragma omp parallel for simd schedule(static) if (n > TQ_OPTIM_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) {
            float b = mu * buf[i] + (g[i] + wd * p[i]);
            buf[i] = b;
            p[i] -= lr * b;
        }
    }
}

/* Adam and AdamW in one loop: l2 is Adam's coupled decay (0 for AdamW), keep is AdamW's
 * decoupled factor 1 - lr * wd (1 for Adam); both are exact no-ops when unused. */
static void adam(float *restrict p, const float *restrict g, float *restrict m,
                 float *restrict v, int64_t n, float b1, float b2, float eps, float l2,
                 float keep, float step_size, float inv_sqrt_bc2)
{
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
#pragma omp parallel for simd schedule(static) if (n > TQ_OPTIM_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        float d = g[i] + l2 * p[i];
        float mi = b1 * m[i] + c1 * d;
        float vi = b2 * v[i] + c2 * d * d;
        m[i] = mi;
        v[i] = vi;
        p[i] = keep * p[i] - step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
    }
}

void tq_optim_step(tq_optim *o, float *params, const float *grads, float lr)
{
    TQ_ASSERT(o && params && grads);
    const tq_optim_config *c = &o->cfg;
    if (c->kind == TQ_OPTIM_SGD) {
        if (o->state_count == 0)
            sgd_plain(params, grads, o->n, lr, c->weight_decay);
        else
            sgd_momentum(params, grads, o->state, o->n, lr, c->weight_decay, c->momentum,
                         o->steps == 0, c->nesterov);
    } else {
        /* bias corrections once per step, in double: b^t underflows gracefully */
        double t = (double)(o->steps + 1);
        double bc1 = 1.0 - pow((double)c->beta1, t);
        double bc2 = 1.0 - pow((double)c->beta2, t);
        bool decoupled = c->kind == TQ_OPTIM_ADAMW;
        float l2 = decoupled ? 0.0f : c->weight_decay;
        float keep = decoupled ? (float)(1.0 - (double)lr * c->weight_decay) : 1.0f;
        adam(params, grads, o->state, o->state + o->n, o->n, c->beta1, c->beta2, c->eps, l2,
             keep, (float)(lr / bc1), (float)(1.0 / sqrt(bc2)));
    }
    o->steps++;
}

int64_t tq_optim_state_count(const tq_optim *o) { return o->state_count; }
float *tq_optim_state(tq_optim *o) { return o->state; }
int64_t tq_optim_steps(const tq_optim *o) { return o->steps; }

void tq_optim_set_steps(tq_optim *o, int64_t steps)
{
    TQ_ASSERT(steps >= 0);
    o->steps = steps;
}
