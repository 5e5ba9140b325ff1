/* Number formats: ranges, rounding onto the grid (half to even, saturating), names, and the
 * enumeration of every representable value with its bit pattern. */
#include "quant_internal.h"

#include <stdlib.h>

typedef struct fp_layout {
    int ebits, mbits, bias;
} fp_layout;

static fp_layout fp_layout_of(tq_format f)
{
    switch (f.kind) {
    case TQ_FORMAT_E4M3: return (fp_layout){4, 3, 7};
    case TQ_FORMAT_E5M2: return (fp_layout){5, 2, 15};
    default: return (fp_layout){2, 1, 1};
    }
}

tq_fp_params tq_fp_params_of(tq_format f)
{
    fp_layout l = fp_layout_of(f);
    return (tq_fp_params){.mbits = l.mbits, .emin = 1 - l.bias, .max = tq_format_max(f)};
}

bool tq_format_is_float(tq_format f)
{
    return f.kind == TQ_FORMAT_E4M3 || f.kind == TQ_FORMAT_E5M2 || f.kind == TQ_FORMAT_E2M1;
}

float tq_format_max(tq_format f)
{
    switch (f.kind) {
    case TQ_FORMAT_INT: return (float)((1 << (f.bits - 1)) - 1);
    case TQ_FORMAT_UINT: return (float)((1 << f.bits) - 1);
    case TQ_FORMAT_E4M3: return 448.0f;
    case TQ_FORMAT_E5M2: return 57344.0f;
    case TQ_FORMAT_E2M1: return 6.0f;
    }
    return 0.0f;
}

float tq_format_min(tq_format f)
{
    switch (f.kind) {
    case TQ_FORMAT_INT: return f.narrow ? -tq_format_max(f) : (float)-(1 << (f.bits - 1));
    case TQ_FORMAT_UINT: return 0.0f;
    default: return -tq_format_max(f);
    }
}

float tq_format_round(tq_format f, float v)
{
    if (tq_format_is_float(f)) return tq_fp_round(v, tq_fp_params_of(f));
    float lo = tq_format_min(f), hi = tq_format_max(f);
    float r = rintf(v);
    r = r < lo ? lo : r;
    return r > hi ? hi : r;
}

int tq_format_nonneg_levels(tq_format f)
{
    if (!tq_format_is_float(f)) return (int)tq_format_max(f) + 1;
    tq_grid_entry g[256];
    int n = tq_format_grid(f, g, 256), k = 0;
    for (int i = 0; i < n; i++) k += g[i].value >= 0.0f && !signbit(g[i].value);
    return k;
}

const char *tq_format_name(tq_format f, char *buf, size_t len)
{
    switch (f.kind) {
    case TQ_FORMAT_INT: snprintf(buf, len, "int%d", f.bits); break;
    case TQ_FORMAT_UINT: snprintf(buf, len, "uint%d", f.bits); break;
    case TQ_FORMAT_E4M3: snprintf(buf, len, "e4m3"); break;
    case TQ_FORMAT_E5M2: snprintf(buf, len, "e5m2"); break;
    case TQ_FORMAT_E2M1: snprintf(buf, len, "e2m1"); break;
    }
    return buf;
}

/* Value of an FP code, or NAN for the codes that are not finite numbers. */
static float fp_decode(tq_format f, uint32_t code)
{
    fp_layout l = fp_layout_of(f);
    int width = 1 + l.ebits + l.mbits;
    uint32_t sign = (code >> (width - 1)) & 1u, e = (code >> l.mbits) & ((1u << l.ebits) - 1);
    uint32_t m = code & ((1u << l.mbits) - 1), emax_code = (1u << l.ebits) - 1;
    if (f.kind == TQ_FORMAT_E4M3 && e == emax_code && m == (1u << l.mbits) - 1) return NAN;
    if (f.kind == TQ_FORMAT_E5M2 && e == emax_code) return NAN; /* infinities and NaNs */
    float mag = e == 0 ? ldexpf((float)m, 1 - l.bias - l.mbits)
                       : ldexpf((float)(m + (1u << l.mbits)), (int)e - l.bias - l.mbits);
    return sign ? -mag : mag;
}

static int grid_cmp(const void *pa, const void *pb)
{
    const tq_grid_entry *a = pa, *b = pb;
    if (a->value != b->value) return a->value < b->value ? -1 : 1;
    if (signbit(a->value) != signbit(b->value)) return signbit(a->value) ? -1 : 1; /* -0 first */
    return a->code < b->code ? -1 : a->code > b->code;
}

int tq_format_grid(tq_format f, tq_grid_entry *out, int cap)
{
    tq_grid_entry g[256];
    int n = 0;
    if (tq_format_is_float(f)) {
        fp_layout l = fp_layout_of(f);
        uint32_t codes = 1u << (1 + l.ebits + l.mbits);
        for (uint32_t c = 0; c < codes; c++) {
            float v = fp_decode(f, c);
            if (!isnan(v)) g[n++] = (tq_grid_entry){v, c};
        }
    } else {
        int lo = (int)tq_format_min(f), hi = (int)tq_format_max(f);
        uint32_t mask = (1u << f.bits) - 1;
        for (int v = lo; v <= hi; v++) g[n++] = (tq_grid_entry){(float)v, (uint32_t)v & mask};
    }
    qsort(g, (size_t)n, sizeof g[0], grid_cmp);
    for (int i = 0; i < n && i < cap; i++) out[i] = g[i];
    return n;
}

void tq_format_print_grid(FILE *out, tq_format f)
{
    tq_grid_entry g[256];
    char name[16];
    int n = tq_format_grid(f, g, 256);
    int width = tq_format_is_float(f) ? (f.kind == TQ_FORMAT_E2M1 ? 4 : 8) : f.bits;
    fprintf(out, "# %s%s: %d values, min %g, max %g\n", tq_format_name(f, name, sizeof name),
            f.kind == TQ_FORMAT_INT && f.narrow ? " (narrow)" : "", n, (double)tq_format_min(f),
            (double)tq_format_max(f));
    for (int i = 0; i < n; i++) {
        char bits[9];
        for (int b = 0; b < width; b++) bits[b] = (g[i].code >> (width - 1 - b)) & 1u ? '1' : '0';
        bits[width] = '\0';
        fprintf(out, "0x%02x %s %.9g\n", g[i].code, bits, (double)g[i].value);
    }
}
