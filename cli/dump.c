/* `tinyqat eval --dump FILE`: the test images, labels, tinyqat's logits and (on request) its
 * codes at every quantized layer's input, for comparing with another runtime (the ONNX Runtime
 * harness in tests/ort). Layout, all little-endian:
 *   "TQDUMP1\0", u32 n, c, h, w, classes, n_quant, n_coded, f32 logit_step,
 *   n_quant x {u32 name_len, name, f32 qmin, f32 qmax, f32 scale (0 unless per tensor),
 *              u32 per_sample},
 *   n x {f32 image[c*h*w] (pixel / 255.0f), i32 label, f32 logits[classes],
 *        for the first n_coded images only: for each quantizer f32 codes[per_sample]}.
 * (Codes of every image of a ResNet take far more room than the images: hence n_coded.)
 * logit_step = g * s_x * max_o sum_j |wq_oj| for the last Linear/Conv2d (s_x its input scale,
 * wq its fake-quantized weights, g the widest spacing of the input format's grid: 1 for
 * integers, 32 for E4M3, 8192 for E5M2): how far one quantization step on every one of its
 * inputs can move a logit; 0 when that layer's input is not quantized. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct dump_q {
    int qi;
    int64_t per_sample;
} dump_q;

static void put_u32(FILE *f, uint32_t v) { fwrite(&v, 4, 1, f); } /* x86-64/ARM: little-endian */
static void put_f32(FILE *f, float v) { fwrite(&v, 4, 1, f); }

/* s_x * max_o sum_j |wq_oj| of the last quantized layer (see above). */
static float logit_step(tq_model *m, tq_error *err)
{
    int qi = tq_model_qlayer_count(m) - 1;
    tq_qlayer *q = qi >= 0 ? tq_model_qlayer(m, qi) : NULL;
    if (!q || !q->input_q) return 0.0f;
    const tq_tensor *w = q->weight;
    float *wq = malloc((size_t)w->numel * sizeof *wq);
    float s_x = 0.0f;
    int32_t shape[TQ_MAX_DIMS] = {1, w->shape[1]}; /* a probe of the layer's input width */
    tq_tensor *probe = NULL;
    if (!wq || (q->weight_q ? tq_quantizer_apply(q->weight_q, w, wq, err) != TQ_STATUS_OK
                            : (memcpy(wq, w->data, (size_t)w->numel * sizeof *wq), false))) {
        free(wq);
        return NAN;
    }
    if (!w->shape[0] || tq_quantizer_amax_count(q->input_q) != 1) {
        free(wq);
        return 0.0f; /* per-channel inputs: no single step */
    }
    probe = tq_tensor_new(2, shape, false);
    if (!probe || tq_quantizer_codes(q->input_q, probe, NULL, &s_x, err)) s_x = NAN;
    tq_tensor_free(probe);
    int64_t out = w->shape[0], per_out = w->numel / out;
    double worst = 0.0;
    for (int64_t o = 0; o < out; o++) {
        double sum = 0.0;
        for (int64_t j = 0; j < per_out; j++) sum += fabs(wq[o * per_out + j]);
        if (sum > worst) worst = sum;
    }
    free(wq);
    tq_grid_entry g[256];
    int n = tq_format_grid(tq_quantizer_format(q->input_q), g, 256);
    float spacing = n >= 2 ? g[n - 1].value - g[n - 2].value : 1.0f;
    return (float)(s_x * spacing * worst);
}

/* Codes of qlayer qi's input in the last forward: input_mul applied as tq_mul_channel does,
 * then the quantizer's own division and rounding. */
static tq_status layer_codes(tq_model *m, int qi, float *codes, tq_error *err)
{
    tq_qlayer *q = tq_model_qlayer(m, qi);
    tq_tensor *x = tq_model_qlayer_input(m, qi);
    tq_tensor *scaled = NULL;
    if (q->input_mul) {
        scaled = tq_tensor_new(x->ndim, x->shape, false);
        if (!scaled) return tq_fail(err, TQ_STATUS_NOMEM, "dump: out of memory");
        int64_t n = x->shape[0], c = x->shape[1], inner = x->numel / (n * c);
        for (int64_t i = 0; i < x->numel; i++)
            scaled->data[i] = x->data[i] * q->input_mul->data[(i / inner) % c];
        x = scaled;
    }
    int64_t ns = tq_quantizer_scale_count(q->input_q, x, err);
    float *scales = ns > 0 ? malloc((size_t)ns * sizeof *scales) : NULL;
    tq_status st = scales ? tq_quantizer_codes(q->input_q, x, codes, scales, err)
                          : (ns < 0 ? err->status : tq_fail(err, TQ_STATUS_NOMEM, "dump: out of memory"));
    free(scales);
    tq_tensor_free(scaled);
    return st;
}

tq_status tq_eval_dump(tq_run *run, const tq_dataset *d, int64_t max_images, int64_t coded,
                       const char *path, tq_error *err)
{
    tq_model *m = run->model;
    int64_t n = max_images > 0 && max_images < d->n ? max_images : d->n;
    if (n <= 0) return tq_fail(err, TQ_STATUS_ARG, "dump: the test split has no images");
    int nq = 0, nql = tq_model_qlayer_count(m);
    dump_q *qs = calloc((size_t)nql + 1, sizeof *qs);
    if (!qs) return tq_fail(err, TQ_STATUS_NOMEM, "dump: out of memory");
    coded = coded < n ? coded : n;
    for (int qi = 0; coded > 0 && qi < nql; qi++)
        if (tq_model_qlayer(m, qi)->input_q) qs[nq++].qi = qi;
    float step = logit_step(m, err);
    if (isnan(step)) {
        free(qs);
        return err->status ? err->status : tq_fail(err, TQ_STATUS_NUMERIC, "dump: no logit step");
    }
    int batch = 64;
    tq_dataset part = *d;
    part.n = n;
    tq_loader_config cfg = {.batch = batch};
    memcpy(cfg.mean, run->mean, sizeof cfg.mean);
    memcpy(cfg.std, run->std, sizeof cfg.std);
    tq_loader *loader = tq_loader_new(&part, &cfg, err);
    tq_tape *tape = tq_tape_new();
    int64_t per_image = (int64_t)d->c * d->h * d->w;
    float *x = malloc((size_t)(batch * per_image) * sizeof *x);
    int32_t *labels = malloc((size_t)batch * sizeof *labels);
    float **codes = calloc((size_t)nq + 1, sizeof *codes);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = loader && tape && x && labels && codes ? fopen(tmp, "wb") : NULL;
    tq_status st = TQ_STATUS_OK;
    if (!f) {
        st = err->status ? err->status
             : loader && tape && x && labels && codes
                 ? tq_fail(err, TQ_STATUS_IO, "%s: cannot create: %s", path, strerror(errno))
                 : tq_fail(err, TQ_STATUS_NOMEM, "dump: out of memory");
        n = 0;
    }
    int32_t classes = 0;
    tq_model_input(m, &(int32_t){0}, &(int32_t){0}, &(int32_t){0}, &classes);
    for (int64_t start = 0; start < n && st == TQ_STATUS_OK; start += batch) {
        int32_t got = tq_loader_fill(loader, start / batch, x, labels);
        int32_t shape[4] = {got, d->c, d->h, d->w};
        tq_tensor view = {.data = x};
        tq_shape_set(&view, 4, shape);
        tq_tape_reset(tape);
        tq_tape_set_recording(tape, false);
        tq_tape_set_training(tape, false);
        tq_tensor *logits = tq_model_forward(m, tape, &view, NULL);
        if (!logits) {
            st = tq_fail(err, tq_tape_error(tape)->status, "%s", tq_tape_error(tape)->msg);
            break;
        }
        if (start == 0) { /* the header, now that the per-sample code counts are known */
            fwrite("TQDUMP1", 1, 8, f);
            uint32_t head[7] = {(uint32_t)n, (uint32_t)d->c, (uint32_t)d->h, (uint32_t)d->w,
                                (uint32_t)classes, (uint32_t)nq, (uint32_t)coded};
            for (int i = 0; i < 7; i++) put_u32(f, head[i]);
            put_f32(f, step);
            for (int k = 0; k < nq; k++) {
                tq_qlayer *q = tq_model_qlayer(m, qs[k].qi);
                tq_tensor *in = tq_model_qlayer_input(m, qs[k].qi);
                tq_format fmt = tq_quantizer_format(q->input_q);
                qs[k].per_sample = in->numel / in->shape[0];
                codes[k] = malloc((size_t)(batch * qs[k].per_sample) * sizeof **codes);
                if (!codes[k]) st = tq_fail(err, TQ_STATUS_NOMEM, "dump: out of memory");
                put_u32(f, (uint32_t)strlen(q->name));
                fwrite(q->name, 1, strlen(q->name), f);
                put_f32(f, tq_format_min(fmt));
                put_f32(f, tq_format_max(fmt));
                float scale = 0.0f;
                if (tq_quantizer_scale_count(q->input_q, in, err) == 1 &&
                    tq_quantizer_codes(q->input_q, in, NULL, &scale, err))
                    st = err->status;
                put_f32(f, scale);
                put_u32(f, (uint32_t)qs[k].per_sample);
            }
        }
        for (int k = 0; k < nq && st == TQ_STATUS_OK && start < coded; k++)
            st = layer_codes(m, qs[k].qi, codes[k], err);
        for (int32_t i = 0; i < got && st == TQ_STATUS_OK; i++) {
            const uint8_t *px = d->images + (start + i) * per_image;
            for (int64_t j = 0; j < per_image; j++) put_f32(f, (float)px[j] / 255.0f);
            put_u32(f, (uint32_t)labels[i]);
            fwrite(logits->data + (int64_t)i * classes, 4, (size_t)classes, f);
            for (int k = 0; k < nq && start + i < coded; k++)
                fwrite(codes[k] + i * qs[k].per_sample, 4, (size_t)qs[k].per_sample, f);
        }
    }
    if (f) {
        bool bad = fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
        bad = fclose(f) != 0 || bad;
        if (st == TQ_STATUS_OK && bad)
            st = tq_fail(err, TQ_STATUS_IO, "%s: write failed: %s", path, strerror(errno));
        if (st == TQ_STATUS_OK && rename(tmp, path) != 0)
            st = tq_fail(err, TQ_STATUS_IO, "%s: cannot replace: %s", path, strerror(errno));
        if (st != TQ_STATUS_OK) unlink(tmp);
    }
    for (int k = 0; k < nq; k++) free(codes[k]);
    free(codes);
    free(x);
    free(labels);
    free(qs);
    tq_tape_free(tape);
    tq_loader_free(loader);
    return st;
}
