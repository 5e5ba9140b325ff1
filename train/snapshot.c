/* A copy of a model's weights — parameters and batch-norm statistics, not its quantizers —
 * to go back to: the float model between experiments, the best epoch so far. */
#include "train.h"

#include <stdlib.h>
#include <string.h>

tq_status tq_snapshot_init(tq_snapshot *s, tq_model *m, tq_error *err)
{
    s->n_params = tq_model_param_count(m);
    s->n_state = tq_model_state_count(m);
    s->params = malloc((size_t)s->n_params * sizeof(float) + 1);
    s->state = malloc((size_t)s->n_state * sizeof(float) + 1);
    if (!s->params || !s->state) {
        tq_snapshot_free(s);
        return tq_fail(err, TQ_STATUS_NOMEM, "snapshot: out of memory");
    }
    tq_snapshot_take(s, m);
    return TQ_STATUS_OK;
}

void tq_snapshot_take(tq_snapshot *s, tq_model *m)
{
    memcpy(s->params, tq_model_params(m), (size_t)s->n_params * sizeof(float));
    memcpy(s->state, tq_model_state(m), (size_t)s->n_state * sizeof(float));
}

void tq_snapshot_restore(const tq_snapshot *s, tq_model *m)
{
    memcpy(tq_model_params(m), s->params, (size_t)s->n_params * sizeof(float));
    memcpy(tq_model_state(m), s->state, (size_t)s->n_state * sizeof(float));
}

void tq_snapshot_free(tq_snapshot *s)
{
    free(s->params);
    free(s->state);
    s->params = s->state = NULL;
}
