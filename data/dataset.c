/* Dataset bookkeeping: allocation with checked sizes, freeing, the seeded train/validation
 * split and per-channel statistics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"

tq_status tq_dataset_alloc(tq_dataset *out, int64_t n, int32_t c, int32_t h, int32_t w,
                           int32_t classes, const char *who, const char *path, tq_error *err)
{
    memset(out, 0, sizeof *out);
    if (n < 1 || c < 1 || h < 1 || w < 1)
        return tq_fail(err, TQ_STATUS_FORMAT, "%s: %s: empty: %lld images of %dx%dx%d", who,
                       path, (long long)n, c, h, w);
    if (c > 4 || h > TQ_DATA_MAX_SIDE || w > TQ_DATA_MAX_SIDE)
        return tq_fail(err, TQ_STATUS_FORMAT,
                       "%s: %s: absurd image size %dx%dx%d (expected at most 4 channels and "
                       "sides <= %d)", who, path, c, h, w, TQ_DATA_MAX_SIDE);
    size_t bytes;
    if (__builtin_mul_overflow((size_t)n, (size_t)c * (size_t)h * (size_t)w, &bytes) ||
        bytes > (size_t)INT64_MAX)
        return tq_fail(err, TQ_STATUS_FORMAT, "%s: %s: %lld images of %dx%dx%d overflow", who,
                       path, (long long)n, c, h, w);
    out->images = malloc(bytes);
    out->labels = malloc((size_t)n);
    if (!out->images || !out->labels) {
        tq_dataset_free(out);
        return tq_fail(err, TQ_STATUS_NOMEM, "%s: %s: out of memory for %zu bytes of images",
                       who, path, bytes);
    }
    out->n = n;
    out->c = c;
    out->h = h;
    out->w = w;
    out->classes = classes;
    return TQ_STATUS_OK;
}

void tq_dataset_free(tq_dataset *d)
{
    if (!d) return;
    free(d->images);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

/* Uniform in [0, n) for n beyond 32 bits too. */
static uint64_t rng_below64(tq_rng *rng, uint64_t n)
{
    if (n <= UINT32_MAX) return tq_rng_below(rng, (uint32_t)n);
    uint64_t r = ((uint64_t)tq_rng_u32(rng) << 32) | tq_rng_u32(rng);
    return r % n;
}

/* Copies the images of `all` whose flag equals `want` into dst, keeping their order. */
static void copy_where(const tq_dataset *all, const uint8_t *in_val, uint8_t want,
                       tq_dataset *dst)
{
    size_t sz = tq_dataset_image_bytes(all);
    int64_t k = 0;
    for (int64_t i = 0; i < all->n; i++) {
        if (in_val[i] != want) continue;
        memcpy(dst->images + (size_t)k * sz, all->images + (size_t)i * sz, sz);
        dst->labels[k++] = all->labels[i];
    }
}

tq_status tq_dataset_split(tq_dataset *all, double val_fraction, uint64_t seed,
                           tq_dataset *train, tq_dataset *val, tq_error *err)
{
    if (!all || !train || !val || train == val || train == all || val == all)
        return tq_fail(err, TQ_STATUS_ARG, "dataset split: all, train and val must be "
                                           "distinct non-NULL datasets");
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    if (!(val_fraction >= 0.0 && val_fraction < 1.0))
        return tq_fail(err, TQ_STATUS_ARG, "dataset split: val_fraction %g (expected in [0, 1))",
                       val_fraction);
    int64_t n_val = (int64_t)llround(val_fraction * (double)all->n);
    int64_t n_train = all->n - n_val;
    if (n_train < 1)
        return tq_fail(err, TQ_STATUS_ARG, "dataset split: %s: %lld images leave none for "
                       "training", all->name, (long long)all->n);

    int64_t *perm = malloc((size_t)all->n * sizeof *perm);
    uint8_t *in_val = calloc((size_t)all->n, 1);
    tq_status st = TQ_STATUS_OK;
    if (!perm || !in_val) {
        st = tq_fail(err, TQ_STATUS_NOMEM, "dataset split: out of memory");
        goto done;
    }
    /* The first n_val entries of a seeded Fisher-Yates shuffle form the validation set. */
    tq_rng rng;
    tq_rng_seed(&rng, seed);
    for (int64_t i = 0; i < all->n; i++) perm[i] = i;
    for (int64_t i = 0; i < n_val; i++) {
        int64_t j = i + (int64_t)rng_below64(&rng, (uint64_t)(all->n - i));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        in_val[perm[i]] = 1;
    }
    st = tq_dataset_alloc(train, n_train, all->c, all->h, all->w, all->classes, "dataset split",
                          all->name, err);
    if (st == TQ_STATUS_OK && n_val > 0)
        st = tq_dataset_alloc(val, n_val, all->c, all->h, all->w, all->classes, "dataset split",
                              all->name, err);
    if (st != TQ_STATUS_OK) {
        tq_dataset_free(train);
        tq_dataset_free(val);
        goto done;
    }
    copy_where(all, in_val, 0, train);
    if (n_val > 0) copy_where(all, in_val, 1, val);
    /* An empty validation set still describes the same kind of images. */
    val->c = all->c;
    val->h = all->h;
    val->w = all->w;
    val->classes = all->classes;
    memcpy(train->name, all->name, sizeof train->name);
    memcpy(val->name, all->name, sizeof val->name);
    tq_dataset_free(all);
done:
    free(perm);
    free(in_val);
    return st;
}

void tq_dataset_stats(const tq_dataset *d, float *mean, float *std)
{
    /* A histogram per channel makes the sums exact; mean and variance then come from 256
     * bins in double. */
    size_t plane = (size_t)d->h * (size_t)d->w;
    for (int32_t c = 0; c < d->c; c++) {
        int64_t hist[256] = {0};
        for (int64_t i = 0; i < d->n; i++) {
            const uint8_t *p = d->images + ((size_t)i * (size_t)d->c + (size_t)c) * plane;
            for (size_t k = 0; k < plane; k++) hist[p[k]]++;
        }
        double count = (double)d->n * (double)plane;
        if (count == 0) {
            mean[c] = 0.0f;
            std[c] = 0.0f;
            continue;
        }
        double m = 0;
        for (int v = 0; v < 256; v++) m += (double)hist[v] * (v / 255.0);
        m /= count;
        double var = 0;
        for (int v = 0; v < 256; v++) var += (double)hist[v] * (v / 255.0 - m) * (v / 255.0 - m);
        mean[c] = (float)m;
        std[c] = (float)sqrt(var / count);
    }
}
