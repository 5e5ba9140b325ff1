/* `tinyqat grid` and `tinyqat fq`, the teaching commands: every value of a format, and the
 * fake-quantized value of numbers, per tensor or in blocks with each block's scale. */
#include "cli.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- grid */

static const tq_cli_opt grid_opts[] = {{0}};
static const tq_cli_cmd grid_cmd = {
    "grid", "SPEC", "Print every value a format can represent, with its code (e.g. tinyqat grid e4m3).",
    grid_opts, 1};

int tq_cmd_grid(int argc, char **argv)
{
    const tq_cli_cmd *cmd = &grid_cmd;
    tq_cli_args a;
    int rc = tq_cli_parse(cmd, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    if (a.n_positional != 1) return tq_cli_usage_error(cmd, "expected one format spec");
    tq_qspec spec;
    tq_error err = {0};
    if (tq_qspec_parse(a.positional[0], &spec, &err)) return tq_cli_usage_error(cmd, "%s", err.msg);
    tq_format_print_grid(stdout, spec.format);
    return 0;
}

/* ---- fq */

static const tq_cli_opt fq_opts[] = {
    {"spec", "SPEC", "quantizer spec (required): per tensor int8, int4:narrow, e4m3...; in blocks "
                     "int4:block=32, mxfp8, mxfp4, mxint8, nvfp4..."},
    {"amax", "A", "the amax that fixes the scale (required per tensor); for blocks, clips each "
                  "block's abs max (default: no clipping)"},
    {"show-scales", NULL, "print the per-tensor scale on a '#' line first (blocks always show theirs)"},
    {"codes", NULL, "also print each value's code (value = code x scale: an integer, or an FP "
                    "grid value) and the code's bits, as tinyqat grid shows them"},
    {0},
};
static const tq_cli_cmd fq_cmd = {
    "fq", "--spec SPEC [--amax A] [--show-scales] [--codes] [VALUE...]",
    "Print the fake-quantized value of each VALUE, one per line (from standard input, one per\n"
    "line, when none are given). Per tensor: scale = amax / largest value of the format.\n"
    "A block format takes the values as consecutive blocks (the last may be shorter), each\n"
    "scaled from its own abs max, and prints each block's scale on a '#' line before its\n"
    "values: amax / qmax for intN blocks, the shared E8M0 exponent for MX formats, the E4M3\n"
    "block scale under the float32 global scale (on a '#' line of its own) for NVFP4.",
    fq_opts, INT_MAX};

/* "VALUE", or with code "VALUE  CODE  0xHEX BITS" (the bits as `tinyqat grid` shows them). */
static void print_value(float y, const float *code, tq_format f)
{
    if (!code) {
        printf("%.9g\n", (double)y);
        return;
    }
    int width = tq_format_is_float(f) ? (f.kind == TQ_FORMAT_E2M1 ? 4 : 8) : f.bits;
    uint32_t c = tq_format_encode(f, *code);
    char bits[33];
    for (int b = 0; b < width; b++) bits[b] = (c >> (width - 1 - b)) & 1u ? '1' : '0';
    bits[width] = '\0';
    printf("%.9g  %.9g  0x%02x %s\n", (double)y, (double)*code, (unsigned)c, bits);
}

/* s as a number (surrounding white space allowed), or a message naming it. */
static bool parse_value(const tq_cli_cmd *cmd, const char *s, float *x)
{
    char *end;
    *x = strtof(s, &end);
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
    if (end == s || *end) {
        fprintf(stderr, "tinyqat %s: '%s' is not a number\n", cmd->name, s);
        return false;
    }
    return true;
}

/* The next value: the next positional argument, else the next non-blank line of standard
 * input (any length). 1 for a value, 0 at the end, -1 after a message. */
static int next_value(const tq_cli_cmd *cmd, const tq_cli_args *a, int *next, char **line,
                      size_t *cap, float *x)
{
    if (a->n_positional > 0) {
        if (*next >= a->n_positional) return 0;
        return parse_value(cmd, a->positional[(*next)++], x) ? 1 : -1;
    }
    ssize_t len;
    while ((len = getline(line, cap, stdin)) >= 0) {
        while (len > 0 && ((*line)[len - 1] == '\n' || (*line)[len - 1] == '\r')) len--;
        (*line)[len] = '\0'; /* so that a message about it stays on one line */
        if ((*line)[strspn(*line, " \t")] != '\0') return parse_value(cmd, *line, x) ? 1 : -1;
    }
    return 0;
}

static tq_quantizer *fq_quantizer(const tq_cli_cmd *cmd, const tq_qspec *spec, float amax, int *rc)
{
    tq_error err = {0};
    tq_quantizer *q = tq_quantizer_new(spec, &err);
    if (!q || tq_quantizer_set_amax(q, &amax, 1, &err)) {
        tq_quantizer_free(q);
        *rc = tq_cli_usage_error(cmd, "%s", err.msg);
        return NULL;
    }
    return q;
}

/* Per tensor: one scale, values quantized as they come (standard input may be a terminal). */
static int fq_tensor(const tq_cli_cmd *cmd, const tq_cli_args *a, const tq_qspec *spec, float amax)
{
    int rc = 0;
    tq_quantizer *q = fq_quantizer(cmd, spec, amax, &rc);
    if (!q) return rc;
    tq_error err = {0};
    float x = 0, y;
    tq_tensor t = {.data = &x};
    tq_shape_set(&t, 1, (int32_t[]){1});
    tq_scale_parts p;
    bool codes = tq_cli_flag(cmd, a, "codes");
    float code, step;
    if (tq_cli_flag(cmd, a, "show-scales")) {
        if (tq_quantizer_scale_parts(q, &t, &p, &err)) rc = tq_cli_fail(cmd, &err);
        else printf("# scale %.9g = amax %.9g / %g\n", (double)p.step, (double)p.amax,
                    (double)tq_format_max(tq_quantizer_format(q)));
    }
    char *line = NULL;
    size_t cap = 0;
    for (int next = 0, got; !rc && (got = next_value(cmd, a, &next, &line, &cap, &x)) != 0;) {
        if (got < 0) rc = TQ_EXIT_FAIL;
        else if (tq_quantizer_apply(q, &t, &y, &err) ||
                 (codes && tq_quantizer_codes(q, &t, &code, &step, &err)))
            rc = tq_cli_fail(cmd, &err);
        else print_value(y, codes ? &code : NULL, tq_quantizer_format(q));
    }
    free(line);
    tq_quantizer_free(q);
    return rc;
}

/* "# block 2 (values 33-64): amax 3, E8M0 exponent -1 (byte 0x7e), scale 2^-1 = 0.5" */
static void print_block_scale(const tq_qspec *spec, tq_format f, const tq_scale_parts *p,
                              int64_t block, int64_t first, int64_t last)
{
    printf("# block %lld (values %lld-%lld): amax %.9g, ", (long long)block + 1,
           (long long)first + 1, (long long)last, (double)p->amax);
    if (!(p->step > 0.0f)) {
        printf("scale 0: every value 0\n");
        return;
    }
    switch (spec->scale) {
    case TQ_SCALE_FLOAT:
        printf("scale %.9g = amax / %g\n", (double)p->step, (double)tq_format_max(f));
        break;
    case TQ_SCALE_E8M0:
        printf("E8M0 exponent %d (byte 0x%02x), scale 2^%d", p->exponent, p->exponent + 127,
               p->exponent);
        /* intN elements of MX blocks are fixed point with N-2 fraction bits */
        if (f.kind == TQ_FORMAT_INT) printf(" x 2^-%d", f.bits - 2);
        printf(" = %.9g\n", (double)p->step);
        break;
    case TQ_SCALE_NVFP4: {
        tq_format e4m3 = {TQ_FORMAT_E4M3, 8, false};
        printf("E4M3 block scale %.9g (byte 0x%02x), scale %.9g x global = %.9g\n",
               (double)p->block_scale, (unsigned)tq_format_encode(e4m3, p->block_scale),
               (double)p->block_scale, (double)p->step);
        break;
    }
    }
}

/* Every value, from the arguments or standard input, into *x (n of them; free *x). */
static int read_values(const tq_cli_cmd *cmd, const tq_cli_args *a, float **x, int64_t *n)
{
    int64_t cap_x = 0;
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    float v;
    *x = NULL;
    *n = 0;
    for (int next = 0, got; !rc && (got = next_value(cmd, a, &next, &line, &cap, &v)) != 0;) {
        if (got < 0) {
            rc = TQ_EXIT_FAIL;
        } else if (*n == cap_x) { /* a tensor holds at most INT32_MAX values along an axis */
            cap_x = cap_x ? 2 * cap_x : 256;
            float *grown = cap_x <= INT32_MAX ? realloc(*x, (size_t)cap_x * sizeof **x) : NULL;
            if (!grown) rc = tq_cli_fail(cmd, &(tq_error){TQ_STATUS_NOMEM, "too many values"});
            else *x = grown;
        }
        if (!rc) (*x)[(*n)++] = v;
    }
    free(line);
    return rc;
}

/* Fake quant of the n values of x in blocks: y gets the values, parts one scale per block,
 * codes (when not NULL) each value's code.
 * Each block's amax is its abs max, as weights are calibrated, clipped to amax_given when
 * that is >= 0; the NVFP4 global amax is then the largest block amax, one block or many. */
static tq_status quantize_blocks(const tq_qspec *spec, double amax_given, tq_tensor *x,
                                 float *y, tq_scale_parts *parts, float *codes, int64_t count,
                                 tq_error *err)
{
    float *amax = malloc((size_t)count * sizeof *amax), *steps = malloc((size_t)count * sizeof *steps);
    if (!amax || !steps) {
        free(amax);
        free(steps);
        return tq_fail(err, TQ_STATUS_NOMEM, "out of memory");
    }
    tq_status st = TQ_STATUS_OK;
    for (int64_t b = 0; b < count && !st; b++) {
        int64_t first = b * spec->block_size, last = first + spec->block_size;
        amax[b] = 0.0f;
        for (int64_t i = first; i < last && i < x->numel; i++) {
            amax[b] = fmaxf(amax[b], fabsf(x->data[i]));
            if (isinf(x->data[i]) && amax_given < 0)
                st = tq_fail(err, TQ_STATUS_ARG, "value %lld is %g: give --amax to clip its "
                             "block's amax", (long long)i + 1, (double)x->data[i]);
        }
        if (amax_given >= 0) amax[b] = fminf(amax[b], (float)amax_given);
    }
    tq_quantizer *q = NULL;
    if (!st && (!(q = tq_quantizer_new(spec, err)) || tq_quantizer_set_amax(q, amax, count, err) ||
                tq_quantizer_apply(q, x, y, err) || tq_quantizer_scale_parts(q, x, parts, err) ||
                (codes && tq_quantizer_codes(q, x, codes, steps, err))))
        st = err->status;
    free(amax);
    free(steps);
    tq_quantizer_free(q);
    return st;
}

/* Block formats: every value first (a block's scale needs the whole block, NVFP4's global
 * scale every block), then block by block, its scale and its values. */
static int fq_blocks(const tq_cli_cmd *cmd, const tq_cli_args *a, const tq_qspec *spec,
                     double amax_given /* < 0: none */)
{
    float *x, *y = NULL, *codes = NULL;
    int64_t n;
    int rc = read_values(cmd, a, &x, &n);
    if (rc || n == 0) {
        free(x);
        return rc;
    }
    tq_tensor t = {.data = x};
    tq_shape_set(&t, 1, (int32_t[]){(int32_t)n});
    /* a 1-D tensor: scale b belongs to block b, values b*size .. */
    int64_t count = (n + spec->block_size - 1) / spec->block_size;
    tq_scale_parts *parts = malloc((size_t)count * sizeof *parts);
    y = malloc((size_t)n * sizeof *y);
    bool want_codes = tq_cli_flag(cmd, a, "codes");
    if (want_codes) codes = malloc((size_t)n * sizeof *codes);
    tq_error err = {0};
    if (!parts || !y || (want_codes && !codes))
        rc = tq_cli_fail(cmd, &(tq_error){TQ_STATUS_NOMEM, "out of memory"});
    else if (quantize_blocks(spec, amax_given, &t, y, parts, codes, count, &err))
        rc = tq_cli_fail(cmd, &err);
    if (!rc && spec->scale == TQ_SCALE_NVFP4) {
        float global = 0.0f;
        for (int64_t b = 0; b < count; b++) global = fmaxf(global, parts[b].amax);
        printf("# global scale %.9g = amax %.9g / (448 x 6), float32 (amax: the largest "
               "block's)\n", (double)parts[0].global_scale, (double)global);
    }
    for (int64_t b = 0; !rc && b < count; b++) {
        int64_t first = b * spec->block_size;
        int64_t last = first + spec->block_size < n ? first + spec->block_size : n;
        print_block_scale(spec, spec->format, &parts[b], b, first, last);
        for (int64_t i = first; i < last; i++) print_value(y[i], codes ? &codes[i] : NULL, spec->format);
    }
    free(codes);
    free(parts);
    free(y);
    free(x);
    return rc;
}

int tq_cmd_fq(int argc, char **argv)
{
    const tq_cli_cmd *cmd = &fq_cmd;
    tq_cli_args a;
    int rc = tq_cli_parse(cmd, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *spec_str = tq_cli_get(cmd, &a, "spec");
    if (!spec_str) return tq_cli_usage_error(cmd, "--spec is required");
    double amax = -1;
    if (!tq_cli_float(cmd, &a, "amax", 0, 3.4e38, &amax)) return TQ_EXIT_USAGE;
    tq_qspec spec;
    tq_error err = {0};
    if (tq_qspec_parse(spec_str, &spec, &err)) return tq_cli_usage_error(cmd, "%s", err.msg);
    spec.auto_unsigned = false;
    if (spec.block == TQ_BLOCK_CHANNEL)
        return tq_cli_usage_error(cmd, "--spec: fq takes a per-tensor or block spec, not "
                                       "per-channel (that needs one amax per channel)");
    if (spec.block == TQ_BLOCK_BLOCK) return fq_blocks(cmd, &a, &spec, amax);
    if (amax < 0) return tq_cli_usage_error(cmd, "--amax is required for a per-tensor spec");
    return fq_tensor(cmd, &a, &spec, (float)amax);
}
