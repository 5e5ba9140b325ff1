/* Check suite for the PTQ-versus-QAT comparison: McNemar's exact test against hand-computed
 * binomial tails, and the experiment on a generated data set — the calibrator and QAT epoch
 * chosen on validation, never worse there than the PTQ start and better only beyond the chance
 * asked for, and the images QAT gained and lost adding up to its accuracy difference. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ptq.h"
#include "tq_test.h"

START_TEST(mcnemar_matches_binomial_tails)
{
    TQ_ASSERT_NEAR(tq_mcnemar_p(0, 0), 1.0, 0);
    TQ_ASSERT_NEAR(tq_mcnemar_p(0, 5), 2.0 / 32, 1e-15);             /* 2 * 0.5^5 */
    TQ_ASSERT_NEAR(tq_mcnemar_p(9, 1), 2.0 * 11 / 1024, 1e-15);      /* 2 (1 + 10) / 2^10 */
    TQ_ASSERT_NEAR(tq_mcnemar_p(3, 17), 2.0 * 1351 / 1048576, 1e-15); /* 1+20+190+1140 */
    TQ_ASSERT_NEAR(tq_mcnemar_p(17, 3), tq_mcnemar_p(3, 17), 0);
    TQ_ASSERT_NEAR(tq_mcnemar_p(5, 5), 1.0, 0);                     /* 2 * 638/1024 capped */
    /* thousands of disagreements: no overflow, a tiny but non-negative tail */
    double p = tq_mcnemar_p(4000, 5000);
    ck_assert(p > 0 && p < 1e-20);
    ck_assert(tq_mcnemar_p(5000, 5000) == 1.0);
}
END_TEST

/* A trained float MLP on 4x4 generated images, its train/validation split and test set. */
typedef struct fixture {
    tq_run run;
    tq_dataset train, val, test;
    tq_reporter rep;
} fixture;

static void fixture_init(fixture *f)
{
    tq_error e = {0};
    tq_dataset all;
    tq_test_synthetic(&all, 1600, 30.0f, 60.0f, 1);
    tq_test_synthetic(&f->test, 600, 30.0f, 60.0f, 2);
    ck_assert(tq_dataset_split(&all, 0.25, 7, &f->train, &f->val, &e) == TQ_STATUS_OK);
    tq_rng rng;
    tq_rng_seed(&rng, 3);
    f->run = (tq_run){.batch = 64, .seed = 1, .epochs = 3};
    f->run.model = tq_model_create("mlp", 1, 4, 4, 4, &rng, &e);
    ck_assert_msg(f->run.model != NULL, "%s", e.msg);
    f->run.optim_cfg = tq_optim_defaults(TQ_OPTIM_ADAM);
    f->run.schedule = (tq_schedule){.kind = TQ_SCHEDULE_CONSTANT, .lr = 0.01f};
    tq_dataset_stats(&f->train, f->run.mean, f->run.std);
    f->rep = (tq_reporter){.out = stderr, .quiet = true};
    while (f->run.epoch < f->run.epochs)
        ck_assert_msg(tq_train_epoch(&f->run, &f->train, &f->rep, NULL, &e) == TQ_STATUS_OK, "%s", e.msg);
    tq_optim_free(f->run.optim);
    f->run.optim = NULL;
}

static void fixture_free(fixture *f)
{
    tq_run_free(&f->run);
    tq_dataset_free(&f->train);
    tq_dataset_free(&f->val);
    tq_dataset_free(&f->test);
}

/* What every row must satisfy, with or without a validation split. */
static void check_row(const tq_compare *x, const tq_compare_row *r, const tq_calib_kind *calibs,
                      int n_calibs)
{
    const tq_accuracy_pair *start = &r->ptq[r->best];
    /* the best calibrator: first of the highest, on validation when there is one */
    for (int i = 0; i < n_calibs; i++) {
        const tq_accuracy_pair *a = &r->ptq[calibs[i]];
        double score = x->val ? a->val : a->test, best = x->val ? start->val : start->test;
        ck_assert_msg(score <= best, "%s: ptq-%s beats the chosen ptq-%s", r->recipe,
                      tq_calib_name(calibs[i]), tq_calib_name(r->best));
        if (score == best) ck_assert_int_eq(calibs[i], r->best);
        if (score == best) break;
    }
    /* each image QAT gained or lost moves the accuracy by one image */
    TQ_ASSERT_NEAR(r->qat.test - start->test, (double)(r->gained - r->lost) / (double)x->test->n,
                   1e-12);
    ck_assert(r->qat_epoch >= 0 && r->qat_epoch <= x->qat_epochs);
    if (!x->val) {
        ck_assert_int_eq(r->qat_epoch, x->qat_epochs);
        ck_assert(r->qat_lr == x->qat_lrs[0]);
        return;
    }
    bool tried = r->qat_epoch == 0 && r->qat_lr == 0; /* the start: no rate */
    for (int i = 0; i < x->n_qat_lrs; i++) tried |= r->qat_epoch > 0 && r->qat_lr == x->qat_lrs[i];
    ck_assert_msg(tried, "%s: kept rate %g at epoch %d", r->recipe, r->qat_lr, r->qat_epoch);
    ck_assert_msg(r->qat.val >= start->val, "%s: QAT kept %g < start %g on validation",
                  r->recipe, r->qat.val, start->val);
    if (r->qat_epoch == 0) {
        ck_assert(r->qat.val == start->val && r->qat.test == start->test);
        ck_assert(r->gained == 0 && r->lost == 0);
        ck_assert(r->val_p == 1.0);
    } else {
        ck_assert(r->qat.val > start->val);
        ck_assert_msg(r->val_p <= x->keep_p, "%s: kept epoch %d with p %g > %g", r->recipe,
                      r->qat_epoch, r->val_p, x->keep_p);
    }
}

START_TEST(selection_on_validation_and_image_counts)
{
    fixture f;
    fixture_init(&f);
    tq_error e = {0};
    const tq_calib_kind calibs[] = {TQ_CALIB_MAX, TQ_CALIB_MSE, TQ_CALIB_ENTROPY};
    const char *recipes[] = {"w2a2", "int8", "w4a4"};
    /* no split; a split keeping any gain; a split keeping only gains beyond chance */
    int64_t np = tq_model_param_count(f.run.model);
    float *before = malloc((size_t)np * sizeof(float));
    memcpy(before, tq_model_params(f.run.model), (size_t)np * sizeof(float));
    const struct { bool val; double keep_p; } configs[] = {{false, 1.0}, {true, 1.0}, {true, 0.05}};
    tq_compare_row any_gain[3];
    for (int c = 0; c < 3; c++) {
        bool with_val = configs[c].val;
        tq_compare x = {.run = &f.run, .train = &f.train, .val = with_val ? &f.val : NULL,
                        .test = &f.test, .calib_batches = 4, .qat_epochs = 2,
                        .qat_lrs = with_val ? (const double[]){0.01, 0.002} : (const double[]){0.01},
                        .n_qat_lrs = with_val ? 2 : 1,
                        .keep_p = configs[c].keep_p, .keep = -1, .rep = &f.rep};
        ck_assert(tq_compare_init(&x, &e) == TQ_STATUS_OK);
        int kept_start = 0;
        int64_t changed = 0;
        for (int i = 0; i < 3; i++) {
            tq_compare_row r;
            ck_assert_msg(tq_compare_recipe(&x, recipes[i], calibs, 3, &r, &e) == TQ_STATUS_OK,
                          "%s", e.msg);
            check_row(&x, &r, calibs, 3);
            kept_start += r.qat_epoch == 0;
            if (c == 1) any_gain[i] = r;
            if (c == 2) { /* same PTQ start; the stricter rule keeps no better an epoch */
                ck_assert(r.best == any_gain[i].best);
                ck_assert(r.ptq[r.best].val == any_gain[i].ptq[r.best].val);
                ck_assert(r.qat.val <= any_gain[i].qat.val);
            }
            changed += r.gained + r.lost;
        }
        tq_compare_free(&x);
        if (!with_val) ck_assert_int_eq(kept_start, 0);
        if (!with_val) ck_assert(changed > 0); /* QAT moved some predictions: the counts are exercised */
        /* the float model is left as it was found */
        ck_assert(memcmp(before, tq_model_params(f.run.model), (size_t)np * sizeof(float)) == 0);
    }
    free(before);
    fixture_free(&f);
}
END_TEST

static Suite *compare_suite(void)
{
    Suite *s = suite_create("compare");
    TCase *tc = tcase_create("compare");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, mcnemar_matches_binomial_tails);
    tcase_add_test(tc, selection_on_validation_and_image_counts);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tq_test_run(compare_suite()); }
