/* Check suite for the claim that QAT keeps the scales PTQ fixed: after `tinyqat qat`, every
 * amax, unsigned choice, spec and input multiplier in the checkpoint is bitwise the PTQ
 * checkpoint's, for recipes with per-channel, per-block, NVFP4 and SmoothQuant scales and
 * both straight-through estimators, while the weights themselves moved. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train.h"
#include "tq_test.h"

static char dir[256], build[1024];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/tq_qat_scales_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    const char *b = getenv("TQ_BUILD_DIR");
    snprintf(build, sizeof build, "%s", b ? b : ".");
    /* faint bars: a LeNet-5 trained for one epoch is far from converged, so QAT moves it */
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd %s && %s/make_bars . 40 2 600 100 && %s/tinyqat train --model lenet5 "
             "--data mnist:. --epochs 1 --batch 32 --seed 4 --quiet --out f.tqc",
             dir, build, build);
    ck_assert_int_eq(system(cmd), 0);
}

static void teardown(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void load(const char *name, tq_run *run)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    tq_error e = {0};
    memset(run, 0, sizeof *run);
    ck_assert_msg(tq_run_load(path, run, &e) == TQ_STATUS_OK, "%s", e.msg);
}

/* Fails the test unless both slots are empty or hold the same spec, unsigned choice and
 * amax bits. */
static void assert_same_quantizer(const tq_quantizer *a, const tq_quantizer *b, const char *layer,
                                  const char *slot, const char *recipe)
{
    ck_assert_msg((a == NULL) == (b == NULL), "%s %s %s: slot filled in only one", recipe, layer, slot);
    if (!a) return;
    ck_assert_msg(tq_qspec_equal(tq_quantizer_spec(a), tq_quantizer_spec(b)), "%s %s %s: spec",
                  recipe, layer, slot);
    ck_assert_msg(tq_quantizer_unsigned_chosen(a) == tq_quantizer_unsigned_chosen(b),
                  "%s %s %s: unsigned choice", recipe, layer, slot);
    int64_t n = tq_quantizer_amax_count(a);
    ck_assert_msg(n > 0 && n == tq_quantizer_amax_count(b), "%s %s %s: %lld vs %lld amax", recipe,
                  layer, slot, (long long)n, (long long)tq_quantizer_amax_count(b));
    ck_assert_msg(memcmp(tq_quantizer_amax(a), tq_quantizer_amax(b), (size_t)n * sizeof(float)) == 0,
                  "%s %s %s: amax changed in QAT", recipe, layer, slot);
}

/* Whether the abs max of some weight block moved away from its stored amax: the weights
 * changed enough that recalibrating them would change the scales (the test could fail). */
static bool weight_amax_would_move(tq_model *m)
{
    bool moved = false;
    for (int i = 0; i < tq_model_qlayer_count(m); i++) {
        tq_qlayer *l = tq_model_qlayer(m, i);
        if (!l->weight_q || tq_quantizer_spec(l->weight_q)->calib != TQ_CALIB_MAX) continue;
        tq_error e = {0};
        tq_quantizer *fresh = tq_quantizer_new(tq_quantizer_spec(l->weight_q), &e);
        ck_assert_ptr_nonnull(fresh);
        ck_assert(tq_quantizer_calibrate_weight(fresh, l->weight, &e) == TQ_STATUS_OK);
        int64_t n = tq_quantizer_amax_count(fresh);
        moved |= n != tq_quantizer_amax_count(l->weight_q) ||
                 memcmp(tq_quantizer_amax(fresh), tq_quantizer_amax(l->weight_q),
                        (size_t)n * sizeof(float)) != 0;
        tq_quantizer_free(fresh);
    }
    return moved;
}

static const char *ptq_args[] = {
    "--recipe w4a4",                                      /* per-channel MSE weights, :ste=clip */
    "--recipe nvfp4 --keep none",                         /* E4M3 block scales, global scale */
    "--recipe int8-sq",                                   /* SmoothQuant input multipliers */
    "--weights int4:block=16 --acts int4:calib=percentile:ste=pass --keep none",
    "--recipe mxfp8 --keep none",
};

START_TEST(qat_keeps_every_amax)
{
    const char *args = ptq_args[_i];
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd %s && %s/tinyqat ptq --model-file f.tqc %s --calib-batches 4 --quiet --out p.tqc "
             ">/dev/null && %s/tinyqat qat --model-file p.tqc --epochs 1 --lr 0.01 --quiet "
             "--out q.tqc >/dev/null",
             dir, build, args, build);
    ck_assert_int_eq(system(cmd), 0);
    tq_run p, q;
    load("p.tqc", &p);
    load("q.tqc", &q);
    int n = tq_model_qlayer_count(p.model);
    ck_assert_int_eq(n, tq_model_qlayer_count(q.model));
    int quantized = 0;
    for (int i = 0; i < n; i++) {
        tq_qlayer *a = tq_model_qlayer(p.model, i), *b = tq_model_qlayer(q.model, i);
        assert_same_quantizer(a->weight_q, b->weight_q, a->name, "weights", args);
        assert_same_quantizer(a->input_q, b->input_q, a->name, "inputs", args);
        quantized += a->weight_q != NULL;
        ck_assert_msg((a->input_mul == NULL) == (b->input_mul == NULL), "%s: input_mul", args);
        if (a->input_mul)
            ck_assert_msg(memcmp(a->input_mul->data, b->input_mul->data,
                                 (size_t)a->input_mul->numel * sizeof(float)) == 0,
                          "%s %s: input multiplier changed in QAT", args, a->name);
    }
    ck_assert_int_gt(quantized, 0);
    /* the weights did move, so equal scales are a property of QAT, not of an idle run */
    int64_t np = tq_model_param_count(p.model);
    ck_assert(memcmp(tq_model_params(p.model), tq_model_params(q.model), (size_t)np * sizeof(float)) != 0);
    if (strstr(args, "nvfp4") || strstr(args, "block=16") || strstr(args, "mxfp8"))
        ck_assert_msg(weight_amax_would_move(q.model),
                      "%s: no weight block's abs max moved in QAT: the check above proves little", args);
    tq_run_free(&p);
    tq_run_free(&q);
}
END_TEST

static Suite *qat_scales_suite(void)
{
    Suite *s = suite_create("qat_scales");
    TCase *tc = tcase_create("qat_scales");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, qat_keeps_every_amax, 0, (int)(sizeof ptq_args / sizeof ptq_args[0]));
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tq_test_run(qat_scales_suite()); }
