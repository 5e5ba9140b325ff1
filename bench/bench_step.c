/* Time of one training step (forward, backward, Adam; random inputs) of a zoo model, per
 * step: the median wall time and the median CPU time of the process (all threads), so that
 * two builds can be compared on a machine others load too, where the CPU time moves less.
 * bench/threads_cost.sh builds this file against another revision as well.
 * Usage: bench_step MODEL THREADS [STEPS [BATCH]]  ->  MODEL THREADS wall_ms cpu_ms */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_clock.h"
#include "layers.h"
#include "optim.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_step MODEL THREADS [STEPS [BATCH]]\n");
        return 2;
    }
    const char *name = argv[1];
    const int threads = atoi(argv[2]), steps = argc > 3 ? atoi(argv[3]) : 20,
              batch = argc > 4 ? atoi(argv[4]) : 64;
    if (threads < 1 || steps < 1 || batch < 1) {
        fprintf(stderr, "bench_step: THREADS, STEPS and BATCH must be positive\n");
        return 2;
    }
    tq_set_threads(threads);
    int32_t c = 1, h = 28, w = 28;
    if (strcmp(name, "resnet20") == 0 || strcmp(name, "convnet") == 0) c = 3, h = w = 32;
    tq_error err = {0};
    tq_rng rng;
    tq_rng_seed(&rng, 1);
    tq_model *m = tq_model_create(name, c, h, w, 10, &rng, &err);
    if (!m) {
        fprintf(stderr, "bench_step: %s\n", err.msg);
        return 1;
    }
    tq_optim_config cfg = tq_optim_defaults(TQ_OPTIM_ADAM);
    tq_optim *opt = tq_optim_new(&cfg, tq_model_param_count(m), &err);
    tq_tape *tape = tq_tape_new();
    tq_tensor *x = tq_tensor_new(4, (int32_t[]){batch, c, h, w}, false);
    int32_t *labels = malloc((size_t)batch * sizeof *labels);
    double *wall = malloc((size_t)steps * sizeof *wall), *cpu = malloc((size_t)steps * sizeof *cpu);
    if (!opt || !tape || !x || !labels || !wall || !cpu) {
        fprintf(stderr, "bench_step: out of memory\n");
        return 1;
    }
    for (int i = 0; i < batch; i++) labels[i] = (int32_t)tq_rng_below(&rng, 10);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = tq_rng_normal(&rng);
    for (int it = -2; it < steps; it++) { /* two warm-up steps: the arena settles */
        const double w0 = now(), c0 = cpu_now();
        tq_tape_reset(tape);
        tq_tensor *logits = tq_model_forward(m, tape, x, &rng);
        tq_tensor *loss = tq_softmax_cross_entropy(tape, logits, labels);
        tq_model_zero_grad(m);
        if (!loss || tq_backward(tape, loss) != TQ_STATUS_OK) {
            fprintf(stderr, "bench_step: %s\n", tq_tape_error(tape)->msg);
            return 1;
        }
        tq_optim_step(opt, tq_model_params(m), tq_model_grads(m), 1e-3f);
        if (it >= 0) {
            wall[it] = now() - w0;
            cpu[it] = cpu_now() - c0;
        }
    }
    printf("%s %d %.3f %.3f\n", name, threads, 1e3 * median(wall, steps), 1e3 * median(cpu, steps));
    free(wall);
    free(cpu);
    free(labels);
    tq_tensor_free(x);
    tq_tape_free(tape);
    tq_optim_free(opt);
    tq_model_free(m);
    return 0;
}
