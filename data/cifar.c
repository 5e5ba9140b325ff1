/* CIFAR-10 binary batches: 3073-byte records (label, then the 32x32 red, green and blue
 * planes), several files concatenated into one dataset. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data_internal.h"

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_CLASSES 10

static tq_status record_count(const char *path, int64_t *count, tq_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return tq_fail(err, TQ_STATUS_IO, "cifar10: %s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return tq_fail(err, TQ_STATUS_IO, "cifar10: %s: not a regular file", path);
    if (sb.st_size == 0 || sb.st_size % CIFAR_RECORD != 0)
        return tq_fail(err, TQ_STATUS_FORMAT,
                       "cifar10: %s: size %lld bytes is not a positive multiple of the "
                       "%d-byte record", path, (long long)sb.st_size, CIFAR_RECORD);
    *count = sb.st_size / CIFAR_RECORD;
    return TQ_STATUS_OK;
}

/* Reads `count` records of one file into images/labels starting at image `first`. */
static tq_status read_records(const char *path, int64_t count, tq_dataset *d, int64_t first,
                              tq_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return tq_fail(err, TQ_STATUS_IO, "cifar10: %s: cannot open: %s", path, strerror(errno));
    tq_status st = TQ_STATUS_OK;
    uint8_t rec[CIFAR_RECORD];
    for (int64_t i = 0; i < count && st == TQ_STATUS_OK; i++) {
        if (fread(rec, 1, sizeof rec, f) != sizeof rec)
            st = tq_fail(err, TQ_STATUS_IO, "cifar10: %s: short read at record %lld", path,
                         (long long)i);
        else if (rec[0] >= CIFAR_CLASSES)
            st = tq_fail(err, TQ_STATUS_FORMAT,
                         "cifar10: %s: label %u at record %lld out of range (expected < %d)",
                         path, rec[0], (long long)i, CIFAR_CLASSES);
        else {
            /* The record's planes are already CHW. */
            d->labels[first + i] = rec[0];
            memcpy(d->images + (size_t)(first + i) * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
        }
    }
    fclose(f);
    return st;
}

tq_status tq_load_cifar10(const char *const *paths, int n_paths, tq_dataset *out, tq_error *err)
{
    if (!out) return tq_fail(err, TQ_STATUS_ARG, "cifar10: out is NULL");
    memset(out, 0, sizeof *out);
    if (!paths || n_paths < 1)
        return tq_fail(err, TQ_STATUS_ARG, "cifar10: no batch files given (n_paths %d)", n_paths);
    int64_t *counts = malloc((size_t)n_paths * sizeof *counts);
    if (!counts) return tq_fail(err, TQ_STATUS_NOMEM, "cifar10: out of memory");
    int64_t total = 0;
    tq_status st = TQ_STATUS_OK;
    for (int p = 0; p < n_paths && st == TQ_STATUS_OK; p++) {
        if (!paths[p])
            st = tq_fail(err, TQ_STATUS_ARG, "cifar10: path %d is NULL", p);
        else
            st = record_count(paths[p], &counts[p], err);
        if (st == TQ_STATUS_OK) total += counts[p];
    }
    if (st == TQ_STATUS_OK)
        st = tq_dataset_alloc(out, total, 3, CIFAR_SIDE, CIFAR_SIDE, CIFAR_CLASSES, "cifar10",
                              paths[0], err);
    for (int64_t p = 0, first = 0; p < n_paths && st == TQ_STATUS_OK; first += counts[p++])
        st = read_records(paths[p], counts[p], out, first, err);
    free(counts);
    if (st) {
        tq_dataset_free(out);
        return st;
    }
    snprintf(out->name, sizeof out->name, "cifar10");
    return TQ_STATUS_OK;
}
