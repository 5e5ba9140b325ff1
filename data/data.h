/* tinyqat data: IDX (MNIST, Fashion-MNIST; raw or .gz), CIFAR-10 binary batches and PNG
 * folders loaded into uint8 images; train/validation split; batches as normalised float
 * tensors with seeded shuffling and CIFAR augmentation. */
#ifndef TINYQAT_DATA_H
#define TINYQAT_DATA_H

#include "autograd.h"

/* Fashion-MNIST in shuffled, normalised batches (checks left out):
 *
 *     tq_error err = {0};
 *     tq_dataset train;
 *     tq_dataset_open("fashion-mnist", TQ_SPLIT_TRAIN, &train, &err); // or "mnist:DIR", ...
 *     tq_loader_config cfg = {.batch = 64, .shuffle = true, .seed = 1};
 *     tq_dataset_stats(&train, cfg.mean, cfg.std);     // per-channel mean and std
 *     tq_loader *ld = tq_loader_new(&train, &cfg, &err);
 *     float *x = malloc(sizeof(float) * 64 * train.c * train.h * train.w);
 *     int32_t labels[64];
 *     tq_loader_start_epoch(ld, 0);                    // epoch 0's order, from the seed
 *     for (int64_t i = 0; i < tq_loader_batch_count(ld); i++) {
 *         int32_t n = tq_loader_fill(ld, i, x, labels); // n images (the last batch: fewer)
 *         tq_tensor batch = {.data = x};
 *         tq_shape_set(&batch, 4, (int32_t[]){n, train.c, train.h, train.w});
 *         // tq_model_forward(m, tape, &batch, &rng), a loss against labels, ...
 *     }
 *     tq_loader_free(ld);
 *     free(x);
 *     tq_dataset_free(&train);
 */

#ifdef __cplusplus
extern "C" {
#endif

#define TQ_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* n images of (c,h,w) uint8 pixels, CHW order, and n labels in [0, classes). A zeroed
 * struct is an empty dataset; every loader zeroes `out` first and leaves it empty on error. */
typedef struct tq_dataset {
    int64_t n;
    int32_t c, h, w, classes;
    uint8_t *images;
    uint8_t *labels;
    char name[64];  /* "mnist", "fashion-mnist", "cifar10", "pngdir" */
} tq_dataset;

typedef enum tq_split { TQ_SPLIT_TRAIN, TQ_SPLIT_TEST } tq_split;

/* Raw or gzipped IDX images (magic 0x803) and labels (magic 0x801, values < 10). */
tq_status tq_load_idx(const char *images_path, const char *labels_path, tq_dataset *out,
                      tq_error *err);
/* 3073-byte records (label, R, G, B planes of 32x32) from the files one after another. */
tq_status tq_load_cifar10(const char *const *paths, int n_paths, tq_dataset *out, tq_error *err);
/* One sub-folder per class (class = index in strcmp order of the names; names starting with
 * '.' are skipped), every file in them a PNG of one common size. Grey stays 1 channel; RGB,
 * palette and alpha images give 3 channels (alpha dropped); 16-bit samples are rounded to 8. */
tq_status tq_load_pngdir(const char *dir, tq_dataset *out, tq_error *err);
/* "mnist:DIR", "fashion-mnist[:DIR]", "cifar10:DIR", "pngdir:DIR". For cifar10 the training
 * split is data_batch_1..4 and the test split data_batch_5 (10,000 held-out images);
 * "cifar10:DIR:test_batch" evaluates on test_batch.bin instead. For pngdir both splits are
 * the folder's train/ and test/ sub-folders when present, else the folder itself. */
tq_status tq_dataset_open(const char *spec, tq_split split, tq_dataset *out, tq_error *err);
void tq_dataset_free(tq_dataset *d);
/* Moves a seeded random fraction (round(n * val_fraction), val_fraction in [0,1)) of `all`
 * into val and the rest into train, each keeping the original order; on success all is
 * emptied, on error it is left untouched. */
tq_status tq_dataset_split(tq_dataset *all, double val_fraction, uint64_t seed,
                           tq_dataset *train, tq_dataset *val, tq_error *err);
/* A generated data set (name "generated"): n grey side x side images in `classes` classes,
 * each pixel 128 + signal * (the class's fixed random +-1 pattern) + noise * N(0,1),
 * clamped to 0..255; labels and noise drawn from seed, the patterns the same for every seed. */
typedef struct tq_synthetic_config {
    int64_t n;
    int32_t side, classes;
    float signal, noise;
    uint64_t seed;
} tq_synthetic_config;
tq_status tq_dataset_synthetic(tq_dataset *out, const tq_synthetic_config *cfg, tq_error *err);
/* Per-channel mean and (population) standard deviation of the pixels scaled to [0,1];
 * mean and std hold d->c values. */
void tq_dataset_stats(const tq_dataset *d, float *mean, float *std);

typedef struct tq_loader_config {
    int32_t batch;
    bool shuffle;
    bool augment;        /* random crop with 4-pixel padding of pixel value 0 (normalised
                            like any pixel) + horizontal flip with probability 1/2 */
    bool drop_last;
    uint64_t seed;
    float mean[4], std[4]; /* per-channel normalisation: x = (p/255 - mean) / std */
} tq_loader_config;

/* The loader reads d in place: d must outlive it. All memory is taken here; filling a
 * batch allocates nothing. */
typedef struct tq_loader tq_loader;
tq_loader *tq_loader_new(const tq_dataset *d, const tq_loader_config *cfg, tq_error *err);
void tq_loader_free(tq_loader *l);
int64_t tq_loader_batch_count(const tq_loader *l);
/* The order (and augmentation) of an epoch depends only on (seed, epoch), so a run resumed
 * at an epoch boundary sees the same batches. */
void tq_loader_start_epoch(tq_loader *l, int64_t epoch);
/* Fills x (batch*c*h*w floats) and labels (batch) with batch number i of the epoch; returns
 * how many images it holds (the last batch may be shorter; 0 when i is out of range).
 * Batches of one epoch may be filled in any order. */
int32_t tq_loader_fill(tq_loader *l, int64_t i, float *x, int32_t *labels);

#ifdef __cplusplus
}
#endif
#endif
