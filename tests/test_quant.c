/* Check suite for quant/: format grids from the bit layouts, rounding (ties, saturation, NaN),
 * amax layouts, MX and NVFP4 scales, the fake-quant op and its STE, calibrators, the spec
 * parser, the auto-unsigned switch and error metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quant.h"
#include "tq_test.h"
#include "train.h"

static tq_quantizer *make_q(const char *spec)
{
    tq_error e = {0};
    tq_qspec s;
    ck_assert_msg(tq_qspec_parse(spec, &s, &e) == TQ_STATUS_OK, "%s", e.msg);
    tq_quantizer *q = tq_quantizer_new(&s, &e);
    ck_assert_msg(q != NULL, "%s", e.msg);
    return q;
}

static tq_tensor *tensor_of(int32_t ndim, const int32_t *shape, const float *v, bool grad)
{
    tq_tensor *t = tq_tensor_new(ndim, shape, grad);
    ck_assert_ptr_nonnull(t);
    memcpy(t->data, v, (size_t)t->numel * sizeof(float));
    return t;
}

static void apply_ok(const tq_quantizer *q, const tq_tensor *x, float *out)
{
    tq_error e = {0};
    ck_assert_msg(tq_quantizer_apply(q, x, out, &e) == TQ_STATUS_OK, "%s", e.msg);
}

static const tq_format E4M3 = {TQ_FORMAT_E4M3, 8, false};
static const tq_format E5M2 = {TQ_FORMAT_E5M2, 8, false};
static const tq_format E2M1 = {TQ_FORMAT_E2M1, 4, false};

static bool same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ---- grids */

START_TEST(test_int_grids)
{
    for (int bits = 2; bits <= 8; bits++)
        for (int kind = 0; kind < 3; kind++) {
            tq_format f = {kind == 2 ? TQ_FORMAT_UINT : TQ_FORMAT_INT, bits, kind == 1};
            int half = 1 << (bits - 1);
            int lo = kind == 2 ? 0 : kind == 1 ? -(half - 1) : -half;
            int hi = kind == 2 ? 2 * half - 1 : half - 1;
            ck_assert_float_eq(tq_format_min(f), (float)lo);
            ck_assert_float_eq(tq_format_max(f), (float)hi);
            tq_grid_entry g[256];
            int n = tq_format_grid(f, g, 256);
            ck_assert_int_eq(n, hi - lo + 1);
            for (int i = 0; i < n; i++) {
                ck_assert_float_eq(g[i].value, (float)(lo + i));
                ck_assert_uint_eq(g[i].code, (uint32_t)(lo + i) & ((1u << bits) - 1));
                ck_assert_float_eq(tq_format_round(f, g[i].value), g[i].value);
            }
            ck_assert_int_eq(tq_format_nonneg_levels(f), hi + 1);
        }
}
END_TEST

/* Positive finite values of a minifloat, decoded here from the bit layout. */
static int decode_positives(int ebits, int mbits, int bias, bool e4m3_nan, float *vals,
                            uint32_t *codes)
{
    int n = 0;
    for (uint32_t c = 1; c < (1u << (ebits + mbits)); c++) {
        uint32_t e = c >> mbits, m = c & ((1u << mbits) - 1);
        if (e4m3_nan && e == 15 && m == 7) continue;
        if (!e4m3_nan && ebits == 5 && e == 31) continue;
        double v = e == 0 ? m * pow(2.0, 1 - bias - mbits)
                          : (1.0 + m / pow(2.0, mbits)) * pow(2.0, (int)e - bias);
        vals[n] = (float)v;
        codes[n++] = c;
    }
    return n;
}

static void check_fp_grid(tq_format f, int ebits, int mbits, int bias, bool e4m3_nan,
                          int expect_pos, float expect_max)
{
    float vals[256];
    uint32_t codes[256];
    int npos = decode_positives(ebits, mbits, bias, e4m3_nan, vals, codes);
    ck_assert_int_eq(npos, expect_pos);
    ck_assert_float_eq(vals[npos - 1], expect_max);
    ck_assert_float_eq(tq_format_max(f), expect_max);
    tq_grid_entry g[256];
    int n = tq_format_grid(f, g, 256);
    ck_assert_int_eq(n, 2 * npos + 2); /* both signs and both zeros */
    int first_pos = n - npos;
    uint32_t sign = 1u << (ebits + mbits);
    for (int i = 0; i < npos; i++) {
        ck_assert_float_eq(g[first_pos + i].value, vals[i]);
        ck_assert_uint_eq(g[first_pos + i].code, codes[i]);
        ck_assert_float_eq(g[npos - 1 - i].value, -vals[i]);
        ck_assert_uint_eq(g[npos - 1 - i].code, codes[i] | sign);
        ck_assert_float_eq(tq_format_round(f, vals[i]), vals[i]);
        ck_assert_float_eq(tq_format_round(f, -vals[i]), -vals[i]);
    }
    ck_assert(g[npos].value == 0.0f && signbit(g[npos].value) && g[npos].code == sign);
    ck_assert(g[npos + 1].value == 0.0f && !signbit(g[npos + 1].value) && g[npos + 1].code == 0);
    ck_assert_int_eq(tq_format_nonneg_levels(f), npos + 1);
}

START_TEST(test_fp_grids)
{
    check_fp_grid(E4M3, 4, 3, 7, true, 126, 448.0f);
    check_fp_grid(E5M2, 5, 2, 15, false, 123, 57344.0f);
    check_fp_grid(E2M1, 2, 1, 1, false, 7, 6.0f);
    const float e2m1[] = {0.5f, 1, 1.5f, 2, 3, 4, 6};
    tq_grid_entry g[16];
    ck_assert_int_eq(tq_format_grid(E2M1, g, 16), 16);
    for (int i = 0; i < 7; i++) ck_assert_float_eq(g[9 + i].value, e2m1[i]);
    /* smallest subnormals */
    ck_assert_float_eq(tq_format_round(E4M3, ldexpf(1, -9)), ldexpf(1, -9));
    ck_assert_float_eq(tq_format_round(E5M2, ldexpf(1, -16)), ldexpf(1, -16));
    ck_assert_float_eq(tq_format_round(E4M3, ldexpf(1, -11)), 0.0f); /* a quarter step */
}
END_TEST

START_TEST(test_print_grid)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    tq_format_print_grid(f, E4M3);
    rewind(f);
    char line[128];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_str_eq(line, "# e4m3: 254 values, min -448, max 448\n");
    int lines = 0;
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        lines++;
        found |= !strcmp(line, "0x7e 01111110 448\n");
    }
    ck_assert_int_eq(lines, 254);
    ck_assert(found);
    fclose(f);
}
END_TEST

/* ---- rounding */

START_TEST(test_ties_to_even)
{
    tq_format i8 = {TQ_FORMAT_INT, 8, false};
    ck_assert_float_eq(tq_format_round(i8, 0.5f), 0.0f);
    ck_assert_float_eq(tq_format_round(i8, 1.5f), 2.0f);
    ck_assert_float_eq(tq_format_round(i8, 2.5f), 2.0f);
    ck_assert_float_eq(tq_format_round(i8, -1.5f), -2.0f);
    ck_assert_float_eq(tq_format_round(i8, -2.5f), -2.0f);
    ck_assert_float_eq(tq_format_round(i8, 2.5001f), 3.0f);
    /* every midpoint between neighbours on each FP grid goes to the even code */
    tq_format fps[] = {E4M3, E5M2, E2M1};
    for (int k = 0; k < 3; k++) {
        tq_grid_entry g[256];
        int n = tq_format_grid(fps[k], g, 256);
        for (int i = 0; i + 1 < n; i++) {
            float a = g[i].value, b = g[i + 1].value;
            if (a == b) continue; /* the two zeros */
            float mid = (a + b) / 2;
            ck_assert_float_eq((double)mid * 2, (double)a + b); /* exact midpoint */
            float want = (g[i].code & 1u) == 0 ? a : b;
            if (a == 0.0f || b == 0.0f) want = 0.0f; /* zero's code is even on both sides */
            ck_assert_msg(tq_format_round(fps[k], mid) == want, "fmt %d: mid %g -> %g, want %g",
                          k, (double)mid, (double)tq_format_round(fps[k], mid), (double)want);
            ck_assert_float_eq(tq_format_round(fps[k], nextafterf(mid, b)), b);
            ck_assert_float_eq(tq_format_round(fps[k], nextafterf(mid, a)), a);
        }
    }
    ck_assert_float_eq(tq_format_round(E2M1, 5.0f), 4.0f);  /* 4 = 0b110 even */
    ck_assert_float_eq(tq_format_round(E2M1, 2.5f), 2.0f);
    ck_assert_float_eq(tq_format_round(E2M1, 0.25f), 0.0f);
    ck_assert_float_eq(tq_format_round(E2M1, 0.75f), 1.0f); /* 1 = 0b010 even */
}
END_TEST

START_TEST(test_saturation_and_nan)
{
    tq_format i8 = {TQ_FORMAT_INT, 8, false}, n8 = {TQ_FORMAT_INT, 8, true};
    tq_format u4 = {TQ_FORMAT_UINT, 4, false};
    ck_assert_float_eq(tq_format_round(i8, 200.0f), 127.0f);
    ck_assert_float_eq(tq_format_round(i8, -200.0f), -128.0f);
    ck_assert_float_eq(tq_format_round(n8, -200.0f), -127.0f);
    ck_assert_float_eq(tq_format_round(u4, -3.0f), 0.0f);
    ck_assert_float_eq(tq_format_round(u4, 15.4f), 15.0f);
    ck_assert_float_eq(tq_format_round(u4, 99.0f), 15.0f);
    ck_assert_float_eq(tq_format_round(E4M3, 449.0f), 448.0f);
    ck_assert_float_eq(tq_format_round(E4M3, 470.0f), 448.0f);
    ck_assert_float_eq(tq_format_round(E4M3, 1e30f), 448.0f);
    ck_assert_float_eq(tq_format_round(E4M3, -INFINITY), -448.0f);
    ck_assert_float_eq(tq_format_round(E5M2, 61440.0f), 57344.0f);
    ck_assert_float_eq(tq_format_round(E5M2, INFINITY), 57344.0f);
    ck_assert_float_eq(tq_format_round(E2M1, 100.0f), 6.0f);
    ck_assert_float_eq(tq_format_round(E2M1, -7.0f), -6.0f);
    tq_format all[] = {i8, n8, u4, E4M3, E5M2, E2M1};
    for (int k = 0; k < 6; k++) ck_assert(isnan(tq_format_round(all[k], NAN)));

    /* through the quantizer: NaN in, NaN out; saturation at amax */
    const char *specs[] = {"int8", "e4m3", "e2m1", "uint4", "nvfp4"};
    for (int k = 0; k < 5; k++) {
        tq_quantizer *q = make_q(specs[k]);
        float amax1 = 1.0f;
        tq_error e = {0};
        ck_assert_int_eq(tq_quantizer_set_amax(q, &amax1, 1, &e), TQ_STATUS_OK);
        float v[32] = {NAN, 1.0f, 5.0f, -5.0f};
        tq_tensor *x = tensor_of(2, (int32_t[]){1, 32}, v, false);
        float y[32];
        apply_ok(q, x, y);
        ck_assert_msg(isnan(y[0]), "%s: NaN became %g", specs[k], (double)y[0]);
        tq_format f = tq_quantizer_format(q);
        float lowest = tq_format_min(f) / tq_format_max(f) * y[1];
        ck_assert_msg(y[1] <= 1.0f && y[2] == y[1] && fabsf(y[3] - lowest) <= 1e-6f,
                      "%s: %g %g %g", specs[k], (double)y[1], (double)y[2], (double)y[3]);
        tq_tensor_free(x);
        tq_quantizer_free(q);
    }
}
END_TEST

START_TEST(test_values_around_amax)
{
    tq_quantizer *q = make_q("int8");
    tq_error e = {0};
    float amax = 1.27f;
    ck_assert_int_eq(tq_quantizer_set_amax(q, &amax, 1, &e), TQ_STATUS_OK);
    float s = 1.27f / 127.0f;
    float v[] = {1.27f, nextafterf(1.27f, 0), 1.3f, -1.3f, -1.27f, 0.0f, 0.5f * s, 1.5f * s};
    tq_tensor *x = tensor_of(1, (int32_t[]){8}, v, false);
    float y[8];
    apply_ok(q, x, y);
    ck_assert_float_eq(y[0], 127.0f * s);
    ck_assert_float_eq(y[1], 127.0f * s);
    ck_assert_float_eq(y[2], 127.0f * s);
    ck_assert_float_eq(y[3], -128.0f * s); /* the full range reaches one step further down */
    ck_assert_float_eq(y[4], -127.0f * s);
    ck_assert_float_eq(y[5], 0.0f);
    ck_assert_float_eq(y[6], 0.0f);
    ck_assert_float_eq(y[7], 2.0f * s);
    /* amax 0: everything becomes 0, no division by zero */
    float zero = 0.0f;
    ck_assert_int_eq(tq_quantizer_set_amax(q, &zero, 1, &e), TQ_STATUS_OK);
    apply_ok(q, x, y);
    for (int i = 0; i < 8; i++) ck_assert_float_eq(y[i], 0.0f);
    tq_tensor_free(x);
    tq_quantizer_free(q);
}
END_TEST

START_TEST(test_int8_bit_exact)
{
    tq_rng rng;
    tq_rng_seed(&rng, 11);
    int32_t shape[] = {300, 257};
    tq_tensor *x = tq_test_tensor(&rng, 2, shape, false, -3, 3);
    for (int64_t i = 0; i < x->numel; i += 97) x->data[i] *= 1.7f; /* some beyond amax */
    tq_quantizer *q = make_q("int8");
    tq_error e = {0};
    float amax = 2.9f;
    ck_assert_int_eq(tq_quantizer_set_amax(q, &amax, 1, &e), TQ_STATUS_OK);
    float *y = malloc((size_t)x->numel * sizeof *y);
    apply_ok(q, x, y);
    const float scale = amax / 127.0f;
    for (int64_t i = 0; i < x->numel; i++) {
        float r = rintf(x->data[i] / scale);
        r = fminf(fmaxf(r, -128.0f), 127.0f);
        ck_assert_msg(same_bits(y[i], r * scale), "element %lld: %a vs %a", (long long)i,
                      (double)y[i], (double)(r * scale));
    }
    free(y);
    tq_tensor_free(x);
    tq_quantizer_free(q);
}
END_TEST

/* ---- layouts */

START_TEST(test_channel_layouts)
{
    /* (3,4): rows have abs max 4, 8, 0.5; columns 8, 3, 0.5, 7 */
    const float v[] = {1, -2, 0.5f, 4, -8, 3, 0, 7, 0.25f, 0.5f, -0.5f, 0};
    tq_tensor *w = tensor_of(2, (int32_t[]){3, 4}, v, false);
    const char *specs[] = {"int8:channel=0", "int8:channel=1"};
    const float want[2][4] = {{4, 8, 0.5f}, {8, 3, 0.5f, 7}};
    for (int axis = 0; axis < 2; axis++) {
        tq_quantizer *q = make_q(specs[axis]);
        tq_error e = {0};
        ck_assert_int_eq(tq_quantizer_calibrate_weight(q, w, &e), TQ_STATUS_OK);
        ck_assert_int_eq(tq_quantizer_amax_count(q), axis ? 4 : 3);
        for (int c = 0; c < (axis ? 4 : 3); c++)
            ck_assert_float_eq(tq_quantizer_amax(q)[c], want[axis][c]);
        float y[12];
        apply_ok(q, w, y);
        for (int i = 0; i < 12; i++) {
            float s = want[axis][axis ? i % 4 : i / 4] / 127.0f;
            ck_assert(same_bits(y[i], fminf(fmaxf(rintf(v[i] / s), -128), 127) * s));
        }
        tq_quantizer_free(q);
    }
    tq_tensor_free(w);
}
END_TEST

START_TEST(test_block_layouts_short_last_block)
{
    /* (2,10), blocks of 4 along the last axis: 4, 4 and a short 2 per row */
    float v[20];
    for (int i = 0; i < 20; i++) v[i] = (float)((i % 7) - 3) * (1.0f + (float)i);
    tq_tensor *w = tensor_of(2, (int32_t[]){2, 10}, v, false);
    tq_quantizer *q = make_q("int4:block=4");
    tq_error e = {0};
    ck_assert_int_eq(tq_quantizer_calibrate_weight(q, w, &e), TQ_STATUS_OK);
    ck_assert_int_eq(tq_quantizer_amax_count(q), 6);
    for (int r = 0; r < 2; r++)
        for (int b = 0; b < 3; b++) {
            float m = 0;
            for (int i = b * 4; i < b * 4 + 4 && i < 10; i++) m = fmaxf(m, fabsf(v[r * 10 + i]));
            ck_assert_float_eq(tq_quantizer_amax(q)[r * 3 + b], m);
        }
    float y[20];
    apply_ok(q, w, y);
    for (int i = 0; i < 20; i++) {
        float s = tq_quantizer_amax(q)[(i / 10) * 3 + (i % 10) / 4] / 7.0f;
        ck_assert(same_bits(y[i], fminf(fmaxf(rintf(v[i] / s), -8), 7) * s));
    }
    tq_quantizer_free(q);

    /* (5,3), blocks of 2 along axis 0: rows {0,1}, {2,3}, {4}; amax laid out [block][col] */
    float u[15];
    for (int i = 0; i < 15; i++) u[i] = (float)(i * 5 % 11) - 5.5f;
    tq_tensor *x = tensor_of(2, (int32_t[]){5, 3}, u, false);
    q = make_q("int8:block=2:axis=0");
    ck_assert_int_eq(tq_quantizer_calibrate_weight(q, x, &e), TQ_STATUS_OK);
    ck_assert_int_eq(tq_quantizer_amax_count(q), 9);
    for (int b = 0; b < 3; b++)
        for (int c = 0; c < 3; c++) {
            float m = 0;
            for (int r = 2 * b; r < 2 * b + 2 && r < 5; r++) m = fmaxf(m, fabsf(u[r * 3 + c]));
            ck_assert_float_eq(tq_quantizer_amax(q)[b * 3 + c], m);
        }
    float z[15];
    apply_ok(q, x, z);
    for (int i = 0; i < 15; i++) {
        float s = tq_quantizer_amax(q)[(i / 3) / 2 * 3 + i % 3] / 127.0f;
        ck_assert(same_bits(z[i], fminf(fmaxf(rintf(u[i] / s), -128), 127) * s));
    }
    tq_quantizer_free(q);
    tq_tensor_free(x);
    tq_tensor_free(w);
}
END_TEST

START_TEST(test_idempotence)
{
    const char *specs[] = {"int8", "int4", "int2", "uint4", "int4:narrow", "int8:channel=0",
                           "int4:block=16", "e4m3", "e5m2", "e2m1", "mxfp8", "mxfp4", "mxint8",
                           "nvfp4"};
    tq_rng rng;
    tq_rng_seed(&rng, 12);
    tq_tensor *w = tq_test_tensor(&rng, 2, (int32_t[]){8, 64}, false, -2, 2);
    tq_tensor *y1 = tq_tensor_new(2, (int32_t[]){8, 64}, false);
    float y2[512];
    for (size_t k = 0; k < sizeof specs / sizeof *specs; k++) {
        tq_quantizer *q = make_q(specs[k]);
        tq_error e = {0};
        ck_assert_int_eq(tq_quantizer_calibrate_weight(q, w, &e), TQ_STATUS_OK);
        apply_ok(q, w, y1->data);
        apply_ok(q, y1, y2);
        int changed = 0;
        for (int i = 0; i < 512; i++) changed += !same_bits(y1->data[i], y2[i]);
        ck_assert_msg(changed == 0, "%s: fq(fq(x)) differs from fq(x) in %d places", specs[k],
                      changed);
        tq_quantizer_free(q);
    }
    tq_tensor_free(y1);
    tq_tensor_free(w);
}
END_TEST

/* ---- MX and NVFP4 scales on hand-computed cases */

static void check_block(const char *spec, float amax, const float *in, const float *want, int n)
{
    float v[32] = {0};
    v[0] = amax;
    for (int i = 0; i < n; i++) v[1 + i] = in[i];
    tq_tensor *x = tensor_of(2, (int32_t[]){1, 32}, v, false);
    tq_quantizer *q = make_q(spec);
    tq_error e = {0};
    ck_assert_int_eq(tq_quantizer_calibrate_weight(q, x, &e), TQ_STATUS_OK);
    float y[32];
    apply_ok(q, x, y);
    for (int i = 0; i < n; i++)
        ck_assert_msg(y[1 + i] == want[i], "%s amax %g: %g -> %g, want %g", spec, (double)amax,
                      (double)in[i], (double)y[1 + i], (double)want[i]);
    tq_quantizer_free(q);
    tq_tensor_free(x);
}

START_TEST(test_e8m0_scales)
{
    /* mxfp8: amax 1 -> exponent 0 - 8, scale 2^-8; 0.3*256 = 76.8 -> e4m3 80 -> 0.3125 */
    check_block("mxfp8", 1.0f, (float[]){1.0f, 0.3f, -0.3f}, (float[]){1.0f, 0.3125f, -0.3125f}, 3);
    /* amax 3 -> scale 2^-7: 3*128 = 384 on the grid */
    check_block("mxfp8", 3.0f, (float[]){3.0f, 0.3f}, (float[]){3.0f, 0.3125f}, 2);
    /* amax 1.9 -> scale 2^-8: 486.4 saturates at 448 -> 1.75 */
    check_block("mxfp8", 1.9f, (float[]){1.9f}, (float[]){1.75f}, 1);
    /* mxfp4: amax 1 -> 2^(0-2) = 0.25; 0.3/0.25 = 1.2 -> 1; 0.9/0.25 = 3.6 -> 4 */
    check_block("mxfp4", 1.0f, (float[]){0.3f, 0.9f, 0.6f}, (float[]){0.25f, 1.0f, 0.5f}, 3);
    /* amax 7 -> 2^(2-2) = 1; 7 saturates at 6; 2.5 ties to 2 */
    check_block("mxfp4", 7.0f, (float[]){7.0f, 2.5f}, (float[]){6.0f, 2.0f}, 2);
    /* mxint8: amax 1 -> X = 1, elements k/64: 0.3*64 = 19.2 -> 19/64 */
    check_block("mxint8", 1.0f, (float[]){0.3f, 1.0f}, (float[]){19.0f / 64, 1.0f}, 2);
    /* amax 1.99 -> X = 1: 127.36 saturates at 127/64 */
    check_block("mxint8", 1.99f, (float[]){1.99f}, (float[]){127.0f / 64}, 1);
    /* amax 6 -> X = 4, step 1/16 */
    check_block("mxint8", 6.0f, (float[]){6.0f, 0.1f}, (float[]){6.0f, 0.125f}, 2);
}
END_TEST

START_TEST(test_nvfp4_scales)
{
    /* two blocks of 16: global amax 2016 -> global scale 2016 / 2688 = 0.75 (a scale of 1
     * would hide whether it is multiplied, divided or ignored). Block 0: 2016 / 6 / 0.75 =
     * 448, scale 448 * 0.75 = 336. Block 1: 100 / 6 / 0.75 = 22.2 -> e4m3 22, scale 16.5 */
    float v[32] = {0};
    v[0] = 2016.0f, v[1] = 1000.0f, v[2] = -300.0f;
    v[16] = 100.0f, v[17] = 20.0f, v[18] = 40.0f, v[19] = -7.0f;
    tq_tensor *x = tensor_of(2, (int32_t[]){1, 32}, v, false);
    tq_quantizer *q = make_q("nvfp4");
    tq_error e = {0};
    ck_assert_int_eq(tq_quantizer_calibrate_weight(q, x, &e), TQ_STATUS_OK);
    ck_assert_int_eq(tq_quantizer_amax_count(q), 2);
    float y[32], codes[32], scales[2];
    apply_ok(q, x, y);
    ck_assert_int_eq(tq_quantizer_codes(q, x, codes, scales, &e), TQ_STATUS_OK);
    ck_assert_float_eq(scales[0], 336.0f);
    ck_assert_float_eq(scales[1], 16.5f);
    ck_assert_float_eq(y[0], 2016.0f);
    ck_assert_float_eq(y[1], 1008.0f);  /* 1000/336 = 2.98 -> 3 */
    ck_assert_float_eq(y[2], -336.0f);  /* -0.89 -> -1 */
    ck_assert_float_eq(y[16], 99.0f);   /* 100/16.5 = 6.06 -> 6 */
    ck_assert_float_eq(y[17], 16.5f);   /* 1.21 -> 1 */
    ck_assert_float_eq(y[18], 33.0f);   /* 2.42 -> 2 */
    ck_assert_float_eq(y[19], -8.25f);  /* -0.42 -> -0.5 */
    ck_assert_float_eq(y[3], 0.0f);
    tq_quantizer_free(q);
    tq_tensor_free(x);
}
END_TEST

/* ---- the op and its STE */

/* d/dx sum(fq(x) * r): the test compares it with r times the clipping mask */
static void backward_of(tq_quantizer *q, tq_tensor *x, const float *r, float *grad)
{
    tq_tape *t = tq_tape_new();
    memset(x->grad, 0, (size_t)x->numel * sizeof(float));
    tq_quantizer_set_state(q, TQ_QSTATE_QUANTIZING);
    tq_tensor *rt = tq_tape_tensor(t, x->ndim, x->shape, false);
    memcpy(rt->data, r, (size_t)x->numel * sizeof(float));
    tq_tensor *loss = tq_sum(t, tq_mul(t, tq_quantize(t, x, q), rt));
    ck_assert_msg(tq_backward(t, loss) == TQ_STATUS_OK, "%s", tq_tape_error(t)->msg);
    memcpy(grad, x->grad, (size_t)x->numel * sizeof(float));
    tq_tape_free(t);
}

START_TEST(test_ste_clipping_mask)
{
    const float amax = 1.0f, past = nextafterf(1.0f, 2.0f);
    const float v[] = {1.0f, -1.0f, past, -past, 0.3f, -0.7f, 5.0f, 0.0f};
    const float r[] = {0.5f, -1.5f, 2.0f, 3.0f, -0.25f, 1.0f, 7.0f, 0.75f};
    tq_tensor *x = tensor_of(1, (int32_t[]){8}, v, true);
    float g[8];

    tq_quantizer *q = make_q("int8");
    tq_error e = {0};
    ck_assert_int_eq(tq_quantizer_set_amax(q, &amax, 1, &e), TQ_STATUS_OK);
    backward_of(q, x, r, g);
    for (int i = 0; i < 8; i++) ck_assert_float_eq(g[i], fabsf(v[i]) <= amax ? r[i] : 0.0f);
    ck_assert_float_eq(g[0], 0.5f); /* exactly at amax: passes */
    ck_assert_float_eq(g[2], 0.0f); /* one ulp beyond: stopped */

    /* unsigned: passes only on [0, amax] */
    ck_assert_int_eq(tq_quantizer_set_unsigned_chosen(q, true, &e), TQ_STATUS_OK);
    backward_of(q, x, r, g);
    for (int i = 0; i < 8; i++)
        ck_assert_float_eq(g[i], v[i] >= 0.0f && v[i] <= amax ? r[i] : 0.0f);
    tq_quantizer_free(q);

    /* pass-through: the gradient everywhere */
    q = make_q("int2:ste=pass");
    ck_assert_int_eq(tq_quantizer_set_amax(q, &amax, 1, &e), TQ_STATUS_OK);
    backward_of(q, x, r, g);
    for (int i = 0; i < 8; i++) ck_assert_float_eq(g[i], r[i]);
    tq_quantizer_free(q);
    tq_tensor_free(x);
}
END_TEST

START_TEST(test_ste_per_channel_and_block_mask)
{
    tq_rng rng;
    tq_rng_seed(&rng, 13);
    const char *specs[] = {"int4:channel=1", "int4:block=3", "mxfp4", "int8:channel=0"};
    for (int k = 0; k < 4; k++) {
        tq_tensor *x = tq_test_tensor(&rng, 2, (int32_t[]){6, 40}, true, -1, 1);
        tq_quantizer *q = make_q(specs[k]);
        tq_error e = {0};
        ck_assert_int_eq(tq_quantizer_calibrate_weight(q, x, &e), TQ_STATUS_OK);
        /* shrink the amax so that some values clip, then grow the data a little */
        int64_t n = tq_quantizer_amax_count(q);
        float *a = malloc((size_t)n * sizeof *a);
        for (int64_t j = 0; j < n; j++) a[j] = 0.6f * tq_quantizer_amax(q)[j];
        ck_assert_int_eq(tq_quantizer_set_amax(q, a, n, &e), TQ_STATUS_OK);
        float r[240], g[240];
        for (int i = 0; i < 240; i++) r[i] = tq_rng_normal(&rng);
        backward_of(q, x, r, g);
        int passed = 0;
        for (int i = 0; i < 240; i++) {
            int row = i / 40, col = i % 40;
            int64_t idx = k == 0 ? col : k == 1 ? row * 14 + col / 3 : k == 2 ? row * 2 + col / 32 : row;
            bool pass = fabsf(x->data[i]) <= a[idx];
            passed += pass;
            ck_assert_float_eq(g[i], pass ? r[i] : 0.0f);
        }
        ck_assert_int_gt(passed, 0);
        ck_assert_int_lt(passed, 240);
        free(a);
        tq_quantizer_free(q);
        tq_tensor_free(x);
    }
}
END_TEST

/* Fake quant runs on several threads only from 2^22 elements: on a tensor of 1024 x 4097
 * (just over, with a short last chunk) forward and STE backward at two threads give the
 * same bits as at one, and sampled elements match clamp(rint(x / scale)) * scale and the
 * clipping mask. */
static void fq_big_run(tq_quantizer *q, tq_tensor *x, const float *r, float *y, float *g)
{
    tq_tape *t = tq_tape_new();
    memset(x->grad, 0, (size_t)x->numel * sizeof(float));
    tq_tensor *rt = tq_tape_tensor(t, x->ndim, x->shape, false);
    memcpy(rt->data, r, (size_t)x->numel * sizeof(float));
    tq_tensor *fq = tq_quantize(t, x, q);
    ck_assert_msg(fq != NULL, "%s", tq_tape_error(t)->msg);
    ck_assert_msg(tq_backward(t, tq_sum(t, tq_mul(t, fq, rt))) == TQ_STATUS_OK, "%s",
                  tq_tape_error(t)->msg);
    memcpy(y, fq->data, (size_t)x->numel * sizeof(float));
    memcpy(g, x->grad, (size_t)x->numel * sizeof(float));
    tq_tape_free(t);
}

START_TEST(test_fake_quant_two_threads_on_large_tensor)
{
    tq_rng rng;
    tq_rng_seed(&rng, 17);
    tq_tensor *x = tq_test_tensor(&rng, 2, (int32_t[]){1024, 4097}, true, -3, 3);
    const int64_t n = x->numel;
    ck_assert_int_ge(n, (int64_t)1 << 22);
    float *r = malloc((size_t)n * sizeof *r);
    float *out = malloc(4 * (size_t)n * sizeof *out); /* y1, g1, y2, g2 */
    ck_assert(r && out);
    for (int64_t i = 0; i < n; i++) r[i] = (float)(i % 7) - 3.0f;
    tq_quantizer *q = make_q("int8");
    tq_error e = {0};
    const float amax = 2.5f; /* about a sixth of x lies beyond and clips */
    ck_assert_int_eq(tq_quantizer_set_amax(q, &amax, 1, &e), TQ_STATUS_OK);
    tq_quantizer_set_state(q, TQ_QSTATE_QUANTIZING);

    const int saved = tq_get_threads();
    tq_set_threads(1);
    fq_big_run(q, x, r, out, out + n);
    tq_set_threads(2);
    const int two = tq_get_threads();
    fq_big_run(q, x, r, out + 2 * n, out + 3 * n);
    tq_set_threads(saved);
    ck_assert_int_eq(two, 2);
    ck_assert_msg(memcmp(out, out + 2 * n, (size_t)n * sizeof(float)) == 0,
                  "forward differs between 1 and 2 threads");
    ck_assert_msg(memcmp(out + n, out + 3 * n, (size_t)n * sizeof(float)) == 0,
                  "STE backward differs between 1 and 2 threads");

    const float scale = amax / 127.0f;
    int64_t clipped = 0, checked = 0;
    for (int64_t i = 0; i < n; i += 1009) { /* a prime stride: every chunk, varied offsets */
        float v = fminf(fmaxf(rintf(x->data[i] / scale), -128.0f), 127.0f) * scale;
        float gv = fabsf(x->data[i]) <= amax ? r[i] : 0.0f;
        ck_assert_msg(same_bits(out[2 * n + i], v), "y[%lld] = %a, expected %a", (long long)i,
                      (double)out[2 * n + i], (double)v);
        ck_assert_msg(same_bits(out[3 * n + i], gv), "grad[%lld] = %a, expected %a",
                      (long long)i, (double)out[3 * n + i], (double)gv);
        clipped += gv == 0.0f && r[i] != 0.0f;
        checked++;
    }
    /* the last element, in the short last chunk */
    float last = fminf(fmaxf(rintf(x->data[n - 1] / scale), -128.0f), 127.0f) * scale;
    ck_assert(same_bits(out[2 * n + n - 1], last));
    ck_assert_int_gt(clipped, 0);
    ck_assert_int_lt(clipped, checked);
    free(out);
    free(r);
    tq_quantizer_free(q);
    tq_tensor_free(x);
}
END_TEST

START_TEST(test_states)
{
    tq_tape *t = tq_tape_new();
    tq_tensor *x = tq_tape_tensor(t, 2, (int32_t[]){2, 3}, false);
    const float v[] = {-1, 0.5f, 2, 0.25f, -0.125f, 1};
    memcpy(x->data, v, sizeof v);
    tq_quantizer *q = make_q("int4");
    ck_assert_ptr_eq(tq_quantize(t, x, q), x); /* off */
    /* quantizing without amax: an error on the tape naming the quantizer */
    tq_quantizer_set_state(q, TQ_QSTATE_QUANTIZING);
    ck_assert_ptr_null(tq_quantize(t, x, q));
    ck_assert_str_eq(tq_tape_error(t)->msg, "quantizer int4: no amax yet (calibrate it first)");
    tq_tape_reset(t);
    x = tq_tape_tensor(t, 2, (int32_t[]){2, 3}, false);
    memcpy(x->data, v, sizeof v);
    tq_quantizer_set_state(q, TQ_QSTATE_CALIBRATING);
    ck_assert_ptr_eq(tq_quantize(t, x, q), x);
    tq_error e = {0};
    ck_assert_int_eq(tq_quantizer_finish_calibration(q, &e), TQ_STATUS_OK);
    ck_assert_int_eq(tq_quantizer_amax_count(q), 1);
    ck_assert_float_eq(tq_quantizer_amax(q)[0], 2.0f);
    ck_assert(!tq_quantizer_unsigned_chosen(q));
    tq_quantizer_set_state(q, TQ_QSTATE_QUANTIZING);
    tq_tensor *y = tq_quantize(t, x, q);
    ck_assert_ptr_nonnull(y);
    ck_assert_ptr_ne(y, x);
    const float s = 2.0f / 7;
    for (int i = 0; i < 6; i++) ck_assert_float_eq(y->data[i], rintf(v[i] / s) * s);
    tq_quantizer_free(q);

    /* a per-channel quantizer fed the wrong number of channels */
    q = make_q("int8:channel=1");
    float a3[] = {1, 1, 1, 1};
    ck_assert_int_eq(tq_quantizer_set_amax(q, a3, 4, &e), TQ_STATUS_OK);
    tq_quantizer_set_state(q, TQ_QSTATE_QUANTIZING);
    ck_assert_ptr_null(tq_quantize(t, x, q));
    ck_assert_str_eq(tq_tape_error(t)->msg,
                     "quantizer int8:channel=1: holds 4 amax values, a tensor of shape (2,3) "
                     "needs 3");
    tq_quantizer_free(q);
    tq_tape_free(t);
}
END_TEST

/* ---- calibrators */

static tq_quantizer *calibrated(const char *spec, const float *v, int64_t n, int batches)
{
    tq_quantizer *q = make_q(spec);
    tq_quantizer_set_state(q, TQ_QSTATE_CALIBRATING);
    tq_tape *t = tq_tape_new();
    tq_tape_set_recording(t, false);
    int64_t per = n / batches;
    for (int b = 0; b < batches; b++) {
        tq_tensor *x = tq_tape_tensor(t, 1, (int32_t[]){(int32_t)per}, false);
        memcpy(x->data, v + b * per, (size_t)per * sizeof(float));
        ck_assert_ptr_eq(tq_quantize(t, x, q), x);
        tq_tape_reset(t);
    }
    tq_tape_free(t);
    tq_error e = {0};
    ck_assert_msg(tq_quantizer_finish_calibration(q, &e) == TQ_STATUS_OK, "%s", e.msg);
    return q;
}

START_TEST(test_calib_max)
{
    const float v[] = {0.1f, -0.2f, 0.3f, 0.05f, -3.5f, 1.0f, 2.0f, 0.0f};
    tq_quantizer *q = calibrated("int8", v, 8, 2);
    ck_assert_float_eq(tq_quantizer_amax(q)[0], 3.5f);
    tq_quantizer_free(q);
}
END_TEST

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

START_TEST(test_calib_percentile_uniform)
{
    enum { N = 200000 };
    tq_rng rng;
    tq_rng_seed(&rng, 14);
    float *v = malloc(N * sizeof *v), *sorted = malloc(N * sizeof *v);
    /* batches with growing ranges force the histogram to rebin */
    for (int i = 0; i < N; i++) {
        float u = tq_rng_uniform(&rng);
        v[i] = (i % 2 ? -1.0f : 1.0f) * u * (i < N / 4 ? 0.3f : 1.0f);
        sorted[i] = fabsf(v[i]);
    }
    qsort(sorted, N, sizeof *sorted, cmp_float);
    tq_quantizer *q = calibrated("int8:calib=percentile:p=99", v, N, 4);
    float want = sorted[(int)(0.99 * N) - 1], width = 2.0f * sorted[N - 1] / 2048;
    TQ_ASSERT_NEAR(tq_quantizer_amax(q)[0], want, width);
    ck_assert_float_lt(tq_quantizer_amax(q)[0], sorted[N - 1]);
    tq_quantizer_free(q);
    free(v);
    free(sorted);
}
END_TEST

START_TEST(test_calib_mse_entropy_outliers)
{
    /* MSE trades the rounding noise of all values against the clipping error of the
     * outliers: 200k values keep int8's noise large enough that clipping four outliers at
     * 12..15 sigma pays off */
    enum { N = 200000 };
    tq_rng rng;
    tq_rng_seed(&rng, 15);
    float *v = malloc(N * sizeof *v);
    for (int i = 0; i < N; i++) v[i] = tq_rng_normal(&rng);
    for (int i = 0; i < 4; i++) v[i * 997] = (i % 2 ? -12.0f : 12.0f) + (float)i;
    const char *specs[] = {"int8:calib=mse", "int8:calib=entropy", "int4:calib=mse",
                           "int4:calib=entropy", "e2m1:calib=mse", "e2m1:calib=entropy",
                           "e4m3:calib=entropy", "int8:calib=entropy:unsigned=off"};
    for (size_t k = 0; k < sizeof specs / sizeof *specs; k++) {
        tq_quantizer *q = calibrated(specs[k], v, N, 5);
        float a = tq_quantizer_amax(q)[0];
        ck_assert_msg(a > 2.0f && a < 15.0f, "%s chose amax %g", specs[k], (double)a);
        ck_assert(!tq_quantizer_unsigned_chosen(q));
        tq_quantizer_free(q);
    }
    free(v);
}
END_TEST

START_TEST(test_auto_unsigned)
{
    const float pos[] = {0.0f, 0.5f, 2.55f, 1.0f, 0.0f, 0.01f};
    tq_quantizer *q = calibrated("int8", pos, 6, 2);
    ck_assert(tq_quantizer_unsigned_chosen(q));
    ck_assert_int_eq(tq_quantizer_format(q).kind, TQ_FORMAT_UINT);
    ck_assert_int_eq(tq_quantizer_format(q).bits, 8);
    ck_assert_float_eq(tq_quantizer_amax(q)[0], 2.55f);
    char buf[256];
    tq_quantizer_describe(q, buf, sizeof buf);
    ck_assert_msg(strstr(buf, "uint8") && strstr(buf, "no negative"), "%s", buf);
    /* 255 levels on [0, amax] */
    const float v[] = {2.55f, 1.0f, -0.3f};
    tq_tensor *x = tensor_of(1, (int32_t[]){3}, v, false);
    float y[3];
    apply_ok(q, x, y);
    const float s = 2.55f / 255.0f;
    ck_assert_float_eq(y[0], 255.0f * s);
    ck_assert_float_eq(y[1], rintf(1.0f / s) * s);
    ck_assert_float_eq(y[2], 0.0f);
    tq_quantizer_free(q);

    const float mixed[] = {0.0f, 0.5f, -0.01f, 1.0f};
    q = calibrated("int8", mixed, 4, 1);
    ck_assert(!tq_quantizer_unsigned_chosen(q));
    ck_assert_int_eq(tq_quantizer_format(q).kind, TQ_FORMAT_INT);
    tq_quantizer_free(q);
    q = calibrated("int8:unsigned=off", pos, 6, 1);
    ck_assert(!tq_quantizer_unsigned_chosen(q));
    tq_quantizer_free(q);
    q = calibrated("e4m3", pos, 6, 1); /* FP formats keep their sign */
    ck_assert(!tq_quantizer_unsigned_chosen(q));
    tq_quantizer_free(q);
    tq_tensor_free(x);
}
END_TEST

/* ---- spec strings */

START_TEST(test_spec_round_trips)
{
    const char *cases[][2] = {
        {"int8", "int8"},
        {"int4:block=32:calib=mse", "int4:block=32:calib=mse"},
        {"int8:channel=0", "int8:channel=0"},
        {"int8:channel", "int8:channel=0"},
        {"e4m3:tensor", "e4m3"},
        {"uint4", "uint4"},
        {"int4:narrow", "int4:narrow"},
        {"int8:calib=percentile:p=99.9", "int8:calib=percentile:p=99.9"},
        {"int8:p=99", "int8:calib=percentile:p=99"},
        {"int8:calib=percentile", "int8:calib=percentile:p=99.99"},
        {"int2:ste=pass", "int2:ste=pass"},
        {"mxfp8", "mxfp8"},
        {"mxfp4", "mxfp4"},
        {"mxint8", "mxint8"},
        {"nvfp4:calib=entropy", "nvfp4:calib=entropy"},
        {"int4:unsigned=off", "int4:unsigned=off"},
        {"e5m2:block=16:axis=0", "e5m2:block=16:axis=0"},
        {"int8:axis=1:channel", "int8:channel=1"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        tq_qspec a, b;
        tq_error e = {0};
        ck_assert_msg(tq_qspec_parse(cases[k][0], &a, &e) == TQ_STATUS_OK, "%s", e.msg);
        char buf[128];
        tq_qspec_format(&a, buf, sizeof buf);
        ck_assert_str_eq(buf, cases[k][1]);
        ck_assert_int_eq(tq_qspec_parse(buf, &b, &e), TQ_STATUS_OK);
        ck_assert_msg(tq_qspec_equal(&a, &b), "%s does not parse back", buf);
    }
    tq_qspec s, d = tq_qspec_default();
    tq_error e = {0};
    tq_qspec_parse("int4:block=32:calib=mse", &s, &e);
    ck_assert_int_eq(s.format.bits, 4);
    ck_assert_int_eq(s.block, TQ_BLOCK_BLOCK);
    ck_assert_int_eq(s.block_size, 32);
    ck_assert_int_eq(s.axis, -1);
    ck_assert_int_eq(s.calib, TQ_CALIB_MSE);
    ck_assert(d.auto_unsigned && d.ste == TQ_STE_CLIP && d.block == TQ_BLOCK_TENSOR);
    tq_qspec_parse("nvfp4", &s, &e);
    ck_assert(s.scale == TQ_SCALE_NVFP4 && s.block_size == 16 && s.format.kind == TQ_FORMAT_E2M1);
    tq_qspec_parse("mxint8", &s, &e);
    ck_assert(s.scale == TQ_SCALE_E8M0 && s.block_size == 32 && s.format.kind == TQ_FORMAT_INT);
}
END_TEST

START_TEST(test_spec_errors)
{
    const char *cases[][2] = {
        {"int9", "spec \"int9\": unknown format \"int9\" (expected int2..int8, uint2..uint8, "
                 "e4m3, e5m2, e2m1, mxfp8, mxfp4, mxint8, nvfp4)"},
        {"", "spec \"\": unknown format \"\" (expected int2..int8, uint2..uint8, e4m3, e5m2, "
             "e2m1, mxfp8, mxfp4, mxint8, nvfp4)"},
        {"int8:foo", "spec \"int8:foo\": unknown option \"foo\" (expected tensor, "
                     "channel[=axis], block=N, axis=N, calib=max|percentile|mse|entropy, "
                     "p=PCT, narrow, ste=clip|pass, unsigned=on|off, scale=fixed|learn)"},
        {"int8:calib=kl", "spec \"int8:calib=kl\": option \"calib=kl\" needs max, percentile, "
                          "mse or entropy"},
        {"int8:block=0", "spec \"int8:block=0\": option \"block=0\" needs a block size >= 1"},
        {"int8:p=101", "spec \"int8:p=101\": option \"p=101\" needs a percentile in (0,100]"},
        {"mxfp8:block=16", "spec \"mxfp8:block=16\": option \"block=16\" has fixed blocks"},
        {"e4m3:narrow", "spec \"e4m3:narrow\": option \"narrow\" applies to intN formats only"},
        {"int8:calib=mse:p=99", "spec \"int8:calib=mse:p=99\": p= needs calib=percentile"},
        {"int8:axis=1", "spec \"int8:axis=1\": axis= needs channel or block=N (per-tensor has "
                        "no axis)"},
        {"int8:ste=maybe", "spec \"int8:ste=maybe\": option \"ste=maybe\" needs clip or pass"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        tq_qspec s = tq_qspec_default();
        s.format.bits = 3; /* untouched on error */
        tq_error e = {0};
        ck_assert_int_eq(tq_qspec_parse(cases[k][0], &s, &e), TQ_STATUS_FORMAT);
        ck_assert_str_eq(e.msg, cases[k][1]);
        ck_assert_int_eq(s.format.bits, 3);
    }
}
END_TEST

/* Outputs of m on x in evaluation mode, copied into out. */
static void eval_into(tq_model *m, tq_tensor *x, float *out, int64_t n)
{
    tq_tape *t = tq_tape_new();
    tq_tape_set_recording(t, false);
    tq_tape_set_training(t, false);
    tq_tensor *y = tq_model_forward(m, t, x, NULL);
    ck_assert_msg(y != NULL, "forward: %s", tq_tape_error(t)->msg);
    ck_assert_int_eq(y->numel, n);
    memcpy(out, y->data, (size_t)n * sizeof(float));
    tq_tape_free(t);
}

/* A model with calibrated quantizers through the real run checkpoint (tq_run_save,
 * tq_run_load): every quantizer comes back with its spec, amax, unsigned choice and state,
 * and the model gives the same outputs to the bit. */
START_TEST(test_checkpoint_restore)
{
    tq_rng rng;
    tq_rng_seed(&rng, 16);
    tq_error e = {0};
    tq_run run = {.batch = 4, .std = {1, 1, 1, 1}};
    snprintf(run.data_name, sizeof run.data_name, "none");
    run.model = tq_model_create("mlp", 1, 5, 10, 4, &rng, &e);
    ck_assert_msg(run.model != NULL, "%s", e.msg);
    tq_model *m = run.model;
    const int nq = tq_model_qlayer_count(m);
    ck_assert_int_eq(nq, 3);
    for (int i = 0; i < nq; i++) {
        tq_qlayer *l = tq_model_qlayer(m, i);
        tq_quantizer *wq = make_q(i == 1 ? "int4:block=16:calib=mse" : "int4:channel=0");
        ck_assert_msg(tq_quantizer_calibrate_weight(wq, l->weight, &e) == TQ_STATUS_OK, "%s", e.msg);
        tq_quantizer *aq = make_q("int4:calib=percentile:p=99.5");
        tq_quantizer_set_state(aq, TQ_QSTATE_CALIBRATING);
        tq_qlayer_set_quantizers(l, wq, aq);
    }
    /* inputs in [0, 3): every layer's input is non-negative, so each picks the unsigned grid */
    tq_tensor *x = tq_test_tensor(&rng, 4, (int32_t[]){8, 1, 5, 10}, false, 0, 3);
    float y1[8 * 4], y2[8 * 4];
    eval_into(m, x, y1, 32); /* calibration pass */
    for (int i = 0; i < nq; i++) {
        tq_quantizer *aq = tq_model_qlayer(m, i)->input_q;
        ck_assert_msg(tq_quantizer_finish_calibration(aq, &e) == TQ_STATUS_OK, "%s", e.msg);
        tq_quantizer_set_state(aq, TQ_QSTATE_QUANTIZING);
        ck_assert(tq_quantizer_unsigned_chosen(aq));
    }
    eval_into(m, x, y1, 32);

    char dir[] = "/tmp/tq_quant_ckpt_XXXXXX", path[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/q.tqc", dir);
    ck_assert_msg(tq_run_save(&run, path, &e) == TQ_STATUS_OK, "%s", e.msg);
    tq_run back;
    ck_assert_msg(tq_run_load(path, &back, &e) == TQ_STATUS_OK, "%s", e.msg);
    eval_into(back.model, x, y2, 32);
    ck_assert_mem_eq(y1, y2, sizeof y1);
    for (int i = 0; i < nq; i++) {
        tq_qlayer *a = tq_model_qlayer(m, i), *b = tq_model_qlayer(back.model, i);
        tq_quantizer *qa[2] = {a->weight_q, a->input_q}, *qb[2] = {b->weight_q, b->input_q};
        for (int k = 0; k < 2; k++) {
            ck_assert_ptr_nonnull(qb[k]);
            char sa[128], sb[128], da[256], db[256];
            tq_qspec_format(tq_quantizer_spec(qa[k]), sa, sizeof sa);
            tq_qspec_format(tq_quantizer_spec(qb[k]), sb, sizeof sb);
            ck_assert_str_eq(sa, sb);
            ck_assert_int_eq(tq_quantizer_amax_count(qa[k]), tq_quantizer_amax_count(qb[k]));
            ck_assert_mem_eq(tq_quantizer_amax(qa[k]), tq_quantizer_amax(qb[k]),
                             (size_t)tq_quantizer_amax_count(qa[k]) * sizeof(float));
            ck_assert_int_eq(tq_quantizer_unsigned_chosen(qa[k]), tq_quantizer_unsigned_chosen(qb[k]));
            ck_assert_int_eq(tq_quantizer_state(qa[k]), tq_quantizer_state(qb[k]));
            ck_assert_str_eq(tq_quantizer_describe(qa[k], da, sizeof da), tq_quantizer_describe(qb[k], db, sizeof db));
        }
    }
    char spec[128];
    tq_qspec_format(tq_quantizer_spec(tq_model_qlayer(back.model, 0)->input_q), spec, sizeof spec);
    ck_assert_str_eq(spec, "int4:calib=percentile:p=99.5");
    /* the checkpoint's quantizers are what quantize: without them the outputs change */
    tq_qlayer_set_quantizers(tq_model_qlayer(back.model, 0), NULL, NULL);
    eval_into(back.model, x, y2, 32);
    ck_assert(memcmp(y1, y2, sizeof y1) != 0);
    /* bad amax is refused */
    float bad = NAN;
    ck_assert_int_eq(tq_quantizer_set_amax(tq_model_qlayer(m, 0)->input_q, &bad, 1, &e), TQ_STATUS_NUMERIC);
    tq_run_free(&back);
    tq_run_free(&run);
    tq_tensor_free(x);
    unlink(path);
    rmdir(dir);
}
END_TEST

/* ---- metrics */

START_TEST(test_metrics)
{
    const float x[] = {1, 2}, xq[] = {1, 1};
    TQ_ASSERT_NEAR(tq_sqnr_db(x, xq, 2), 10.0 * log10(5.0), 1e-9);
    TQ_ASSERT_NEAR(tq_quant_mse(x, xq, 2), 0.5, 1e-12);
    ck_assert(isinf(tq_sqnr_db(x, x, 2)));
    /* uniform data over the full int8 range: SQNR = 10 log10(4 * 127^2) = 48.17 dB */
    enum { N = 100000 };
    tq_rng rng;
    tq_rng_seed(&rng, 17);
    tq_tensor *w = tq_test_tensor(&rng, 1, (int32_t[]){N}, false, -1, 1);
    tq_quantizer *q = make_q("int8");
    float one = 1.0f;
    tq_error e = {0};
    tq_quantizer_set_amax(q, &one, 1, &e);
    float *y = malloc(N * sizeof *y);
    apply_ok(q, w, y);
    TQ_ASSERT_NEAR(tq_sqnr_db(w->data, y, N), 10.0 * log10(4.0 * 127 * 127), 0.2);
    free(y);
    tq_quantizer_free(q);
    tq_tensor_free(w);
}
END_TEST

START_TEST(test_activation_channels_and_dynamic_blocks)
{
    /* per-channel calibration over batches of (N=2, C=3, 2): amax per dimension-1 index */
    tq_tape *t = tq_tape_new();
    tq_quantizer *q = make_q("int8:channel=1:calib=percentile:p=100");
    tq_quantizer_set_state(q, TQ_QSTATE_CALIBRATING);
    const float b1[] = {1, -2, 3, 0, 0.5f, 0.25f, -4, 1, 0, 0, 0, 6};
    const float b2[] = {0, 0, 0, 5, 0, 0, 0, 0, 0.5f, -0.5f, 0, 0};
    const float *batches[] = {b1, b2};
    for (int b = 0; b < 2; b++) {
        tq_tensor *x = tq_tape_tensor(t, 3, (int32_t[]){2, 3, 2}, false);
        memcpy(x->data, batches[b], sizeof b1);
        tq_quantize(t, x, q);
    }
    tq_error e = {0};
    ck_assert_int_eq(tq_quantizer_finish_calibration(q, &e), TQ_STATUS_OK);
    ck_assert_int_eq(tq_quantizer_amax_count(q), 3);
    /* p=100 gives the top edge of the bin holding the maximum: within a bin of it */
    const float want[] = {4, 5, 6};
    for (int c = 0; c < 3; c++) {
        ck_assert_float_le(tq_quantizer_amax(q)[c], want[c]);
        ck_assert_float_ge(tq_quantizer_amax(q)[c], want[c] * (1.0f - 2.0f / 2048));
    }
    char d[256];
    tq_quantizer_describe(q, d, sizeof d);
    ck_assert_msg(strstr(d, "per-channel axis 1") && strstr(d, "3 amax in [") &&
                      strstr(d, "(kept signed)") && strstr(d, "calib=percentile"),
                  "%s", d);
    tq_quantizer_free(q);

    /* per-block activations: one calibrated clip, block amax from each tensor */
    q = make_q("int4:block=4");
    tq_quantizer_set_state(q, TQ_QSTATE_CALIBRATING);
    tq_tensor *x = tq_tape_tensor(t, 2, (int32_t[]){1, 8}, false);
    const float v[] = {-3, 1, 0.5f, 0.25f, 0.7f, -0.35f, 0.1f, 0};
    memcpy(x->data, v, sizeof v);
    tq_quantize(t, x, q);
    ck_assert_int_eq(tq_quantizer_finish_calibration(q, &e), TQ_STATUS_OK);
    ck_assert_int_eq(tq_quantizer_amax_count(q), 1);
    float clip = 2.0f;
    ck_assert_int_eq(tq_quantizer_set_amax(q, &clip, 1, &e), TQ_STATUS_OK);
    float y[8];
    apply_ok(q, x, y);
    for (int i = 0; i < 8; i++) {
        float s = (i < 4 ? 2.0f : 0.7f) / 7; /* block 0 clipped at 2, block 1 its own max */
        ck_assert(same_bits(y[i], fminf(fmaxf(rintf(v[i] / s), -8), 7) * s));
    }
    tq_quantizer_describe(q, d, sizeof d);
    ck_assert_msg(strstr(d, "clipped at 2"), "%s", d);
    tq_quantizer_free(q);
    tq_tape_free(t);
}
END_TEST

static Suite *quant_suite(void)
{
    Suite *s = suite_create("quant");
    TCase *fmt = tcase_create("formats");
    tcase_add_test(fmt, test_int_grids);
    tcase_add_test(fmt, test_fp_grids);
    tcase_add_test(fmt, test_print_grid);
    tcase_add_test(fmt, test_ties_to_even);
    tcase_add_test(fmt, test_saturation_and_nan);
    suite_add_tcase(s, fmt);

    TCase *fq = tcase_create("fake_quant");
    tcase_add_test(fq, test_values_around_amax);
    tcase_add_test(fq, test_int8_bit_exact);
    tcase_add_test(fq, test_channel_layouts);
    tcase_add_test(fq, test_block_layouts_short_last_block);
    tcase_add_test(fq, test_idempotence);
    tcase_add_test(fq, test_e8m0_scales);
    tcase_add_test(fq, test_nvfp4_scales);
    tcase_add_test(fq, test_ste_clipping_mask);
    tcase_add_test(fq, test_ste_per_channel_and_block_mask);
    tcase_add_test(fq, test_states);
    tcase_add_test(fq, test_fake_quant_two_threads_on_large_tensor);
    suite_add_tcase(s, fq);

    TCase *cal = tcase_create("calibration");
    tcase_add_test(cal, test_calib_max);
    tcase_add_test(cal, test_calib_percentile_uniform);
    tcase_add_test(cal, test_calib_mse_entropy_outliers);
    tcase_add_test(cal, test_auto_unsigned);
    tcase_add_test(cal, test_activation_channels_and_dynamic_blocks);
    suite_add_tcase(s, cal);

    TCase *spec = tcase_create("spec");
    tcase_add_test(spec, test_spec_round_trips);
    tcase_add_test(spec, test_spec_errors);
    tcase_add_test(spec, test_checkpoint_restore);
    tcase_add_test(spec, test_metrics);
    suite_add_tcase(s, spec);
    return s;
}

int main(void) { return tq_test_run(quant_suite()); }
