/* Resuming is exact: a model with batch norm under a warm-up and cosine schedule, and a QAT
 * run that chooses its epoch on held-out images, each stopped by SIGINT in the middle of an
 * epoch and resumed, end with every checkpoint section bit for bit as a run never
 * interrupted; the same resume from a checkpoint with one optimizer or batch-norm value
 * perturbed does not, so the comparison can fail. */
#include <stdio.h>
#include <string.h>

#include "tq_cli_test.h"
#include "tq_test.h"

static char out[1 << 16];
#define RUN(...) tq_cli_run(out, sizeof out, __VA_ARGS__)

/* The fixture's bars, but 14x14 and 128 training images: 16 steps of 8 per epoch, cheap
 * enough for a convnet to run five times over in a test. */
static void setup(void)
{
    tq_cli_setup();
    tq_cli_make_bars("small", "120 3 128 32 14");
}

/* One thread: a run's bits depend on the thread count, which a checkpoint does not record. */
#define FLOAT_RUN "--model convnet --data mnist:small --epochs 2 --batch 8 --optim sgd --nesterov " \
                  "--wd 5e-4 --lr 0.05 --schedule cosine --warmup 24 --seed 3 --threads 1 --quiet"

/* Asserts that checkpoints a and b agree in every section. */
static void assert_same_checkpoint(const char *a, const char *b)
{
    char where[300];
    const char *diff = tq_cli_ckpt_diff(a, b, where, sizeof where);
    ck_assert_msg(diff == NULL, "%s and %s differ in section %s", a, b, diff);
}

/* The warm-up (24 steps) ends in the middle of the second epoch, where the signal lands, and
 * the cosine decay follows: the resumed run must take up both where they were. */
START_TEST(test_batch_norm_model_resumed_mid_epoch)
{
    ck_assert_int_eq(RUN("$TQ train " FLOAT_RUN " --out full.tqc"), 0);
    long long epoch, batch;
    tq_cli_interrupt_mid_epoch(out, sizeof out, "cut.tqc", "$TQ train " FLOAT_RUN " --out cut.tqc",
                               &epoch, &batch);
    ck_assert_msg(epoch == 1 && batch > 0 && batch < 16, "stopped at epoch %lld, batch %lld", epoch, batch);
    ck_assert_ptr_nonnull(strstr(out, "continue with: tinyqat train --resume cut.tqc --epochs 2 --out cut.tqc\n"));
    ck_assert_int_eq(RUN("cp cut.tqc cut0.tqc && "
                         "$TQ train --resume cut.tqc --epochs 2 --out cut.tqc --threads 1 --quiet"), 0);
    assert_same_checkpoint("full.tqc", "cut.tqc");
    /* convnet's five batch norms: running mean and variance of 32+32+64+64+128 channels */
    ck_assert_int_eq(tq_cli_f32_count("cut.tqc", "model.state"), 640);
    ck_assert_int_eq(tq_cli_f32_count("cut.tqc", "optim.state"), tq_cli_f32_count("cut.tqc", "model.params"));

    /* One momentum value changed: every later step differs. */
    tq_cli_ckpt_perturb("cut0.tqc", "bad_optim.tqc", "optim.state", 0, 1e-3f);
    ck_assert_int_eq(RUN("$TQ train --resume bad_optim.tqc --epochs 2 --out bad_optim.tqc --threads 1 --quiet"), 0);
    ck_assert(!tq_cli_same_f32("full.tqc", "bad_optim.tqc", "optim.state"));
    ck_assert(!tq_cli_same_f32("full.tqc", "bad_optim.tqc", "model.params"));
    /* bn1's running variance of channel 0 (its 32 means come first) changed: training uses
     * batch statistics, so only the running statistics differ at the end. */
    tq_cli_ckpt_perturb("cut0.tqc", "bad_bn.tqc", "model.state", 32, 0.5f);
    ck_assert_int_eq(RUN("$TQ train --resume bad_bn.tqc --epochs 2 --out bad_bn.tqc --threads 1 --quiet"), 0);
    ck_assert(!tq_cli_same_f32("full.tqc", "bad_bn.tqc", "model.state"));
    ck_assert(tq_cli_same_f32("full.tqc", "bad_bn.tqc", "model.params"));
    ck_assert(tq_cli_same_f32("full.tqc", "bad_bn.tqc", "optim.state"));
}
END_TEST

#define QAT_RUN "--model-file p.tqc --epochs 2 --batch 8 --lr 2e-3 --warmup 6 --seed 4 --threads 1"

/* The "kept epoch N" line of a QAT run's output (its first 40 characters), or "". */
static void kept_line(const char *text, char *line, size_t cap)
{
    const char *k = strstr(text, "kept epoch ");
    snprintf(line, cap, "%.40s", k ? k : "");
}

/* QAT from a float model trained with a quarter held out: QAT ends with the epoch best on
 * those images, so the best so far must survive the interruption too. The kept weights may
 * be those of an epoch before the interruption; the optimizer state, the last step's, holds
 * the whole trajectory after it. */
START_TEST(test_qat_resumed_mid_epoch)
{
    ck_assert_int_eq(RUN("$TQ train --model convnet --data mnist:small --epochs 1 --batch 8 --val 0.25 "
                         "--seed 2 --threads 1 --quiet --out f.tqc && "
                         "$TQ ptq --model-file f.tqc --recipe w4a8 --calib-batches 2 --threads 1 "
                         "--quiet --out p.tqc"), 0);
    ck_assert_int_eq(RUN("$TQ qat " QAT_RUN " --out full.tqc"), 0);
    char kept_full[64], kept_cut[64];
    kept_line(out, kept_full, sizeof kept_full);
    ck_assert_msg(kept_full[0], "no kept epoch in: %s", out);
    long long epoch, batch;
    tq_cli_interrupt_mid_epoch(out, sizeof out, "cut.tqc", "$TQ qat " QAT_RUN " --out cut.tqc",
                               &epoch, &batch);
    ck_assert_ptr_nonnull(strstr(out, "continue with: tinyqat qat --resume cut.tqc --epochs 2 --out cut.tqc\n"));
    /* the interrupted run keeps its best epoch so far; a finished one does not need it */
    ck_assert_int_eq(tq_cli_f32_count("cut.tqc", "best.params"), tq_cli_f32_count("cut.tqc", "model.params"));
    ck_assert_int_eq(tq_cli_f32_count("full.tqc", "best.params"), -1);
    ck_assert_int_eq(RUN("cp cut.tqc cut0.tqc && $TQ qat --resume cut.tqc --out cut.tqc --threads 1"), 0);
    ck_assert_ptr_nonnull(strstr(out, "resumed after epoch 1, batch"));
    kept_line(out, kept_cut, sizeof kept_cut);
    ck_assert_str_eq(kept_cut, kept_full);
    assert_same_checkpoint("full.tqc", "cut.tqc");
    ck_assert_int_eq(tq_cli_f32_count("cut.tqc", "model.state"), 640);
    /* every quantizer kept its calibrated amax */
    ck_assert(tq_cli_same_f32("p.tqc", "cut.tqc", "q.conv3.a.amax"));
    ck_assert(tq_cli_same_f32("p.tqc", "cut.tqc", "q.fc.w.amax"));

    /* One Adam moment changed: the optimizer state at the end differs. */
    tq_cli_ckpt_perturb("cut0.tqc", "bad.tqc", "optim.state", 5, 1e-3f);
    ck_assert_int_eq(RUN("$TQ qat --resume bad.tqc --out bad.tqc --threads 1 --quiet"), 0);
    ck_assert(!tq_cli_same_f32("full.tqc", "bad.tqc", "optim.state"));

    /* what --resume refuses: a PTQ checkpoint (no QAT step yet), both inputs, a finished run */
    ck_assert_int_eq(RUN("$TQ qat --resume p.tqc --out x.tqc"), 2);
    ck_assert_ptr_nonnull(strstr(out, "--resume p.tqc: no QAT step was taken from it yet (start QAT with --model-file p.tqc)"));
    ck_assert_int_eq(RUN("$TQ qat --resume cut0.tqc --model-file p.tqc --out x.tqc"), 2);
    ck_assert_int_eq(RUN("$TQ qat --resume full.tqc --out x.tqc"), 2);
    ck_assert_ptr_nonnull(strstr(out, "the run has trained all its 2 epochs"));
    ck_assert(!tq_cli_file_exists("x.tqc"));
}
END_TEST

static Suite *resume_suite(void)
{
    Suite *s = suite_create("resume");
    TCase *tc = tcase_create("resume");
    tcase_add_checked_fixture(tc, setup, tq_cli_teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_batch_norm_model_resumed_mid_epoch);
    tcase_add_test(tc, test_qat_resumed_mid_epoch);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tq_test_run(resume_suite()); }
