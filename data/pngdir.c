/* PNG folders: one sub-folder per class (class index = sorted order of the sub-folder
 * names), every file in them a PNG of one common size and channel count. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "png_read.h"

typedef struct name_list {
    char **names;
    size_t n, cap;
} name_list;

static void names_free(name_list *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof *l);
}

static char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (!p) return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

static int cmp_names(const void *a, const void *b)
{
    /* strcmp, not strcoll: class indices must not depend on the locale. */
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The non-hidden entries of dir that are folders (want_dirs) or files, sorted by name. */
static tq_status list_dir(const char *dir, bool want_dirs, name_list *out, tq_error *err)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d)
        return tq_fail(err, TQ_STATUS_IO, "pngdir: %s: cannot open folder: %s", dir,
                       strerror(errno));
    tq_status st = TQ_STATUS_OK;
    struct dirent *e;
    while (st == TQ_STATUS_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *full = path_join(dir, e->d_name);
        struct stat sb;
        if (!full) {
            st = tq_fail(err, TQ_STATUS_NOMEM, "pngdir: %s: out of memory", dir);
            break;
        }
        bool is_dir = stat(full, &sb) == 0 && S_ISDIR(sb.st_mode);
        free(full);
        if (is_dir != want_dirs) continue;
        if (out->n == out->cap) {
            size_t cap = out->cap ? 2 * out->cap : 16;
            char **grown = realloc(out->names, cap * sizeof *grown);
            if (!grown) {
                st = tq_fail(err, TQ_STATUS_NOMEM, "pngdir: %s: out of memory", dir);
                break;
            }
            out->names = grown;
            out->cap = cap;
        }
        out->names[out->n] = strdup(e->d_name);
        if (!out->names[out->n])
            st = tq_fail(err, TQ_STATUS_NOMEM, "pngdir: %s: out of memory", dir);
        else
            out->n++;
    }
    closedir(d);
    if (st) {
        names_free(out);
        return st;
    }
    if (out->n > 1) qsort(out->names, out->n, sizeof *out->names, cmp_names);
    return TQ_STATUS_OK;
}

/* Every image path of the folder with its class, in class order then name order. */
static tq_status collect(const char *dir, name_list *paths, uint8_t **labels, int32_t *classes,
                         tq_error *err)
{
    name_list cls;
    tq_status st = list_dir(dir, true, &cls, err);
    if (st) return st;
    memset(paths, 0, sizeof *paths);
    *labels = NULL;
    if (cls.n == 0)
        st = tq_fail(err, TQ_STATUS_FORMAT, "pngdir: %s: no class sub-folders", dir);
    else if (cls.n > 256)
        st = tq_fail(err, TQ_STATUS_FORMAT, "pngdir: %s: %zu class sub-folders (at most 256)",
                     dir, cls.n);
    for (size_t k = 0; k < cls.n && st == TQ_STATUS_OK; k++) {
        char *sub = path_join(dir, cls.names[k]);
        name_list files;
        st = sub ? list_dir(sub, false, &files, err)
                 : tq_fail(err, TQ_STATUS_NOMEM, "pngdir: out of memory");
        if (st == TQ_STATUS_OK && files.n == 0)
            st = tq_fail(err, TQ_STATUS_FORMAT, "pngdir: %s: no images in class folder", sub);
        if (st == TQ_STATUS_OK) {
            char **grown = realloc(paths->names, (paths->n + files.n) * sizeof *grown);
            uint8_t *lgrown = realloc(*labels, paths->n + files.n);
            if (grown) paths->names = grown;
            if (lgrown) *labels = lgrown;
            if (!grown || !lgrown) st = tq_fail(err, TQ_STATUS_NOMEM, "pngdir: out of memory");
            for (size_t i = 0; i < files.n && st == TQ_STATUS_OK; i++) {
                char *p = path_join(sub, files.names[i]);
                if (!p) {
                    st = tq_fail(err, TQ_STATUS_NOMEM, "pngdir: out of memory");
                    break;
                }
                (*labels)[paths->n] = (uint8_t)k;
                paths->names[paths->n++] = p;
            }
            paths->cap = paths->n;
        }
        if (sub) names_free(&files);
        free(sub);
    }
    *classes = (int32_t)cls.n;
    names_free(&cls);
    if (st) {
        names_free(paths);
        free(*labels);
        *labels = NULL;
    }
    return st;
}

/* Interleaved HWC pixels into the dataset's CHW layout. */
static void store_chw(const tq_png_image *img, uint8_t *dst)
{
    size_t plane = (size_t)img->h * (size_t)img->w;
    for (int32_t c = 0; c < img->c; c++)
        for (size_t p = 0; p < plane; p++)
            dst[(size_t)c * plane + p] = img->pixels[p * (size_t)img->c + (size_t)c];
}

tq_status tq_load_pngdir(const char *dir, tq_dataset *out, tq_error *err)
{
    if (!out) return tq_fail(err, TQ_STATUS_ARG, "pngdir: out is NULL");
    memset(out, 0, sizeof *out);
    if (!dir) return tq_fail(err, TQ_STATUS_ARG, "pngdir: folder is NULL");
    name_list paths;
    uint8_t *labels;
    int32_t classes;
    tq_status st = collect(dir, &paths, &labels, &classes, err);
    if (st) return st;
    tq_png_image first;
    st = tq_png_read(paths.names[0], &first, err);
    if (st == TQ_STATUS_OK)
        st = tq_dataset_alloc(out, (int64_t)paths.n, first.c, first.h, first.w, classes,
                              "pngdir", paths.names[0], err);
    if (st == TQ_STATUS_OK) store_chw(&first, out->images);
    size_t sz = st == TQ_STATUS_OK ? tq_dataset_image_bytes(out) : 0;
    for (size_t i = 1; i < paths.n && st == TQ_STATUS_OK; i++) {
        tq_png_image img;
        st = tq_png_read(paths.names[i], &img, err);
        if (st) break;
        if (img.w != first.w || img.h != first.h || img.c != first.c)
            st = tq_fail(err, TQ_STATUS_FORMAT,
                         "pngdir: %s: size %dx%d with %d channel(s) differs from %dx%d with "
                         "%d channel(s) of %s", paths.names[i], img.w, img.h, img.c, first.w,
                         first.h, first.c, paths.names[0]);
        else
            store_chw(&img, out->images + i * sz);
        tq_png_free(&img);
    }
    tq_png_free(&first);
    if (st == TQ_STATUS_OK) {
        memcpy(out->labels, labels, paths.n);
        snprintf(out->name, sizeof out->name, "pngdir");
    } else {
        tq_dataset_free(out);
    }
    names_free(&paths);
    free(labels);
    return st;
}
