/* tinyqat optim: SGD (momentum, Nesterov, weight decay), Adam and AdamW with PyTorch's
 * update equations over a flat parameter buffer; learning-rate schedules; gradient clipping. */
#ifndef TINYQAT_OPTIM_H
#define TINYQAT_OPTIM_H

#include "autograd.h"

/* SGD with momentum over a model's parameter buffer, at a cosine-decayed rate (checks left
 * out; m a model, as in layers.h's example):
 *
 *     tq_error err = {0};
 *     tq_optim_config cfg = tq_optim_defaults(TQ_OPTIM_SGD);
 *     cfg.momentum = 0.9f;
 *     tq_optim *opt = tq_optim_new(&cfg, tq_model_param_count(m), &err);
 *     tq_schedule sched = {.kind = TQ_SCHEDULE_COSINE, .lr = 0.05f, .total_steps = 1000};
 *     for (int64_t step = 0; step < 1000; step++) {
 *         // forward, loss, tq_model_zero_grad(m), tq_backward(tape, loss), then:
 *         tq_optim_step(opt, tq_model_params(m), tq_model_grads(m), tq_schedule_lr(&sched, step));
 *     }
 *     tq_optim_free(opt);
 *
 * tq_train_epoch (train.h) runs this loop for a tq_run. */

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tq_optim_kind { TQ_OPTIM_SGD, TQ_OPTIM_ADAM, TQ_OPTIM_ADAMW } tq_optim_kind;

typedef struct tq_optim_config {
    tq_optim_kind kind;
    float momentum;     /* SGD */
    bool nesterov;      /* SGD, needs momentum > 0 */
    float weight_decay; /* L2 for SGD and Adam, decoupled for AdamW */
    float beta1, beta2, eps; /* Adam/AdamW */
} tq_optim_config;

/* Defaults as in PyTorch: momentum 0, betas (0.9, 0.999), eps 1e-8, weight decay 0
 * (0.01 for AdamW). */
tq_optim_config tq_optim_defaults(tq_optim_kind kind);
/* "sgd", "adam", "adamw"; false for any other name. */
bool tq_optim_kind_parse(const char *name, tq_optim_kind *kind);
const char *tq_optim_kind_name(tq_optim_kind kind);

typedef struct tq_optim tq_optim;
/* NULL with a message in err for bad hyperparameters (negative, NaN, Nesterov without
 * momentum, betas outside [0,1)). */
tq_optim *tq_optim_new(const tq_optim_config *cfg, int64_t n_params, tq_error *err);
void tq_optim_free(tq_optim *o);
/* The n_params it was made for. */
int64_t tq_optim_param_count(const tq_optim *o);
/* One update of params from grads with learning rate lr; counts one step. */
void tq_optim_step(tq_optim *o, float *params, const float *grads, float lr);
/* The optimizer's state as one buffer, and its step count, for checkpoints. The buffer holds
 * n_params momentum values for SGD with momentum (none, count 0 and NULL, without), and
 * m then v (2 * n_params) for Adam/AdamW. Steps start at 0; set them when resuming. */
int64_t tq_optim_state_count(const tq_optim *o);
float *tq_optim_state(tq_optim *o);
int64_t tq_optim_steps(const tq_optim *o);
void tq_optim_set_steps(tq_optim *o, int64_t steps);

typedef enum tq_schedule_kind {
    TQ_SCHEDULE_CONSTANT,
    TQ_SCHEDULE_STEP,   /* lr * gamma^(floor(step / step_size)) */
    TQ_SCHEDULE_COSINE, /* from lr to min_lr over total_steps */
} tq_schedule_kind;

typedef struct tq_schedule {
    tq_schedule_kind kind;
    float lr, min_lr, gamma;
    int64_t step_size, total_steps;
    int64_t warmup_steps; /* linear warm-up from 0 (any kind) */
} tq_schedule;

bool tq_schedule_kind_parse(const char *name, tq_schedule_kind *kind);
/* False with a message in err naming the field and its expected range (lr and min_lr finite
 * and >= 0 with min_lr <= lr for cosine, gamma in (0, 1] and step_size >= 1 for step,
 * total_steps >= 1 for cosine, warmup_steps >= 0). */
bool tq_schedule_validate(const tq_schedule *s, tq_error *err);
/* The learning rate at step (0-based; negative steps count as 0). Cosine stays at min_lr
 * from total_steps on. */
float tq_schedule_lr(const tq_schedule *s, int64_t step);

/* Scales grads so that their L2 norm is at most max_norm; returns the norm before.
 * As in PyTorch the factor is max_norm / (norm + 1e-6), applied only when below 1. The norm
 * is summed in double in a fixed order (same bits for any thread count). Grads are left
 * alone when max_norm <= 0 (norm only) or when the norm is not finite (the caller decides). */
float tq_clip_grad_norm(float *grads, int64_t n, float max_norm);

#ifdef __cplusplus
}
#endif
#endif
