/* Private to engine/: how qconv.c reaches the AVX2 kernels of qconv_avx2.c, and the epilogue's
 * plain C store that both use for the channels past the last full group of 8. */
#ifndef TINYQAT_QCONV_INTERNAL_H
#define TINYQAT_QCONV_INTERNAL_H

#include "qconv.h"

/* x86-64 with a compiler that can emit AVX2 next to the x86-64-v2 baseline. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TQ_HAVE_QCONV_AVX2 1
void tq_qconv_run_avx2(const tq_qconv_weights *w, const tq_qconv_epilogue *ep, const int16_t *x,
                       const tq_qconv_geom *g, void *out);
void tq_qconv_requant_avx2(const int32_t *a, int64_t count, int64_t period,
                           const tq_qconv_epilogue *ep, void *out);
void tq_qconv_add_avx2(const int32_t *a, const int32_t *b, int64_t count, int32_t ma, int32_t mb,
                       int64_t bias, const tq_qconv_epilogue *ep, void *out);
#else
#define TQ_HAVE_QCONV_AVX2 0
#endif

/* Channels o0 .. o0 + count - 1 of one row from their sums, stored at out. */
void tq_qconv_store(const tq_qconv_epilogue *ep, int64_t o0, int64_t count, const int32_t *sums,
                    void *out);

#endif
