/* A small JSON reader for `tinyqat report`: the whole text into a tree of values, with a
 * depth limit, and errors that name the line and what was expected. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32

typedef struct reader {
    const char *s, *end;
    int line;
    tq_error *err;
} reader;

static tq_status fail(reader *r, const char *what)
{
    return tq_fail(r->err, TQ_STATUS_FORMAT, "line %d: expected %s", r->line, what);
}

static void skip_space(reader *r)
{
    while (r->s < r->end && (*r->s == ' ' || *r->s == '\t' || *r->s == '\n' || *r->s == '\r')) {
        if (*r->s == '\n') r->line++;
        r->s++;
    }
}

static bool literal(reader *r, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->s) < n || memcmp(r->s, word, n)) return false;
    r->s += n;
    return true;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* A string after its opening quote, decoded to UTF-8 (a lone surrogate becomes '?'). */
static char *parse_string(reader *r)
{
    size_t cap = 16, n = 0;
    char *out = malloc(cap);
    bool bad = false;
    while (out && !bad && r->s < r->end && *r->s != '"') {
        if (n + 5 > cap) {
            char *grown = realloc(out, cap *= 2);
            if (!grown) {
                bad = true;
                break;
            }
            out = grown;
        }
        unsigned char c = (unsigned char)*r->s++;
        if (c < 0x20) {
            bad = true;
            break;
        }
        if (c != '\\') {
            out[n++] = (char)c;
            continue;
        }
        if (r->s >= r->end) break;
        char e = *r->s++;
        bad = true; /* until the escape proves good */
        const char *simple = strchr("\"\\/bfnrt", e);
        if (simple && e) {
            out[n++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            bad = false;
            continue;
        }
        int u = e == 'u' && r->end - r->s >= 4 ? hex4(r->s) : -1;
        if (u < 0) break;
        bad = false;
        r->s += 4;
        if (u >= 0xD800 && u < 0xE000) u = '?';
        if (u < 0x80) out[n++] = (char)u;
        else if (u < 0x800) out[n++] = (char)(0xC0 | u >> 6), out[n++] = (char)(0x80 | (u & 63));
        else out[n++] = (char)(0xE0 | u >> 12), out[n++] = (char)(0x80 | (u >> 6 & 63)),
             out[n++] = (char)(0x80 | (u & 63));
    }
    if (!out || bad || r->s >= r->end || *r->s != '"') {
        free(out);
        return NULL;
    }
    r->s++;
    out[n] = '\0';
    return out;
}

static tq_status parse_value(reader *r, tq_jv *v, int depth);

/* An array or object after its opening bracket. */
static tq_status parse_container(reader *r, tq_jv *v, int depth, char close)
{
    bool object = close == '}';
    int cap = 0;
    skip_space(r);
    if (r->s < r->end && *r->s == close) {
        r->s++;
        return TQ_STATUS_OK;
    }
    for (;;) {
        if (v->n == cap) {
            cap = cap ? cap * 2 : 8;
            tq_jv *items = realloc(v->items, (size_t)cap * sizeof *items);
            char **keys = object ? realloc(v->keys, (size_t)cap * sizeof *keys) : NULL;
            if (items) v->items = items;
            if (keys) v->keys = keys;
            if (!items || (object && !keys))
                return tq_fail(r->err, TQ_STATUS_NOMEM, "JSON: out of memory");
        }
        skip_space(r);
        if (object) {
            if (r->s >= r->end || *r->s != '"') return fail(r, "a string key");
            r->s++;
            char *key = parse_string(r);
            if (!key) return fail(r, "a well-formed string key");
            v->keys[v->n] = key;
            skip_space(r);
            if (r->s >= r->end || *r->s != ':') {
                free(key);
                return fail(r, "':' after a key");
            }
            r->s++;
        }
        memset(&v->items[v->n], 0, sizeof v->items[v->n]);
        v->n++;
        if (parse_value(r, &v->items[v->n - 1], depth + 1)) return r->err->status;
        skip_space(r);
        if (r->s < r->end && *r->s == ',') {
            r->s++;
            continue;
        }
        if (r->s < r->end && *r->s == close) {
            r->s++;
            return TQ_STATUS_OK;
        }
        return fail(r, object ? "',' or '}'" : "',' or ']'");
    }
}

static tq_status parse_value(reader *r, tq_jv *v, int depth)
{
    if (depth > MAX_DEPTH) return fail(r, "at most 32 levels of nesting");
    skip_space(r);
    if (r->s >= r->end) return fail(r, "a value");
    char c = *r->s;
    if (c == '{' || c == '[') {
        r->s++;
        v->kind = c == '{' ? TQ_JV_OBJ : TQ_JV_ARR;
        return parse_container(r, v, depth, c == '{' ? '}' : ']');
    }
    if (c == '"') {
        r->s++;
        v->kind = TQ_JV_STR;
        v->str = parse_string(r);
        return v->str ? TQ_STATUS_OK : fail(r, "a well-formed string");
    }
    if (literal(r, "null")) return v->kind = TQ_JV_NULL, TQ_STATUS_OK;
    if (literal(r, "true")) return v->kind = TQ_JV_BOOL, v->b = true, TQ_STATUS_OK;
    if (literal(r, "false")) return v->kind = TQ_JV_BOOL, v->b = false, TQ_STATUS_OK;
    /* A number as JSON spells it: -?digits[.digits][e[+-]digits]; strtod reads the copy. */
    const char *p = r->s;
    if (p < r->end && *p == '-') p++;
    const char *digits = p;
    while (p < r->end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' ||
                          ((*p == '+' || *p == '-') && (p[-1] == 'e' || p[-1] == 'E'))))
        p++;
    char tmp[64];
    size_t n = (size_t)(p - r->s);
    if (p == digits || n >= sizeof tmp || !(*digits >= '0' && *digits <= '9'))
        return fail(r, "a value");
    memcpy(tmp, r->s, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    v->num = strtod(tmp, &end);
    if (*end || !isfinite(v->num)) return fail(r, "a finite number");
    v->kind = TQ_JV_NUM;
    r->s = p;
    return TQ_STATUS_OK;
}

tq_jv *tq_json_parse(const char *text, size_t len, tq_error *err)
{
    tq_jv *v = calloc(1, sizeof *v);
    if (!v) {
        tq_fail(err, TQ_STATUS_NOMEM, "JSON: out of memory");
        return NULL;
    }
    reader r = {.s = text, .end = text + len, .line = 1, .err = err};
    if (parse_value(&r, v, 0) == TQ_STATUS_OK) {
        skip_space(&r);
        if (r.s == r.end) return v;
        fail(&r, "the end of the text after the value");
    }
    tq_jv_free(v);
    return NULL;
}

static void free_inside(tq_jv *v)
{
    for (int i = 0; i < v->n; i++) {
        free_inside(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
}

void tq_jv_free(tq_jv *v)
{
    if (!v) return;
    free_inside(v);
    free(v);
}

const tq_jv *tq_jv_get(const tq_jv *obj, const char *key, tq_jv_kind kind)
{
    if (!obj || obj->kind != TQ_JV_OBJ) return NULL;
    for (int i = 0; i < obj->n; i++)
        if (!strcmp(obj->keys[i], key)) return obj->items[i].kind == kind ? &obj->items[i] : NULL;
    return NULL;
}
