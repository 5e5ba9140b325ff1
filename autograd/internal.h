/* Private helpers shared by the op files of autograd/ (not installed). */
#ifndef TINYQAT_AUTOGRAD_INTERNAL_H
#define TINYQAT_AUTOGRAD_INTERNAL_H

#include "autograd.h"

/* Returns NULL from the op when an input is missing: the error that produced the NULL is
 * already on the tape; a caller's NULL gets a message naming the op. */
#define TQ_REQUIRE_INPUTS(t, opname, ...)                                                  \
    do {                                                                               \
        tq_tensor *in_[] = {__VA_ARGS__};                                              \
        for (size_t i_ = 0; i_ < sizeof in_ / sizeof in_[0]; i_++)                     \
            if (!in_[i_]) {                                                            \
                if (tq_tape_error(t)->status == TQ_STATUS_OK)                          \
                    tq_tape_fail(t, TQ_STATUS_ARG, "%s: input %zu is NULL", opname, i_); \
                return NULL;                                                           \
            }                                                                          \
    } while (0)

/* "add: shapes (2,3) and (3,2) differ" and friends. */
tq_tensor *tq_fail_shapes(tq_tape *t, const char *op, const char *what, const tq_tensor *a,
                          const tq_tensor *b);
tq_tensor *tq_fail_shape(tq_tape *t, const char *op, const char *expected, const tq_tensor *x);

/* Output for an op whose inputs are in[]: gradient iff one is needed. */
tq_tensor *tq_op_output(tq_tape *t, tq_tensor *const *in, int n_in, int32_t ndim,
                        const int32_t *shape);

/* dst += src over n floats (dst and src do not overlap). */
void tq_accumulate(float *restrict dst, const float *restrict src, int64_t n);

/* 1/sqrt(running_var[c] + eps) in float, as batch norm's evaluation mode uses it: y = k (x -
 * running_mean) + beta with k = gamma * this. Shared so that fused ops give the same bits. */
float tq_batchnorm_eval_invstd(const tq_batchnorm_state *bn, int64_t c);

/* Inference only: y = relu?(batchnorm_eval(conv2d(x, w, b))), with batch norm's running
 * statistics (gamma, beta of length O). Batch norm (and ReLU) are applied to each image's
 * output right after its GEMM, while it is in cache, rather than in two more passes over
 * memory; the bits are those of tq_conv2d, tq_batchnorm (evaluation mode) and tq_relu in
 * sequence. Nothing is recorded: fails when the tape records and an input needs a gradient,
 * or in training mode. */
tq_tensor *tq_conv2d_bn_eval(tq_tape *t, tq_tensor *x, tq_tensor *w, tq_tensor *b, int stride,
                             int pad, tq_tensor *gamma, tq_tensor *beta,
                             const tq_batchnorm_state *bn, bool relu);

/* relu(batchnorm(x)) as one op: the same bits, forward and backward, as tq_relu after
 * tq_batchnorm, without the intermediate tensor, the ReLU's passes over memory and its
 * gradient buffer. */
tq_tensor *tq_batchnorm_relu(tq_tape *t, tq_tensor *x, tq_tensor *gamma, tq_tensor *beta,
                             const tq_batchnorm_state *bn);

/* relu(a + b) as one op (a residual block's join): the same bits, forward and backward, as
 * tq_relu after tq_add, with one pass over memory each way instead of two or three. */
tq_tensor *tq_add_relu(tq_tape *t, tq_tensor *a, tq_tensor *b);

/* Below this many floats an elementwise loop stays on one thread: on two cores the fork and
 * join of a parallel region (a few microseconds, more when the cores are shared) costs more
 * than it saves on a memory-bound loop. Elementwise results never depend on the split. */
#define TQ_EW_PARALLEL_MIN 65536

/* The OpenMP pool, seen from an op: how many threads a parallel loop may use, and which
 * one is running (for per-thread scratch). One without OpenMP. */
#ifdef _OPENMP
#include <omp.h>
static inline int tq_omp_max_threads(void) { return omp_get_max_threads(); }
static inline int tq_omp_thread_id(void) { return omp_get_thread_num(); }
static inline int tq_omp_team_size(void) { return omp_get_num_threads(); }
#else
static inline int tq_omp_max_threads(void) { return 1; }
static inline int tq_omp_thread_id(void) { return 0; }
static inline int tq_omp_team_size(void) { return 1; }
#endif

#endif
