/* Check suite for fixed-point requantization (tq_requant_make / tq_requant_apply in
 * engine/qkernels.h): against double-precision rescaling on 10^6 random pairs, the ties rule
 * on exact ties, the range of mult and shift, hand-computed factors, and the edges (0, tiny,
 * huge, NaN). */
#include <stdio.h>
#include <stdlib.h>

#include "qkernels.h"
#include "tq_test.h"

/* round(v * r) with ties to even (nearbyint in the default rounding mode), in double: the
 * value tq_requant_apply approximates. */
static double rescale(int32_t v, double r) { return nearbyint((double)v * r); }

/* The engine's ranges: int32 sums up to ~2^24 in magnitude, factors s_x s_w / s_y in
 * [2^-20, 2^4] (log-uniform), both signs. Off by at most one code everywhere. */
START_TEST(test_against_double_on_a_million_pairs)
{
    tq_rng rng;
    tq_rng_seed(&rng, 21);
    const int n = 1000000;
    int exact = 0;
    for (int t = 0; t < n; t++) {
        const int32_t v = (int32_t)tq_rng_below(&rng, (1u << 25) + 1) - (1 << 24);
        double r = exp2(-20.0 + 24.0 * (double)tq_rng_u32(&rng) / 4294967296.0);
        if (t % 2) r = -r;
        const tq_requant q = tq_requant_make(r);
        const int64_t got = tq_requant_apply(v, q);
        const double want = rescale(v, r);
        ck_assert_msg(fabs((double)got - want) <= 1.0, "v=%d r=%.17g: %lld, expected %.0f", v,
                      r, (long long)got, want);
        exact += (double)got == want;
    }
    printf("test_requant: %d of %d pairs exactly round(v * r) (%.4f%%), the rest off by one\n",
           exact, n, 100.0 * exact / n);
    /* a miss needs v * r within |v r| 2^-31 of a tie, which for the largest products
     * (~2^28) is 1/8: about 1 pair in 1000 misses (0.12% with this seed) */
    ck_assert_int_ge(exact, n - n / 200);
}
END_TEST

/* Ties go to the even neighbour, as the header says: v * r exactly halfway between codes. */
START_TEST(test_ties_go_to_even)
{
    const struct {
        double r;
        int32_t v;
        int64_t want;
    } cases[] = {
        {0.5, 1, 0},   {0.5, -1, 0},  {0.5, 3, 2},    {0.5, -3, -2},  {0.5, 255, 128},
        {0.25, 2, 0},  {0.25, -2, 0}, {0.25, 6, 2},   {0.25, -6, -2}, {1.5, 1, 2},
        {1.5, -1, -2}, {-0.5, 1, 0},  {-0.5, -1, 0},  {-0.5, 3, -2},  {0.5, -16777215, -8388608},
        {0.5, 16777215, 8388608}, {0.125, 4, 0}, {0.125, -4, 0}, {0.5, 5, 2}, {0.5, -5, -2},
        /* not ties: the nearest code */
        {0.5, 2, 1},   {0.25, 3, 1},  {0.25, -3, -1}, {0.75, 3, 2},   {3.0, -7, -21},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int64_t got = tq_requant_apply(cases[i].v, tq_requant_make(cases[i].r));
        ck_assert_msg(got == cases[i].want, "r=%g v=%d: %lld, expected %lld", cases[i].r,
                      cases[i].v, (long long)got, (long long)cases[i].want);
    }
    /* every odd v at r = 1/2: the even one of (v - 1) / 2 and (v + 1) / 2 */
    const tq_requant half = tq_requant_make(0.5);
    for (int32_t v = -100001; v <= 100001; v += 2) {
        const int64_t down = ((int64_t)v - 1) / 2, up = ((int64_t)v + 1) / 2;
        ck_assert_int_eq(tq_requant_apply(v, half), down % 2 == 0 ? down : up);
    }
}
END_TEST

/* |mult| in [2^30, 2^31) with the sign of r, shift in [0, 62], and mult 2^-shift within
 * 2^-31 of r (relative), for |r| over [2^-32, 2^31). */
START_TEST(test_mult_and_shift_ranges)
{
    tq_rng rng;
    tq_rng_seed(&rng, 22);
    for (int t = 0; t < 100000; t++) {
        double r = exp2(-32.0 + 63.0 * (double)tq_rng_u32(&rng) / 4294967296.0);
        if (t % 3 == 0) r = -r;
        const tq_requant q = tq_requant_make(r);
        const int64_t mag = q.mult < 0 ? -(int64_t)q.mult : q.mult;
        ck_assert_msg(mag >= (1 << 30) && mag < ((int64_t)1 << 31), "r=%.17g: mult %d", r,
                      q.mult);
        ck_assert((q.mult < 0) == (r < 0));
        ck_assert_int_ge(q.shift, 0);
        ck_assert_int_le(q.shift, 62);
        const double back = ldexp((double)q.mult, -q.shift);
        ck_assert_msg(fabs(back - r) <= fabs(r) * 0x1p-31, "r=%.17g: %.17g", r, back);
    }
}
END_TEST

START_TEST(test_factors_by_hand)
{
    /* 1 = 2^30 * 2^-30; 0.75 = 0.75 * 2^31 * 2^-31; -3 = -(0.75 * 2^31) * 2^-29 */
    tq_requant q = tq_requant_make(1.0);
    ck_assert_int_eq(q.mult, 1 << 30);
    ck_assert_int_eq(q.shift, 30);
    q = tq_requant_make(0.75);
    ck_assert_int_eq(q.mult, 1610612736);
    ck_assert_int_eq(q.shift, 31);
    q = tq_requant_make(-3.0);
    ck_assert_int_eq(q.mult, -1610612736);
    ck_assert_int_eq(q.shift, 29);
    /* a mantissa that rounds up to 2^31 moves to the next power of two */
    q = tq_requant_make(1.0 - 0x1p-33);
    ck_assert_int_eq(q.mult, 1 << 30);
    ck_assert_int_eq(q.shift, 30);
    /* 2^30 <= r < 2^31: shift 0, and apply multiplies without rounding */
    q = tq_requant_make(0x1p30 * 1.5);
    ck_assert_int_eq(q.shift, 0);
    ck_assert_int_eq(tq_requant_apply(3, q), 3 * (int64_t)(0x1p30 * 1.5));
}
END_TEST

/* 0, -0, NaN and infinities give 0; tiny factors keep fewer bits at shift 62 and reach 0
 * below 2^-63; huge ones saturate. */
START_TEST(test_edges)
{
    const double zeros[] = {0.0, -0.0, NAN, INFINITY, -INFINITY, 0x1p-64, 0x1p-100};
    for (size_t i = 0; i < sizeof zeros / sizeof zeros[0]; i++) {
        const tq_requant q = tq_requant_make(zeros[i]);
        ck_assert_msg(q.mult == 0 && q.shift == 0, "r=%g: mult %d shift %d", zeros[i], q.mult,
                      q.shift);
        ck_assert_int_eq(tq_requant_apply(2147483647, q), 0);
        ck_assert_int_eq(tq_requant_apply(-2147483647 - 1, q), 0);
    }
    tq_requant q = tq_requant_make(0x1p-40);
    ck_assert_int_eq(q.mult, 1 << 22);
    ck_assert_int_eq(q.shift, 62);
    ck_assert_int_eq(tq_requant_apply(1 << 30, q), 0);          /* 2^-10 */
    ck_assert_int_eq(tq_requant_apply(2147483647, q), 0);       /* 0.00195 */
    q = tq_requant_make(-0x1p-33 * 3.0); /* 0.75 * 2^-31: the smallest exponent at full precision */
    ck_assert_int_eq(q.mult, -1610612736);
    ck_assert_int_eq(q.shift, 62);
    q = tq_requant_make(-0x1p-35 * 3.0); /* 0.75 * 2^-33: round(3 * 2^27) */
    ck_assert_int_eq(q.mult, -(3 << 27));
    ck_assert_int_eq(q.shift, 62);
    q = tq_requant_make(0x1p-63); /* round(0.5) = 1 (halfway, away from zero) */
    ck_assert_int_eq(q.mult, 1);
    ck_assert_int_eq(q.shift, 62);
    q = tq_requant_make(0x1p31);
    ck_assert_int_eq(q.mult, 2147483647);
    ck_assert_int_eq(q.shift, 0);
    q = tq_requant_make(-1e300);
    ck_assert_int_eq(q.mult, -2147483647);
    ck_assert_int_eq(q.shift, 0);
}
END_TEST

static Suite *requant_suite(void)
{
    Suite *s = suite_create("requant");
    TCase *tc = tcase_create("requant");
    tcase_add_test(tc, test_against_double_on_a_million_pairs);
    tcase_add_test(tc, test_ties_go_to_even);
    tcase_add_test(tc, test_mult_and_shift_ranges);
    tcase_add_test(tc, test_factors_by_hand);
    tcase_add_test(tc, test_edges);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tq_test_run(requant_suite()); }
