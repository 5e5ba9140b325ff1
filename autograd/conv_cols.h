/* The column matrix of a convolution (im2col) and its adjoint (col2im), for the GEMM paths of
 * ops_conv.c. Private to autograd/. */
#ifndef TINYQAT_CONV_COLS_H
#define TINYQAT_CONV_COLS_H

#include "internal.h"

typedef struct conv_geom {
    int N, C, H, W, O, kh, kw, stride, pad, OH, OW;
    int ck;       /* C*kh*kw: rows of one image's column matrix, columns of w viewed (O,ck) */
    int p;        /* OH*OW: columns of the column matrix */
    bool input_is_cols; /* 1x1, stride 1, no padding: the image itself is the column matrix */
    bool same;    /* stride 1, output plane as large as the input: taps are shifted planes */
} conv_geom;

conv_geom tq_conv_geometry(const tq_tensor *x, const tq_tensor *w, int stride, int pad);
/* x (C,H,W) -> cols (ck, p) with rows ld floats apart (ld >= p, so that several images'
 * columns can sit side by side); row (c,ki,kj) holds the input under kernel tap (ki,kj). */
void tq_im2col(const conv_geom *g, const float *restrict x, float *restrict cols, int64_t ld);
/* dx (C,H,W) += the scatter of dcols (ck, p), padding taps dropped; dcols is scratch. */
void tq_col2im_add(const conv_geom *g, float *restrict dcols, float *restrict dx);

#endif
