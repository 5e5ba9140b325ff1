/* Quantizer spec strings: "int4:block=32:calib=mse" parsed into a tq_qspec, and the
 * canonical string back. */
#include "quant_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define FORMATS_ACCEPTED "int2..int8, uint2..uint8, e4m3, e5m2, e2m1, mxfp8, mxfp4, mxint8, nvfp4"
#define OPTIONS_ACCEPTED                                                                    \
    "tensor, channel[=axis], block=N, axis=N, calib=max|percentile|mse|entropy, p=PCT, " \
    "narrow, ste=clip|pass, unsigned=on|off, scale=fixed|learn"

static const char *calib_names[] = {"max", "percentile", "mse", "entropy"};

tq_qspec tq_qspec_default(void)
{
    return (tq_qspec){.format = {TQ_FORMAT_INT, 8, false},
                      .block = TQ_BLOCK_TENSOR,
                      .axis = -1,
                      .block_size = 0,
                      .scale = TQ_SCALE_FLOAT,
                      .calib = TQ_CALIB_MAX,
                      .percentile = 99.99f,
                      .ste = TQ_STE_CLIP,
                      .auto_unsigned = true};
}

bool tq_qspec_equal(const tq_qspec *a, const tq_qspec *b)
{
    bool same_axis = a->block == TQ_BLOCK_TENSOR || a->axis == b->axis;
    bool same_p = a->calib != TQ_CALIB_PERCENTILE || a->percentile == b->percentile;
    return a->format.kind == b->format.kind && a->format.bits == b->format.bits &&
           a->format.narrow == b->format.narrow && a->block == b->block && same_axis &&
           (a->block != TQ_BLOCK_BLOCK || a->block_size == b->block_size) &&
           a->scale == b->scale && a->calib == b->calib && same_p && a->ste == b->ste &&
           a->auto_unsigned == b->auto_unsigned && a->learn_scale == b->learn_scale;
}

static bool parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

static bool parse_format(const char *tok, tq_qspec *s)
{
    int bits;
    struct {
        const char *name;
        tq_format_kind kind;
        tq_scale_kind scale;
        int block;
    } named[] = {
        {"e4m3", TQ_FORMAT_E4M3, TQ_SCALE_FLOAT, 0},  {"e5m2", TQ_FORMAT_E5M2, TQ_SCALE_FLOAT, 0},
        {"e2m1", TQ_FORMAT_E2M1, TQ_SCALE_FLOAT, 0},  {"mxfp8", TQ_FORMAT_E4M3, TQ_SCALE_E8M0, 32},
        {"mxfp4", TQ_FORMAT_E2M1, TQ_SCALE_E8M0, 32}, {"mxint8", TQ_FORMAT_INT, TQ_SCALE_E8M0, 32},
        {"nvfp4", TQ_FORMAT_E2M1, TQ_SCALE_NVFP4, 16},
    };
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (!strcmp(tok, named[i].name)) {
            s->format = (tq_format){named[i].kind, 8, false};
            s->scale = named[i].scale;
            if (named[i].block) {
                s->block = TQ_BLOCK_BLOCK;
                s->block_size = named[i].block;
                s->axis = -1;
            }
            return true;
        }
    if (!strncmp(tok, "int", 3) && parse_int(tok + 3, 2, 8, &bits)) {
        s->format = (tq_format){TQ_FORMAT_INT, bits, false};
        return true;
    }
    if (!strncmp(tok, "uint", 4) && parse_int(tok + 4, 2, 8, &bits)) {
        s->format = (tq_format){TQ_FORMAT_UINT, bits, false};
        return true;
    }
    return false;
}

static bool parse_onoff(const char *v, bool *out)
{
    if (!strcmp(v, "on")) *out = true;
    else if (!strcmp(v, "off")) *out = false;
    else return false;
    return true;
}

/* One "key[=value]" option; returns an error message fragment or NULL when it is fine. */
static const char *parse_option(char *tok, tq_qspec *s, bool *axis_set, bool *calib_set,
                                bool *p_set)
{
    char *val = strchr(tok, '=');
    if (val) *val++ = '\0';
    bool scaled = s->scale != TQ_SCALE_FLOAT;
    if (!strcmp(tok, "tensor") && !val) {
        if (scaled) return "has fixed blocks";
        s->block = TQ_BLOCK_TENSOR;
    } else if (!strcmp(tok, "channel")) {
        if (scaled) return "has fixed blocks";
        s->block = TQ_BLOCK_CHANNEL;
        if (val) {
            if (!parse_int(val, -1, TQ_MAX_DIMS - 1, &s->axis)) return "needs an axis -1..3";
            *axis_set = true;
        } else if (!*axis_set) {
            s->axis = 0;
        }
    } else if (!strcmp(tok, "block") && val) {
        if (scaled) return "has fixed blocks";
        if (!parse_int(val, 1, 1 << 20, &s->block_size)) return "needs a block size >= 1";
        s->block = TQ_BLOCK_BLOCK;
        if (!*axis_set) s->axis = -1;
    } else if (!strcmp(tok, "axis") && val) {
        if (scaled) return "has fixed blocks";
        if (!parse_int(val, -1, TQ_MAX_DIMS - 1, &s->axis)) return "needs an axis -1..3";
        *axis_set = true;
    } else if (!strcmp(tok, "calib") && val) {
        size_t k = 0;
        while (k < 4 && strcmp(val, calib_names[k])) k++;
        if (k == 4) return "needs max, percentile, mse or entropy";
        s->calib = (tq_calib_kind)k;
        *calib_set = true;
    } else if (!strcmp(tok, "p") && val) {
        char *end;
        float p = strtof(val, &end);
        if (end == val || *end || !(p > 0.0f && p <= 100.0f)) return "needs a percentile in (0,100]";
        s->percentile = p;
        *p_set = true;
    } else if (!strcmp(tok, "narrow") && (!val || parse_onoff(val, &s->format.narrow))) {
        if (s->format.kind != TQ_FORMAT_INT || scaled) return "applies to intN formats only";
        if (!val) s->format.narrow = true;
    } else if (!strcmp(tok, "ste") && val) {
        if (!strcmp(val, "clip")) s->ste = TQ_STE_CLIP;
        else if (!strcmp(val, "pass")) s->ste = TQ_STE_PASSTHROUGH;
        else return "needs clip or pass";
    } else if (!strcmp(tok, "unsigned") && val) {
        if (!parse_onoff(val, &s->auto_unsigned)) return "needs on or off";
    } else if (!strcmp(tok, "scale") && val) {
        if (!strcmp(val, "learn")) s->learn_scale = true;
        else if (!strcmp(val, "fixed")) s->learn_scale = false;
        else return "needs fixed or learn";
    } else {
        return "unknown"; /* the caller names the token */
    }
    return NULL;
}

tq_status tq_qspec_parse(const char *str, tq_qspec *out, tq_error *err)
{
    if (!str) return tq_fail(err, TQ_STATUS_ARG, "spec: NULL string");
    char buf[256];
    if (strlen(str) >= sizeof buf)
        return tq_fail(err, TQ_STATUS_FORMAT, "spec \"%.40s...\": longer than %zu characters",
                       str, sizeof buf - 1);
    strcpy(buf, str);
    tq_qspec s = tq_qspec_default();
    char *save = NULL, *tok = strtok_r(buf, ":", &save);
    if (!tok || !parse_format(tok, &s))
        return tq_fail(err, TQ_STATUS_FORMAT,
                       "spec \"%s\": unknown format \"%s\" (expected " FORMATS_ACCEPTED ")", str,
                       tok ? tok : "");
    bool axis_set = false, calib_set = false, p_set = false;
    while ((tok = strtok_r(NULL, ":", &save))) {
        char orig[256];
        snprintf(orig, sizeof orig, "%s", tok);
        const char *why = parse_option(tok, &s, &axis_set, &calib_set, &p_set);
        if (why && !strcmp(why, "unknown"))
            return tq_fail(err, TQ_STATUS_FORMAT,
                           "spec \"%s\": unknown option \"%s\" (expected " OPTIONS_ACCEPTED ")",
                           str, orig);
        if (why)
            return tq_fail(err, TQ_STATUS_FORMAT, "spec \"%s\": option \"%s\" %s", str, orig,
                           why);
    }
    if (p_set && !calib_set) s.calib = TQ_CALIB_PERCENTILE;
    if (p_set && s.calib != TQ_CALIB_PERCENTILE)
        return tq_fail(err, TQ_STATUS_FORMAT, "spec \"%s\": p= needs calib=percentile", str);
    if (axis_set && s.block == TQ_BLOCK_TENSOR)
        return tq_fail(err, TQ_STATUS_FORMAT,
                       "spec \"%s\": axis= needs channel or block=N (per-tensor has no axis)", str);
    if (s.learn_scale && !tq_qspec_learnable(&s))
        return tq_fail(err, TQ_STATUS_FORMAT,
                       "spec \"%s\": scale=learn works with " TQ_LEARN_SCALE_ACCEPTED
                       " (not block=N, mxfp8, mxfp4, mxint8, nvfp4)", str);
    *out = s;
    return TQ_STATUS_OK;
}

/* The shortest %g form that reads back as the same float (99.9, not 99.9000015). */
static void shortest_float(float v, char *buf, size_t len)
{
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, len, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) return;
    }
}

int tq_qspec_format(const tq_qspec *s, char *buf, size_t len)
{
    char out[256], name[16];
    int n = 0;
#define PUT(...) n += snprintf(out + n, sizeof out - (size_t)n, __VA_ARGS__)
    if (s->scale == TQ_SCALE_E8M0)
        PUT("%s", s->format.kind == TQ_FORMAT_INT ? "mxint8"
                  : s->format.kind == TQ_FORMAT_E4M3 ? "mxfp8" : "mxfp4");
    else if (s->scale == TQ_SCALE_NVFP4)
        PUT("nvfp4");
    else
        PUT("%s", tq_format_name(s->format, name, sizeof name));
    if (s->scale == TQ_SCALE_FLOAT) {
        if (s->block == TQ_BLOCK_CHANNEL) PUT(":channel=%d", s->axis);
        if (s->block == TQ_BLOCK_BLOCK) {
            PUT(":block=%d", s->block_size);
            if (s->axis != -1) PUT(":axis=%d", s->axis);
        }
        if (s->format.kind == TQ_FORMAT_INT && s->format.narrow) PUT(":narrow");
    }
    if (s->calib != TQ_CALIB_MAX) PUT(":calib=%s", calib_names[s->calib]);
    if (s->calib == TQ_CALIB_PERCENTILE) {
        char p[32];
        shortest_float(s->percentile, p, sizeof p);
        PUT(":p=%s", p);
    }
    if (s->ste == TQ_STE_PASSTHROUGH) PUT(":ste=pass");
    if (!s->auto_unsigned) PUT(":unsigned=off");
    if (s->learn_scale) PUT(":scale=learn");
#undef PUT
    return snprintf(buf, len, "%s", out);
}
