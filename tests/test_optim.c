/* Check suite for optim/: SGD, Adam and AdamW against closed forms and double-precision
 * recurrences of PyTorch's equations, schedules at known steps, clipping, bad settings. */
#include <stdlib.h>
#include <string.h>

#include "optim.h"
#include "tq_test.h"

#define N 5
#define TEST_PI 3.14159265358979323846
static const double p0[N] = {1.0, -0.5, 0.25, 2.0, -1.5};
static const double g_const[N] = {0.3, -0.2, 0.05, -1.0, 0.7};

/* A gradient that changes every step, so the tests see more than a constant input. */
static double grad_at(int step, int i) { return 0.4 * sin(1.3 * step + 0.7 * i) + 0.1 * i; }

static tq_optim *make(tq_optim_config c, int64_t n)
{
    tq_error err = {0};
    tq_optim *o = tq_optim_new(&c, n, &err);
    ck_assert_msg(o != NULL, "tq_optim_new: %s", err.msg);
    return o;
}

static void load(float *dst, const double *src)
{
    for (int i = 0; i < N; i++) dst[i] = (float)src[i];
}

static void assert_close(const float *got, const double *want, double tol, const char *what)
{
    for (int i = 0; i < N; i++)
        ck_assert_msg(fabs((double)got[i] - want[i]) <= tol * (1.0 + fabs(want[i])),
                      "%s[%d] = %.9g, expected %.9g", what, i, (double)got[i], want[i]);
}

/* ---- closed forms for a constant gradient g */

START_TEST(test_sgd_plain_constant_grad)
{
    const double lr = 0.1;
    tq_optim *o = make(tq_optim_defaults(TQ_OPTIM_SGD), N);
    float p[N], g[N];
    load(p, p0);
    load(g, g_const);
    for (int k = 1; k <= 4; k++) {
        tq_optim_step(o, p, g, (float)lr);
        double want[N];
        for (int i = 0; i < N; i++) want[i] = p0[i] - k * lr * g_const[i];
        assert_close(p, want, 1e-6, "p");
    }
    ck_assert_int_eq(tq_optim_steps(o), 4);
    ck_assert_int_eq(tq_optim_state_count(o), 0);
    tq_optim_free(o);
}
END_TEST

START_TEST(test_sgd_momentum_and_nesterov_constant_grad)
{
    const double lr = 0.05, mu = 0.9;
    for (int nesterov = 0; nesterov <= 1; nesterov++) {
        tq_optim_config c = tq_optim_defaults(TQ_OPTIM_SGD);
        c.momentum = (float)mu;
        c.nesterov = nesterov;
        tq_optim *o = make(c, N);
        ck_assert_int_eq(tq_optim_state_count(o), N);
        float p[N], g[N];
        load(p, p0);
        load(g, g_const);
        double travelled = 0; /* sum of the per-step factors multiplying lr * g */
        for (int k = 1; k <= 5; k++) {
            tq_optim_step(o, p, g, (float)lr);
            double buf = (1 - pow(mu, k)) / (1 - mu); /* buf_k = g (1 + mu + ... + mu^(k-1)) */
            travelled += nesterov ? 1 + mu * buf : buf;
            double want[N], want_buf[N];
            for (int i = 0; i < N; i++) {
                want[i] = p0[i] - lr * g_const[i] * travelled;
                want_buf[i] = g_const[i] * buf;
            }
            assert_close(p, want, 2e-6, nesterov ? "nesterov p" : "momentum p");
            assert_close(tq_optim_state(o), want_buf, 2e-6, "momentum buffer");
        }
        tq_optim_free(o);
    }
}
END_TEST

START_TEST(test_sgd_weight_decay_constant_grad)
{
    /* p_k = a p_(k-1) - lr g with a = 1 - lr wd, so p_k = a^k p0 - lr g (1 - a^k) / (1 - a) */
    const double lr = 0.1, wd = 0.2, a = 1 - lr * wd;
    tq_optim_config c = tq_optim_defaults(TQ_OPTIM_SGD);
    c.weight_decay = (float)wd;
    tq_optim *o = make(c, N);
    float p[N], g[N];
    load(p, p0);
    load(g, g_const);
    for (int k = 1; k <= 4; k++) {
        tq_optim_step(o, p, g, (float)lr);
        double want[N];
        for (int i = 0; i < N; i++)
            want[i] = pow(a, k) * p0[i] - lr * g_const[i] * (1 - pow(a, k)) / (1 - a);
        assert_close(p, want, 1e-6, "p");
    }
    tq_optim_free(o);
}
END_TEST

START_TEST(test_adam_constant_grad)
{
    /* m_hat = g and v_hat = g^2 exactly, so every step moves p by lr g / (|g| + eps) */
    const double lr = 0.01, eps = 1e-8;
    tq_optim *o = make(tq_optim_defaults(TQ_OPTIM_ADAM), N);
    ck_assert_int_eq(tq_optim_state_count(o), 2 * N);
    float p[N], g[N];
    load(p, p0);
    load(g, g_const);
    for (int k = 1; k <= 6; k++) {
        tq_optim_step(o, p, g, (float)lr);
        double want[N], want_m[N], want_v[N];
        for (int i = 0; i < N; i++) {
            want[i] = p0[i] - k * lr * g_const[i] / (fabs(g_const[i]) + eps);
            want_m[i] = g_const[i] * (1 - pow(0.9, k));
            want_v[i] = g_const[i] * g_const[i] * (1 - pow(0.999, k));
        }
        assert_close(p, want, 2e-6, "p");
        assert_close(tq_optim_state(o), want_m, 2e-6, "m");
        assert_close(tq_optim_state(o) + N, want_v, 2e-6, "v");
    }
    tq_optim_free(o);
}
END_TEST

/* ---- double-precision recurrences with a gradient that changes every step */

typedef struct ref_state {
    double p[N], buf[N], m[N], v[N];
} ref_state;

static void ref_step(ref_state *r, const tq_optim_config *c, int t, double lr)
{
    double wd = c->weight_decay, mu = c->momentum, b1 = c->beta1, b2 = c->beta2;
    for (int i = 0; i < N; i++) {
        double g = grad_at(t, i);
        if (c->kind == TQ_OPTIM_SGD) {
            g += wd * r->p[i];
            if (mu > 0) {
                r->buf[i] = t == 1 ? g : mu * r->buf[i] + g;
                g = c->nesterov ? g + mu * r->buf[i] : r->buf[i];
            }
            r->p[i] -= lr * g;
            continue;
        }
        if (c->kind == TQ_OPTIM_ADAMW)
            r->p[i] *= 1 - lr * wd;
        else
            g += wd * r->p[i];
        r->m[i] = b1 * r->m[i] + (1 - b1) * g;
        r->v[i] = b2 * r->v[i] + (1 - b2) * g * g;
        double m_hat = r->m[i] / (1 - pow(b1, t)), v_hat = r->v[i] / (1 - pow(b2, t));
        r->p[i] -= lr * m_hat / (sqrt(v_hat) + c->eps);
    }
}

static void check_against_reference(tq_optim_config c, const char *what)
{
    tq_optim *o = make(c, N);
    ref_state r = {0};
    memcpy(r.p, p0, sizeof r.p);
    float p[N], g[N];
    load(p, p0);
    for (int t = 1; t <= 6; t++) {
        double lr = 0.02 * t; /* as a schedule would change it */
        for (int i = 0; i < N; i++) g[i] = (float)grad_at(t, i);
        tq_optim_step(o, p, g, (float)lr);
        ref_step(&r, &c, t, lr);
        assert_close(p, r.p, 5e-6, what);
    }
    tq_optim_free(o);
}

START_TEST(test_all_optimizers_match_reference_recurrence)
{
    tq_optim_config c = tq_optim_defaults(TQ_OPTIM_SGD);
    check_against_reference(c, "sgd");
    c.weight_decay = 0.1f;
    check_against_reference(c, "sgd wd");
    c.momentum = 0.8f;
    check_against_reference(c, "sgd momentum wd");
    c.nesterov = true;
    check_against_reference(c, "sgd nesterov wd");

    c = tq_optim_defaults(TQ_OPTIM_ADAM);
    check_against_reference(c, "adam");
    c.weight_decay = 0.3f;
    c.beta1 = 0.8f;
    c.beta2 = 0.95f;
    check_against_reference(c, "adam wd");
    c = tq_optim_defaults(TQ_OPTIM_ADAMW);
    ck_assert_float_eq(c.weight_decay, 0.01f);
    c.weight_decay = 0.3f;
    check_against_reference(c, "adamw");
}
END_TEST

START_TEST(test_adamw_decay_is_decoupled)
{
    /* a zero gradient leaves Adam's moments at 0, so AdamW only shrinks p by (1 - lr wd)
     * while Adam with L2 decay moves each p by about lr (the normalised sign of wd p). */
    const double lr = 0.1, wd = 0.5;
    float zero[N] = {0}, pw[N], pa[N];
    load(pw, p0);
    load(pa, p0);
    tq_optim_config cw = tq_optim_defaults(TQ_OPTIM_ADAMW), ca = tq_optim_defaults(TQ_OPTIM_ADAM);
    cw.weight_decay = ca.weight_decay = (float)wd;
    tq_optim *ow = make(cw, N), *oa = make(ca, N);
    tq_optim_step(ow, pw, zero, (float)lr);
    tq_optim_step(oa, pa, zero, (float)lr);
    double want_w[N], want_a[N];
    for (int i = 0; i < N; i++) {
        want_w[i] = p0[i] * (1 - lr * wd);
        double g = wd * p0[i];
        want_a[i] = p0[i] - lr * g / (fabs(g) + 1e-8);
    }
    assert_close(pw, want_w, 1e-6, "adamw p");
    assert_close(pa, want_a, 1e-6, "adam p");
    tq_optim_free(ow);
    tq_optim_free(oa);
}
END_TEST

/* ---- state, resume, threads */

START_TEST(test_resume_from_state_is_bit_identical)
{
    tq_optim_kind kinds[] = {TQ_OPTIM_SGD, TQ_OPTIM_ADAM, TQ_OPTIM_ADAMW};
    for (int k = 0; k < 3; k++) {
        tq_optim_config c = tq_optim_defaults(kinds[k]);
        c.momentum = 0.9f;
        c.weight_decay = 0.05f;
        tq_optim *a = make(c, N);
        float pa[N], pb[N], g[N];
        load(pa, p0);
        for (int t = 1; t <= 3; t++) {
            for (int i = 0; i < N; i++) g[i] = (float)grad_at(t, i);
            tq_optim_step(a, pa, g, 0.01f);
        }
        /* a new optimizer given a's state and step count continues exactly like a */
        tq_optim *b = make(c, N);
        ck_assert_int_eq(tq_optim_state_count(a), tq_optim_state_count(b));
        memcpy(tq_optim_state(b), tq_optim_state(a),
               (size_t)tq_optim_state_count(a) * sizeof(float));
        tq_optim_set_steps(b, tq_optim_steps(a));
        memcpy(pb, pa, sizeof pa);
        for (int t = 4; t <= 6; t++) {
            for (int i = 0; i < N; i++) g[i] = (float)grad_at(t, i);
            tq_optim_step(a, pa, g, 0.01f);
            tq_optim_step(b, pb, g, 0.01f);
        }
        ck_assert_msg(memcmp(pa, pb, sizeof pa) == 0, "kind %d: resumed run differs", k);
        tq_optim_free(a);
        tq_optim_free(b);
    }
}
END_TEST

START_TEST(test_thread_count_does_not_change_results)
{
    const int64_t n = 100003; /* above the parallel threshold, odd for the remainder */
    tq_optim_kind kinds[] = {TQ_OPTIM_SGD, TQ_OPTIM_ADAMW};
    float *p[2], *g = malloc((size_t)n * sizeof *g);
    p[0] = malloc((size_t)n * sizeof(float));
    p[1] = malloc((size_t)n * sizeof(float));
    ck_assert(g && p[0] && p[1]);
    int saved = tq_get_threads();
    for (int k = 0; k < 2; k++) {
        tq_optim_config c = tq_optim_defaults(kinds[k]);
        c.momentum = 0.9f;
        c.nesterov = true;
        for (int run = 0; run < 2; run++) {
            tq_set_threads(run == 0 ? 1 : 2);
            tq_optim *o = make(c, n);
            for (int64_t i = 0; i < n; i++) p[run][i] = (float)sin(0.001 * (double)i);
            for (int t = 1; t <= 3; t++) {
                for (int64_t i = 0; i < n; i++) g[i] = (float)cos(0.01 * (double)i * t);
                tq_optim_step(o, p[run], g, 0.01f);
            }
            tq_optim_free(o);
        }
        ck_assert_msg(memcmp(p[0], p[1], (size_t)n * sizeof(float)) == 0,
                      "kind %d: 1 and 2 threads differ", k);
    }
    tq_set_threads(saved);
    free(g);
    free(p[0]);
    free(p[1]);
}
END_TEST

/* ---- schedules */

START_TEST(test_schedules_at_known_steps)
{
    tq_error err = {0};
    tq_schedule s = {.kind = TQ_SCHEDULE_CONSTANT, .lr = 0.1f};
    ck_assert(tq_schedule_validate(&s, &err));
    TQ_ASSERT_NEAR(tq_schedule_lr(&s, 0), 0.1, 1e-8);
    TQ_ASSERT_NEAR(tq_schedule_lr(&s, 12345), 0.1, 1e-8);

    s = (tq_schedule){.kind = TQ_SCHEDULE_STEP, .lr = 0.1f, .gamma = 0.5f, .step_size = 3};
    ck_assert(tq_schedule_validate(&s, &err));
    const int steps[] = {0, 2, 3, 5, 6, 10};
    const double want_step[] = {0.1, 0.1, 0.05, 0.05, 0.025, 0.0125};
    for (int i = 0; i < 6; i++) TQ_ASSERT_NEAR(tq_schedule_lr(&s, steps[i]), want_step[i], 1e-8);

    s = (tq_schedule){.kind = TQ_SCHEDULE_COSINE, .lr = 1.0f, .min_lr = 0.1f, .total_steps = 10};
    ck_assert(tq_schedule_validate(&s, &err));
    TQ_ASSERT_NEAR(tq_schedule_lr(&s, 0), 1.0, 1e-7);
    TQ_ASSERT_NEAR(tq_schedule_lr(&s, 5), 0.55, 1e-7);            /* halfway: the mean */
    TQ_ASSERT_NEAR(tq_schedule_lr(&s, 2), 0.1 + 0.9 * (1 + cos(0.2 * TEST_PI)) / 2, 1e-7);
    TQ_ASSERT_NEAR(tq_schedule_lr(&s, 10), 0.1, 1e-7);
    TQ_ASSERT_NEAR(tq_schedule_lr(&s, 25), 0.1, 1e-7); /* clamped past the end */

    /* warm-up multiplies whatever the schedule gives */
    s.warmup_steps = 4;
    ck_assert(tq_schedule_validate(&s, &err));
    for (int t = 0; t < 4; t++) {
        double base = 0.1 + 0.9 * (1 + cos(TEST_PI * t / 10)) / 2;
        TQ_ASSERT_NEAR(tq_schedule_lr(&s, t), base * (t + 1) / 4.0, 1e-7);
    }
    TQ_ASSERT_NEAR(tq_schedule_lr(&s, 4), 0.1 + 0.9 * (1 + cos(0.4 * TEST_PI)) / 2, 1e-7);
    s = (tq_schedule){.kind = TQ_SCHEDULE_STEP, .lr = 0.2f, .gamma = 0.1f, .step_size = 2,
                      .warmup_steps = 5};
    TQ_ASSERT_NEAR(tq_schedule_lr(&s, 0), 0.2 * 1 / 5.0, 1e-8);
    TQ_ASSERT_NEAR(tq_schedule_lr(&s, 3), 0.02 * 4 / 5.0, 1e-8);
    TQ_ASSERT_NEAR(tq_schedule_lr(&s, 5), 0.002, 1e-8);

    tq_schedule_kind kind;
    ck_assert(tq_schedule_kind_parse("cosine", &kind) && kind == TQ_SCHEDULE_COSINE);
    ck_assert(tq_schedule_kind_parse("step", &kind) && kind == TQ_SCHEDULE_STEP);
    ck_assert(tq_schedule_kind_parse("constant", &kind) && kind == TQ_SCHEDULE_CONSTANT);
    ck_assert(!tq_schedule_kind_parse("linear", &kind));
    tq_optim_kind ok;
    ck_assert(tq_optim_kind_parse("adamw", &ok) && ok == TQ_OPTIM_ADAMW);
    ck_assert(tq_optim_kind_parse("sgd", &ok) && ok == TQ_OPTIM_SGD);
    ck_assert(!tq_optim_kind_parse("Adam", &ok) && !tq_optim_kind_parse(NULL, &ok));
}
END_TEST

/* ---- clipping */

START_TEST(test_clip_grad_norm)
{
    float g[2] = {3, 4};
    TQ_ASSERT_NEAR(tq_clip_grad_norm(g, 2, 1.0f), 5.0, 1e-6);
    TQ_ASSERT_NEAR(g[0], 3.0 / (5.0 + 1e-6), 1e-7);
    TQ_ASSERT_NEAR(g[1], 4.0 / (5.0 + 1e-6), 1e-7);
    TQ_ASSERT_NEAR(sqrt((double)g[0] * g[0] + (double)g[1] * g[1]), 1.0, 1e-6);

    float h[7] = {1, -2, 2, 0, 1, -1, 3}; /* norm sqrt(20) */
    TQ_ASSERT_NEAR(tq_clip_grad_norm(h, 7, 10.0f), sqrt(20.0), 1e-6);
    ck_assert_float_eq(h[6], 3.0f); /* under the limit: untouched */
    TQ_ASSERT_NEAR(tq_clip_grad_norm(h, 7, 0.0f), sqrt(20.0), 1e-6);
    ck_assert_float_eq(h[1], -2.0f); /* max_norm 0: norm only */

    float bad[3] = {1, NAN, 2};
    ck_assert(isnan(tq_clip_grad_norm(bad, 3, 1.0f)));
    ck_assert_float_eq(bad[0], 1.0f);
}
END_TEST

/* ---- bad hyperparameters */

static void expect_bad(tq_optim_config c, int64_t n, const char *want)
{
    tq_error err = {0};
    tq_optim *o = tq_optim_new(&c, n, &err);
    ck_assert_msg(o == NULL, "expected failure: %s", want);
    ck_assert_int_eq(err.status, TQ_STATUS_ARG);
    ck_assert_str_eq(err.msg, want);
}

START_TEST(test_bad_hyperparameters_are_named)
{
    tq_optim_config c = tq_optim_defaults(TQ_OPTIM_SGD);
    c.momentum = -0.5f;
    expect_bad(c, N, "optim sgd: momentum = -0.5 out of range (expected [0, 1))");
    c.momentum = 0.0f;
    c.nesterov = true;
    expect_bad(c, N, "optim sgd: nesterov needs momentum > 0 (expected momentum in (0, 1), got 0)");
    c = tq_optim_defaults(TQ_OPTIM_SGD);
    c.weight_decay = -1e-4f;
    expect_bad(c, N, "optim sgd: weight_decay = -0.0001 out of range (expected a finite value >= 0)");
    c = tq_optim_defaults(TQ_OPTIM_ADAM);
    c.beta1 = 1.0f;
    expect_bad(c, N, "optim adam: beta1 = 1 out of range (expected [0, 1))");
    c = tq_optim_defaults(TQ_OPTIM_ADAMW);
    c.beta2 = NAN;
    expect_bad(c, N, "optim adamw: beta2 = nan out of range (expected [0, 1))");
    c = tq_optim_defaults(TQ_OPTIM_ADAM);
    c.eps = 0.0f;
    expect_bad(c, N, "optim adam: eps = 0 out of range (expected a finite value > 0)");
    expect_bad(tq_optim_defaults(TQ_OPTIM_ADAM), 0, "optim adam: n_params = 0 (expected >= 1)");

    tq_error err = {0};
    tq_schedule s = {.kind = TQ_SCHEDULE_STEP, .lr = 0.1f, .gamma = 0.5f, .step_size = 0};
    ck_assert(!tq_schedule_validate(&s, &err));
    ck_assert_str_eq(err.msg, "schedule step: step_size = 0 out of range (expected >= 1)");
    tq_error_clear(&err);
    s = (tq_schedule){.kind = TQ_SCHEDULE_COSINE, .lr = 0.1f, .min_lr = 0.5f, .total_steps = 9};
    ck_assert(!tq_schedule_validate(&s, &err));
    ck_assert_str_eq(err.msg,
                     "schedule cosine: min_lr = 0.5 out of range (expected [0, lr = 0.1])");
    tq_error_clear(&err);
    s = (tq_schedule){.kind = TQ_SCHEDULE_CONSTANT, .lr = -1.0f};
    ck_assert(!tq_schedule_validate(&s, &err));
    ck_assert_str_eq(err.msg, "schedule: lr = -1 out of range (expected a finite value >= 0)");
    tq_error_clear(&err);
    s = (tq_schedule){.kind = TQ_SCHEDULE_CONSTANT, .lr = 1.0f, .warmup_steps = -3};
    ck_assert(!tq_schedule_validate(&s, &err));
    ck_assert_str_eq(err.msg, "schedule: warmup_steps = -3 out of range (expected >= 0)");
}
END_TEST

static Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *upd = tcase_create("updates");
    tcase_add_test(upd, test_sgd_plain_constant_grad);
    tcase_add_test(upd, test_sgd_momentum_and_nesterov_constant_grad);
    tcase_add_test(upd, test_sgd_weight_decay_constant_grad);
    tcase_add_test(upd, test_adam_constant_grad);
    tcase_add_test(upd, test_all_optimizers_match_reference_recurrence);
    tcase_add_test(upd, test_adamw_decay_is_decoupled);
    tcase_add_test(upd, test_resume_from_state_is_bit_identical);
    tcase_add_test(upd, test_thread_count_does_not_change_results);
    suite_add_tcase(s, upd);

    TCase *sched = tcase_create("schedules");
    tcase_add_test(sched, test_schedules_at_known_steps);
    tcase_add_test(sched, test_clip_grad_norm);
    tcase_add_test(sched, test_bad_hyperparameters_are_named);
    suite_add_tcase(s, sched);
    return s;
}

int main(void) { return tq_test_run(optim_suite()); }
