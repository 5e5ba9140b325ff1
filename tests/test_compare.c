/* Check suite for the PTQ-versus-QAT comparison: McNemar's exact test against hand-computed
 * binomial tails, and the experiment on a generated data set redone outside compare — every
 * calibrator and every QAT epoch at every rate measured again on the held-out images, so that
 * the calibrator, rate and epoch kept must be the argmax, the images gained and lost and the
 * p-values must match a recount, and no held-out image may reach calibration or QAT; the same
 * for QAT with learned scales (LSQ) beside fixed ones, which must leave fixed-scale QAT as it
 * is without them. */
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

/* McNemar's p another way: the binomial terms by the recurrence C(n,i+1) = C(n,i)(n-i)/(i+1)
 * from 2^-n, in long double (whose exponent reaches 2^-16382). */
static double mcnemar_ref(int64_t gained, int64_t lost)
{
    int64_t n = gained + lost, k = gained < lost ? gained : lost;
    long double term = ldexpl(1.0L, (int)-n), tail = 0;
    for (int64_t i = 0; i <= k; i++) {
        tail += term;
        term = term * (long double)(n - i) / (long double)(i + 1);
    }
    return 2 * tail < 1 ? (double)(2 * tail) : 1.0;
}

/* A trained float MLP on 4x4 generated images, its train/validation split and test set. The
 * training pixels are clamped to 55..200 and every held-out image (validation and test) has
 * pixel 0 at 255: a held-out image in calibration would raise the first layer's input amax
 * to at least `marker`, beyond `train_amax`, the largest normalised training value. */
typedef struct fixture {
    tq_run run;
    tq_dataset train, val, test;
    tq_reporter rep;
    double train_amax, marker;
} fixture;

static void fixture_init(fixture *f)
{
    tq_error e = {0};
    tq_dataset all;
    tq_test_synthetic(&all, 1600, 30.0f, 60.0f, 1);
    tq_test_synthetic(&f->test, 600, 30.0f, 60.0f, 2);
    ck_assert(tq_dataset_split(&all, 0.25, 7, &f->train, &f->val, &e) == TQ_STATUS_OK);
    for (int64_t i = 0; i < f->train.n * 16; i++)
        f->train.images[i] = f->train.images[i] < 55 ? 55 : f->train.images[i] > 200 ? 200 : f->train.images[i];
    for (int64_t i = 0; i < f->val.n; i++) f->val.images[i * 16] = 255;
    for (int64_t i = 0; i < f->test.n; i++) f->test.images[i * 16] = 255;
    tq_rng rng;
    tq_rng_seed(&rng, 3);
    f->run = (tq_run){.batch = 64, .seed = 1, .epochs = 3};
    f->run.model = tq_model_create("mlp", 1, 4, 4, 4, &rng, &e);
    ck_assert_msg(f->run.model != NULL, "%s", e.msg);
    f->run.optim_cfg = tq_optim_defaults(TQ_OPTIM_ADAM);
    f->run.schedule = (tq_schedule){.kind = TQ_SCHEDULE_CONSTANT, .lr = 0.01f};
    tq_dataset_stats(&f->train, f->run.mean, f->run.std);
    f->train_amax = fmax(fabs((55.0 / 255 - f->run.mean[0]) / f->run.std[0]),
                         fabs((200.0 / 255 - f->run.mean[0]) / f->run.std[0]));
    f->marker = (1.0 - f->run.mean[0]) / f->run.std[0];
    ck_assert(f->marker > 1.1 * f->train_amax);
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

/* Images of d the model classifies right, counted here from its predictions (into pred). */
static int64_t correct_on(fixture *f, const tq_dataset *d, int32_t *pred)
{
    tq_error e = {0};
    double acc;
    ck_assert_msg(tq_predict(f->run.model, d, f->run.mean, f->run.std, 256, pred, &acc, &e) ==
                  TQ_STATUS_OK, "%s", e.msg);
    int64_t c = 0;
    for (int64_t i = 0; i < d->n; i++) c += pred[i] == d->labels[i];
    return c;
}

static void changes(const int32_t *before, const int32_t *after, const tq_dataset *d,
                    int64_t *gained, int64_t *lost)
{
    *gained = *lost = 0;
    for (int64_t i = 0; i < d->n; i++) {
        *gained += after[i] == d->labels[i] && before[i] != d->labels[i];
        *lost += after[i] != d->labels[i] && before[i] == d->labels[i];
    }
}

/* An accuracy compare reported against a count made here. */
#define ASSERT_COUNT(acc, count, d, what)                                                    \
    ck_assert_msg(fabs((acc) * (double)(d)->n - (double)(count)) < 1e-6,                    \
                  "%s %s: compare says %.6f, recount %lld of %lld", recipe, what, (acc),    \
                  (long long)(count), (long long)(d)->n)

/* Buffers for the predictions of the recount. */
typedef struct preds {
    int32_t *sel, *test, *start_sel, *start_test;
} preds;

/* The first layer's input amax: held-out images never calibrate it (see fixture). */
static void assert_no_marker(fixture *f, const char *recipe)
{
    tq_quantizer *q = tq_model_qlayer(f->run.model, 0)->input_q;
    if (!q) return;
    ck_assert_msg(tq_quantizer_amax(q)[0] <= f->train_amax * (1 + 1e-5),
                  "%s: first-layer input amax %g beyond the training images' %g (marker %g)", recipe,
                  (double)tq_quantizer_amax(q)[0], f->train_amax, f->marker);
}

/* Redoes QAT method `method` of row r of compare x from the float weights, with the
 * library's PTQ and training steps but compare's choices made here; `kept` (when not NULL)
 * holds the model's parameters and amax as compare left them. Selection is on validation, or
 * on test without a split. Leaves the method's test predictions in pr->test. */
static void recount(fixture *f, const tq_compare *x, const char *recipe, const tq_calib_kind *calibs,
                    int n_calibs, const tq_compare_row *r, tq_qat_method method,
                    const tq_snapshot *float_w, const tq_snapshot *kept, preds *pr)
{
    const tq_qat_result *res = &r->qat[method];
    ck_assert(res->run);
    tq_model *m = f->run.model;
    tq_error e = {0};
    tq_recipe rc;
    ck_assert(tq_recipe_make(recipe, NULL, NULL, &rc, &e) == TQ_STATUS_OK);
    const tq_dataset *sel = x->val ? x->val : x->test;
    int best = -1;
    int64_t best_count = -1;
    for (int i = 0; i < n_calibs; i++) {
        tq_snapshot_restore(float_w, m);
        ck_assert(tq_ptq_run(m, &rc, (int)calibs[i], x->train, f->run.mean, f->run.std,
                             x->calib_batches, f->run.batch, f->run.seed, &e) == TQ_STATUS_OK);
        int64_t ct = correct_on(f, x->test, pr->test), cs = correct_on(f, sel, pr->sel);
        ASSERT_COUNT(r->ptq[calibs[i]].test, ct, x->test, tq_calib_name(calibs[i]));
        if (x->val) ASSERT_COUNT(r->ptq[calibs[i]].val, cs, x->val, tq_calib_name(calibs[i]));
        if (cs > best_count) best_count = cs, best = (int)calibs[i];
    }
    ck_assert_msg(r->best == best, "%s: compare kept ptq-%s, the argmax is ptq-%s", recipe,
                  tq_calib_name(r->best), tq_calib_name(best));
    /* QAT from that start at each rate; an epoch is kept when it beats the best so far
     * (the start first) on validation, by McNemar p <= keep_p; without a split the last */
    tq_snapshot_restore(float_w, m);
    ck_assert(tq_ptq_run(m, &rc, best, x->train, f->run.mean, f->run.std, x->calib_batches,
                         f->run.batch, f->run.seed, &e) == TQ_STATUS_OK);
    ck_assert(tq_model_set_learn_scales(m, method == TQ_QAT_LSQ, &e) == TQ_STATUS_OK);
    best_count = correct_on(f, sel, pr->start_sel); /* the start: epoch 0 */
    correct_on(f, x->test, pr->start_test);
    tq_snapshot start, best_w;
    ck_assert(tq_snapshot_init(&start, m, &e) == TQ_STATUS_OK);
    ck_assert(tq_snapshot_init(&best_w, m, &e) == TQ_STATUS_OK);
    int best_epoch = 0;
    double best_lr = 0, best_p = 1;
    int64_t steps = (x->train->n + f->run.batch - 1) / f->run.batch;
    for (int k = 0; k < x->n_qat_lrs; k++) {
        tq_snapshot_restore(&start, m);
        tq_run q = f->run;
        q.optim = q.scale_optim = NULL;
        q.epoch = 0;
        q.epochs = x->qat_epochs;
        q.schedule = (tq_schedule){.kind = TQ_SCHEDULE_COSINE, .lr = (float)x->qat_lrs[k],
                                   .total_steps = steps * x->qat_epochs};
        while (q.epoch < q.epochs) {
            ck_assert(tq_train_epoch(&q, x->train, &f->rep, NULL, &e) == TQ_STATUS_OK);
            if (!x->val) {
                best_epoch = (int)q.epoch, best_lr = x->qat_lrs[k];
                ck_assert(tq_snapshot_take(&best_w, m, &e) == TQ_STATUS_OK);
                continue;
            }
            int64_t count = correct_on(f, x->val, pr->sel), g, l;
            changes(pr->start_sel, pr->sel, x->val, &g, &l);
            double p = tq_mcnemar_p(g, l);
            ck_assert_msg(fabs(p - mcnemar_ref(g, l)) <= 1e-12 + 1e-9 * p, "p(%lld, %lld)",
                          (long long)g, (long long)l);
            if (count > best_count && p <= x->keep_p) {
                best_count = count, best_epoch = (int)q.epoch, best_lr = x->qat_lrs[k], best_p = p;
                ck_assert(tq_snapshot_take(&best_w, m, &e) == TQ_STATUS_OK);
            }
        }
        tq_optim_free(q.optim);
        tq_optim_free(q.scale_optim);
    }
    ck_assert_msg(res->epoch == best_epoch && res->lr == best_lr,
                  "%s: compare kept epoch %d at lr %g, the argmax is epoch %d at lr %g", recipe,
                  res->epoch, res->lr, best_epoch, best_lr);
    if (x->val) ASSERT_COUNT(res->acc.val, best_count, x->val, "qat");
    ck_assert_msg(res->val_p == best_p, "%s: val_p %g, recount %g", recipe, res->val_p, best_p);
    /* the kept weights and amax are the ones trained here on the training images alone */
    if (kept) {
        ck_assert_msg(memcmp(kept->params, best_w.params, (size_t)best_w.n_params * sizeof(float)) == 0,
                      "%s: compare's kept weights differ from QAT on the training images", recipe);
        ck_assert(kept->n_amax == best_w.n_amax && kept->n_amax > 0);
        ck_assert_msg(memcmp(kept->amax, best_w.amax, (size_t)best_w.n_amax * sizeof(float)) == 0,
                      "%s: compare's kept amax differ from QAT on the training images", recipe);
    }
    tq_snapshot_restore(&best_w, m);
    int64_t g, l;
    ASSERT_COUNT(res->acc.test, correct_on(f, x->test, pr->test), x->test, "qat test");
    changes(pr->start_test, pr->test, x->test, &g, &l);
    ck_assert_msg(res->gained == g && res->lost == l, "%s: +%lld / -%lld, recount +%lld / -%lld",
                  recipe, (long long)res->gained, (long long)res->lost, (long long)g, (long long)l);
    ck_assert(fabs(tq_mcnemar_p(res->gained, res->lost) - mcnemar_ref(g, l)) <= 1e-12);
    tq_snapshot_free(&start);
    tq_snapshot_free(&best_w);
}

START_TEST(every_choice_is_the_argmax_of_a_recount)
{
    fixture f;
    fixture_init(&f);
    tq_error e = {0};
    tq_model *m = f.run.model;
    const tq_calib_kind calibs[] = {TQ_CALIB_MAX, TQ_CALIB_MSE, TQ_CALIB_ENTROPY};
    const char *recipes[] = {"w2a2", "int8", "w4a4"};
    tq_snapshot float_w;
    ck_assert(tq_snapshot_init(&float_w, m, &e) == TQ_STATUS_OK);
    preds pr;
    int32_t *buf = malloc(4 * (size_t)f.test.n * sizeof *buf);
    pr = (preds){buf, buf + f.test.n, buf + 2 * f.test.n, buf + 3 * f.test.n};
    int64_t np = tq_model_param_count(m);
    int32_t *fixed_test = malloc((size_t)f.test.n * sizeof *fixed_test);
    /* no split; a split keeping any gain; a split keeping only gains beyond chance; a split
     * keeping any gain, with learned scales beside fixed ones, then alone */
    const unsigned both = 1u << TQ_QAT_FIXED | 1u << TQ_QAT_LSQ, lsq = 1u << TQ_QAT_LSQ;
    const struct { bool val; double keep_p; unsigned methods; } configs[] = {
        {false, 1.0, 0}, {true, 1.0, 0}, {true, 0.05, 0}, {true, 1.0, both}, {true, 1.0, lsq}};
    tq_compare_row any_gain[3];
    for (int c = 0; c < 5; c++) {
        bool with_val = configs[c].val;
        tq_compare x = {.run = &f.run, .train = &f.train, .val = with_val ? &f.val : NULL,
                        .test = &f.test, .calib_batches = 4, .qat_epochs = 2,
                        .qat_lrs = with_val ? (const double[]){0.01, 0.002} : (const double[]){0.01},
                        .n_qat_lrs = with_val ? 2 : 1, .methods = configs[c].methods,
                        .keep_p = configs[c].keep_p, .keep = -1, .rep = &f.rep};
        ck_assert(tq_compare_init(&x, &e) == TQ_STATUS_OK);
        int64_t changed = 0;
        /* learned scales on w2a2 alone: it has both learned formats (int2, int8 at the ends) */
        for (int i = 0; i < (configs[c].methods ? 1 : 3); i++) {
            tq_compare_row r;
            ck_assert_msg(tq_compare_recipe(&x, recipes[i], calibs, 3, &r, &e) == TQ_STATUS_OK,
                          "%s", e.msg);
            /* (learned scales move that amax in QAT; their PTQ start is the one checked) */
            if (configs[c].methods != lsq) assert_no_marker(&f, recipes[i]);
            /* the model as compare left it: fixed-scale QAT's result, learned-scale QAT's alone */
            tq_snapshot kept;
            ck_assert(tq_snapshot_init(&kept, m, &e) == TQ_STATUS_OK);
            ck_assert(tq_compare_left_method(&x) == (configs[c].methods == lsq ? TQ_QAT_LSQ : TQ_QAT_FIXED));
            const tq_qat_result *fixed = &r.qat[TQ_QAT_FIXED];
            if (configs[c].methods == lsq) {
                ck_assert(!fixed->run);
                recount(&f, &x, recipes[i], calibs, 3, &r, TQ_QAT_LSQ, &float_w, &kept, &pr);
                tq_snapshot_free(&kept);
                continue;
            }
            recount(&f, &x, recipes[i], calibs, 3, &r, TQ_QAT_FIXED, &float_w, &kept, &pr);
            if (c == 1) any_gain[i] = r;
            if (c == 2) /* same PTQ start; the stricter rule keeps no better an epoch */
                ck_assert(r.best == any_gain[i].best && fixed->acc.val <= any_gain[i].qat[0].acc.val);
            if (c == 3) { /* learned scales beside: fixed-scale QAT exactly as without them */
                const tq_qat_result *alone = &any_gain[i].qat[TQ_QAT_FIXED];
                ck_assert(r.best == any_gain[i].best && fixed->epoch == alone->epoch &&
                          fixed->lr == alone->lr && fixed->acc.test == alone->acc.test &&
                          fixed->acc.val == alone->acc.val && fixed->gained == alone->gained &&
                          fixed->lost == alone->lost);
                memcpy(fixed_test, pr.test, (size_t)f.test.n * sizeof *fixed_test);
                recount(&f, &x, recipes[i], calibs, 3, &r, TQ_QAT_LSQ, &float_w, NULL, &pr);
                int64_t g, l;
                changes(fixed_test, pr.test, &f.test, &g, &l);
                ck_assert_msg(r.lsq_gained == g && r.lsq_lost == l,
                              "%s: lsq vs qat +%lld / -%lld, recount +%lld / -%lld", recipes[i],
                              (long long)r.lsq_gained, (long long)r.lsq_lost, (long long)g,
                              (long long)l);
            } else {
                ck_assert(!r.qat[TQ_QAT_LSQ].run);
            }
            changed += fixed->gained + fixed->lost;
            tq_snapshot_free(&kept);
        }
        tq_compare_free(&x);
        if (!with_val) ck_assert(changed > 0); /* QAT moved some predictions: the counts are exercised */
        /* the float model is left as it was found */
        ck_assert(memcmp(float_w.params, tq_model_params(m), (size_t)np * sizeof(float)) == 0);
    }
    /* the marker works: calibrating on held-out images puts it in the first layer's amax */
    tq_recipe rc;
    ck_assert(tq_recipe_make("int8", NULL, NULL, &rc, &e) == TQ_STATUS_OK);
    ck_assert(tq_ptq_run(m, &rc, TQ_CALIB_MAX, &f.val, f.run.mean, f.run.std, 1, 64, 1, &e) ==
              TQ_STATUS_OK);
    ck_assert(tq_quantizer_amax(tq_model_qlayer(m, 0)->input_q)[0] >= f.marker * (1 - 1e-5));
    tq_detach_quantizers(m);
    free(fixed_test);
    free(buf);
    tq_snapshot_free(&float_w);
    fixture_free(&f);
}
END_TEST

static Suite *compare_suite(void)
{
    Suite *s = suite_create("compare");
    TCase *tc = tcase_create("compare");
    tcase_set_timeout(tc, 600); /* the experiment twice, under sanitizers too */
    tcase_add_test(tc, mcnemar_matches_binomial_tails);
    tcase_add_test(tc, every_choice_is_the_argmax_of_a_recount);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tq_test_run(compare_suite()); }
