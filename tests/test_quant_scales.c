/* Checks of tq_quantizer_scale_parts: each scale split into what its scale format stores
 * (float, E8M0 exponent, NVFP4 block and global scales), against hand-computed values and
 * against the scales tq_quantizer_codes gives, to the bit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "tq_test.h"

/* A quantizer of spec calibrated on x as a weight (one amax per block), its parts, and the
 * scales of tq_quantizer_codes; the caller frees parts. */
static tq_scale_parts *parts_of(const char *spec_str, const tq_tensor *x, int64_t *count)
{
    tq_qspec spec;
    tq_error err = {0};
    ck_assert_msg(tq_qspec_parse(spec_str, &spec, &err) == TQ_STATUS_OK, "%s", err.msg);
    tq_quantizer *q = tq_quantizer_new(&spec, &err);
    ck_assert_msg(q && tq_quantizer_calibrate_weight(q, x, &err) == TQ_STATUS_OK, "%s", err.msg);
    *count = tq_quantizer_scale_count(q, x, &err);
    ck_assert_int_gt(*count, 0);
    tq_scale_parts *parts = malloc((size_t)*count * sizeof *parts);
    float *scales = malloc((size_t)*count * sizeof *scales);
    ck_assert(parts && scales);
    ck_assert_msg(tq_quantizer_scale_parts(q, x, parts, &err) == TQ_STATUS_OK, "%s", err.msg);
    ck_assert_msg(tq_quantizer_codes(q, x, NULL, scales, &err) == TQ_STATUS_OK, "%s", err.msg);
    for (int64_t j = 0; j < *count; j++)
        ck_assert_msg(parts[j].step == scales[j], "%s scale %lld: step %.9g, codes' scale %.9g",
                      spec_str, (long long)j, (double)parts[j].step, (double)scales[j]);
    free(scales);
    tq_quantizer_free(q);
    return parts;
}

/* Blocks of 4 in a (2,8) tensor; row 1's second block is all zero. */
static float values[16] = {3.0f, -0.3f, 1.0f, 0.5f,  0.1f, 0.05f, -0.02f, 0.0f,
                           -7.0f, 2.0f, 1.0f, 0.25f, 0.0f, 0.0f,  0.0f,   0.0f};

static tq_tensor tensor_2x8(void)
{
    tq_tensor t = {.data = values};
    ck_assert(tq_shape_set(&t, 2, (int32_t[]){2, 8}));
    return t;
}

START_TEST(test_mx_scales_are_powers_of_two_from_the_shared_exponent)
{
    tq_tensor t = tensor_2x8();
    int64_t n;
    /* mxfp4: e2m1 (largest exponent 2) in blocks of 32 */
    tq_scale_parts *p = parts_of("mxfp4", &t, &n);
    ck_assert_int_eq(n, 2); /* one block of 32 per row, holding the row's 8 values */
    /* row 0: amax 3, floor(log2 3) = 1, exponent 1 - 2 = -1; row 1: amax 7 -> 2 - 2 = 0 */
    ck_assert_int_eq(p[0].exponent, -1);
    ck_assert_float_eq(p[0].step, 0.5f);
    ck_assert_float_eq(p[0].amax, 3.0f);
    ck_assert_int_eq(p[1].exponent, 0);
    ck_assert_float_eq(p[1].step, 1.0f);
    free(p);
    /* MXINT8: codes are 1.6 fixed point, so the step is 2^(exponent - 6); amax 7 -> exponent 2 */
    p = parts_of("mxint8", &t, &n);
    ck_assert_int_eq(p[1].exponent, 2);
    ck_assert_float_eq(p[1].step, ldexpf(1.0f, 2 - 6));
    ck_assert_int_eq(p[0].exponent, 1); /* floor(log2 3) */
    free(p);
}
END_TEST

START_TEST(test_nvfp4_scales_are_an_e4m3_block_scale_under_a_global_scale)
{
    tq_tensor t = tensor_2x8();
    int64_t n;
    tq_scale_parts *p = parts_of("nvfp4", &t, &n); /* blocks of 16: one per row */
    ck_assert_int_eq(n, 2);
    const float g = 7.0f / (448.0f * 6.0f); /* the global amax is the largest block amax, 7 */
    const tq_format e4m3 = {TQ_FORMAT_E4M3, 8, false};
    for (int j = 0; j < 2; j++) {
        ck_assert_float_eq(p[j].global_scale, g);
        ck_assert_float_eq(p[j].step, p[j].block_scale * p[j].global_scale);
        ck_assert_float_eq(tq_format_round(e4m3, p[j].block_scale), p[j].block_scale);
    }
    /* the largest block gets E4M3's largest value; 3 / 6 / g = 192 = 1.5 * 2^7 is on the grid */
    ck_assert_float_eq(p[1].block_scale, 448.0f);
    ck_assert_float_eq(p[0].block_scale, 192.0f);
    free(p);
}
END_TEST

START_TEST(test_float_block_scales_and_zero_blocks)
{
    tq_tensor t = tensor_2x8();
    int64_t n;
    tq_scale_parts *p = parts_of("int4:block=4", &t, &n);
    ck_assert_int_eq(n, 4);
    const float amax[4] = {3.0f, 0.1f, 7.0f, 0.0f};
    for (int j = 0; j < 4; j++) {
        ck_assert_float_eq(p[j].amax, amax[j]);
        ck_assert_float_eq(p[j].step, amax[j] / 7.0f);
    }
    ck_assert_float_eq(p[3].step, 0.0f); /* an all-zero block: codes 0, step 0 */
    free(p);
}
END_TEST

START_TEST(test_parts_fail_without_amax)
{
    tq_qspec spec;
    tq_error err = {0};
    ck_assert(tq_qspec_parse("mxfp8", &spec, &err) == TQ_STATUS_OK);
    tq_quantizer *q = tq_quantizer_new(&spec, &err);
    tq_tensor t = tensor_2x8();
    tq_scale_parts p[2];
    ck_assert_int_ne(tq_quantizer_scale_parts(q, &t, p, &err), TQ_STATUS_OK);
    ck_assert_ptr_nonnull(strstr(err.msg, "no amax"));
    tq_quantizer_free(q);
}
END_TEST

static Suite *scales_suite(void)
{
    Suite *s = suite_create("quant_scales");
    TCase *tc = tcase_create("scale_parts");
    tcase_add_test(tc, test_mx_scales_are_powers_of_two_from_the_shared_exponent);
    tcase_add_test(tc, test_nvfp4_scales_are_an_e4m3_block_scale_under_a_global_scale);
    tcase_add_test(tc, test_float_block_scales_and_zero_blocks);
    tcase_add_test(tc, test_parts_fail_without_amax);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tq_test_run(scales_suite()); }
