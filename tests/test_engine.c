/* Check suite for engine/: packed codes (hand-computed bytes), integer affine rescaling
 * against double precision, and the integer engine against fake quant on generated data:
 * every zoo model at int8, w4a8, w4a4 and w2a2 (plus SmoothQuant's input multipliers and
 * folded batch norm), hand-built models with negative batch-norm gammas, average pools and
 * stand-alone batch norms, the same bits for any thread count and on both product paths
 * (direct convolutions and im2col), and the refusals. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "ptq.h"
#include "tq_test.h"

/* ---- packed codes */

START_TEST(test_pack_by_hand)
{
    tq_error err = {0};
    tq_packed p;
    const int8_t four[] = {1, -1, -8, 7, 3};
    ck_assert_int_eq(tq_pack_codes(four, 5, 4, &p, &err), TQ_STATUS_OK);
    ck_assert_int_eq(tq_packed_bytes(5, 4), 3);
    ck_assert_uint_eq(p.data[0], 0xF1); /* 1 low, -1 = 0xF high */
    ck_assert_uint_eq(p.data[1], 0x78); /* -8 = 0x8 low, 7 high */
    ck_assert_uint_eq(p.data[2], 0x03);
    int8_t back[5];
    tq_unpack_codes(&p, back);
    ck_assert_mem_eq(back, four, 5);
    tq_packed_free(&p);
    const int8_t two[] = {1, -1, -2, 0, -2};
    ck_assert_int_eq(tq_pack_codes(two, 5, 2, &p, &err), TQ_STATUS_OK);
    ck_assert_uint_eq(p.data[0], 0x2D); /* 01, 11, 10, 00 from the low bits up */
    ck_assert_uint_eq(p.data[1], 0x02);
    tq_unpack_codes(&p, back);
    ck_assert_mem_eq(back, two, 5);
    tq_packed_free(&p);
    /* random codes round-trip at every width */
    tq_rng rng;
    tq_rng_seed(&rng, 3);
    int8_t codes[1001], out[1001];
    for (int bits = 2; bits <= 8; bits *= 2) {
        for (int i = 0; i < 1001; i++)
            codes[i] = (int8_t)((int)tq_rng_below(&rng, 1u << bits) - (1 << (bits - 1)));
        ck_assert_int_eq(tq_pack_codes(codes, 1001, bits, &p, &err), TQ_STATUS_OK);
        tq_unpack_codes(&p, out);
        ck_assert_mem_eq(out, codes, 1001);
        tq_packed_free(&p);
    }
    ck_assert_int_eq(tq_packed_bits_for(3), 4);
    ck_assert_int_eq(tq_packed_bits_for(2), 2);
    ck_assert_int_eq(tq_packed_bits_for(5), 8);
    /* a code that does not fit is refused, naming it */
    const int8_t wide[] = {0, 8};
    ck_assert_int_eq(tq_pack_codes(wide, 2, 4, &p, &err), TQ_STATUS_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "code 8 at 1 does not fit 4 bits"));
}
END_TEST

/* ---- v * scale + offset in integers: round half to even, off by at most one from double
 * precision, and exact away from ties (within the multiplier's 31 bits of them). */
START_TEST(test_affine_against_double)
{
    tq_affine h = tq_affine_make(0.5, 0.0);
    ck_assert_int_eq(tq_affine_apply(3, &h), 2);   /* 1.5 to 2 */
    ck_assert_int_eq(tq_affine_apply(5, &h), 2);   /* 2.5 to 2 */
    ck_assert_int_eq(tq_affine_apply(-3, &h), -2); /* -1.5 to -2 */
    ck_assert_int_eq(tq_affine_apply(-5, &h), -2); /* -2.5 to -2 */
    ck_assert_int_eq(tq_affine_apply(7, &h), 4);   /* 3.5 to 4 */
    ck_assert_int_eq(tq_affine_apply(8, &h), 4);   /* 4, no tie */
    tq_affine b = tq_affine_make(0.25, -0.75);
    ck_assert_int_eq(tq_affine_apply(5, &b), 0);  /* 0.5 to 0 */
    ck_assert_int_eq(tq_affine_apply(1, &b), 0);  /* -0.5 to 0 */
    ck_assert_int_eq(tq_affine_apply(9, &b), 2);  /* 1.5 to 2 */
    ck_assert_int_eq(tq_affine_apply(-3, &b), -2); /* -1.5 to -2 */
    tq_affine zero = tq_affine_make(0.0, 2.6);
    ck_assert_int_eq(tq_affine_apply(123456, &zero), 3);
    tq_rng rng;
    tq_rng_seed(&rng, 5);
    int64_t exact = 0, off = 0;
    for (int i = 0; i < 1000000; i++) {
        double scale = ldexp(1.0 + tq_rng_uniform(&rng), (int)tq_rng_below(&rng, 30) - 30);
        if (tq_rng_below(&rng, 4) == 0) scale = -scale;
        double offset = (tq_rng_uniform(&rng) - 0.5) * 200.0;
        int64_t v = (int64_t)tq_rng_below(&rng, 1u << 24) - (1 << 23);
        double want = v * scale + offset;
        tq_affine a = tq_affine_make(scale, offset);
        int64_t got = tq_affine_apply(v, &a);
        double frac = want - floor(want);
        ck_assert_msg(llabs(got - (int64_t)nearbyint(want)) <= 1, "v %lld scale %g offset %g: %lld",
                      (long long)v, scale, offset, (long long)got);
        /* the multiplier holds 31 significant bits, the bias 2^-shift */
        if (fabs(frac - 0.5) > fabs(v * scale) * 0x1p-30 + 0x1p-20) {
            ck_assert_msg(got == (int64_t)nearbyint(want), "v %lld scale %.17g offset %.17g: "
                          "%lld, expected %.17g", (long long)v, scale, offset, (long long)got, want);
            exact++;
        } else {
            off++;
        }
    }
    ck_assert_msg(exact > 980000, "%lld exact, %lld near ties", (long long)exact, (long long)off);
}
END_TEST

/* A row of outputs at one shift: the AVX2 path (where the CPU has one) and the portable one
 * give the same bits, both round(sum * m + c) half to even, exactly away from ties, and an
 * exact tie goes to the even neighbour on either path, for codes, fine integers and adds. */
START_TEST(test_rowquant_paths_agree)
{
    tq_rng rng;
    tq_rng_seed(&rng, 9);
    tq_error err = {0};
    for (int trial = 0; trial < 200; trial++) {
        const int64_t n = 1 + tq_rng_below(&rng, 70);
        double m[70], c[70];
        int32_t row_sum[70];
        const double big = ldexp(1.0, (int)tq_rng_below(&rng, 12) - 8);
        for (int64_t o = 0; o < n; o++) {
            m[o] = (tq_rng_uniform(&rng) - 0.3) * big * 1e-3;
            c[o] = (tq_rng_uniform(&rng) - 0.5) * 300.0;
            row_sum[o] = (int32_t)tq_rng_below(&rng, 20000) - 10000;
        }
        const int32_t zp = trial % 2 ? 128 : 0;
        tq_rowquant q = {0};
        ck_assert_int_eq(tq_rowquant_make(&q, m, c, row_sum, zp, n, &err), TQ_STATUS_OK);
        ck_assert(q.period >= 32 && q.period % n == 0);
        int32_t acc[128], fine[128], fine_ref[128];
        uint8_t codes[128], codes_ref[128];
        const int64_t len = q.period < 128 ? q.period : 128;
        for (int64_t j = 0; j < len; j++) acc[j] = (int32_t)tq_rng_below(&rng, 1u << 26) - (1 << 25);
        tq_rowquant_codes(acc, len, &q, -128, 127, 128, codes);
        tq_rowquant_codes_ref(acc, len, &q, -128, 127, 128, codes_ref);
        ck_assert_mem_eq(codes, codes_ref, (size_t)len);
        tq_rowquant_fine(acc, len, &q, INT32_MIN, fine);
        tq_rowquant_fine_ref(acc, len, &q, INT32_MIN, fine_ref);
        ck_assert_mem_eq(fine, fine_ref, (size_t)len * sizeof *fine);
        for (int64_t j = 0; j < len; j++) {
            const int64_t o = j % n;
            const double v = (double)((int64_t)acc[j] - (int64_t)zp * row_sum[o]);
            double want = v * m[o] + c[o], rounded = nearbyint(want);
            ck_assert_msg(fabs((double)fine[j] - rounded) <= 1.0, "%d vs %.17g", fine[j], want);
            /* exact unless the multiplier's and the bias's last bits can tip a near tie */
            const double slack = (fabs(v) + 2.0) * ldexp(1.0, -q.shift);
            if (fabs(want - floor(want) - 0.5) > slack)
                ck_assert_msg(fine[j] == rounded, "%d vs %.17g (shift %d)", fine[j], want, q.shift);
            double code = fmin(fmax(rounded, -128.0), 127.0);
            ck_assert_msg(fabs((double)codes[j] - 128.0 - code) <= 1.0, "%d vs %.17g", codes[j], want);
        }
        tq_rowquant_free(&q);
    }
    /* exact ties: sums times 1/2 (a power of two, so the multiplier is exact) */
    const double half[1] = {0.5}, none[1] = {0.0};
    const int32_t sums[8] = {1, 3, 5, 7, -1, -3, -5, 6}, want[8] = {0, 2, 2, 4, 0, -2, -2, 3};
    int32_t tiled[32], fine[32];
    uint8_t codes[32];
    for (int j = 0; j < 32; j++) tiled[j] = sums[j % 8];
    tq_rowquant q = {0};
    ck_assert_int_eq(tq_rowquant_make(&q, half, none, NULL, 0, 1, &err), TQ_STATUS_OK);
    tq_rowquant_fine(tiled, 32, &q, INT32_MIN, fine);
    tq_rowquant_codes(tiled, 32, &q, -128, 127, 128, codes);
    for (int j = 0; j < 32; j++) {
        ck_assert_int_eq(fine[j], want[j % 8]);
        ck_assert_int_eq(codes[j], want[j % 8] + 128);
    }
    tq_rowquant_fine_ref(tiled, 32, &q, INT32_MIN, fine);
    for (int j = 0; j < 32; j++) ck_assert_int_eq(fine[j], want[j % 8]);
    tq_rowquant_free(&q);
    tq_addquant add = tq_addquant_make(0.5, 0.25); /* a/2 + b/4 */
    const int32_t a2[4] = {1, 0, 2, -1}, b2[4] = {0, 2, 2, -4}, sum2[4] = {0, 0, 2, -2};
    tq_add_fine(a2, b2, 4, &add, INT32_MIN, fine); /* 0.5, 0.5, 1.5, -1.5 */
    for (int j = 0; j < 4; j++) ck_assert_int_eq(fine[j], sum2[j]);
}
END_TEST

/* ---- data and models */

/* n generated images of side x side in 4 classes, grey, or three channels (the grey image, its
 * negative and a dimmer copy, so each channel has its own table). */
static void make_data(tq_dataset *d, int c, int side, int64_t n, uint64_t seed, float *mean,
                      float *std)
{
    tq_synthetic_config cfg = {.n = n, .side = side, .classes = 4, .signal = 40, .noise = 40, .seed = seed};
    tq_error err = {0};
    ck_assert_msg(tq_dataset_synthetic(d, &cfg, &err) == TQ_STATUS_OK, "%s", err.msg);
    if (c == 3) {
        const int64_t plane = (int64_t)side * side;
        uint8_t *rgb = malloc((size_t)(n * 3 * plane));
        ck_assert_ptr_nonnull(rgb);
        for (int64_t i = 0; i < n; i++)
            for (int64_t p = 0; p < plane; p++) {
                uint8_t g = d->images[i * plane + p];
                rgb[(i * 3 + 0) * plane + p] = g;
                rgb[(i * 3 + 1) * plane + p] = (uint8_t)(255 - g);
                rgb[(i * 3 + 2) * plane + p] = (uint8_t)(g / 2 + 60);
            }
        free(d->images);
        d->images = rgb;
        d->c = 3;
    }
    tq_dataset_stats(d, mean, std);
}

/* Batch norms made far from the identity: gammas of both signs, shifted statistics (written
 * through the graph view's pointers, which point into the model's own buffers). */
static void scramble_batchnorms(tq_model *m, tq_rng *rng)
{
    for (int i = 0; i < tq_model_layer_count(m); i++) {
        tq_layer_info l;
        tq_model_layer(m, i, &l);
        if (l.kind != TQ_LAYER_BATCHNORM) continue;
        float *gamma = (float *)l.gamma, *beta = (float *)l.beta;
        float *mean = (float *)l.running_mean, *var = (float *)l.running_var;
        for (int32_t c = 0; c < l.shape[0]; c++) {
            gamma[c] = (tq_rng_uniform(rng) - 0.3f) * 2.0f;
            beta[c] = (tq_rng_uniform(rng) - 0.5f) * 0.5f;
            mean[c] = (tq_rng_uniform(rng) - 0.5f) * 0.4f;
            var[c] = 0.5f + tq_rng_uniform(rng);
        }
    }
}

static void quantize(tq_model *m, const char *recipe, bool fold_bn, const tq_dataset *d,
                     const float *mean, const float *std)
{
    tq_recipe r;
    tq_error err = {0};
    ck_assert_msg(tq_recipe_make(recipe, NULL, NULL, &r, &err) == TQ_STATUS_OK, "%s", err.msg);
    r.fold_bn = fold_bn;
    ck_assert_msg(tq_ptq_run(m, &r, -1, d, mean, std, 2, 32, 7, &err) == TQ_STATUS_OK, "%s: %s",
                  recipe, err.msg);
}

/* ---- the engine against fake quant on every image of d */

/* Codes compared; one step apart, and more, where every earlier layer's codes of the image
 * agreed (more is a bug then; after an earlier difference, one step upstream can move a
 * code downstream by more, and those are only counted). */
typedef struct agreement {
    int64_t images, argmax_differ, codes, one_step, more, propagated;
} agreement;

/* Fake quant's logits (n, k) and input codes of every qlayer, from one forward of d. */
static void fake_quant(tq_model *m, const tq_dataset *d, const float *mean, const float *std,
                       float *logits, float **codes)
{
    tq_loader_config cfg = {.batch = (int32_t)d->n};
    memcpy(cfg.mean, mean, sizeof cfg.mean);
    memcpy(cfg.std, std, sizeof cfg.std);
    tq_error err = {0};
    tq_loader *l = tq_loader_new(d, &cfg, &err);
    ck_assert_msg(l, "%s", err.msg);
    tq_tensor *x = tq_tensor_new(4, (int32_t[]){(int32_t)d->n, d->c, d->h, d->w}, false);
    int32_t *labels = malloc((size_t)d->n * sizeof *labels);
    tq_loader_start_epoch(l, 0);
    ck_assert_int_eq(tq_loader_fill(l, 0, x->data, labels), (int32_t)d->n);
    tq_tape *t = tq_tape_new();
    tq_tape_set_recording(t, false);
    tq_tape_set_training(t, false);
    tq_tensor *z = tq_model_forward(m, t, x, NULL);
    ck_assert_msg(z, "%s", tq_tape_error(t)->msg);
    memcpy(logits, z->data, (size_t)z->numel * sizeof *logits);
    for (int q = 0; q < tq_model_qlayer_count(m); q++) {
        tq_qlayer *ql = tq_model_qlayer(m, q);
        tq_tensor *in = tq_model_qlayer_input(m, q);
        codes[q] = malloc((size_t)in->numel * sizeof **codes);
        if (ql->input_mul) { /* the layer's own op: x * mul over dimension 1 */
            tq_tensor *y = tq_mul_channel(t, in, ql->input_mul);
            in = y;
        }
        float scale;
        ck_assert_int_eq(tq_quantizer_codes(ql->input_q, in, codes[q], &scale, &err), TQ_STATUS_OK);
    }
    tq_tape_free(t);
    tq_tensor_free(x);
    free(labels);
    tq_loader_free(l);
}

static float max_abs_weight(tq_qlayer *l)
{
    float *wq = malloc((size_t)l->weight->numel * sizeof *wq), best = 0.0f;
    tq_error err = {0};
    ck_assert_int_eq(tq_quantizer_apply(l->weight_q, l->weight, wq, &err), TQ_STATUS_OK);
    for (int64_t i = 0; i < l->weight->numel; i++) best = fmaxf(best, fabsf(wq[i]));
    free(wq);
    return best;
}

static int32_t argmax(const float *z, int32_t k)
{
    int32_t b = 0;
    for (int32_t j = 1; j < k; j++)
        if (z[j] > z[b]) b = j;
    return b;
}

/* Runs both and checks: no code more than one step from fake quant's, and each image's
 * logits within what its differing last-layer input codes can explain (each moves a logit
 * by at most s_x * max |w|) plus float rounding. */
static agreement check_engine(tq_model *m, const tq_dataset *d, const float *mean,
                              const float *std, const char *what)
{
    tq_error err = {0};
    tq_engine *e = tq_engine_build(m, mean, std, &err);
    ck_assert_msg(e, "%s: %s", what, err.msg);
    const int nq = tq_model_qlayer_count(m);
    const int32_t k = tq_engine_classes(e);
    const int64_t n = d->n;
    float *zi = malloc((size_t)(n * k) * sizeof *zi), *zf = malloc((size_t)(n * k) * sizeof *zf);
    int16_t **ci = calloc((size_t)nq, sizeof *ci);
    float **cf = calloc((size_t)nq, sizeof *cf);
    for (int q = 0; q < nq; q++)
        ci[q] = malloc((size_t)(n * tq_engine_qlayer_input_numel(e, q)) * sizeof **ci);
    ck_assert_int_eq(tq_engine_run_traced(e, d->images, n, zi, ci, &err), TQ_STATUS_OK);
    fake_quant(m, d, mean, std, zf, cf);
    agreement a = {.images = n};
    const int last = nq - 1;
    const int64_t last_numel = tq_engine_qlayer_input_numel(e, last);
    tq_qlayer *lq = tq_model_qlayer(m, last);
    float sx, one = 0.0f;
    tq_tensor probe = {.data = &one, .ndim = 1, .shape = {1}, .numel = 1};
    ck_assert_int_eq(tq_quantizer_codes(lq->input_q, &probe, NULL, &sx, &err), TQ_STATUS_OK);
    const double step = (double)sx * max_abs_weight(lq);
    bool *clean = malloc((size_t)n * sizeof *clean);
    for (int64_t i = 0; i < n; i++) clean[i] = true;
    for (int q = 0; q < nq; q++) { /* qlayers in forward order */
        const int64_t numel = tq_engine_qlayer_input_numel(e, q);
        bool *dirty = calloc((size_t)n, sizeof *dirty);
        for (int64_t i = 0; i < n * numel; i++) {
            double diff = fabs((double)ci[q][i] - (double)cf[q][i]);
            const int64_t img = i / numel;
            dirty[img] |= diff > 0.0;
            if (!clean[img]) {
                a.propagated += diff > 1.0;
                continue;
            }
            a.one_step += diff == 1.0;
            a.more += diff > 1.0;
            if (diff > 1.0 && a.more == 1)
                fprintf(stderr, "%s: qlayer %d image %lld value %lld: engine %d, fake quant %g\n",
                        what, q, (long long)img, (long long)(i % numel), ci[q][i], (double)cf[q][i]);
        }
        for (int64_t i = 0; i < n; i++) clean[i] = clean[i] && !dirty[i];
        free(dirty);
        a.codes += n * numel;
    }
    free(clean);
    for (int64_t i = 0; i < n; i++) {
        int64_t differing = 0;
        for (int64_t j = 0; j < last_numel; j++)
            differing += ci[last][i * last_numel + j] != (int16_t)cf[last][i * last_numel + j];
        double zmax = 0.0;
        for (int32_t j = 0; j < k; j++) zmax = fmax(zmax, fabs(zf[i * k + j]));
        const double bound = (double)differing * step + 1e-4 * (1.0 + zmax);
        for (int32_t j = 0; j < k; j++)
            ck_assert_msg(fabs((double)zi[i * k + j] - (double)zf[i * k + j]) <= bound,
                          "%s: image %lld logit %d: engine %g, fake quant %g, %lld last-layer "
                          "codes differ", what, (long long)i, j, (double)zi[i * k + j],
                          (double)zf[i * k + j], (long long)differing);
        a.argmax_differ += argmax(zi + i * k, k) != argmax(zf + i * k, k);
    }
    for (int q = 0; q < nq; q++) {
        free(ci[q]);
        free(cf[q]);
    }
    free(ci);
    free(cf);
    free(zi);
    free(zf);
    tq_engine_free(e);
    return a;
}

static void assert_agrees(agreement a, const char *what)
{
    ck_assert_msg(a.more == 0, "%s: %lld codes more than one step from fake quant's", what,
                  (long long)a.more);
    ck_assert_msg(a.one_step <= a.codes / 1000, "%s: %lld of %lld codes one step apart", what,
                  (long long)a.one_step, (long long)a.codes);
    ck_assert_msg(a.argmax_differ <= a.images / 50, "%s: %lld of %lld images classified differently",
                  what, (long long)a.argmax_differ, (long long)a.images);
}

static tq_model *zoo(const char *name, const tq_dataset *d, uint64_t seed)
{
    tq_rng rng;
    tq_rng_seed(&rng, seed);
    tq_error err = {0};
    tq_model *m = tq_model_create(name, d->c, d->h, d->w, d->classes, &rng, &err);
    ck_assert_msg(m, "%s", err.msg);
    scramble_batchnorms(m, &rng);
    return m;
}

/* ---- every zoo model at each integer recipe */

static void check_zoo(const char *model, int c, int side, const char *const *recipes, int n_recipes,
                      bool fold_bn)
{
    tq_dataset d = {0};
    float mean[4] = {0}, std[4] = {0};
    make_data(&d, c, side, 70, 11, mean, std); /* 70: more than one chunk of 64 */
    for (int r = 0; r < n_recipes; r++) {
        tq_model *m = zoo(model, &d, 21 + (uint64_t)r);
        quantize(m, recipes[r], fold_bn, &d, mean, std);
        char what[96];
        snprintf(what, sizeof what, "%s %s%s", model, recipes[r], fold_bn ? " folded" : "");
        agreement a = check_engine(m, &d, mean, std, what);
        assert_agrees(a, what);
        tq_model_free(m);
    }
    tq_dataset_free(&d);
}

static const char *const integer_recipes[] = {"int8", "w4a8", "w4a4", "w2a2", "int8-sq"};

START_TEST(test_mlp_and_lenet5_agree_with_fake_quant)
{
    check_zoo("mlp", 1, 28, integer_recipes, 5, false);
    check_zoo("lenet5", 1, 28, integer_recipes, 5, false);
}
END_TEST

START_TEST(test_convnet_agrees_with_fake_quant)
{
    check_zoo("convnet", 3, 16, integer_recipes, 5, false);
    check_zoo("convnet", 3, 16, integer_recipes, 1, true);
}
END_TEST

START_TEST(test_resnet20_agrees_with_fake_quant)
{
    check_zoo("resnet20", 3, 16, integer_recipes, 5, false);
    check_zoo("resnet20", 3, 16, integer_recipes + 1, 1, true);
}
END_TEST

/* ---- hand-built models: the kinds and paths the zoo does not take */

static tq_model *finish(tq_model *m, const tq_dataset *d, uint64_t seed)
{
    tq_rng rng;
    tq_rng_seed(&rng, seed);
    tq_error err = {0};
    (void)d;
    ck_assert_msg(tq_model_finish(m, &rng, &err) == TQ_STATUS_OK, "%s", err.msg);
    scramble_batchnorms(m, &rng);
    return m;
}

/* Conv -> batch norm with negative gammas folded into the requantization (multipliers of
 * both signs), with and without a ReLU after it: signed and unsigned codes downstream. */
START_TEST(test_batchnorm_with_negative_gamma)
{
    tq_dataset d = {0};
    float mean[4], std[4];
    make_data(&d, 3, 8, 70, 5, mean, std);
    for (int relu = 0; relu < 2; relu++) {
        tq_error err = {0};
        tq_model *m = tq_model_new("bnneg", 3, 8, 8, &err);
        tq_model_conv2d(m, "conv", 6, 3, 1, 1, false);
        int bn = tq_model_batchnorm(m, "bn");
        if (relu) tq_model_relu(m, "relu");
        tq_model_flatten(m, "flatten");
        tq_model_linear(m, "fc", 4, true);
        finish(m, &d, 3);
        tq_layer_info l;
        tq_model_layer(m, bn, &l);
        float *gamma = (float *)l.gamma;
        gamma[0] = -1.5f; /* at least two negative, two positive */
        gamma[1] = -0.25f;
        gamma[2] = 0.8f;
        gamma[3] = 2.0f;
        quantize(m, "int8", false, &d, mean, std);
        agreement a = check_engine(m, &d, mean, std, relu ? "bn relu" : "bn");
        assert_agrees(a, relu ? "bn relu" : "bn");
        /* the batch norm ran inside the conv's requantization */
        tq_engine *e = tq_engine_build(m, mean, std, &err);
        ck_assert_ptr_nonnull(e);
        char buf[4096] = {0};
        FILE *f = fmemopen(buf, sizeof buf - 1, "w");
        tq_engine_describe(e, f);
        fclose(f);
        ck_assert_msg(strstr(buf, "batch norm in the requantization"), "%s", buf);
        ck_assert_msg(relu || strstr(buf, "int8 codes (6,8,8)"), "%s", buf); /* signed: no ReLU */
        int negative = 0;
        for (int s = 0; s < e->n_steps; s++)
            if (e->steps[s].kind == TQ_STEP_QLAYER && e->steps[s].merged_bn)
                for (int64_t o = 0; o < e->steps[s].w.n; o++) negative += e->steps[s].rq.mult[o] < 0;
        ck_assert_int_eq(negative, 2);
        tq_engine_free(e);
        tq_model_free(m);
    }
    tq_dataset_free(&d);
}
END_TEST

/* Average pool on signed values, a batch norm that no conv absorbs (on fine integers), max
 * pool on them, a residual add of differently scaled sides, dropout, and a second Linear
 * reading codes made by the first. */
START_TEST(test_pools_standalone_batchnorm_and_add)
{
    tq_dataset d = {0};
    float mean[4], std[4];
    make_data(&d, 3, 8, 70, 9, mean, std);
    tq_error err = {0};
    tq_model *m = tq_model_new("odd", 3, 8, 8, &err);
    int conv1 = tq_model_conv2d(m, "conv1", 8, 3, 1, 1, true);
    tq_model_avgpool2d(m, "avg", 2, 2); /* of the conv's signed output */
    tq_model_batchnorm(m, "bn");
    tq_model_relu(m, "relu1");
    int pool = tq_model_maxpool2d(m, "max", 2, 2); /* (8,2,2), fine */
    tq_model_from(m, conv1);
    tq_model_relu(m, "relu0");
    tq_model_conv2d(m, "conv2", 8, 3, 4, 1, true); /* (8,2,2) from the ReLU's codes */
    int side = tq_model_batchnorm(m, "bn2");
    tq_model_add(m, "add", pool, side);
    tq_model_relu(m, "relu2");
    tq_model_flatten(m, "flatten");
    tq_model_dropout(m, "drop", 0.5f);
    tq_model_linear(m, "fc1", 16, true);
    tq_model_linear(m, "fc2", 4, true);
    finish(m, &d, 5);
    const char *recipes[] = {"int8", "w4a4"};
    for (int r = 0; r < 2; r++) {
        tq_detach_quantizers(m);
        quantize(m, recipes[r], false, &d, mean, std);
        agreement a = check_engine(m, &d, mean, std, recipes[r]);
        assert_agrees(a, recipes[r]);
    }
    tq_model_free(m);
    tq_dataset_free(&d);
}
END_TEST

/* A model whose input no quantizer reads directly: the table gives fine integers, which an
 * average pool divides and a conversion turns into the Linear's codes. */
START_TEST(test_input_read_by_a_pool)
{
    tq_dataset d = {0};
    float mean[4], std[4];
    make_data(&d, 3, 8, 70, 4, mean, std);
    tq_error err = {0};
    tq_model *m = tq_model_new("poolfirst", 3, 8, 8, &err);
    tq_model_avgpool2d(m, "avg", 2, 2);
    tq_model_flatten(m, "flatten");
    tq_model_linear(m, "fc1", 12, true);
    tq_model_relu(m, "relu");
    tq_model_linear(m, "fc2", 4, true);
    finish(m, &d, 8);
    quantize(m, "w4a8", false, &d, mean, std);
    assert_agrees(check_engine(m, &d, mean, std, "pool first"), "pool first");
    tq_engine *e = tq_engine_build(m, mean, std, &err);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->steps[0].kind, TQ_STEP_INPUT);
    ck_assert_int_eq(e->vals[e->steps[0].out].domain, TQ_VAL_FINE);
    tq_engine_free(e);
    tq_model_free(m);
    tq_dataset_free(&d);
}
END_TEST

/* Images are independent and sums are integers: 1 and 2 threads give the same bits. */
START_TEST(test_same_bits_for_any_thread_count)
{
    tq_dataset d = {0};
    float mean[4], std[4];
    make_data(&d, 3, 16, 70, 13, mean, std);
    tq_model *m = zoo("resnet20", &d, 2);
    quantize(m, "w4a8", false, &d, mean, std);
    tq_error err = {0};
    tq_engine *e = tq_engine_build(m, mean, std, &err);
    ck_assert_ptr_nonnull(e);
    float *z1 = malloc(70 * 4 * sizeof *z1), *z2 = malloc(70 * 4 * sizeof *z2);
    int threads = tq_get_threads();
    tq_set_threads(1);
    ck_assert_int_eq(tq_engine_run(e, d.images, 70, z1, &err), TQ_STATUS_OK);
    tq_set_threads(2);
    ck_assert_int_eq(tq_engine_run(e, d.images, 70, z2, &err), TQ_STATUS_OK);
    tq_set_threads(threads);
    ck_assert_mem_eq(z1, z2, 70 * 4 * sizeof *z1);
    /* and one image alone gives what it gave in the batch */
    ck_assert_int_eq(tq_engine_run(e, d.images + 5 * 3 * 16 * 16, 1, z2, &err), TQ_STATUS_OK);
    ck_assert_mem_eq(z1 + 5 * 4, z2, 4 * sizeof *z1);
    free(z1);
    free(z2);
    tq_engine_free(e);
    tq_model_free(m);
    tq_dataset_free(&d);
}
END_TEST

/* The two ways a product runs, the direct convolutions on 16-bit codes (tq_qconv, AVX2 or
 * its plain C form) and im2col with tq_qgemm, give the same logits and codes to the bit:
 * every zoo model that has convolutions, at int8, w4a8 and w2a2, 70 images (two chunks). */
START_TEST(test_direct_path_equals_im2col)
{
    const struct {
        const char *model;
        int c, side;
    } zoos[] = {{"mlp", 1, 28}, {"lenet5", 1, 28}, {"convnet", 3, 16}, {"resnet20", 3, 16}};
    const char *const recipes[] = {"int8", "w4a8", "w2a2"};
    for (size_t z = 0; z < sizeof zoos / sizeof zoos[0]; z++) {
        tq_dataset d = {0};
        float mean[4] = {0}, std[4] = {0};
        make_data(&d, zoos[z].c, zoos[z].side, 70, 17, mean, std);
        for (int r = 0; r < 3; r++) {
            tq_model *m = zoo(zoos[z].model, &d, 41 + (uint64_t)r);
            quantize(m, recipes[r], false, &d, mean, std);
            tq_error err = {0};
            tq_engine *e = tq_engine_build(m, mean, std, &err);
            ck_assert_msg(e, "%s", err.msg);
            const int nq = tq_engine_qlayer_count(e), k = tq_engine_classes(e);
            float *z1 = malloc((size_t)(70 * k) * sizeof *z1), *z2 = malloc((size_t)(70 * k) * sizeof *z2);
            int16_t **c1 = calloc((size_t)nq, sizeof *c1), **c2 = calloc((size_t)nq, sizeof *c2);
            ck_assert(z1 && z2 && c1 && c2);
            for (int q = 0; q < nq; q++) {
                const size_t bytes = (size_t)(70 * tq_engine_qlayer_input_numel(e, q)) * sizeof **c1;
                c1[q] = malloc(bytes);
                c2[q] = malloc(bytes);
                ck_assert(c1[q] && c2[q]);
            }
            e->direct = true;
            ck_assert_int_eq(tq_engine_run_traced(e, d.images, 70, z1, c1, &err), TQ_STATUS_OK);
            e->direct = false;
            ck_assert_int_eq(tq_engine_run_traced(e, d.images, 70, z2, c2, &err), TQ_STATUS_OK);
            for (int q = 0; q < nq; q++)
                ck_assert_msg(memcmp(c1[q], c2[q], (size_t)(70 * tq_engine_qlayer_input_numel(e, q)) *
                                                       sizeof **c1) == 0,
                              "%s %s: the codes into qlayer %d differ", zoos[z].model, recipes[r], q);
            ck_assert_msg(memcmp(z1, z2, (size_t)(70 * k) * sizeof *z1) == 0, "%s %s: logits differ",
                          zoos[z].model, recipes[r]);
            for (int q = 0; q < nq; q++) {
                free(c1[q]);
                free(c2[q]);
            }
            free(c1);
            free(c2);
            free(z1);
            free(z2);
            tq_engine_free(e);
            tq_model_free(m);
        }
        tq_dataset_free(&d);
    }
}
END_TEST

/* ---- refusals: one line naming the layer and what the engine needs */

static void expect_refusal(const char *recipe, int keep, const char *want)
{
    tq_dataset d = {0};
    float mean[4], std[4];
    make_data(&d, 1, 28, 64, 1, mean, std);
    tq_model *m = zoo("lenet5", &d, 1);
    if (recipe) {
        tq_recipe r;
        tq_error err = {0};
        ck_assert_int_eq(tq_recipe_make(recipe, NULL, NULL, &r, &err), TQ_STATUS_OK);
        if (keep >= 0) r.keep = (tq_keep_kind)keep;
        ck_assert_msg(tq_ptq_run(m, &r, -1, &d, mean, std, 1, 32, 1, &err) == TQ_STATUS_OK, "%s", err.msg);
    }
    tq_error err = {0};
    ck_assert_ptr_null(tq_engine_build(m, mean, std, &err));
    ck_assert_int_eq(err.status, TQ_STATUS_ARG);
    ck_assert_msg(strstr(err.msg, want), "%s: '%s' lacks '%s'", recipe ? recipe : "float", err.msg, want);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    tq_model_free(m);
    tq_dataset_free(&d);
}

START_TEST(test_refusals_name_the_layer)
{
    expect_refusal(NULL, -1, "engine: layer conv1 is float");
    expect_refusal("w4a16", -1, "engine: layer conv1 has no input quantizer (a weight-only recipe");
    expect_refusal("fp8", -1, "engine: layer conv1: weights are e4m3, a floating-point format");
    expect_refusal("nvfp4", -1, "engine: layer conv1: weights are nvfp4, a block-scaled format");
    expect_refusal("mxfp8", -1, "engine: layer conv1: weights are mxfp8, a block-scaled format");
    expect_refusal("int8", TQ_KEEP_FLOAT, "engine: layer conv1 is float");
}
END_TEST

static Suite *engine_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("engine");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_pack_by_hand);
    tcase_add_test(tc, test_affine_against_double);
    tcase_add_test(tc, test_rowquant_paths_agree);
    tcase_add_test(tc, test_mlp_and_lenet5_agree_with_fake_quant);
    tcase_add_test(tc, test_convnet_agrees_with_fake_quant);
    tcase_add_test(tc, test_resnet20_agrees_with_fake_quant);
    tcase_add_test(tc, test_batchnorm_with_negative_gamma);
    tcase_add_test(tc, test_pools_standalone_batchnorm_and_add);
    tcase_add_test(tc, test_input_read_by_a_pool);
    tcase_add_test(tc, test_same_bits_for_any_thread_count);
    tcase_add_test(tc, test_direct_path_equals_im2col);
    tcase_add_test(tc, test_refusals_name_the_layer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tq_test_run(engine_suite()); }
