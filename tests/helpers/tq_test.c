/* Shared helpers for the check suites. */
#include "tq_test.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int tq_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

int tq_test_run_requiring(Suite *s, bool available, const char *missing_fmt, ...)
{
    int status = tq_test_run(s);
    if (status != EXIT_SUCCESS || available) return status;
    va_list ap;
    va_start(ap, missing_fmt);
    printf("skipped: ");
    vprintf(missing_fmt, ap);
    printf("\n");
    va_end(ap);
    return TQ_TEST_SKIPPED;
}

tq_tensor *tq_test_tensor(tq_rng *rng, int32_t ndim, const int32_t *shape, bool with_grad,
                          float lo, float hi)
{
    tq_tensor *t = tq_tensor_new(ndim, shape, with_grad);
    ck_assert_ptr_nonnull(t);
    tq_tensor_fill_uniform(t, rng, lo, hi);
    return t;
}

void tq_test_synthetic(tq_dataset *d, int64_t n, float signal, float noise, uint64_t seed)
{
    tq_synthetic_config cfg = {.n = n, .side = 4, .classes = 4, .signal = signal, .noise = noise,
                               .seed = seed};
    tq_error e = {0};
    ck_assert_msg(tq_dataset_synthetic(d, &cfg, &e) == TQ_STATUS_OK, "%s", e.msg);
}
