/* IDX files (MNIST, Fashion-MNIST): big-endian headers, uint8 images and labels, read
 * through zlib so raw and gzipped files load alike. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data_internal.h"

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_CLASSES 10
/* Counts beyond this are a corrupt header, not a data set. */
#define IDX_MAX_COUNT 0x7fffffffu

/* Reads exactly len bytes; false on a short read or a decompression error (with the
 * reason in why). */
static bool read_exact(gzFile f, void *dst, size_t len, size_t *got, const char **why)
{
    *got = 0;
    *why = "truncated";
    while (*got < len) {
        size_t chunk = len - *got;
        if (chunk > (1u << 30)) chunk = 1u << 30;
        int r = gzread(f, (uint8_t *)dst + *got, (unsigned)chunk);
        if (r < 0) {
            int errnum;
            *why = gzerror(f, &errnum);
            return false;
        }
        if (r == 0) return false;
        *got += (size_t)r;
    }
    return true;
}

static tq_status open_idx(const char *path, gzFile *f, tq_error *err)
{
    errno = 0;
    *f = gzopen(path, "rb");
    if (!*f)
        return tq_fail(err, TQ_STATUS_IO, "idx: %s: cannot open: %s", path,
                       errno ? strerror(errno) : "out of memory");
    return TQ_STATUS_OK;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads the magic and the n_dims big-endian 32-bit sizes that follow it. The magic is
 * checked before the sizes are read, so a file of the wrong kind is reported as such. */
static tq_status read_header(gzFile f, const char *path, uint32_t magic, uint32_t *dims,
                             int n_dims, tq_error *err)
{
    uint8_t h[16];
    size_t len = 4 * (size_t)(1 + n_dims), got, more = 0;
    const char *why;
    bool ok = read_exact(f, h, 4, &got, &why);
    if (ok && be32(h) != magic)
        return tq_fail(err, TQ_STATUS_FORMAT, "idx: %s: bad magic 0x%08x (expected 0x%08x)",
                       path, be32(h), magic);
    if (ok) ok = read_exact(f, h + 4, len - 4, &more, &why);
    if (!ok)
        return tq_fail(err, TQ_STATUS_FORMAT, "idx: %s: %s header (%zu of %zu bytes)", path,
                       why, got + more, len);
    for (int i = 0; i < n_dims; i++) dims[i] = be32(h + 4 * (i + 1));
    return TQ_STATUS_OK;
}

/* Reads len bytes into a buffer that grows as data arrives, so a header that claims more
 * than the file holds fails as truncated instead of reserving the claimed size up front. */
static tq_status read_body(gzFile f, const char *path, const char *what, size_t len,
                           uint8_t **out, tq_error *err)
{
    size_t cap = len < (1u << 24) ? len : (1u << 24), got = 0;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf) return tq_fail(err, TQ_STATUS_NOMEM, "idx: %s: out of memory", path);
    while (got < len) {
        if (got == cap) {
            size_t next = cap > len / 2 ? len : cap * 2;
            uint8_t *grown = realloc(buf, next);
            if (!grown) {
                free(buf);
                return tq_fail(err, TQ_STATUS_NOMEM, "idx: %s: out of memory for %zu bytes",
                               path, len);
            }
            buf = grown;
            cap = next;
        }
        size_t n;
        const char *why;
        bool ok = read_exact(f, buf + got, cap - got, &n, &why);
        got += n;
        if (!ok) {
            free(buf);
            return tq_fail(err, TQ_STATUS_FORMAT, "idx: %s: %s %s (%zu of %zu bytes)", path,
                           why, what, got, len);
        }
    }
    *out = buf;
    return TQ_STATUS_OK;
}

static tq_status load_images(const char *path, uint32_t *count, uint32_t *rows, uint32_t *cols,
                             uint8_t **pixels, tq_error *err)
{
    gzFile f;
    tq_status st = open_idx(path, &f, err);
    if (st) return st;
    uint32_t dims[3] = {0};
    st = read_header(f, path, IDX_MAGIC_IMAGES, dims, 3, err);
    if (st == TQ_STATUS_OK) {
        size_t bytes;
        *count = dims[0];
        *rows = dims[1];
        *cols = dims[2];
        if (__builtin_mul_overflow((size_t)dims[0], (size_t)dims[1], &bytes) ||
            __builtin_mul_overflow(bytes, (size_t)dims[2], &bytes) || bytes > (size_t)INT64_MAX)
            st = tq_fail(err, TQ_STATUS_FORMAT, "idx: %s: dimensions %u x %u x %u overflow",
                         path, dims[0], dims[1], dims[2]);
        else if (dims[0] == 0 || dims[1] == 0 || dims[2] == 0 || dims[0] > IDX_MAX_COUNT ||
                 dims[1] > TQ_DATA_MAX_SIDE || dims[2] > TQ_DATA_MAX_SIDE)
            st = tq_fail(err, TQ_STATUS_FORMAT,
                         "idx: %s: absurd dimensions %u x %u x %u (expected 1..%u images of "
                         "sides 1..%d)", path, dims[0], dims[1], dims[2], IDX_MAX_COUNT,
                         TQ_DATA_MAX_SIDE);
        else
            st = read_body(f, path, "pixels", bytes, pixels, err);
    }
    gzclose(f);
    return st;
}

static tq_status load_labels(const char *path, uint32_t *count, uint8_t **labels, tq_error *err)
{
    gzFile f;
    tq_status st = open_idx(path, &f, err);
    if (st) return st;
    st = read_header(f, path, IDX_MAGIC_LABELS, count, 1, err);
    if (st == TQ_STATUS_OK && (*count == 0 || *count > IDX_MAX_COUNT))
        st = tq_fail(err, TQ_STATUS_FORMAT, "idx: %s: absurd label count %u (expected 1..%u)",
                     path, *count, IDX_MAX_COUNT);
    if (st == TQ_STATUS_OK) st = read_body(f, path, "labels", *count, labels, err);
    gzclose(f);
    if (st) return st;
    for (uint32_t i = 0; i < *count; i++)
        if ((*labels)[i] >= IDX_CLASSES) {
            st = tq_fail(err, TQ_STATUS_FORMAT,
                         "idx: %s: label %u at index %u out of range (expected < %d)", path,
                         (*labels)[i], i, IDX_CLASSES);
            free(*labels);
            *labels = NULL;
            break;
        }
    return st;
}

tq_status tq_load_idx(const char *images_path, const char *labels_path, tq_dataset *out,
                      tq_error *err)
{
    if (!out) return tq_fail(err, TQ_STATUS_ARG, "idx: out is NULL");
    memset(out, 0, sizeof *out);
    if (!images_path || !labels_path)
        return tq_fail(err, TQ_STATUS_ARG, "idx: images and labels paths must not be NULL");
    uint32_t n_img = 0, rows = 0, cols = 0, n_lbl = 0;
    uint8_t *pixels = NULL, *labels = NULL;
    tq_status st = load_images(images_path, &n_img, &rows, &cols, &pixels, err);
    if (st == TQ_STATUS_OK) st = load_labels(labels_path, &n_lbl, &labels, err);
    if (st == TQ_STATUS_OK && n_img != n_lbl)
        st = tq_fail(err, TQ_STATUS_FORMAT, "idx: %s and %s: %u images but %u labels",
                     images_path, labels_path, n_img, n_lbl);
    if (st) {
        free(pixels);
        free(labels);
        return st;
    }
    out->n = n_img;
    out->c = 1;
    out->h = (int32_t)rows;
    out->w = (int32_t)cols;
    out->classes = IDX_CLASSES;
    out->images = pixels;
    out->labels = labels;
    snprintf(out->name, sizeof out->name, "idx");
    return TQ_STATUS_OK;
}
