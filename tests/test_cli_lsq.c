/* End-to-end tests of learned scales in the `tinyqat` command: qat --scales learn, the spec
 * option through ptq, compare --methods qat,qat-lsq (table, CSV and JSON rows), qat --resume
 * after SIGINT to the same bits, and the one-line refusals of recipes and options that cannot
 * learn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train.h"
#include "tq_cli_test.h"
#include "tq_test.h"

static char out[1 << 16];

static void read_file(const char *name, char *buf, size_t cap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tq_cli_dir, name);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    buf[fread(buf, 1, cap - 1, f)] = '\0';
    fclose(f);
}

/* The first quantizer's amax of a checkpoint in the fixture directory. */
static float first_amax(const char *name, bool *learns)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tq_cli_dir, name);
    tq_run run;
    tq_error e = {0};
    ck_assert_msg(tq_run_load(path, &run, &e) == TQ_STATUS_OK, "%s", e.msg);
    tq_quantizer *q = tq_model_qlayer(run.model, 0)->input_q;
    float a = tq_quantizer_amax(q)[0];
    *learns = tq_quantizer_learns_scale(q);
    tq_run_free(&run);
    return a;
}

START_TEST(qat_learns_scales_from_the_ptq_amax)
{
    ck_assert_int_eq(tq_cli_run(out, sizeof out, "$TQ train --model lenet5 --data mnist:. --epochs 1 "
                                                 "--quiet --out f.tqc"), 0);
    ck_assert_int_eq(tq_cli_run(out, sizeof out, "$TQ ptq --model-file f.tqc --recipe w4a4 "
                                                 "--calib-batches 2 --quiet --out p.tqc"), 0);
    ck_assert_int_eq(tq_cli_run(out, sizeof out, "$TQ qat --model-file p.tqc --optim adam --lr 1e-3 "
                                                 "--scales learn --quiet --out l.tqc"), 0);
    bool learns;
    float start = first_amax("p.tqc", &learns);
    ck_assert(!learns);
    float learned = first_amax("l.tqc", &learns);
    ck_assert(learns && learned != start && learned >= TQ_LEARNED_AMAX_FLOOR);
    ck_assert_int_eq(tq_cli_run(out, sizeof out, "$TQ info l.tqc"), 0);
    ck_assert_ptr_nonnull(strstr(out, "int4:scale=learn"));
    /* the same through the spec: ptq with scale=learn, then plain qat */
    ck_assert_int_eq(tq_cli_run(out, sizeof out, "$TQ ptq --model-file f.tqc --recipe w4a4 "
                                                 "--acts int4:scale=learn --calib-batches 2 --quiet --out ps.tqc "
                                                 "&& $TQ qat --model-file ps.tqc --optim adam --lr 1e-3 --quiet --out ls.tqc"), 0);
    ck_assert(first_amax("ls.tqc", &learns) != start && learns);
    /* and --scales fixed keeps it */
    ck_assert_int_eq(tq_cli_run(out, sizeof out, "$TQ qat --model-file ls.tqc --scales fixed --quiet --out lf.tqc"), 0);
    float kept = first_amax("lf.tqc", &learns);
    ck_assert(!learns && kept == first_amax("ls.tqc", &learns));
    /* refusals: one line naming what is wrong, exit 2 */
    ck_assert_int_eq(tq_cli_run(out, sizeof out, "$TQ qat --model-file p.tqc --scales maybe --out x.tqc"), 2);
    ck_assert_ptr_nonnull(strstr(out, "--scales: expected fixed or learn, got 'maybe'"));
    ck_assert_int_eq(tq_cli_run(out, sizeof out, "$TQ qat --model-file p.tqc --scales learn "
                                                 "--fold-bn-at-end --out x.tqc"), 2);
    ck_assert_ptr_nonnull(strstr(out, "cannot keep learned scales"));
    ck_assert_int_eq(tq_cli_run(out, sizeof out, "$TQ ptq --model-file f.tqc --recipe nvfp4 "
                                                 "--calib-batches 2 --quiet --out n.tqc && "
                                                 "$TQ qat --model-file n.tqc --scales learn --out x.tqc"), 2);
    ck_assert_ptr_nonnull(strstr(out, "--scales learn: layer conv1 weights: quantizer nvfp4: cannot learn"));
    ck_assert_int_eq(tq_cli_run(out, sizeof out, "$TQ ptq --model-file f.tqc --weights int4:block=16:scale=learn "
                                                 "--out x.tqc"), 2);
    ck_assert_ptr_nonnull(strstr(out, "scale=learn works with"));
    ck_assert(!tq_cli_file_exists("x.tqc"));
    ck_assert_int_eq(tq_cli_run(out, sizeof out, "$TQ qat --help"), 0);
    ck_assert_ptr_nonnull(strstr(out, "--scales"));
    ck_assert_int_eq(tq_cli_run(out, sizeof out, "$TQ ptq --help"), 0);
    ck_assert_ptr_nonnull(strstr(out, "scale=learn"));
}
END_TEST

START_TEST(compare_puts_learned_beside_fixed_scales)
{
    ck_assert_int_eq(tq_cli_run(out, sizeof out,
                                "$TQ compare --model mlp --data mnist:. --epochs 1 --recipes w2a2 "
                                "--calibs max --methods qat,qat-lsq --quiet --out c --json c.json"), 0);
    ck_assert_ptr_nonnull(strstr(out, "| w2a2 | qat |"));
    ck_assert_ptr_nonnull(strstr(out, "| w2a2 | qat-lsq |"));
    ck_assert_ptr_nonnull(strstr(out, "lsq vs qat"));
    char buf[1 << 14];
    read_file("c.json", buf, sizeof buf);
    ck_assert_ptr_nonnull(strstr(buf, "\"method\": \"qat\""));
    ck_assert_ptr_nonnull(strstr(buf, "\"method\": \"qat-lsq\""));
    ck_assert_ptr_nonnull(strstr(buf, "\"vs_qat_p_value\""));
    read_file("c.csv", buf, sizeof buf);
    ck_assert_int_eq(tq_cli_count_lines(buf), 3); /* header, qat, qat-lsq */
    ck_assert_ptr_nonnull(strstr(buf, "recipe,method,float"));
    /* without --methods the table is as it always was */
    ck_assert_int_eq(tq_cli_run(out, sizeof out, "$TQ compare --model-file c-float.tqc --recipes int8 "
                                                 "--calibs max --quiet --out d"), 0);
    ck_assert_ptr_null(strstr(out, "qat-lsq"));
    ck_assert_ptr_null(strstr(out, "| method "));
    read_file("d.csv", buf, sizeof buf);
    ck_assert_ptr_nonnull(strstr(buf, "recipe,float,ptq-max"));
    ck_assert_int_eq(tq_cli_run(out, sizeof out, "$TQ compare --model-file c-float.tqc --recipes int8,nvfp4 "
                                                 "--methods qat,qat-lsq --out e"), 2);
    ck_assert_ptr_nonnull(strstr(out, "--methods qat-lsq: recipe nvfp4: quantizer nvfp4: cannot learn"));
    ck_assert_int_eq(tq_cli_run(out, sizeof out, "$TQ compare --model-file c-float.tqc --methods qat,lsq --out e"), 2);
    ck_assert_ptr_nonnull(strstr(out, "--methods: expected qat or qat-lsq, got 'lsq'"));
    ck_assert(!tq_cli_file_exists("e.csv"));
}
END_TEST

/* QAT with learned scales, a quarter of the images held out (so the best epoch's amax is in
 * the checkpoint too), stopped by SIGINT mid-epoch and resumed: every section bit for bit as
 * the run never interrupted; a resume with one value of the scales' Adam state changed ends
 * elsewhere. One thread: a run's bits depend on the thread count. */
START_TEST(qat_with_learned_scales_resumes_to_the_same_bits)
{
    tq_cli_make_bars("small", "120 3 128 32 14");
#define LSQ_RUN "--model-file p.tqc --epochs 2 --batch 8 --lr 2e-3 --seed 4 --scales learn --threads 1"
    ck_assert_int_eq(tq_cli_run(out, sizeof out,
                                "$TQ train --model convnet --data mnist:small --epochs 1 --batch 8 --val 0.25 "
                                "--seed 2 --threads 1 --quiet --out f.tqc && "
                                "$TQ ptq --model-file f.tqc --recipe w4a4 --calib-batches 2 --threads 1 "
                                "--quiet --out p.tqc && $TQ qat " LSQ_RUN " --out full.tqc"), 0);
    long long epoch, batch;
    tq_cli_interrupt_mid_epoch(out, sizeof out, "cut.tqc", "$TQ qat " LSQ_RUN " --out cut.tqc",
                               &epoch, &batch);
    /* convnet: weight amax per output channel 32+32+64+64+128+10, and 6 input amax */
    ck_assert_int_eq(tq_cli_f32_count("cut.tqc", "best.amax"), 330 + 6);
    ck_assert_int_eq(tq_cli_f32_count("cut.tqc", "optim.scales.state"), 2 * (330 + 6));
    ck_assert_int_eq(tq_cli_run(out, sizeof out, "cp cut.tqc cut0.tqc && "
                                                 "$TQ qat --resume cut.tqc --out cut.tqc --threads 1"), 0);
    char where[300];
    const char *diff = tq_cli_ckpt_diff("full.tqc", "cut.tqc", where, sizeof where);
    ck_assert_msg(diff == NULL, "full.tqc and cut.tqc differ in section %s", diff);
    ck_assert(!tq_cli_same_f32("p.tqc", "full.tqc", "q.fc.a.amax")); /* it learned */
    tq_cli_ckpt_perturb("cut0.tqc", "bad.tqc", "optim.scales.state", 3, 1e-3f);
    ck_assert_int_eq(tq_cli_run(out, sizeof out, "$TQ qat --resume bad.tqc --out bad.tqc --threads 1 --quiet"), 0);
    ck_assert(!tq_cli_same_f32("full.tqc", "bad.tqc", "optim.scales.state"));
    ck_assert_int_eq(tq_cli_run(out, sizeof out, "$TQ qat --resume cut0.tqc --scales fixed --out x.tqc"), 2);
    ck_assert_ptr_nonnull(strstr(out, "--scales: a resumed run keeps the scales it was trained with"));
#undef LSQ_RUN
}
END_TEST

static Suite *cli_lsq_suite(void)
{
    Suite *s = suite_create("cli_lsq");
    TCase *tc = tcase_create("cli_lsq");
    tcase_add_checked_fixture(tc, tq_cli_setup, tq_cli_teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, qat_learns_scales_from_the_ptq_amax);
    tcase_add_test(tc, compare_puts_learned_beside_fixed_scales);
    tcase_add_test(tc, qat_with_learned_scales_resumes_to_the_same_bits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tq_test_run(cli_lsq_suite()); }
