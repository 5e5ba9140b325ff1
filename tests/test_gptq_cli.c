/* End-to-end tests of the GPTQ recipes in `tinyqat ptq`, `compare`, `sensitivity`, `qat`
 * and `info`, on the small generated IDX data set of tests/fixture/make_bars.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tq_cli_test.h"
#include "tq_test.h"

static char out[1 << 16];

#define run(...) tq_cli_run(out, sizeof out, __VA_ARGS__)

static double last_accuracy(void)
{
    const char *last = strncmp(out, "accuracy: ", 10) == 0 ? out : NULL;
    for (const char *s = strstr(out, "\naccuracy: "); s; s = strstr(s + 1, "\naccuracy: ")) last = s + 1;
    return last ? atof(last + 10) : -1;
}

/* The GPTQ log of a layer: its output error and round-to-nearest's; false if absent. */
static bool layer_errors(const char *layer, double *gptq, double *rtn)
{
    char key[64];
    snprintf(key, sizeof key, "gptq %s ", layer);
    const char *s = strstr(out, key);
    if (!s || !(s = strstr(s, "output error "))) return false;
    return sscanf(s, "output error %lf, round-to-nearest %lf", gptq, rtn) == 2;
}

static const char *layers[] = {"conv1", "conv2", "fc1", "fc2", "fc3"};

START_TEST(test_ptq_gptq_recipes)
{
    ck_assert_int_eq(run("$TQ train --model lenet5 --data mnist:. --epochs 1 --quiet --out f.tqc"), 0);
    ck_assert_msg(run("$TQ ptq --model-file f.tqc --recipe w3a16-gptq --calib-batches 4 --out g.tqc") == 0,
                  "%s", out);
    double acc = last_accuracy();
    /* layer by layer in forward order, each no worse than round-to-nearest on its own
     * calibration inputs, one pass per layer (LeNet-5 is a chain) */
    double g, r, first_g, first_r;
    for (int i = 0; i < 5; i++) {
        ck_assert_msg(layer_errors(layers[i], &g, &r), "%s: %s", layers[i], out);
        ck_assert_msg(g <= r, "%s: GPTQ error %g > round-to-nearest %g", layers[i], g, r);
    }
    ck_assert_msg(strstr(out, "gptq: 5 layers in 5 passes over 4 calibration batches"), "%s", out);
    ck_assert_msg(strstr(out, "SQNR inf dB (weights on the grid)"), "%s", out);
    ck_assert(layer_errors("conv1", &first_g, &first_r));
    /* the checkpoint's fake quant reproduces GPTQ's weights: the same accuracy */
    ck_assert_int_eq(run("$TQ eval --model-file g.tqc"), 0);
    TQ_ASSERT_NEAR(last_accuracy(), acc, 1e-9);
    ck_assert_int_eq(run("$TQ info g.tqc"), 0);
    ck_assert_msg(strstr(out, "int3, per-channel axis 0") && strstr(out, "(weights on the grid)"), "%s", out);
    /* float inputs: one pass; the first layer sees the same inputs either way */
    ck_assert_int_eq(run("$TQ ptq --model-file f.tqc --recipe w3a16-gptq --calib-batches 4 "
                         "--gptq-float-inputs --out h.tqc"), 0);
    ck_assert_msg(strstr(out, "gptq: 5 layers in 1 passes over 4 calibration batches"), "%s", out);
    ck_assert(layer_errors("conv1", &g, &r));
    ck_assert(g == first_g && r == first_r);
    /* act-order, fewer batches, more dampening */
    ck_assert_int_eq(run("$TQ ptq --model-file f.tqc --recipe w4a16-gptq --calib-batches 4 "
                         "--gptq-act-order --gptq-batches 2 --gptq-damp 0.1 --out h.tqc"), 0);
    ck_assert_msg(strstr(out, "over 2 calibration batches"), "%s", out);
    for (int i = 0; i < 5; i++) {
        ck_assert(layer_errors(layers[i], &g, &r));
        ck_assert_msg(g <= r, "act-order %s: GPTQ error %g > round-to-nearest %g", layers[i], g, r);
    }
    /* --quiet: no log */
    ck_assert_int_eq(run("$TQ ptq --model-file f.tqc --recipe w2a16-gptq --calib-batches 2 --quiet --out h.tqc"), 0);
    ck_assert_msg(!strstr(out, "gptq") && tq_cli_count_lines(out) == 1, "%s", out);
    /* QAT from a GPTQ start */
    ck_assert_msg(run("$TQ qat --model-file g.tqc --epochs 1 --quiet --out q.tqc") == 0, "%s", out);
}
END_TEST

START_TEST(test_gptq_options_are_checked)
{
    ck_assert_int_eq(run("$TQ train --model mlp --data mnist:. --epochs 1 --quiet --out f.tqc"), 0);
    const char *bad[] = {"-0.1", "nan", "inf", "x"};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(run("$TQ ptq --model-file f.tqc --recipe w4a16-gptq --gptq-damp %s --out g.tqc", bad[i]), 2);
        ck_assert_msg(strstr(out, "--gptq-damp: expected a number from 0 to"), "%s", out);
    }
    ck_assert_int_eq(run("$TQ ptq --model-file f.tqc --recipe w4a16-gptq --gptq-batches 0 --out g.tqc"), 2);
    ck_assert_int_eq(run("$TQ ptq --model-file f.tqc --recipe w4a16 --gptq-act-order --out g.tqc"), 2);
    ck_assert_msg(strstr(out, "--gptq-act-order: recipe w4a16 does not use GPTQ"), "%s", out);
    ck_assert(!tq_cli_file_exists("g.tqc"));
    /* a custom spec on a GPTQ recipe, and a recipe file naming one */
    ck_assert_int_eq(run("$TQ ptq --model-file f.tqc --recipe w4a16-gptq --weights e2m1:block=16 "
                         "--calib-batches 2 --out g.tqc"), 0);
    ck_assert_msg(strstr(out, "gptq fc1 ") && strstr(out, "e2m1"), "%s", out);
    ck_assert_int_eq(run("printf 'default w3a16-gptq\\nlayer fc3 float\\n' > r.recipe && "
                         "$TQ ptq --model-file f.tqc --recipe-file r.recipe --calib-batches 2 --out g.tqc"), 0);
    ck_assert_msg(strstr(out, "gptq: 2 layers in 2 passes"), "%s", out);
}
END_TEST

START_TEST(test_compare_and_sensitivity_take_gptq_recipes)
{
    ck_assert_int_eq(run("$TQ train --model lenet5 --data mnist:. --epochs 1 --quiet --out f.tqc"), 0);
    ck_assert_msg(run("$TQ compare --model-file f.tqc --recipes w4a16,w4a16-gptq --calibs max "
                      "--calib-batches 2 --qat-epochs 1 --qat-lr 1e-4") == 0, "%s", out);
    ck_assert_msg(strstr(out, "| w4a16-gptq |"), "%s", out);
    ck_assert_msg(run("$TQ sensitivity --model-file f.tqc --recipe w2a16-gptq --calib-batches 2 "
                      "--target-drop 100 --out m.recipe") == 0, "%s", out);
    /* GPTQ's weights against the float ones: a finite weight SQNR for every layer (GPTQ's
     * weights against themselves would read inf) */
    for (int i = 0; i < 5; i++) {
        char key[32], name[32];
        snprintf(key, sizeof key, "\n%s ", layers[i]);
        const char *s = strstr(out, key);
        double alone, all_but, w_sqnr = -1;
        ck_assert_msg(s && sscanf(s + 1, "%31s %lfp %lfp %lfdB", name, &alone, &all_but, &w_sqnr) == 4,
                      "%s: %s", layers[i], out);
        ck_assert_msg(isfinite(w_sqnr) && w_sqnr > 0, "%s: weight SQNR %g", layers[i], w_sqnr);
    }
    ck_assert_msg(strstr(out, "proposal: 0 layer(s) above w2a16-gptq"), "%s", out);
    ck_assert_int_eq(run("$TQ sensitivity --model-file f.tqc --recipe w4a16-awq --calib-batches 2"), 1);
    ck_assert_msg(strstr(out, "changes weights"), "%s", out);
}
END_TEST

static Suite *gptq_cli_suite(void)
{
    Suite *s = suite_create("gptq_cli");
    TCase *tc = tcase_create("gptq_cli");
    tcase_add_checked_fixture(tc, tq_cli_setup, tq_cli_teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_ptq_gptq_recipes);
    tcase_add_test(tc, test_gptq_options_are_checked);
    tcase_add_test(tc, test_compare_and_sensitivity_take_gptq_recipes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tq_test_run(gptq_cli_suite()); }
