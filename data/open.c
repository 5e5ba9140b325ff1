/* tq_dataset_open: data set specs ("mnist:DIR", "fashion-mnist[:DIR]", "cifar10:DIR[:test_batch]",
 * "pngdir:DIR") resolved to files and loaded. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data_internal.h"

#define SPEC_FORMS "mnist:DIR, fashion-mnist, fashion-mnist:DIR, cifar10:DIR, " \
                   "cifar10:DIR:test_batch, pngdir:DIR"

static bool is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Formats a path into buf; false (with an error) when it does not fit. */
static bool make_path(tq_error *err, char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool make_path(tq_error *err, char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    if (r < 0 || (size_t)r >= len) {
        tq_fail(err, TQ_STATUS_ARG, "dataset: path too long: %.200s...", buf);
        return false;
    }
    return true;
}

/* DIR/base.gz when it exists, else DIR/base when that exists. */
static tq_status find_idx(const char *kind, const char *dir, const char *base, char *path,
                          size_t len, tq_error *err)
{
    if (!make_path(err, path, len, "%s/%s.gz", dir, base)) return TQ_STATUS_ARG;
    if (is_file(path)) return TQ_STATUS_OK;
    if (!make_path(err, path, len, "%s/%s", dir, base)) return TQ_STATUS_ARG;
    if (is_file(path)) return TQ_STATUS_OK;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return tq_fail(err, TQ_STATUS_IO, "%s: %s: is a directory (expected a file)", kind, path);
    return tq_fail(err, TQ_STATUS_IO, "%s: %s: neither %s.gz nor %s found", kind, dir, base, base);
}

static tq_status open_idx_dir(const char *kind, const char *dir, tq_split split,
                              tq_dataset *out, tq_error *err)
{
    const char *prefix = split == TQ_SPLIT_TRAIN ? "train" : "t10k";
    char base[64], images[4096], labels[4096];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
    tq_status st = find_idx(kind, dir, base, images, sizeof images, err);
    if (st) return st;
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
    st = find_idx(kind, dir, base, labels, sizeof labels, err);
    if (st) return st;
    return tq_load_idx(images, labels, out, err);
}

static tq_status open_cifar_dir(const char *dir, bool official_test, tq_split split,
                                tq_dataset *out, tq_error *err)
{
    char names[4][4096];
    const char *paths[4];
    int n = 0;
    bool ok = true;
    if (split == TQ_SPLIT_TRAIN)
        for (n = 0; n < 4 && ok; n++)
            ok = make_path(err, names[n], sizeof names[n], "%s/data_batch_%d.bin", dir, n + 1);
    else
        ok = make_path(err, names[n++], sizeof names[0], "%s/%s.bin", dir,
                       official_test ? "test_batch" : "data_batch_5");
    if (!ok) return TQ_STATUS_ARG;
    for (int i = 0; i < n; i++) paths[i] = names[i];
    return tq_load_cifar10(paths, n, out, err);
}

static tq_status open_pngdir(const char *dir, tq_split split, tq_dataset *out, tq_error *err)
{
    char sub[4096];
    if (!make_path(err, sub, sizeof sub, "%s/%s", dir, split == TQ_SPLIT_TRAIN ? "train" : "test"))
        return TQ_STATUS_ARG;
    return tq_load_pngdir(is_dir(sub) ? sub : dir, out, err);
}

/* The rest of spec after "kind:", or NULL when spec is not of that kind. */
static const char *after_kind(const char *spec, const char *kind)
{
    size_t k = strlen(kind);
    return strncmp(spec, kind, k) == 0 && spec[k] == ':' ? spec + k + 1 : NULL;
}

tq_status tq_dataset_open(const char *spec, tq_split split, tq_dataset *out, tq_error *err)
{
    if (!out) return tq_fail(err, TQ_STATUS_ARG, "dataset: out is NULL");
    memset(out, 0, sizeof *out);
    if (!spec) return tq_fail(err, TQ_STATUS_ARG, "dataset: spec is NULL (expected " SPEC_FORMS ")");
    if (split != TQ_SPLIT_TRAIN && split != TQ_SPLIT_TEST)
        return tq_fail(err, TQ_STATUS_ARG, "dataset: %s: unknown split %d", spec, (int)split);
    char dir[4096];
    const char *rest, *name;
    tq_status st;
    const char *colon = strchr(spec, ':');
    if (colon && colon[1] == '\0')
        return tq_fail(err, TQ_STATUS_ARG, "dataset: %s: missing folder after ':' (expected "
                       SPEC_FORMS ")", spec);
    if (strcmp(spec, "fashion-mnist") == 0 || (rest = after_kind(spec, "fashion-mnist"))) {
        name = "fashion-mnist";
        st = open_idx_dir(name, strcmp(spec, name) == 0 ? TQ_FASHION_MNIST_DIR : rest, split,
                          out, err);
    } else if ((rest = after_kind(spec, "mnist"))) {
        name = "mnist";
        st = open_idx_dir(name, rest, split, out, err);
    } else if ((rest = after_kind(spec, "cifar10"))) {
        name = "cifar10";
        /* The suffix is matched at the end so that DIR itself may contain colons. */
        const char *suffix = ":test_batch";
        size_t lr = strlen(rest), ls = strlen(suffix);
        bool official = lr >= ls && strcmp(rest + lr - ls, suffix) == 0;
        size_t ld = official ? lr - ls : lr;
        if (ld == 0)
            return tq_fail(err, TQ_STATUS_ARG, "dataset: %s: missing folder (expected " SPEC_FORMS
                           ")", spec);
        if (ld >= sizeof dir)
            return tq_fail(err, TQ_STATUS_ARG, "dataset: %s: folder name too long", spec);
        memcpy(dir, rest, ld);
        dir[ld] = '\0';
        st = open_cifar_dir(dir, official, split, out, err);
    } else if ((rest = after_kind(spec, "pngdir"))) {
        name = "pngdir";
        st = open_pngdir(rest, split, out, err);
    } else {
        return tq_fail(err, TQ_STATUS_ARG, "dataset: unknown spec '%s' (expected one of " SPEC_FORMS ")",
                       spec);
    }
    if (st == TQ_STATUS_OK) snprintf(out->name, sizeof out->name, "%s", name);
    return st;
}
