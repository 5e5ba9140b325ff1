/* Private to engine/: how qgemm.c reaches the kernels of qgemm_vnni.c and qgemm_avx2.c. All paths
 * compute rows i0 .. i1 of a product; ep == NULL stores the int32 sums into out (int32_t,
 * ldo elements apart), otherwise the epilogue's bytes (ldo bytes apart). */
#ifndef TINYQAT_QGEMM_INTERNAL_H
#define TINYQAT_QGEMM_INTERNAL_H

#include "qkernels.h"

/* Where the compiler can emit AVX-512 VNNI next to portable code (the build targets
 * x86-64-v2; tq_qgemm_backend() decides at run time). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TQ_HAVE_VNNI 1
void tq_qgemm_vnni_rows(int64_t i0, int64_t i1, const uint8_t *a, int64_t lda,
                        const tq_qweights *w, const tq_qepilogue *ep, void *out, int64_t ldo);
#else
#define TQ_HAVE_VNNI 0
#endif

/* AVX2 (vpmaddwd), for x86-64 CPUs without VNNI (qgemm_avx2.c). */
#define TQ_HAVE_AVX2 TQ_HAVE_VNNI
#if TQ_HAVE_AVX2
void tq_qgemm_avx2_rows(int64_t i0, int64_t i1, const uint8_t *a, int64_t lda,
                        const tq_qweights *w, const tq_qepilogue *ep, void *out, int64_t ldo);
#endif

#endif
