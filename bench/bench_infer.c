/* Inference images/s of one quantized checkpoint at batch 256, on random pixels, three ways:
 * the float model (quantizers switched off, tinyqat's float kernels), fake quant (the
 * simulated model), and the integer engine (tq_engine_run, from uint8 pixels to logits).
 * For bench/int_speed.sh.
 * Usage: bench_infer CHECKPOINT THREADS [SECONDS [cpu]]
 *          ->  NAME THREADS float_ips fakequant_ips int_ips backend
 * With `cpu`, images per second of the process's CPU time rather than of the wall clock: on a
 * machine that other work keeps busy, what one thread's rates would be alone (at 2 threads
 * it counts both threads' time, so it shows the work, not the speed-up).
 * The float and fake-quant rates start from normalised float images (the loader's work is
 * left out); the engine's from the pixels, its input table included. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_clock.h"
#include "engine.h"
#include "train.h"

#define BATCH 256

static bool g_cpu; /* rates per CPU second */

static double clock_now(void)
{
    if (!g_cpu) return now();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void set_quantizers(tq_model *m, tq_qstate state)
{
    for (int i = 0; i < tq_model_qlayer_count(m); i++) {
        tq_qlayer *l = tq_model_qlayer(m, i);
        if (l->weight_q) tq_quantizer_set_state(l->weight_q, state);
        if (l->input_q) tq_quantizer_set_state(l->input_q, state);
    }
}

/* Images/s of tq_model_forward in inference, after two warm-up batches. */
static double model_rate(tq_model *m, tq_tape *tape, tq_tensor *x, double seconds)
{
    long images = 0;
    double t0 = now(), c0 = clock_now();
    for (int it = -2; it <= 0 || now() - t0 < seconds; it++) {
        if (it == 0) t0 = now(), c0 = clock_now();
        tq_tape_reset(tape);
        tq_tape_set_recording(tape, false);
        tq_tape_set_training(tape, false);
        if (!tq_model_forward(m, tape, x, NULL)) {
            fprintf(stderr, "bench_infer: %s\n", tq_tape_error(tape)->msg);
            exit(1);
        }
        if (it >= 0) images += BATCH;
    }
    return (double)images / (clock_now() - c0);
}

static double engine_rate(tq_engine *e, const uint8_t *pixels, float *logits, double seconds)
{
    tq_error err = {0};
    long images = 0;
    double t0 = now(), c0 = clock_now();
    for (int it = -2; it <= 0 || now() - t0 < seconds; it++) {
        if (it == 0) t0 = now(), c0 = clock_now();
        if (tq_engine_run(e, pixels, BATCH, logits, &err)) {
            fprintf(stderr, "bench_infer: %s\n", err.msg);
            exit(1);
        }
        if (it >= 0) images += BATCH;
    }
    return (double)images / (clock_now() - c0);
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 5 || (argc == 5 && strcmp(argv[4], "cpu") != 0)) {
        fprintf(stderr, "usage: bench_infer CHECKPOINT THREADS [SECONDS [cpu]]\n");
        return 2;
    }
    g_cpu = argc == 5;
    int threads = atoi(argv[2]);
    double seconds = argc > 3 ? atof(argv[3]) : 3.0;
    tq_set_threads(threads);
    tq_error err = {0};
    tq_run run = {0};
    if (tq_run_load(argv[1], &run, &err)) {
        fprintf(stderr, "bench_infer: %s\n", err.msg);
        return 1;
    }
    int32_t c, h, w, classes;
    tq_model_input(run.model, &c, &h, &w, &classes);
    int64_t per = (int64_t)c * h * w;
    uint8_t *pixels = malloc((size_t)(BATCH * per));
    float *logits = malloc((size_t)BATCH * (size_t)classes * sizeof *logits);
    tq_tensor *x = tq_tensor_new(4, (int32_t[]){BATCH, c, h, w}, false);
    tq_tape *tape = tq_tape_new();
    if (!pixels || !logits || !x || !tape) {
        fprintf(stderr, "bench_infer: out of memory\n");
        return 1;
    }
    tq_rng rng;
    tq_rng_seed(&rng, 1);
    for (int64_t i = 0; i < BATCH * per; i++) {
        pixels[i] = (uint8_t)tq_rng_below(&rng, 256);
        int64_t ch = i / (h * w) % c;
        x->data[i] = ((float)pixels[i] / 255.0f - run.mean[ch]) / run.std[ch];
    }
    tq_engine *e = tq_engine_build(run.model, run.mean, run.std, &err);
    if (!e) {
        fprintf(stderr, "bench_infer: %s\n", err.msg);
        return 1;
    }
    double fq = model_rate(run.model, tape, x, seconds);
    set_quantizers(run.model, TQ_QSTATE_OFF);
    double fl = model_rate(run.model, tape, x, seconds);
    double in = engine_rate(e, pixels, logits, seconds);
    printf("%s %d %.0f %.0f %.0f %s\n", tq_model_name(run.model), threads, fl, fq, in,
           tq_engine_backend());
    tq_engine_free(e);
    tq_tape_free(tape);
    tq_tensor_free(x);
    free(logits);
    free(pixels);
    tq_run_free(&run);
    return 0;
}
