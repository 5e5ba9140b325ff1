/* Direct stride-1 convolution for output channel counts that are multiples of 16: register
 * tiles of output pixels x 16 channels fed by broadcasts of the input, and its weight
 * gradient. AVX-512 only. */
#ifndef TINYQAT_CONV_DIRECT_H
#define TINYQAT_CONV_DIRECT_H

#include <stdbool.h>
#include <stddef.h>

#include "gemm.h"

/* Whether tq_conv_direct handles O output channels over this shape: the AVX-512 backend is in
 * use, stride is 1, O is a positive multiple of 16 and the output is not empty. */
bool tq_conv_direct_supported(int O, const tq_conv_shape *s);

/* Floats of the weights packed for tq_conv_direct (Cin*kh*kw*Cout). */
size_t tq_conv_direct_packed_len(int Cin, int Cout, int kh, int kw);

/* Packs w (O,C,kh,kw) as wp[c][ki][kj][o], the layout tq_conv_direct reads (Cin = C, Cout = O).
 * With adjoint, packs instead the kernel of the input gradient of a stride-1 convolution by
 * w: wp[o][ki][kj][c] = w[o][c][kh-1-ki][kw-1-kj] (Cin = O, Cout = C). */
void tq_conv_direct_pack(const float *w, int O, int C, int kh, int kw, bool adjoint, float *wp);

/* Floats of per-call scratch tq_conv_direct needs for one image of shape s: the zero-padded
 * input planes plus a tail that the last tiles may read past the planes. */
size_t tq_conv_direct_scratch_len(const tq_conv_shape *s);

/* Y (O, OH*OW) = conv(x, wp) + beta Y for one image x (C,H,W), rows of Y ldy floats apart,
 * wp from tq_conv_direct_pack (Cin = s->C, Cout = O), scratch of tq_conv_direct_scratch_len
 * floats. beta = 0 ignores Y's old contents (NaN included). Runs on the calling thread.
 * False (Y untouched) when !tq_conv_direct_supported(O, s). */
bool tq_conv_direct(int O, const tq_conv_shape *s, const float *wp, const float *x, float beta,
                    float *Y, int ldy, float *scratch);

/* Floats of scratch tq_conv_direct_dw needs for one image: the zero-padded input planes and
 * the output gradient transposed to pixel-major order. */
size_t tq_conv_direct_dw_scratch_len(int O, const tq_conv_shape *s);

/* Weight gradient of one image, packed: dwp[c][ki][kj][o] += sum over output pixels (oy,ox) of
 * gy[o][oy][ox] * xpad[c][oy+ki][ox+kj], xpad the zero-padded planes of x (C,H,W); gy is
 * (O, OH*OW). Each element adds its pixels in row-major order, so a sequence of calls sums
 * images in call order. Runs on the calling thread; false (dwp untouched) when
 * !tq_conv_direct_supported(O, s). */
bool tq_conv_direct_dw(int O, const tq_conv_shape *s, const float *x, const float *gy, float *dwp,
                       float *scratch);

/* dw (O,C,kh,kw) += dwp, dwp packed as tq_conv_direct_dw accumulates it (wp[c][ki][kj][o]). */
void tq_conv_direct_unpack_add(const float *dwp, int O, int C, int kh, int kw, float *dw);

#endif
