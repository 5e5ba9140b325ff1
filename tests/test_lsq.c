/* Check suite for learned scales (LSQ, spec option scale=learn): the amax gradient by hand
 * and against finite differences of the quantizer's own output away from rounding steps,
 * x's gradient against finite differences of the unrounded quantizer, the gradient scale,
 * the clipped codes outside the range, the amax floor, the spec option's parse errors, and
 * QAT runs whose checkpoints round-trip the learned amax and resume to the same bits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "ptq.h"
#include "tq_test.h"

static tq_quantizer *make_q(const char *spec, const float *amax, int64_t n, bool go_unsigned)
{
    tq_qspec s;
    tq_error e = {0};
    ck_assert_msg(tq_qspec_parse(spec, &s, &e) == TQ_STATUS_OK, "%s", e.msg);
    tq_quantizer *q = tq_quantizer_new(&s, &e);
    ck_assert_msg(q != NULL, "%s", e.msg);
    ck_assert(tq_quantizer_set_amax(q, amax, n, &e) == TQ_STATUS_OK);
    if (go_unsigned) ck_assert(tq_quantizer_set_unsigned_chosen(q, true, &e) == TQ_STATUS_OK);
    tq_quantizer_set_state(q, TQ_QSTATE_QUANTIZING);
    return q;
}

/* Backward of loss = sum(w * fake_quant(x)): amax's gradient into gamax, x's into gx (when x
 * has a gradient and gx is not NULL). */
static void backward(tq_quantizer *q, tq_tensor *x, const float *w, float *gamax, float *gx)
{
    tq_tape *t = tq_tape_new();
    tq_tensor *wt = tq_tape_tensor(t, x->ndim, x->shape, false);
    memcpy(wt->data, w, (size_t)x->numel * sizeof(float));
    int64_t n = tq_quantizer_amax_count(q);
    float *g = tq_quantizer_amax_grad(q);
    ck_assert_ptr_nonnull(g);
    memset(g, 0, (size_t)n * sizeof *g);
    if (x->grad) memset(x->grad, 0, (size_t)x->numel * sizeof(float));
    tq_tensor *loss = tq_sum(t, tq_mul(t, tq_quantize(t, x, q), wt));
    ck_assert_msg(loss && tq_backward(t, loss) == TQ_STATUS_OK, "%s", tq_tape_error(t)->msg);
    memcpy(gamax, g, (size_t)n * sizeof *g);
    if (gx) memcpy(gx, x->grad, (size_t)x->numel * sizeof(float));
    tq_tape_free(t);
}

START_TEST(gradient_by_hand_with_clipped_codes)
{
    /* int4, amax 7: step 1, codes -8..7. 2.25 -> 2 (2 - 2.25); 10 above (7); -20 below (-8);
     * -3.6 -> -4 (-4 + 3.6). Weights 1, 2, 0.5, -1: sum = -0.25 + 14 - 4 + 0.4 = 10.15;
     * g = 1/sqrt(4 * 7), ds/damax = 1/7. */
    float amax = 7, xv[4] = {2.25f, 10, -20, -3.6f}, w[4] = {1, 2, 0.5f, -1}, ga, gx[4];
    tq_tensor *x = tq_tensor_new(1, (int32_t[]){4}, true);
    memcpy(x->data, xv, sizeof xv);
    tq_quantizer *q = make_q("int4:scale=learn", &amax, 1, false);
    backward(q, x, w, &ga, gx);
    TQ_ASSERT_NEAR(ga, 10.15 / (7 * sqrt(28.0)), 1e-6);
    /* LSQ's STE passes on the code range [-8, 7] * step: -3.6 and 2.25 pass, 10 and -20 not */
    float want_gx[4] = {1, 0, 0, -1};
    for (int i = 0; i < 4; i++) TQ_ASSERT_NEAR(gx[i], want_gx[i], 0);
    tq_quantizer_free(q);
    /* narrow: codes -7..7, so -20 gives -7: -0.25 + 14 - 3.5 + 0.4 = 10.65 */
    q = make_q("int4:narrow:scale=learn", &amax, 1, false);
    backward(q, x, w, &ga, gx);
    TQ_ASSERT_NEAR(ga, 10.65 / (7 * sqrt(28.0)), 1e-6);
    tq_quantizer_free(q);
    /* uint4 (the unsigned switch), amax 15: step 1, codes 0..15. 2.25 -> -0.25; 10 -> 0;
     * -20 below (0); -3.6 below (0): sum -0.25; g = 1/sqrt(4 * 15), ds/damax = 1/15 */
    amax = 15;
    q = make_q("int4:scale=learn", &amax, 1, true);
    backward(q, x, w, &ga, gx);
    TQ_ASSERT_NEAR(ga, -0.25 / (15 * sqrt(60.0)), 1e-7);
    float want_u[4] = {1, 2, 0, 0};
    for (int i = 0; i < 4; i++) TQ_ASSERT_NEAR(gx[i], want_u[i], 0);
    tq_quantizer_free(q);
    /* e2m1, amax 6: step 1. 2.25 -> 2 (grid 2, 3): -0.25; 10 -> 6; -20 -> -6; -3.6 -> -4: -0.4
     * times -1. Sum -0.25 + 12 - 3 + 0.4 = 9.15; g = 1/sqrt(4 * 6), ds/damax = 1/6 */
    amax = 6;
    q = make_q("e2m1:scale=learn", &amax, 1, false);
    backward(q, x, w, &ga, gx);
    TQ_ASSERT_NEAR(ga, 9.15 / (6 * sqrt(24.0)), 1e-6);
    tq_quantizer_free(q);
    tq_tensor_free(x);
}
END_TEST

START_TEST(gradient_scale_follows_the_elements_covered)
{
    /* the same values k times over: the sum grows k-fold, g = 1/sqrt(N Q_P) shrinks by
     * sqrt(k), so the gradient grows by sqrt(k) */
    tq_rng rng;
    tq_rng_seed(&rng, 5);
    const int n = 37;
    tq_tensor *one = tq_test_tensor(&rng, 2, (int32_t[]){1, n}, false, -2, 2);
    float w[16 * 37], amax = 1.3f, g1, gk;
    for (int i = 0; i < 16 * n; i++) w[i] = (float)((i % n) % 5) - 2.0f;
    tq_quantizer *q = make_q("int3:scale=learn", &amax, 1, false);
    backward(q, one, w, &g1, NULL);
    ck_assert(fabsf(g1) > 1e-3f);
    for (int k = 2; k <= 16; k *= 2) {
        tq_tensor *many = tq_tensor_new(2, (int32_t[]){k, n}, false);
        for (int r = 0; r < k; r++) memcpy(many->data + r * n, one->data, n * sizeof(float));
        backward(q, many, w, &gk, NULL);
        TQ_ASSERT_NEAR(gk / g1, sqrt((double)k), 1e-5 * sqrt((double)k));
        tq_tensor_free(many);
    }
    /* per channel: N is one channel's elements; channel 1 holds channel 0's values twice */
    float amax2[2] = {1.3f, 1.3f}, g2[2];
    tq_tensor *ch = tq_tensor_new(2, (int32_t[]){2, 2 * n}, false);
    float w2[4 * 37];
    for (int i = 0; i < 2 * n; i++) {
        ch->data[i] = i < n ? one->data[i] : 0.0f; /* channel 0: the values, then zeros */
        ch->data[2 * n + i] = one->data[i % n];
        w2[i] = i < n ? w[i] : 0.0f;
        w2[2 * n + i] = w[i % n];
    }
    tq_quantizer *qc = make_q("int3:channel=0:scale=learn", amax2, 2, false);
    backward(qc, ch, w2, g2, NULL);
    /* both channels cover 2n elements: channel 1 sums twice channel 0 */
    TQ_ASSERT_NEAR(g2[1] / g2[0], 2.0, 1e-5);
    TQ_ASSERT_NEAR(g2[0], g1 / sqrt(2.0), 1e-6);
    tq_quantizer_free(qc);
    tq_quantizer_free(q);
    tq_tensor_free(one);
    tq_tensor_free(ch);
}
END_TEST

/* sum w * y in double */
static double weighted(const float *w, const float *y, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)w[i] * y[i];
    return s;
}

/* For one spec on a (4, 60) tensor, per tensor or per channel (axis 0): amax's gradient
 * against the finite difference of the quantizer's own output (the elements whose codes do
 * not change between amax -+ h, the rest weighted 0) plus LSQ's straight-through term
 * -x/s per element inside the range, times g and ds/damax; and x's gradient against the
 * finite difference of the unrounded quantizer s * clamp(x / s, qmin, qmax). */
static void check_fd(const char *spec, bool go_unsigned)
{
    tq_rng rng;
    tq_rng_seed(&rng, 11);
    const int rows = 4, cols = 60, n = rows * cols;
    bool per_channel = strstr(spec, "channel") != NULL;
    int na = per_channel ? rows : 1;
    float amax[4] = {1.0f, 0.6f, 2.5f, 1.7f};
    tq_tensor *x = tq_tensor_new(2, (int32_t[]){rows, cols}, true);
    float w[240], y0[240], y1[240], gx[240], ga[4], code0[240], code1[240], sc[4];
    for (int i = 0; i < n; i++) {
        float a = amax[per_channel ? i / cols : 0];
        x->data[i] = a * (2.6f * tq_rng_uniform(&rng) - 1.3f); /* a fifth outside */
        w[i] = 2.0f * tq_rng_uniform(&rng) - 1.0f;
    }
    tq_quantizer *q = make_q(spec, amax, na, go_unsigned);
    tq_format f = tq_quantizer_format(q);
    double qmax = tq_format_max(f), lo = tq_format_min(f);
    tq_error e = {0};
    for (int j = 0; j < na; j++) {
        double h = 1e-3 * amax[j];
        float a[4];
        memcpy(a, amax, sizeof a);
        a[j] = (float)(amax[j] - h);
        ck_assert(tq_quantizer_set_amax(q, a, na, &e) == TQ_STATUS_OK);
        ck_assert(tq_quantizer_codes(q, x, code0, sc, &e) == TQ_STATUS_OK);
        ck_assert(tq_quantizer_apply(q, x, y0, &e) == TQ_STATUS_OK);
        a[j] = (float)(amax[j] + h);
        ck_assert(tq_quantizer_set_amax(q, a, na, &e) == TQ_STATUS_OK);
        ck_assert(tq_quantizer_codes(q, x, code1, sc, &e) == TQ_STATUS_OK);
        ck_assert(tq_quantizer_apply(q, x, y1, &e) == TQ_STATUS_OK);
        double dh = (double)a[j] - (amax[j] - h); /* the step as float32 made it */
        float wj[240];
        int kept = 0;
        for (int i = 0; i < n; i++) {
            bool mine = !per_channel || i / cols == j;
            wj[i] = mine && code0[i] == code1[i] ? w[i] : 0.0f;
            kept += wj[i] != 0.0f;
        }
        ck_assert_msg(kept > (per_channel ? cols : n) / 2, "%s: only %d elements away from steps",
                      spec, kept);
        double fd = (weighted(wj, y1, n) - weighted(wj, y0, n)) / dh;
        ck_assert(tq_quantizer_set_amax(q, amax, na, &e) == TQ_STATUS_OK);
        float s = amax[j] / (float)qmax;
        double ste = 0;
        for (int i = 0; i < n; i++) {
            float v = x->data[i] / s;
            if (wj[i] != 0.0f && v >= lo && v <= qmax) ste += (double)wj[i] * v / qmax;
        }
        backward(q, x, wj, ga, gx);
        double per_amax = per_channel ? cols : n, g = 1.0 / sqrt(per_amax * qmax);
        double want = g * (fd - ste), scale = g * fabs(fd) + g * fabs(ste) + 1e-12;
        ck_assert_msg(fabs(ga[j] - want) <= 2e-3 * scale, "%s amax[%d]: gradient %.9g, finite "
                      "difference %.9g (fd %.6g, ste %.6g)", spec, j, (double)ga[j], want, fd, ste);
        for (int k = 0; k < na; k++)
            if (k != j && per_channel) TQ_ASSERT_NEAR(ga[k], 0.0, 0); /* weighted 0 there */
    }
    /* x: finite differences of s * clamp(x / s, qmin, qmax) in double */
    backward(q, x, w, ga, gx);
    int checked = 0;
    for (int i = 0; i < n; i++) {
        double s = (double)(amax[per_channel ? i / cols : 0] / (float)qmax);
        double v = x->data[i] / s, hx = 1e-4 * s;
        if (fabs(v - lo) < 1e-2 || fabs(v - qmax) < 1e-2) continue; /* the kinks */
        double up = fmin(fmax((x->data[i] + hx) / s, lo), qmax) * s;
        double dn = fmin(fmax((x->data[i] - hx) / s, lo), qmax) * s;
        TQ_ASSERT_NEAR(gx[i], w[i] * (up - dn) / (2 * hx), 1e-6);
        checked++;
    }
    ck_assert(checked > n * 9 / 10);
    tq_quantizer_free(q);
    tq_tensor_free(x);
}

START_TEST(gradients_match_finite_differences)
{
    const char *specs[] = {"int4:scale=learn", "int4:channel=0:scale=learn",
                           "int2:channel=0:scale=learn", "int8:scale=learn",
                           "int3:narrow:scale=learn", "e4m3:scale=learn",
                           "e5m2:channel=0:scale=learn", "e2m1:channel=0:scale=learn"};
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) check_fd(specs[i], false);
    check_fd("int4:scale=learn", true); /* uint4 after the unsigned switch */
    check_fd("int2:channel=0:scale=learn", true);
}
END_TEST

START_TEST(forward_is_the_fixed_scale_forward)
{
    tq_rng rng;
    tq_rng_seed(&rng, 3);
    tq_tensor *x = tq_test_tensor(&rng, 2, (int32_t[]){6, 50}, true, -3, 3);
    float amax[6] = {1, 2, 0.5f, 3, 0.25f, 1.5f};
    const char *pairs[][2] = {{"int4:channel=0", "int4:channel=0:scale=learn"},
                              {"e4m3", "e4m3:scale=learn"}, {"int2", "int2:scale=learn"}};
    for (int p = 0; p < 3; p++) {
        int na = strstr(pairs[p][0], "channel") ? 6 : 1;
        tq_quantizer *fixed = make_q(pairs[p][0], amax, na, false);
        tq_quantizer *learn = make_q(pairs[p][1], amax, na, false);
        tq_tape *t = tq_tape_new();
        tq_tensor *a = tq_quantize(t, x, fixed), *b = tq_quantize(t, x, learn);
        ck_assert(a && b && memcmp(a->data, b->data, (size_t)x->numel * sizeof(float)) == 0);
        tq_tape_free(t);
        tq_quantizer_free(fixed);
        tq_quantizer_free(learn);
    }
    tq_tensor_free(x);
}
END_TEST

START_TEST(learned_amax_keeps_a_floor)
{
    float amax[4] = {1, 0, 2, 3}, step[4] = {-0.5f, 0.7f, NAN, 1e-9f};
    tq_quantizer *q = make_q("int4:channel=0:scale=learn", amax, 4, false);
    tq_quantizer_set_learned_amax(q, step);
    const float *a = tq_quantizer_amax(q);
    ck_assert(a[0] == TQ_LEARNED_AMAX_FLOOR); /* below the floor */
    ck_assert(a[1] == 0.0f);                  /* a zero amax learns nothing */
    ck_assert(a[2] == 2.0f);                  /* a non-finite step keeps the old value */
    ck_assert(a[3] == TQ_LEARNED_AMAX_FLOOR);
    tq_quantizer_free(q);
}
END_TEST

START_TEST(spec_option_parses_and_refuses)
{
    tq_qspec s, t;
    tq_error e = {0};
    char buf[128];
    ck_assert(tq_qspec_parse("int4:channel=0:scale=learn", &s, &e) == TQ_STATUS_OK && s.learn_scale);
    tq_qspec_format(&s, buf, sizeof buf);
    ck_assert_str_eq(buf, "int4:channel=0:scale=learn");
    ck_assert(tq_qspec_parse(buf, &t, &e) == TQ_STATUS_OK && tq_qspec_equal(&s, &t));
    ck_assert(tq_qspec_parse("int4:channel=0", &t, &e) == TQ_STATUS_OK && !tq_qspec_equal(&s, &t));
    ck_assert(tq_qspec_parse("e4m3:scale=learn:scale=fixed", &s, &e) == TQ_STATUS_OK && !s.learn_scale);
    tq_qspec_format(&s, buf, sizeof buf);
    ck_assert_str_eq(buf, "e4m3"); /* fixed is the default, left out */
    ck_assert(!tq_qspec_default().learn_scale);
    struct { const char *spec, *says; } bad[] = {
        {"int4:scale=maybe", "option \"scale=maybe\" needs fixed or learn"},
        {"int4:scale", "unknown option \"scale\""},
        {"int4:block=32:scale=learn", "scale=learn works with intN"},
        {"int4:scale=learn:block=32", "not block=N, mxfp8"}, /* in either order */
        {"mxfp4:scale=learn", "scale=learn works with"},
        {"nvfp4:scale=learn", "scale=learn works with"},
        {"mxint8:scale=learn", "scale=learn works with"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s = tq_qspec_default();
        e = (tq_error){0};
        ck_assert_msg(tq_qspec_parse(bad[i].spec, &s, &e) == TQ_STATUS_FORMAT, "%s parsed", bad[i].spec);
        ck_assert_msg(strstr(e.msg, bad[i].says) && strstr(e.msg, bad[i].spec), "%s: %s",
                      bad[i].spec, e.msg);
        ck_assert(!s.learn_scale); /* untouched */
    }
    /* turning learning on for a quantizer that cannot learn fails and changes nothing */
    e = (tq_error){0};
    ck_assert(tq_qspec_parse("nvfp4", &s, &e) == TQ_STATUS_OK);
    tq_quantizer *q = tq_quantizer_new(&s, &e);
    ck_assert(tq_quantizer_set_learn_scale(q, true, &e) == TQ_STATUS_ARG);
    ck_assert_ptr_nonnull(strstr(e.msg, TQ_LEARN_SCALE_ACCEPTED));
    ck_assert(!tq_quantizer_learns_scale(q));
    tq_quantizer_free(q);
    s.learn_scale = true; /* a spec built by hand is checked too */
    ck_assert_ptr_null(tq_quantizer_new(&s, &e));
}
END_TEST

/* ---- QAT with learned scales: a 4x4 MLP, PTQ w2a2, then QAT steps */

static char dir[256];

static void qat_setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/tq_lsq_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void qat_teardown(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *at(const char *name)
{
    static char path[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", dir, name);
    return path[k];
}

static bool same_file(const char *a, const char *b)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", a, b);
    return system(cmd) == 0;
}

/* A float MLP trained briefly, quantized w2a2 with learned scales, saved as start.tqc with a
 * cosine QAT schedule over two epochs at Adam 0.01. */
static void make_start(tq_dataset *train, const char *optim)
{
    tq_error e = {0};
    tq_rng rng;
    tq_rng_seed(&rng, 2);
    tq_run run = {.batch = 32, .seed = 1, .epochs = 1};
    run.model = tq_model_create("mlp", 1, 4, 4, 4, &rng, &e);
    run.optim_cfg = tq_optim_defaults(TQ_OPTIM_ADAM);
    run.schedule = (tq_schedule){.kind = TQ_SCHEDULE_CONSTANT, .lr = 0.01f};
    tq_dataset_stats(train, run.mean, run.std);
    snprintf(run.data_name, sizeof run.data_name, "synthetic");
    tq_reporter rep = {.out = stderr, .quiet = true};
    ck_assert(tq_train_epoch(&run, train, &rep, NULL, &e) == TQ_STATUS_OK);
    tq_recipe r;
    ck_assert(tq_recipe_make("w2a2", NULL, NULL, &r, &e) == TQ_STATUS_OK);
    ck_assert_msg(tq_ptq_run(run.model, &r, -1, train, run.mean, run.std, 4, 32, 1, &e) == TQ_STATUS_OK,
                  "%s", e.msg);
    ck_assert(tq_model_learned_amax_count(run.model) == 0);
    ck_assert(tq_model_set_learn_scales(run.model, true, &e) == TQ_STATUS_OK);
    /* mlp 784.. here 16-256-256-4: weights per channel 256 + 256 + 4, inputs 3 per tensor */
    ck_assert_int_eq(tq_model_learned_amax_count(run.model), 256 + 256 + 4 + 3);
    tq_optim_free(run.optim);
    run.optim = NULL;
    tq_optim_kind kind;
    ck_assert(tq_optim_kind_parse(optim, &kind));
    run.optim_cfg = tq_optim_defaults(kind);
    run.optim_cfg.weight_decay = 0.01f; /* for the weights: the scales take none */
    if (kind == TQ_OPTIM_SGD) run.optim_cfg.momentum = 0.9f;
    run.epoch = 0;
    run.epochs = 2;
    run.schedule = (tq_schedule){.kind = TQ_SCHEDULE_COSINE, .lr = 0.01f,
                                 .total_steps = 2 * ((train->n + 31) / 32)};
    ck_assert(tq_run_save(&run, at("start.tqc"), &e) == TQ_STATUS_OK);
    tq_run_free(&run);
}

/* Loads `from`, trains `epochs` more epochs, saves `to`. */
static void train_more(const char *from, const char *to, int epochs, const tq_dataset *train)
{
    tq_error e = {0};
    tq_run run;
    ck_assert_msg(tq_run_load(from, &run, &e) == TQ_STATUS_OK, "%s", e.msg);
    tq_reporter rep = {.out = stderr, .quiet = true};
    for (int i = 0; i < epochs; i++)
        ck_assert_msg(tq_train_epoch(&run, train, &rep, NULL, &e) == TQ_STATUS_OK, "%s", e.msg);
    ck_assert(run.scale_optim != NULL);
    ck_assert(tq_run_save(&run, to, &e) == TQ_STATUS_OK);
    tq_run_free(&run);
}

START_TEST(checkpoints_round_trip_and_resume_to_the_same_bits)
{
    tq_dataset train;
    tq_test_synthetic(&train, 512, 20.0f, 60.0f, 4);
    const char *optims[] = {"adam", "sgd"};
    for (int o = 0; o < 2; o++) {
        make_start(&train, optims[o]);
        train_more(at("start.tqc"), at("two.tqc"), 2, &train);   /* straight through */
        train_more(at("start.tqc"), at("one.tqc"), 1, &train);   /* one epoch, saved, */
        train_more(at("one.tqc"), at("resumed.tqc"), 1, &train); /* loaded, one more */
        ck_assert_msg(same_file(at("two.tqc"), at("resumed.tqc")), "%s: resumed run differs",
                      optims[o]);
        /* a load and a save change no byte */
        tq_error e = {0};
        tq_run run;
        ck_assert(tq_run_load(at("two.tqc"), &run, &e) == TQ_STATUS_OK);
        ck_assert(tq_run_save(&run, at("again.tqc"), &e) == TQ_STATUS_OK);
        ck_assert(same_file(at("two.tqc"), at("again.tqc")));
        /* the amax learned: moved from the PTQ start, none below the floor */
        tq_run start;
        ck_assert(tq_run_load(at("start.tqc"), &start, &e) == TQ_STATUS_OK);
        int moved = 0, total = 0;
        for (int i = 0; i < tq_model_qlayer_count(run.model); i++) {
            tq_qlayer *a = tq_model_qlayer(run.model, i), *b = tq_model_qlayer(start.model, i);
            tq_quantizer *qa[2] = {a->weight_q, a->input_q}, *qb[2] = {b->weight_q, b->input_q};
            for (int k = 0; k < 2; k++) {
                ck_assert(tq_quantizer_learns_scale(qa[k]));
                for (int64_t j = 0; j < tq_quantizer_amax_count(qa[k]); j++) {
                    float va = tq_quantizer_amax(qa[k])[j], vb = tq_quantizer_amax(qb[k])[j];
                    ck_assert(va >= TQ_LEARNED_AMAX_FLOOR || (va == 0 && vb == 0));
                    moved += va != vb;
                    total++;
                }
            }
        }
        ck_assert_msg(moved > total / 2, "%s: %d of %d amax moved", optims[o], moved, total);
        /* the scales' optimizer state is in the file, sized for the learned amax */
        tq_ckpt *ck = tq_ckpt_load(at("two.tqc"), &e);
        int64_t n = 0;
        const int64_t *meta = tq_ckpt_get_i64(ck, "optim.scales", &n);
        ck_assert(meta && n == 2 && meta[0] == 2 * ((train.n + 31) / 32) && meta[1] == 519);
        tq_ckpt_free(ck);
        tq_run_free(&start);
        tq_run_free(&run);
    }
    tq_dataset_free(&train);
}
END_TEST

START_TEST(switching_learning_off_fixes_the_scales_again)
{
    tq_dataset train;
    tq_test_synthetic(&train, 256, 20.0f, 60.0f, 6);
    make_start(&train, "adam");
    tq_error e = {0};
    tq_run run;
    ck_assert(tq_run_load(at("start.tqc"), &run, &e) == TQ_STATUS_OK);
    ck_assert(tq_model_set_learn_scales(run.model, false, &e) == TQ_STATUS_OK);
    ck_assert_int_eq(tq_model_learned_amax_count(run.model), 0);
    tq_snapshot before;
    ck_assert(tq_snapshot_init(&before, run.model, &e) == TQ_STATUS_OK);
    tq_reporter rep = {.out = stderr, .quiet = true};
    ck_assert(tq_train_epoch(&run, &train, &rep, NULL, &e) == TQ_STATUS_OK);
    ck_assert_ptr_null(run.scale_optim);
    tq_snapshot after;
    ck_assert(tq_snapshot_init(&after, run.model, &e) == TQ_STATUS_OK);
    ck_assert(before.n_amax == after.n_amax && before.n_amax == 519);
    ck_assert(memcmp(before.amax, after.amax, (size_t)before.n_amax * sizeof(float)) == 0);
    ck_assert(memcmp(before.params, after.params, (size_t)before.n_params * sizeof(float)) != 0);
    tq_snapshot_free(&before);
    tq_snapshot_free(&after);
    tq_run_free(&run);
    tq_dataset_free(&train);
}
END_TEST

static Suite *lsq_suite(void)
{
    Suite *s = suite_create("lsq");
    TCase *tc = tcase_create("gradient");
    tcase_add_test(tc, gradient_by_hand_with_clipped_codes);
    tcase_add_test(tc, gradient_scale_follows_the_elements_covered);
    tcase_add_test(tc, gradients_match_finite_differences);
    tcase_add_test(tc, forward_is_the_fixed_scale_forward);
    tcase_add_test(tc, learned_amax_keeps_a_floor);
    tcase_add_test(tc, spec_option_parses_and_refuses);
    suite_add_tcase(s, tc);
    TCase *qat = tcase_create("qat");
    tcase_add_checked_fixture(qat, qat_setup, qat_teardown);
    tcase_set_timeout(qat, 300);
    tcase_add_test(qat, checkpoints_round_trip_and_resume_to_the_same_bits);
    tcase_add_test(qat, switching_learning_off_fixes_the_scales_again);
    suite_add_tcase(s, qat);
    return s;
}

int main(void) { return tq_test_run(lsq_suite()); }
