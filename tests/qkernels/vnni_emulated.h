/* The VNNI row kernel compiled over an emulation of the intrinsics (vnni_emulated.c). */
#ifndef TQ_VNNI_EMULATED_H
#define TQ_VNNI_EMULATED_H

#include "qkernels.h"

void tq_test_vnni_emulated_rows(int64_t i0, int64_t i1, const uint8_t *a, int64_t lda,
                                const tq_qweights *w, const tq_qepilogue *ep, void *out,
                                int64_t ldo);

#endif
