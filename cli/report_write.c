/* --report DIR: the folder is made (and checked writable) before any work, and at the end
 * gets index.html, one SVG a figure and report.json, each written atomically. */
#include "checkpoint.h"
#include "report_out.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

tq_status tq_report_check_dir(const char *dir, tq_error *err)
{
    if (!dir || !*dir) return tq_fail(err, TQ_STATUS_ARG, "report folder: empty path");
    struct stat st;
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
        return tq_fail(err, TQ_STATUS_IO, "report folder %s: exists and is not a folder", dir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return tq_fail(err, TQ_STATUS_IO, "report folder %s: cannot create it: %s", dir,
                       strerror(errno));
    char path[4096];
    if (snprintf(path, sizeof path, "%s/index.html", dir) >= (int)sizeof path)
        return tq_fail(err, TQ_STATUS_ARG, "report folder %s: path too long", dir);
    return tq_check_writable(path, "report page", err);
}

static tq_status write_one(const char *dir, const char *name, const char *ext, const char *data,
                           size_t len, tq_error *err)
{
    char path[4096];
    if (!data) return tq_fail(err, TQ_STATUS_NOMEM, "report %s/%s%s: out of memory", dir, name, ext);
    if (snprintf(path, sizeof path, "%s/%s%s", dir, name, ext) >= (int)sizeof path)
        return tq_fail(err, TQ_STATUS_ARG, "report folder %s: path too long", dir);
    tq_error e = {0};
    if (tq_write_file_atomic(path, data, len, &e)) return tq_fail(err, e.status, "report %s", e.msg);
    return TQ_STATUS_OK;
}

/* Draws from report.json's own text read back, so that `tinyqat report` redraws the same
 * bytes (the JSON keeps 7 digits: a figure drawn from the full values could differ by a
 * rounding in a pixel). */
tq_status tq_report_write(const tq_report *built, const char *dir, int64_t *skipped, tq_error *err)
{
    if (built->failed)
        return tq_fail(err, TQ_STATUS_NOMEM, "report %s: out of memory while drawing", dir);
    size_t json_len = 0, len = 0;
    char *json = tq_report_to_json(built, &json_len);
    tq_report read_back, *r = &read_back;
    tq_error e = {0};
    if (!json) return tq_fail(err, TQ_STATUS_NOMEM, "report %s: out of memory", dir);
    if (tq_report_from_json(json, json_len, &read_back, &e)) {
        free(json);
        return tq_fail(err, e.status, "report %s: its own report.json does not read back: %s", dir, e.msg);
    }
    tq_status st = TQ_STATUS_OK;
    for (int f = 0; !st && f < r->n_figs; f++) {
        char *svg = tq_figure_svg(&r->figs[f], &len, NULL);
        /* The file stands alone: an XML declaration ahead of the inline document. */
        static const char decl[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
        char *doc = svg ? malloc(sizeof decl + len) : NULL;
        if (doc) {
            memcpy(doc, decl, sizeof decl - 1);
            memcpy(doc + sizeof decl - 1, svg, len + 1);
        }
        st = write_one(dir, r->figs[f].id, ".svg", doc, sizeof decl - 1 + len, err);
        free(doc);
        free(svg);
    }
    int64_t n_skipped = 0;
    char *text = st ? NULL : tq_report_html(r, &len, &n_skipped);
    if (!st) st = write_one(dir, "index", ".html", text, len, err);
    free(text);
    if (!st) st = write_one(dir, "report", ".json", json, json_len, err);
    free(json);
    tq_report_free(&read_back);
    if (skipped) *skipped = n_skipped;
    return st;
}
