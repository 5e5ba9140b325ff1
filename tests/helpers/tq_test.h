/* Shared helpers for the check suites: suite running, gradient-check assertions, tensors. */
#ifndef TQ_TEST_H
#define TQ_TEST_H

#include <check.h>
#include <math.h>

#include "autograd.h"
#include "data.h"

/* Runs one suite; returns the process exit status. */
int tq_test_run(Suite *s);
/* The exit status CTest reports as a skip (SKIP_RETURN_CODE in CMakeLists.txt). */
#define TQ_TEST_SKIPPED 77
/* Runs a suite whose subject needs something this machine may lack (`available` false):
 * what can run still runs and must pass, and then the suite reports itself skipped, with a
 * line saying what was missing, rather than passing without having tested anything. */
int tq_test_run_requiring(Suite *s, bool available, const char *missing_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A heap tensor filled uniformly in [lo, hi) from a seeded RNG. */
tq_tensor *tq_test_tensor(tq_rng *rng, int32_t ndim, const int32_t *shape, bool with_grad,
                          float lo, float hi);

/* n generated 4x4 grey images in 4 classes (tq_dataset_synthetic); fails the test on error. */
void tq_test_synthetic(tq_dataset *d, int64_t n, float signal, float noise, uint64_t seed);

/* Gradient-checks fn and fails the test with the checker's message unless every checked
 * element agrees and at most max_skip_frac of them were skipped as kinks. */
#define TQ_ASSERT_GRADCHECK(fn, ctx, inputs, n_in, opts, max_skip_frac)                       \
    do {                                                                                     \
        tq_gradcheck_result r_ = tq_gradcheck((fn), (ctx), (inputs), (n_in), (opts));        \
        ck_assert_msg(r_.ok, "gradcheck %s: %s (%lld failed of %lld)", #fn, r_.msg,          \
                      (long long)r_.failed, (long long)r_.checked);                          \
        ck_assert_msg(r_.checked > 0, "gradcheck %s checked nothing", #fn);                  \
        ck_assert_msg((double)r_.skipped <= (max_skip_frac) * (double)(r_.checked + r_.skipped), \
                      "gradcheck %s skipped %lld of %lld as kinks", #fn, (long long)r_.skipped, \
                      (long long)(r_.checked + r_.skipped));                                 \
    } while (0)

#define TQ_ASSERT_NEAR(a, b, tol)                                                            \
    ck_assert_msg(fabs((double)(a) - (double)(b)) <= (tol), "%s = %.9g, expected %.9g (tol %g)", \
                  #a, (double)(a), (double)(b), (double)(tol))

#endif
