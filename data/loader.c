/* Batches for training: normalisation through per-channel lookup tables, a seeded
 * permutation per epoch and CIFAR-style augmentation (4-pixel zero-padded random crop and
 * horizontal flip), all determined by (seed, epoch, batch) so resumed runs match. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"

#define AUG_PAD 4

struct tq_loader {
    const tq_dataset *d;
    tq_loader_config cfg;
    int64_t epoch;
    int64_t *order;       /* (n) image index of each position in the epoch */
    float lut[4][256];    /* lut[c][p] = (p/255 - mean[c]) / std[c] */
};

/* splitmix64's finaliser: decorrelates nearby inputs such as consecutive epochs. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Distinct streams for shuffling and for the augmentation of each batch. */
static uint64_t stream_seed(uint64_t seed, uint64_t stream, int64_t epoch, int64_t batch)
{
    uint64_t h = mix64(seed ^ stream);
    h = mix64(h + 0x9e3779b97f4a7c15ull * (uint64_t)epoch);
    return mix64(h + 0xd1b54a32d192ed03ull * (uint64_t)batch);
}

#define STREAM_SHUFFLE 0x5348554646u
#define STREAM_AUGMENT 0x4155474du

tq_loader *tq_loader_new(const tq_dataset *d, const tq_loader_config *cfg, tq_error *err)
{
    if (!d || !cfg) {
        tq_fail(err, TQ_STATUS_ARG, "loader: dataset and config must not be NULL");
        return NULL;
    }
    if (d->n < 1 || !d->images || !d->labels) {
        tq_fail(err, TQ_STATUS_ARG, "loader: dataset '%s' is empty", d->name);
        return NULL;
    }
    if (d->c < 1 || d->c > 4 || d->h < 1 || d->w < 1) {
        tq_fail(err, TQ_STATUS_ARG, "loader: dataset '%s': images %dx%dx%d (expected 1..4 "
                "channels)", d->name, d->c, d->h, d->w);
        return NULL;
    }
    if (cfg->batch < 1) {
        tq_fail(err, TQ_STATUS_ARG, "loader: batch %d (expected >= 1)", cfg->batch);
        return NULL;
    }
    for (int32_t c = 0; c < d->c; c++)
        if (!(cfg->std[c] > 0.0f) || !isfinite(cfg->std[c]) || !isfinite(cfg->mean[c])) {
            tq_fail(err, TQ_STATUS_ARG, "loader: channel %d: mean %g, std %g (expected finite, "
                    "std > 0)", c, (double)cfg->mean[c], (double)cfg->std[c]);
            return NULL;
        }
    tq_loader *l = calloc(1, sizeof *l);
    if (l) l->order = malloc((size_t)d->n * sizeof *l->order);
    if (!l || !l->order) {
        tq_loader_free(l);
        tq_fail(err, TQ_STATUS_NOMEM, "loader: out of memory for %lld images", (long long)d->n);
        return NULL;
    }
    l->d = d;
    l->cfg = *cfg;
    for (int32_t c = 0; c < d->c; c++)
        for (int p = 0; p < 256; p++)
            l->lut[c][p] = ((float)p / 255.0f - cfg->mean[c]) / cfg->std[c];
    tq_loader_start_epoch(l, 0);
    return l;
}

void tq_loader_free(tq_loader *l)
{
    if (!l) return;
    free(l->order);
    free(l);
}

int64_t tq_loader_batch_count(const tq_loader *l)
{
    int64_t b = l->cfg.batch;
    return l->cfg.drop_last ? l->d->n / b : (l->d->n + b - 1) / b;
}

static uint64_t rng_below64(tq_rng *rng, uint64_t n)
{
    if (n <= UINT32_MAX) return tq_rng_below(rng, (uint32_t)n);
    uint64_t r = ((uint64_t)tq_rng_u32(rng) << 32) | tq_rng_u32(rng);
    return r % n;
}

void tq_loader_start_epoch(tq_loader *l, int64_t epoch)
{
    l->epoch = epoch;
    int64_t n = l->d->n;
    /* Always from the identity, so the order depends on (seed, epoch) and not on which
     * epochs ran before. */
    for (int64_t i = 0; i < n; i++) l->order[i] = i;
    if (!l->cfg.shuffle) return;
    tq_rng rng;
    tq_rng_seed(&rng, stream_seed(l->cfg.seed, STREAM_SHUFFLE, epoch, 0));
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)rng_below64(&rng, (uint64_t)i + 1);
        int64_t t = l->order[i];
        l->order[i] = l->order[j];
        l->order[j] = t;
    }
}

/* One image through a crop at offset (dy, dx) of the zero-padded image (each in
 * 0..2*AUG_PAD) and an optional horizontal flip; padding reads as pixel value 0 before
 * normalisation, as when the padding is applied to the raw image. */
static void fill_augmented(const tq_loader *l, const uint8_t *src, int dy, int dx, bool flip,
                           float *dst)
{
    const int32_t h = l->d->h, w = l->d->w;
    for (int32_t c = 0; c < l->d->c; c++) {
        const float *lut = l->lut[c];
        const uint8_t *plane = src + (size_t)c * (size_t)h * (size_t)w;
        float *out = dst + (size_t)c * (size_t)h * (size_t)w;
        for (int32_t y = 0; y < h; y++, out += w) {
            int32_t sy = y + dy - AUG_PAD;
            if (sy < 0 || sy >= h) {
                for (int32_t x = 0; x < w; x++) out[x] = lut[0];
                continue;
            }
            const uint8_t *row = plane + (size_t)sy * (size_t)w;
            /* Output column x reads source column sx = (flip ? w-1-x : x) + dx - AUG_PAD. */
            for (int32_t x = 0; x < w; x++) {
                int32_t sx = (flip ? w - 1 - x : x) + dx - AUG_PAD;
                out[x] = (sx >= 0 && sx < w) ? lut[row[sx]] : lut[0];
            }
        }
    }
}

int32_t tq_loader_fill(tq_loader *l, int64_t i, float *x, int32_t *labels)
{
    if (i < 0 || i >= tq_loader_batch_count(l)) return 0;
    const tq_dataset *d = l->d;
    int64_t start = i * l->cfg.batch;
    int64_t count = d->n - start < l->cfg.batch ? d->n - start : l->cfg.batch;
    size_t plane = (size_t)d->h * (size_t)d->w, img = (size_t)d->c * plane;
    tq_rng rng;
    if (l->cfg.augment) tq_rng_seed(&rng, stream_seed(l->cfg.seed, STREAM_AUGMENT, l->epoch, i));
    for (int64_t k = 0; k < count; k++) {
        int64_t idx = l->order[start + k];
        const uint8_t *src = d->images + (size_t)idx * img;
        float *dst = x + (size_t)k * img;
        labels[k] = d->labels[idx];
        if (l->cfg.augment) {
            int dy = (int)tq_rng_below(&rng, 2 * AUG_PAD + 1);
            int dx = (int)tq_rng_below(&rng, 2 * AUG_PAD + 1);
            bool flip = tq_rng_below(&rng, 2) != 0;
            fill_augmented(l, src, dy, dx, flip, dst);
            continue;
        }
        for (int32_t c = 0; c < d->c; c++) {
            const float *lut = l->lut[c];
            const uint8_t *s = src + (size_t)c * plane;
            float *o = dst + (size_t)c * plane;
            for (size_t p = 0; p < plane; p++) o[p] = lut[s[p]];
        }
    }
    return (int32_t)count;
}
