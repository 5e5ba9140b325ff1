/* u8 x s8 -> s32 matrix products over packed weights: packing, the portable reference and
 * the run-time choice of path. */
#include "qkernels.h"

#include <stdlib.h>
#include <string.h>

tq_status tq_qweights_pack(const int8_t *b, int64_t n, int64_t k, tq_qweights *out,
                           tq_error *err)
{
    memset(out, 0, sizeof *out);
    if (n < 1 || k < 1) return tq_fail(err, TQ_STATUS_ARG, "qgemm: pack needs n, k >= 1");
    int64_t k4 = (k + 3) / 4 * 4, n16 = (n + 15) / 16 * 16;
    size_t bytes = (size_t)(n16 * k4);
    out->data = aligned_alloc(64, (bytes + 63) / 64 * 64);
    out->row_sum = malloc((size_t)n * sizeof *out->row_sum);
    if (!out->data || !out->row_sum) {
        tq_qweights_free(out);
        return tq_fail(err, TQ_STATUS_NOMEM, "qgemm: out of memory packing %lldx%lld weights",
                       (long long)n, (long long)k);
    }
    memset(out->data, 0, bytes);
    for (int64_t j = 0; j < n; j++) {
        int32_t sum = 0;
        for (int64_t kk = 0; kk < k; kk++) {
            int8_t v = b[j * k + kk];
            sum += v;
            int64_t g = j / 16, lane = j % 16, s = kk / 4;
            out->data[(g * (k4 / 4) + s) * 64 + lane * 4 + kk % 4] = v;
        }
        out->row_sum[j] = sum;
    }
    out->n = n;
    out->k = k;
    out->k4 = k4;
    out->n16 = n16;
    return TQ_STATUS_OK;
}

void tq_qweights_free(tq_qweights *w)
{
    free(w->data);
    free(w->row_sum);
    memset(w, 0, sizeof *w);
}

void tq_qgemm_ref(int64_t m, const uint8_t *a, int64_t lda, const tq_qweights *w, int32_t *c,
                  int64_t ldc)
{
    int64_t steps = w->k4 / 4;
    for (int64_t i = 0; i < m; i++) {
        const uint8_t *ai = a + i * lda;
        for (int64_t j = 0; j < w->n; j++) {
            const int8_t *bg = w->data + (j / 16) * steps * 64 + (j % 16) * 4;
            int32_t acc = 0;
            for (int64_t s = 0; s < steps; s++)
                for (int t = 0; t < 4; t++) acc += (int32_t)ai[4 * s + t] * bg[s * 64 + t];
            c[i * ldc + j] = acc;
        }
    }
}

const char *tq_qgemm_backend(void) { return "portable"; }

void tq_qgemm(int64_t m, const uint8_t *a, int64_t lda, const tq_qweights *w, int32_t *c,
              int64_t ldc)
{
    tq_qgemm_ref(m, a, lda, w, c, ldc);
}
