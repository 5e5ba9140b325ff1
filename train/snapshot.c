/* A copy of a model's weights — parameters, batch-norm statistics and every quantizer's
 * amax — to go back to: the float model between experiments, the best epoch so far. */
#include "train.h"

#include <stdlib.h>
#include <string.h>

tq_status tq_snapshot_init(tq_snapshot *s, tq_model *m, tq_error *err)
{
    s->n_params = tq_model_param_count(m);
    s->n_state = tq_model_state_count(m);
    s->params = malloc((size_t)s->n_params * sizeof(float) + 1);
    s->state = malloc((size_t)s->n_state * sizeof(float) + 1);
    s->amax = NULL;
    s->n_amax = s->cap_amax = 0;
    if (!s->params || !s->state) {
        tq_snapshot_free(s);
        return tq_fail(err, TQ_STATUS_NOMEM, "snapshot: out of memory");
    }
    return tq_snapshot_take(s, m, err);
}

/* The quantizers of m in a fixed order: layer by layer, weights before inputs. */
static int quantizers_of(tq_model *m, int i, tq_quantizer *q[2])
{
    tq_qlayer *l = tq_model_qlayer(m, i);
    int n = 0;
    if (l->weight_q) q[n++] = l->weight_q;
    if (l->input_q) q[n++] = l->input_q;
    return n;
}

tq_status tq_snapshot_take(tq_snapshot *s, tq_model *m, tq_error *err)
{
    memcpy(s->params, tq_model_params(m), (size_t)s->n_params * sizeof(float));
    memcpy(s->state, tq_model_state(m), (size_t)s->n_state * sizeof(float));
    int64_t n = 0;
    tq_quantizer *q[2];
    for (int i = 0; i < tq_model_qlayer_count(m); i++)
        for (int j = quantizers_of(m, i, q); j-- > 0;) n += tq_quantizer_amax_count(q[j]);
    if (n > s->cap_amax) {
        float *a = realloc(s->amax, (size_t)n * sizeof *a);
        if (!a) return tq_fail(err, TQ_STATUS_NOMEM, "snapshot: out of memory for %lld amax",
                               (long long)n);
        s->amax = a;
        s->cap_amax = n;
    }
    s->n_amax = 0;
    for (int i = 0; i < tq_model_qlayer_count(m); i++) {
        int nq = quantizers_of(m, i, q);
        for (int j = 0; j < nq; j++) {
            int64_t c = tq_quantizer_amax_count(q[j]);
            if (c) memcpy(s->amax + s->n_amax, tq_quantizer_amax(q[j]), (size_t)c * sizeof(float));
            s->n_amax += c;
        }
    }
    return TQ_STATUS_OK;
}

void tq_snapshot_restore(const tq_snapshot *s, tq_model *m)
{
    memcpy(tq_model_params(m), s->params, (size_t)s->n_params * sizeof(float));
    memcpy(tq_model_state(m), s->state, (size_t)s->n_state * sizeof(float));
    /* a snapshot of the float model leaves the quantizers attached since then alone */
    if (s->n_amax == 0) return;
    int64_t n = 0;
    tq_quantizer *q[2];
    for (int i = 0; i < tq_model_qlayer_count(m); i++) {
        int nq = quantizers_of(m, i, q);
        for (int j = 0; j < nq; j++) {
            int64_t c = tq_quantizer_amax_count(q[j]);
            TQ_ASSERT(n + c <= s->n_amax); /* the quantizers it was taken with */
            /* the same count, copied in place: values taken from a quantizer cannot fail */
            tq_status st = c ? tq_quantizer_set_amax(q[j], s->amax + n, c, &(tq_error){0})
                             : TQ_STATUS_OK;
            TQ_ASSERT(st == TQ_STATUS_OK);
            n += c;
        }
    }
    TQ_ASSERT(n == s->n_amax);
}

void tq_snapshot_free(tq_snapshot *s)
{
    free(s->params);
    free(s->state);
    free(s->amax);
    s->params = s->state = s->amax = NULL;
    s->n_amax = s->cap_amax = 0;
}
