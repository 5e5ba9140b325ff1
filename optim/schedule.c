/* Learning-rate schedules (constant, step decay, cosine, each with optional linear warm-up)
 * and gradient-norm clipping. */
#include "optim.h"

#include <math.h>
#include <string.h>

/* M_PI is not in strict C11 */
#define TQ_PI 3.14159265358979323846

bool tq_schedule_kind_parse(const char *name, tq_schedule_kind *kind)
{
    static const struct {
        const char *name;
        tq_schedule_kind kind;
    } names[] = {{"constant", TQ_SCHEDULE_CONSTANT},
                 {"step", TQ_SCHEDULE_STEP},
                 {"cosine", TQ_SCHEDULE_COSINE}};
    if (!name) return false;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) {
            *kind = names[i].kind;
            return true;
        }
    return false;
}

bool tq_schedule_validate(const tq_schedule *s, tq_error *err)
{
    if (!s) {
        tq_fail(err, TQ_STATUS_ARG, "schedule: NULL");
        return false;
    }
    if (!isfinite(s->lr) || s->lr < 0.0f) {
        tq_fail(err, TQ_STATUS_ARG, "schedule: lr = %g out of range (expected a finite value >= 0)",
                (double)s->lr);
        return false;
    }
    if (s->warmup_steps < 0) {
        tq_fail(err, TQ_STATUS_ARG, "schedule: warmup_steps = %lld out of range (expected >= 0)",
                (long long)s->warmup_steps);
        return false;
    }
    switch (s->kind) {
    case TQ_SCHEDULE_CONSTANT: return true;
    case TQ_SCHEDULE_STEP:
        if (!isfinite(s->gamma) || s->gamma <= 0.0f || s->gamma > 1.0f) {
            tq_fail(err, TQ_STATUS_ARG, "schedule step: gamma = %g out of range (expected (0, 1])",
                    (double)s->gamma);
            return false;
        }
        if (s->step_size < 1) {
            tq_fail(err, TQ_STATUS_ARG,
                    "schedule step: step_size = %lld out of range (expected >= 1)",
                    (long long)s->step_size);
            return false;
        }
        return true;
    case TQ_SCHEDULE_COSINE:
        if (!isfinite(s->min_lr) || s->min_lr < 0.0f || s->min_lr > s->lr) {
            tq_fail(err, TQ_STATUS_ARG,
                    "schedule cosine: min_lr = %g out of range (expected [0, lr = %g])",
                    (double)s->min_lr, (double)s->lr);
            return false;
        }
        if (s->total_steps < 1) {
            tq_fail(err, TQ_STATUS_ARG,
                    "schedule cosine: total_steps = %lld out of range (expected >= 1)",
                    (long long)s->total_steps);
            return false;
        }
        return true;
    }
    tq_fail(err, TQ_STATUS_ARG, "schedule: unknown kind %d (expected constant, step or cosine)",
            (int)s->kind);
    return false;
}

float tq_schedule_lr(const tq_schedule *s, int64_t step)
{
    if (step < 0) step = 0;
    double lr = s->lr;
    switch (s->kind) {
    case TQ_SCHEDULE_CONSTANT: break;
    case TQ_SCHEDULE_STEP:
        if (s->step_size > 0) lr *= pow((double)s->gamma, (double)(step / s->step_size));
        break;
    case TQ_SCHEDULE_COSINE:
        if (s->total_steps > 0) {
            double t = step >= s->total_steps ? 1.0 : (double)step / (double)s->total_steps;
            lr = s->min_lr + (s->lr - (double)s->min_lr) * (1.0 + cos(TQ_PI * t)) / 2.0;
        }
        break;
    }
    if (step < s->warmup_steps) lr *= (double)(step + 1) / (double)s->warmup_steps;
    return (float)lr;
}

float tq_clip_grad_norm(float *grads, int64_t n, float max_norm)
{
    /* four partial sums in a fixed order: some instruction-level parallelism, same bits
     * every run */
    double acc[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) acc[k] += (double)grads[i + k] * grads[i + k];
    for (; i < n; i++) acc[0] += (double)grads[i] * grads[i];
    double norm = sqrt((acc[0] + acc[1]) + (acc[2] + acc[3]));
    if (max_norm > 0.0f && isfinite(norm)) {
        double coef = (double)max_norm / (norm + 1e-6);
        if (coef < 1.0) {
            float c = (float)coef;
            for (int64_t j = 0; j < n; j++) grads[j] *= c;
        }
    }
    return (float)norm;
}
