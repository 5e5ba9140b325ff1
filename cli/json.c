/* A small JSON writer for --json output. */
#include "cli.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void put(tq_json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(tq_json *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (j->len + (size_t)n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 1024;
        while (cap < j->len + (size_t)n + 1) cap *= 2;
        char *b = realloc(j->buf, cap);
        if (!b) return;
        j->buf = b;
        j->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(j->buf + j->len, j->cap - j->len, fmt, ap);
    va_end(ap);
    j->len += (size_t)n;
}

static void put_string(tq_json *j, const char *s)
{
    put(j, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') put(j, "\\%c", c);
        else if (c < 0x20) put(j, "\\u%04x", c);
        else put(j, "%c", c);
    }
    put(j, "\"");
}

void tq_json_key(tq_json *j, const char *key)
{
    if (j->need_comma[j->depth]) put(j, ",");
    j->need_comma[j->depth] = true;
    put(j, "\n%*s", 2 * j->depth, "");
    if (key) {
        put_string(j, key);
        put(j, ": ");
    }
}

void tq_json_begin(tq_json *j)
{
    memset(j, 0, sizeof *j);
    put(j, "{");
    j->depth = 1;
}

void tq_json_str(tq_json *j, const char *key, const char *v)
{
    tq_json_key(j, key);
    put_string(j, v);
}

void tq_json_num(tq_json *j, const char *key, double v)
{
    tq_json_key(j, key);
    if (isfinite(v)) put(j, "%.10g", v);
    else put(j, "null");
}

void tq_json_int(tq_json *j, const char *key, long long v)
{
    tq_json_key(j, key);
    put(j, "%lld", v);
}

void tq_json_nums(tq_json *j, const char *key, const double *v, int64_t n)
{
    tq_json_key(j, key);
    put(j, "[");
    for (int64_t i = 0; i < n; i++) {
        if (isfinite(v[i])) put(j, i ? ",%.7g" : "%.7g", v[i]);
        else put(j, i ? ",null" : "null");
    }
    put(j, "]");
}

void tq_json_open(tq_json *j, const char *key, char bracket)
{
    tq_json_key(j, key);
    put(j, "%c", bracket);
    TQ_ASSERT(j->depth + 1 < 16);
    j->need_comma[++j->depth] = false;
}

void tq_json_close(tq_json *j, char bracket)
{
    j->depth--;
    put(j, "\n%*s%c", 2 * j->depth, "", bracket == '{' ? '}' : ']');
}

char *tq_json_finish(tq_json *j, size_t *len)
{
    j->depth = 0;
    size_t before = j->len;
    put(j, "\n}\n");
    if (!j->buf || j->len != before + 3) return NULL;
    char *out = j->buf;
    *len = j->len;
    memset(j, 0, sizeof *j);
    return out;
}

tq_status tq_json_save(tq_json *j, const char *path, tq_error *err)
{
    j->depth = 0;
    put(j, "\n}\n");
    if (!j->buf) return tq_fail(err, TQ_STATUS_NOMEM, "JSON output %s: out of memory", path);
    tq_error e = {0};
    if (tq_write_file_atomic(path, j->buf, j->len, &e))
        return tq_fail(err, e.status, "JSON output %s", e.msg);
    return TQ_STATUS_OK;
}

void tq_json_free(tq_json *j)
{
    free(j->buf);
    memset(j, 0, sizeof *j);
}
