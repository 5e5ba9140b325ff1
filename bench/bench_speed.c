/* Training (batch 64, Adam) and inference (batch 256) images/s of a zoo model on random
 * inputs, as bench/torch_ref.py measures PyTorch, with the effective GFLOP/s of training;
 * also the GFLOP/s of tinyqat's sgemm (tq_sgemm: AVX-512 where the CPU has it, else OpenBLAS;
 * TQ_GEMM=openblas forces OpenBLAS) for reference.
 * Usage: bench_speed MODEL THREADS [SECONDS]
 *          ->  MODEL THREADS train_ips infer_ips train_gflops infer_gflops
 *        bench_speed --sgemm THREADS  ->  sgemm THREADS tq_gflops openblas_gflops backend
 *                                         (GFLOP/s of a 1024^3 product)
 * The GFLOP/s count the convolutions and linear layers only: forward 2*MACs; training adds
 * twice that for backward (weight and input gradients), minus the first layer's input gradient. */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_clock.h"
#include "gemm.h"
#include "layers.h"
#include "optim.h"

static void cblas_product(int n, const float *a, const float *b, float *c)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
}

static void tq_product(int n, const float *a, const float *b, float *c)
{
    tq_sgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n);
}

/* GFLOP/s of a 1024^3 product, for 2 s after one warm-up product. */
static double sgemm_gflops(void (*product)(int, const float *, const float *, float *))
{
    int n = 1024;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++) a[i] = b[i] = 1.0f / (float)(1 + i % 7);
    product(n, a, b, c);
    int reps = 0;
    double t0 = now();
    while (now() - t0 < 2.0) {
        product(n, a, b, c);
        reps++;
    }
    double g = 2.0 * n * n * (double)n * reps / (now() - t0) / 1e9;
    free(a);
    free(b);
    free(c);
    return g;
}

/* Multiply-adds per image of the convolutions and linear layers, read from the model's
 * description (its output shapes) and its layers' weights; *first gets the first layer's. */
static double macs_per_image(tq_model *m, double *first)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return 0.0;
    tq_model_describe(m, f);
    fclose(f);
    double total = 0.0;
    *first = 0.0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *tok[16];
        int n = 0;
        for (char *p = line; n < 16;) {
            while (*p == ' ') p++;
            if (!*p) break;
            tok[n++] = p;
            while (*p && *p != ' ') p++;
            if (*p) *p++ = '\0';
        }
        if (n < 4 || (strcmp(tok[1], "conv2d") != 0 && strcmp(tok[1], "linear") != 0)) continue;
        double out = 1.0; /* "16x32x32" or "120" */
        for (char *p = tok[n - 2]; *p; p++) {
            out *= strtod(p, &p);
            if (*p != 'x') break;
        }
        for (int i = 0; i < tq_model_qlayer_count(m); i++) {
            const tq_qlayer *q = tq_model_qlayer(m, i);
            if (strcmp(q->name, tok[0]) != 0) continue;
            double macs = out * (double)q->weight->numel / q->weight->shape[0];
            if (total == 0.0) *first = macs;
            total += macs;
        }
    }
    free(text);
    return total;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "--sgemm") == 0) {
        tq_set_threads(atoi(argv[2]));
        printf("sgemm %s %.1f %.1f %s\n", argv[2], sgemm_gflops(tq_product),
               sgemm_gflops(cblas_product), tq_sgemm_backend());
        return 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: bench_speed MODEL THREADS [SECONDS] | --sgemm THREADS\n");
        return 2;
    }
    const char *name = argv[1];
    int threads = atoi(argv[2]);
    double seconds = argc > 3 ? atof(argv[3]) : 3.0;
    tq_set_threads(threads);
    int32_t c = 1, h = 28, w = 28;
    if (strcmp(name, "resnet20") == 0 || strcmp(name, "convnet") == 0) c = 3, h = w = 32;
    tq_error err = {0};
    tq_rng rng;
    tq_rng_seed(&rng, 1);
    tq_model *m = tq_model_create(name, c, h, w, 10, &rng, &err);
    if (!m) {
        fprintf(stderr, "bench_speed: %s\n", err.msg);
        return 1;
    }
    tq_optim_config cfg = tq_optim_defaults(TQ_OPTIM_ADAM);
    tq_optim *opt = tq_optim_new(&cfg, tq_model_param_count(m), &err);
    tq_tape *tape = tq_tape_new();
    tq_tensor *xt = tq_tensor_new(4, (int32_t[]){64, c, h, w}, false);
    tq_tensor *xi = tq_tensor_new(4, (int32_t[]){256, c, h, w}, false);
    int32_t labels[64];
    for (int i = 0; i < 64; i++) labels[i] = (int32_t)tq_rng_below(&rng, 10);
    for (int64_t i = 0; i < xt->numel; i++) xt->data[i] = tq_rng_normal(&rng);
    for (int64_t i = 0; i < xi->numel; i++) xi->data[i] = tq_rng_normal(&rng);

    double rates[2];
    for (int phase = 0; phase < 2; phase++) {
        bool train = phase == 0;
        int batch = train ? 64 : 256;
        long images = 0;
        double t0 = now();
        /* two warm-up iterations: the tape's arena settles into one chunk after the first */
        for (int it = -2; it <= 0 || now() - t0 < seconds; it++) {
            if (it == 0) t0 = now(); /* timing starts after the warm-ups */
            tq_tape_reset(tape);
            tq_tape_set_recording(tape, train);
            tq_tape_set_training(tape, train);
            tq_tensor *logits = tq_model_forward(m, tape, train ? xt : xi, &rng);
            if (train) {
                tq_tensor *loss = tq_softmax_cross_entropy(tape, logits, labels);
                tq_model_zero_grad(m);
                if (tq_backward(tape, loss) != TQ_STATUS_OK) {
                    fprintf(stderr, "bench_speed: %s\n", tq_tape_error(tape)->msg);
                    return 1;
                }
                tq_optim_step(opt, tq_model_params(m), tq_model_grads(m), 1e-3f);
            } else if (!logits) {
                fprintf(stderr, "bench_speed: %s\n", tq_tape_error(tape)->msg);
                return 1;
            }
            if (it >= 0) images += batch;
        }
        rates[phase] = (double)images / (now() - t0);
    }
    double first = 0.0, macs = macs_per_image(m, &first);
    double train_flops = 6.0 * macs - 2.0 * first;
    printf("%s %d %.0f %.0f %.2f %.2f\n", name, threads, rates[0], rates[1],
           rates[0] * train_flops / 1e9, rates[1] * 2.0 * macs / 1e9);
    tq_tensor_free(xt);
    tq_tensor_free(xi);
    tq_tape_free(tape);
    tq_optim_free(opt);
    tq_model_free(m);
    return 0;
}
