/* Training (batch 64, Adam) and inference (batch 256) images/s of a zoo model on random
 * inputs, as bench/torch_ref.py measures PyTorch; also sgemm GFLOP/s for reference.
 * Usage: bench_speed MODEL THREADS [SECONDS]  ->  MODEL THREADS train_ips infer_ips
 *        bench_speed --sgemm THREADS         ->  sgemm GFLOP/s on a 1024^3 product */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "layers.h"
#include "optim.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double sgemm_gflops(void)
{
    int n = 1024;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++) a[i] = b[i] = 1.0f / (float)(1 + i % 7);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    int reps = 0;
    double t0 = now();
    while (now() - t0 < 2.0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        reps++;
    }
    double g = 2.0 * n * n * (double)n * reps / (now() - t0) / 1e9;
    free(a);
    free(b);
    free(c);
    return g;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "--sgemm") == 0) {
        tq_set_threads(atoi(argv[2]));
        printf("sgemm %s %.1f\n", argv[2], sgemm_gflops());
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
        for (int it = -1; it < 0 || now() - t0 < seconds; it++) {
            if (it == 0) t0 = now(); /* the first iteration is a warm-up */
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
    printf("%s %d %.0f %.0f\n", name, threads, rates[0], rates[1]);
    tq_tensor_free(xt);
    tq_tensor_free(xi);
    tq_tape_free(tape);
    tq_optim_free(opt);
    tq_model_free(m);
    return 0;
}
