/* Check suite for the library API a program of its own uses beyond the command's: calibrators
 * of your own (checked against the built-in max calibrator, which must agree to the bit, and
 * against hand-set amax), per-layer specs in a recipe, checkpoints of a model built by hand,
 * and loops run without a reporter. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ptq.h"
#include "tq_test.h"

/* A model of its own on 4x4 grey images: conv -> relu -> flatten -> linear -> relu -> linear. */
static tq_model *tiny_model(const char *name, uint64_t seed)
{
    tq_error e = {0};
    tq_model *m = tq_model_new(name, 1, 4, 4, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    tq_model_conv2d(m, "conv", 3, 3, 1, 1, true);
    tq_model_relu(m, "relu1");
    tq_model_flatten(m, "flat");
    tq_model_linear(m, "hidden", 12, true);
    tq_model_relu(m, "relu2");
    tq_model_linear(m, "out", 4, true);
    tq_rng rng;
    tq_rng_seed(&rng, seed);
    ck_assert_msg(tq_model_finish(m, &rng, &e) == TQ_STATUS_OK, "%s", e.msg);
    return m;
}

/* A float run of tiny_model trained for one epoch (no reporter), and its data. */
typedef struct fixture {
    tq_run run;
    tq_dataset train, test;
} fixture;

static void fixture_init(fixture *f)
{
    tq_error e = {0};
    tq_test_synthetic(&f->train, 512, 40.0f, 40.0f, 1);
    tq_test_synthetic(&f->test, 256, 40.0f, 40.0f, 2);
    f->run = (tq_run){.model = tiny_model("tiny", 5), .batch = 32, .seed = 1, .epochs = 1};
    f->run.optim_cfg = tq_optim_defaults(TQ_OPTIM_ADAM);
    f->run.schedule = (tq_schedule){.kind = TQ_SCHEDULE_CONSTANT, .lr = 0.01f};
    tq_dataset_stats(&f->train, f->run.mean, f->run.std);
    snprintf(f->run.data_name, sizeof f->run.data_name, "generated");
    ck_assert_msg(tq_train_epoch(&f->run, &f->train, NULL, NULL, &e) == TQ_STATUS_OK, "%s", e.msg);
    ck_assert_int_eq(f->run.epoch, 1);
}

static void fixture_free(fixture *f)
{
    tq_run_free(&f->run);
    tq_dataset_free(&f->train);
    tq_dataset_free(&f->test);
}

/* The max |x| per layer and channel (channel = the index along axis 1 when per_channel). */
typedef struct max_rule {
    bool per_channel;
    float amax[8][64];
    int observed[8];
} max_rule;

static tq_status max_observe(void *ctx, int qi, const tq_tensor *x, tq_error *err)
{
    (void)err;
    max_rule *r = ctx;
    int64_t c = x->shape[1], inner = x->numel / x->shape[0] / c;
    ck_assert(qi < 8 && c <= 64);
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t ch = r->per_channel ? (i / inner) % c : 0;
        if (isfinite(x->data[i])) r->amax[qi][ch] = fmaxf(r->amax[qi][ch], fabsf(x->data[i]));
    }
    r->observed[qi]++;
    return TQ_STATUS_OK;
}

static tq_status max_amax(void *ctx, int qi, const tq_quantizer *q, float *amax, int64_t n,
                          tq_error *err)
{
    (void)q;
    (void)err;
    max_rule *r = ctx;
    for (int64_t k = 0; k < n; k++) amax[k] = r->amax[qi][k];
    return TQ_STATUS_OK;
}

/* Attaches recipe (weights, acts) to m and calibrates with the built-in calibrator or, when
 * cal is not NULL, with cal; 4 batches of 32. */
static tq_status quantize(fixture *f, const char *weights, const char *acts,
                          const tq_calibrator *cal, tq_error *e)
{
    tq_recipe r;
    ck_assert_msg(tq_recipe_make(NULL, weights, acts, &r, e) == TQ_STATUS_OK, "%s", e->msg);
    ck_assert_msg(tq_attach_recipe(f->run.model, &r, -1, e) == TQ_STATUS_OK, "%s", e->msg);
    if (!cal) return tq_calibrate(f->run.model, &f->train, f->run.mean, f->run.std, 4, 32, 7, e);
    return tq_calibrate_with(f->run.model, cal, &f->train, f->run.mean, f->run.std, 4, 32, 7, e);
}

/* Every input quantizer's amax, unsigned choice and state, built-in against our own. */
static void check_same_as_builtin(fixture *f, const char *acts, bool per_channel)
{
    tq_error e = {0};
    tq_model *m = f->run.model;
    int n = tq_model_qlayer_count(m);
    ck_assert_int_eq(n, 3);
    ck_assert_msg(quantize(f, "int8:channel=0", acts, NULL, &e) == TQ_STATUS_OK, "%s", e.msg);
    float builtin[3][64];
    bool builtin_unsigned[3];
    int64_t counts[3];
    for (int i = 0; i < n; i++) {
        const tq_quantizer *q = tq_model_qlayer(m, i)->input_q;
        counts[i] = tq_quantizer_amax_count(q);
        memcpy(builtin[i], tq_quantizer_amax(q), (size_t)counts[i] * sizeof(float));
        builtin_unsigned[i] = tq_quantizer_unsigned_chosen(q);
    }
    max_rule rule = {.per_channel = per_channel};
    tq_calibrator cal = {.ctx = &rule, .observe = max_observe, .amax = max_amax};
    ck_assert_msg(quantize(f, "int8:channel=0", acts, &cal, &e) == TQ_STATUS_OK, "%s", e.msg);
    for (int i = 0; i < n; i++) {
        const tq_quantizer *q = tq_model_qlayer(m, i)->input_q;
        ck_assert_int_eq(rule.observed[i], 4); /* one call a batch */
        ck_assert_int_eq(tq_quantizer_state(q), TQ_QSTATE_QUANTIZING);
        ck_assert_int_eq(tq_quantizer_amax_count(q), counts[i]);
        ck_assert_msg(memcmp(tq_quantizer_amax(q), builtin[i], (size_t)counts[i] * sizeof(float)) == 0,
                      "layer %d: amax %g, the max calibrator's %g", i,
                      (double)tq_quantizer_amax(q)[0], (double)builtin[i][0]);
        ck_assert_int_eq(tq_quantizer_unsigned_chosen(q), builtin_unsigned[i]);
    }
    /* the image is normalised (signed); the later inputs follow a ReLU (unsigned) */
    ck_assert(!builtin_unsigned[0] && builtin_unsigned[1] && builtin_unsigned[2]);
    if (per_channel) ck_assert_int_eq(counts[1], 48); /* hidden's 3*4*4 inputs */
}

START_TEST(own_max_calibrator_matches_builtin_to_the_bit)
{
    fixture f;
    fixture_init(&f);
    check_same_as_builtin(&f, "int8", false);
    check_same_as_builtin(&f, "int8:channel=1", true);
    fixture_free(&f);
}
END_TEST

/* With an input multiplier (the part of SmoothQuant no layer before could absorb) the
 * calibrator sees the input times the multiplier, as the built-in calibrator does. */
START_TEST(own_calibrator_sees_input_mul)
{
    fixture f;
    fixture_init(&f);
    tq_error e = {0};
    max_rule plain = {0}, scaled = {0};
    tq_calibrator cal = {.ctx = &plain, .observe = max_observe, .amax = max_amax};
    ck_assert(quantize(&f, "int8:channel=0", "int8", &cal, &e) == TQ_STATUS_OK);
    const float quarter = 0.25f; /* a power of two: the products are exact */
    ck_assert(tq_model_set_input_mul(f.run.model, 0, &quarter, 1, &e) == TQ_STATUS_OK);
    cal.ctx = &scaled;
    ck_assert(quantize(&f, "int8:channel=0", "int8", &cal, &e) == TQ_STATUS_OK);
    ck_assert_float_eq(scaled.amax[0][0], plain.amax[0][0] * quarter);
    check_same_as_builtin(&f, "int8", false);
    fixture_free(&f);
}
END_TEST

/* A calibrator naming fixed values: amax as named, a failing one leaves calibrating
 * quantizers and a message naming the layer. */
static tq_status fixed_observe(void *ctx, int qi, const tq_tensor *x, tq_error *err)
{
    (void)ctx;
    (void)x;
    if (qi == 2 && ctx) return tq_fail(err, TQ_STATUS_NUMERIC, "refusing layer %d", qi);
    return TQ_STATUS_OK;
}

static tq_status fixed_amax(void *ctx, int qi, const tq_quantizer *q, float *amax, int64_t n,
                            tq_error *err)
{
    (void)ctx;
    (void)err;
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(tq_quantizer_format(q).kind, qi == 0 ? TQ_FORMAT_INT : TQ_FORMAT_UINT);
    amax[0] = 1.5f * (float)(qi + 1);
    return TQ_STATUS_OK;
}

START_TEST(own_calibrator_amax_and_failures)
{
    fixture f;
    fixture_init(&f);
    tq_error e = {0};
    tq_calibrator cal = {.observe = fixed_observe, .amax = fixed_amax};
    ck_assert_msg(quantize(&f, "int4:channel=0", "int4", &cal, &e) == TQ_STATUS_OK, "%s", e.msg);
    for (int i = 0; i < 3; i++) {
        const tq_quantizer *q = tq_model_qlayer(f.run.model, i)->input_q;
        ck_assert_float_eq(tq_quantizer_amax(q)[0], 1.5f * (float)(i + 1));
        ck_assert_int_eq(tq_quantizer_state(q), TQ_QSTATE_QUANTIZING);
    }
    double acc = 0;
    ck_assert(tq_evaluate(f.run.model, &f.test, f.run.mean, f.run.std, 64, &acc, NULL, &e) == 0);

    int dummy;
    cal.ctx = &dummy; /* now layer 2 refuses */
    ck_assert_int_eq(quantize(&f, "int8:channel=0", "int8", &cal, &e), TQ_STATUS_NUMERIC);
    ck_assert_msg(strstr(e.msg, "out input") && strstr(e.msg, "refusing layer 2"), "%s", e.msg);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(tq_quantizer_state(tq_model_qlayer(f.run.model, i)->input_q),
                         TQ_QSTATE_CALIBRATING);
    tq_calibrator incomplete = {.observe = fixed_observe};
    e = (tq_error){0};
    ck_assert_int_eq(tq_calibrate_with(f.run.model, &incomplete, &f.train, f.run.mean, f.run.std,
                                       1, 32, 1, &e), TQ_STATUS_ARG);
    fixture_free(&f);
}
END_TEST

START_TEST(recipe_layer_gives_a_layer_its_own_specs)
{
    fixture f;
    fixture_init(&f);
    tq_error e = {0};
    tq_recipe r;
    ck_assert(tq_recipe_make("w4a8", NULL, NULL, &r, &e) == TQ_STATUS_OK);
    ck_assert(tq_recipe_layer(&r, "hidden", "int2:channel=0", "float", &e) == TQ_STATUS_OK);
    ck_assert(tq_recipe_layer(&r, "out", "e4m3", "e4m3", &e) == TQ_STATUS_OK);
    ck_assert(tq_recipe_layer(&r, "hidden", "int6:channel=0", NULL, &e) == TQ_STATUS_OK);
    ck_assert_int_eq(r.n_overrides, 2); /* hidden replaced, not added */
    ck_assert(tq_attach_recipe(f.run.model, &r, -1, &e) == TQ_STATUS_OK);
    tq_qlayer *conv = tq_model_qlayer(f.run.model, 0), *hidden = tq_model_qlayer(f.run.model, 1),
              *out = tq_model_qlayer(f.run.model, 2);
    ck_assert_int_eq(tq_quantizer_spec(conv->weight_q)->format.bits, 4);  /* the recipe's */
    ck_assert_int_eq(tq_quantizer_spec(conv->input_q)->format.bits, 8);
    ck_assert_int_eq(tq_quantizer_spec(hidden->weight_q)->format.bits, 6); /* its own */
    ck_assert_ptr_null(hidden->input_q);                                    /* float */
    ck_assert_int_eq(tq_quantizer_spec(out->weight_q)->format.kind, TQ_FORMAT_E4M3);
    ck_assert_int_eq(tq_quantizer_spec(out->input_q)->format.kind, TQ_FORMAT_E4M3);

    ck_assert(tq_recipe_layer(&r, "out", "int9", NULL, &e) != TQ_STATUS_OK);
    ck_assert_msg(strstr(e.msg, "layer out: weights"), "%s", e.msg);
    e = (tq_error){0};
    ck_assert_int_eq(tq_recipe_layer(&r, "", "int8", NULL, &e), TQ_STATUS_ARG);
    e = (tq_error){0};
    ck_assert(tq_recipe_layer(&r, "nowhere", "int8", "int8", &e) == TQ_STATUS_OK);
    ck_assert_int_eq(tq_attach_recipe(f.run.model, &r, -1, &e), TQ_STATUS_ARG);
    ck_assert_msg(strstr(e.msg, "nowhere"), "%s", e.msg);
    fixture_free(&f);
}
END_TEST

START_TEST(checkpoint_of_a_model_of_ones_own)
{
    fixture f;
    fixture_init(&f);
    tq_error e = {0};
    ck_assert(quantize(&f, "int4:channel=0", "int8", NULL, &e) == TQ_STATUS_OK);
    char path[] = "/tmp/tq_test_api_XXXXXX";
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    close(fd);
    ck_assert_msg(tq_run_save(&f.run, path, &e) == TQ_STATUS_OK, "%s", e.msg);

    /* the zoo has no "tiny": tq_run_load refuses, naming it */
    tq_run zoo;
    ck_assert(tq_run_load(path, &zoo, &e) != TQ_STATUS_OK);
    ck_assert_msg(strstr(e.msg, "tiny"), "%s", e.msg);

    tq_run back;
    e = (tq_error){0};
    tq_model *m = tiny_model("tiny", 99); /* other initial weights: all must be replaced */
    ck_assert_msg(tq_run_load_model(path, m, &back, &e) == TQ_STATUS_OK, "%s", e.msg);
    ck_assert_ptr_eq(back.model, m);
    ck_assert_int_eq(back.epoch, 1);
    ck_assert(memcmp(tq_model_params(m), tq_model_params(f.run.model),
                     (size_t)tq_model_param_count(m) * sizeof(float)) == 0);
    for (int i = 0; i < 3; i++) {
        const tq_quantizer *a = tq_model_qlayer(f.run.model, i)->input_q,
                           *b = tq_model_qlayer(m, i)->input_q;
        ck_assert_float_eq(tq_quantizer_amax(a)[0], tq_quantizer_amax(b)[0]);
        ck_assert_int_eq(tq_quantizer_unsigned_chosen(a), tq_quantizer_unsigned_chosen(b));
    }
    double acc_a, acc_b;
    ck_assert(tq_evaluate(f.run.model, &f.test, f.run.mean, f.run.std, 64, &acc_a, NULL, &e) == 0);
    ck_assert(tq_evaluate(m, &f.test, back.mean, back.std, 64, &acc_b, NULL, &e) == 0);
    ck_assert(acc_a == acc_b);
    tq_run_free(&back); /* frees m */

    /* another name, or another shape: refused, the model still the caller's */
    tq_model *other = tiny_model("tiny2", 1);
    ck_assert_int_eq(tq_run_load_model(path, other, &back, &e), TQ_STATUS_SHAPE);
    ck_assert_msg(strstr(e.msg, "tiny2") && strstr(e.msg, path), "%s", e.msg);
    ck_assert_ptr_null(back.model);
    tq_model_free(other);
    e = (tq_error){0};
    other = tq_model_new("tiny", 1, 4, 4, &e);
    tq_model_flatten(other, "flat");
    tq_model_linear(other, "out", 4, true);
    tq_rng rng;
    tq_rng_seed(&rng, 1);
    ck_assert(tq_model_finish(other, &rng, &e) == TQ_STATUS_OK);
    ck_assert_int_eq(tq_run_load_model(path, other, &back, &e), TQ_STATUS_SHAPE);
    /* conv 3*9+3, hidden 48*12+12, out 12*4+4 = 670 saved; 16*4+4 = 68 here */
    ck_assert_msg(strstr(e.msg, "'model.params' has 670 values, expected 68"), "%s", e.msg);
    tq_model_free(other);
    remove(path);
    fixture_free(&f);
}
END_TEST

static Suite *api_suite(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, own_max_calibrator_matches_builtin_to_the_bit);
    tcase_add_test(tc, own_calibrator_sees_input_mul);
    tcase_add_test(tc, own_calibrator_amax_and_failures);
    tcase_add_test(tc, recipe_layer_gives_a_layer_its_own_specs);
    tcase_add_test(tc, checkpoint_of_a_model_of_ones_own);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tq_test_run(api_suite()); }
