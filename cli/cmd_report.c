/* `tinyqat report RUN.json`: redraws a report from the figures a --report run saved, into the
 * same folder or another one. */
#include "cli.h"
#include "report_out.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const tq_cli_opt report_opts[] = {
    {"out", "DIR", "folder to draw into (default: the folder RUN.json is in)"},
    {0},
};
static const tq_cli_cmd report_cmd = {
    "report", "RUN.json [--out DIR]",
    "Redraw a report (index.html and one SVG a figure) from the report.json that\n"
    "`compare`, `ptq`, `qat` or `sensitivity` wrote with --report DIR.",
    report_opts, 1};

#define MAX_BYTES (256L << 20)

/* The whole file, NUL-terminated, or NULL with err naming the path. */
static char *read_all(const char *path, size_t *len, tq_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        tq_fail(err, TQ_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        if (cap > (size_t)MAX_BYTES) {
            free(buf);
            buf = NULL;
            tq_fail(err, TQ_STATUS_FORMAT, "%s: larger than %ld MB, not a report", path, MAX_BYTES >> 20);
            break;
        }
        char *grown = realloc(buf, cap *= 2);
        if (!grown) free(buf);
        buf = grown;
    }
    bool failed = ferror(f);
    fclose(f);
    if (!buf) {
        tq_fail(err, TQ_STATUS_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    if (failed) {
        free(buf);
        tq_fail(err, TQ_STATUS_IO, "%s: read error", path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int tq_cmd_report(int argc, char **argv)
{
    const tq_cli_cmd *cmd = &report_cmd;
    tq_cli_args a;
    int rc = tq_cli_parse(cmd, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    if (a.n_positional != 1) return tq_cli_usage_error(cmd, "expected one RUN.json");
    const char *path = a.positional[0], *out = tq_cli_get(cmd, &a, "out");
    char dir[4096];
    if (!out) { /* beside the JSON */
        const char *slash = strrchr(path, '/');
        if (slash && slash - path >= (long)sizeof dir)
            return tq_cli_usage_error(cmd, "%s: path too long", path);
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
        if (slash == path) snprintf(dir, sizeof dir, "/");
        out = dir;
    }
    tq_error err = {0};
    if (tq_report_check_dir(out, &err)) return tq_cli_fail(cmd, &err);
    size_t len = 0;
    char *text = read_all(path, &len, &err);
    if (!text) return tq_cli_fail(cmd, &err);
    tq_report r;
    tq_error e = {0};
    if (tq_report_from_json(text, len, &r, &e)) {
        tq_fail(&err, e.status, "%s: %s", path, e.msg);
        rc = tq_cli_fail(cmd, &err);
    } else if (tq_report_finish(&r, out, &err)) {
        rc = tq_cli_fail(cmd, &err);
    }
    free(text);
    return rc;
}
