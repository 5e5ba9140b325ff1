/* End-to-end tests of `tinyqat eval --engine int [--compare]` and of the model bytes `info`
 * prints, on the small generated IDX data set of tests/fixture/make_bars.c (tq_cli_test.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tq_cli_test.h"
#include "tq_test.h"

static char out[1 << 16];

#define run(...) tq_cli_run(out, sizeof out, __VA_ARGS__)

/* The value of the last line "accuracy: X", or -1. */
static double last_accuracy(void)
{
    const char *last = strncmp(out, "accuracy: ", 10) == 0 ? out : NULL;
    for (const char *s = strstr(out, "\naccuracy: "); s; s = strstr(s + 1, "\naccuracy: ")) last = s + 1;
    return last ? atof(last + 10) : -1;
}

/* The comparison's figures exist and are sane: few images classified differently, no code
 * more than a step from fake quant's where everything before agreed, accuracies close, and
 * the last line the engine's accuracy. */
static void check_compare(const char *recipe)
{
    ck_assert_int_eq(run("$TQ ptq --model-file f.tqc --recipe %s --calib-batches 4 --quiet --out q.tqc",
                         recipe), 0);
    double ptq_acc = last_accuracy();
    ck_assert_msg(run("$TQ eval --model-file q.tqc --engine int --compare --json c.json") == 0, "%s", out);
    ck_assert_msg(strstr(out, "300 test images, integer engine ("), "%s", out);
    long long differ = -1, images = -1, compared = -1, one = -1, more = -1;
    const char *s = strstr(out, "against fake quant: ");
    ck_assert_msg(s && sscanf(s, "against fake quant: %lld of %lld images", &differ, &images) == 2, "%s", out);
    ck_assert_int_eq(images, 300);
    ck_assert_msg(differ >= 0 && differ <= 3, "%s: %lld images differ", recipe, differ);
    s = strstr(out, "activation codes: ");
    ck_assert_msg(s && sscanf(s, "activation codes: %lld compared, %lld (", &compared, &one) == 2, "%s", out);
    s = strstr(s, "apart (requantization rounding), ");
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(sscanf(s, "apart (requantization rounding), %lld more", &more), 1);
    /* LeNet-5's layer inputs: 784 + 6*14*14 + 400 + 120 + 84 = 2564 codes per image */
    ck_assert_int_eq(compared, 300LL * 2564);
    ck_assert_msg(one >= 0 && one <= compared / 1000, "%s: %lld of %lld one step apart", recipe, one, compared);
    ck_assert_int_eq(more, 0);
    double fq = -1, in = -1;
    s = strstr(out, "accuracy: fake quant ");
    ck_assert_msg(s && sscanf(s, "accuracy: fake quant %lf, integer engine %lf", &fq, &in) == 2, "%s", out);
    TQ_ASSERT_NEAR(fq, ptq_acc, 1e-9); /* fake quant as ptq measured it */
    TQ_ASSERT_NEAR(in, fq, (double)differ / 300 + 1e-9);
    TQ_ASSERT_NEAR(last_accuracy(), in, 1e-9);
    char path[512], json[4096];
    snprintf(path, sizeof path, "%s/c.json", tq_cli_dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    json[fread(json, 1, sizeof json - 1, f)] = '\0';
    fclose(f);
    ck_assert_msg(strstr(json, "\"engine\": \"int\"") && strstr(json, "\"codes_more\": 0") &&
                  strstr(json, "\"fake_quant_accuracy\": ") && strstr(json, "\"images_differing\": ") &&
                  strstr(json, "\n  }\n}"),
                  "%s", json);
    /* without --compare: the engine alone, the same accuracy */
    ck_assert_int_eq(run("$TQ eval --model-file q.tqc --engine int --threads 1 --batch 100"), 0);
    TQ_ASSERT_NEAR(last_accuracy(), in, 1e-9);
}

START_TEST(test_eval_engine_int_compare)
{
    ck_assert_int_eq(run("$TQ train --model lenet5 --data mnist:. --epochs 1 --quiet --out f.tqc"), 0);
    check_compare("int8");
    check_compare("w4a8");
    check_compare("w2a2");
    check_compare("w4a8-gptq"); /* GPTQ's weights are on the grid: the engine takes their codes */
    /* info: LeNet-5's 61,706 parameters take 246,824 bytes in float32; at int4 its 61,470
     * weights take 30,735 bytes, plus 236 output-channel scales and 5 input scales (4 bytes
     * each) and 236 float32 biases: 32,643 */
    ck_assert_int_eq(run("$TQ info q.tqc"), 0);
    ck_assert_msg(strstr(out, "float32           246824") && strstr(out, "int4               32643"),
                  "%s", out);
    ck_assert_msg(strstr(out, "as quantized"), "%s", out);
}
END_TEST

START_TEST(test_eval_engine_int_refusals_and_usage)
{
    ck_assert_int_eq(run("$TQ train --model mlp --data mnist:. --epochs 1 --quiet --out f.tqc"), 0);
    ck_assert_int_eq(run("$TQ eval --model-file f.tqc --engine int"), 1);
    ck_assert_msg(strstr(out, "tinyqat eval: engine: layer fc1 is float"), "%s", out);
    ck_assert_ptr_null(strchr(strchr(out, '\n') + 1, '\n')); /* one line */
    ck_assert_int_eq(run("$TQ ptq --model-file f.tqc --recipe w4a16 --calib-batches 1 --quiet --out w.tqc"), 0);
    ck_assert_int_eq(run("$TQ eval --model-file w.tqc --engine int --compare"), 1);
    ck_assert_msg(strstr(out, "engine: layer fc1 has no input quantizer"), "%s", out);
    ck_assert_int_eq(run("$TQ eval --model-file w.tqc --compare"), 2);
    ck_assert_msg(strstr(out, "--compare: only with --engine int"), "%s", out);
    ck_assert_int_eq(run("$TQ eval --model-file w.tqc --engine fpga"), 2);
    ck_assert_msg(strstr(out, "--engine: expected float or int, got 'fpga'"), "%s", out);
    ck_assert_int_eq(run("$TQ eval --model-file w.tqc --engine float"), 0);
    ck_assert_int_eq(run("$TQ eval --model-file w.tqc --engine int --dump d.bin"), 2);
    ck_assert_msg(strstr(out, "--dump writes fake quant's logits and codes: not with --engine int"),
                  "%s", out);
    /* an unwritable --json is reported before any work */
    ck_assert_int_eq(run("$TQ ptq --model-file f.tqc --recipe int8 --calib-batches 1 --quiet --out q.tqc"), 0);
    ck_assert_int_eq(run("$TQ eval --model-file q.tqc --engine int --json nodir/c.json"), 1);
    ck_assert_msg(strstr(out, "nodir/c.json") && !strstr(out, "accuracy"), "%s", out);
}
END_TEST

static Suite *engine_cli_suite(void)
{
    Suite *s = suite_create("engine_cli");
    TCase *tc = tcase_create("engine_cli");
    tcase_add_checked_fixture(tc, tq_cli_setup, tq_cli_teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_eval_engine_int_compare);
    tcase_add_test(tc, test_eval_engine_int_refusals_and_usage);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tq_test_run(engine_cli_suite()); }
