/* im2col and col2im for the GEMM paths of the convolution: rows of the column matrix copied
 * as contiguous runs where the geometry allows. */
#include "conv_cols.h"

#include <string.h>

conv_geom tq_conv_geometry(const tq_tensor *x, const tq_tensor *w, int stride, int pad)
{
    conv_geom g = {.N = x->shape[0], .C = x->shape[1], .H = x->shape[2], .W = x->shape[3],
                   .O = w->shape[0], .kh = w->shape[2], .kw = w->shape[3],
                   .stride = stride, .pad = pad};
    g.OH = (g.H + 2 * pad - g.kh) / stride + 1;
    g.OW = (g.W + 2 * pad - g.kw) / stride + 1;
    g.ck = g.C * g.kh * g.kw;
    g.p = g.OH * g.OW;
    g.input_is_cols = g.kh == 1 && g.kw == 1 && stride == 1 && pad == 0;
    g.same = stride == 1 && g.OH == g.H && g.OW == g.W;
    return g;
}

/* The outputs o in [*lo, *hi) whose input index o*stride + off falls inside [0, size). */
static void valid_range(int off, int size, int stride, int n_out, int *lo, int *hi)
{
    int l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int h = size - off <= 0 ? 0 : (size - off - 1) / stride + 1;
    if (h > n_out) h = n_out;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* Zeroes columns [0, xlo) and [xhi, W) of rows [ylo, yhi) of a (.., W) plane. Column by
 * column: a few strided stores, where a row-by-row loop becomes a memset call per row. */
static void zero_edge_columns(float *plane, int W, int ylo, int yhi, int xlo, int xhi)
{
    for (int ox = 0; ox < xlo; ox++)
        for (int oy = ylo; oy < yhi; oy++) plane[(int64_t)oy * W + ox] = 0.0f;
    for (int ox = xhi; ox < W; ox++)
        for (int oy = ylo; oy < yhi; oy++) plane[(int64_t)oy * W + ox] = 0.0f;
}

/* Stride 1 with "same" padding (OH == H, OW == W: ResNet's 3x3 pad 1): tap (dy,dx) of the
 * column matrix is the plane shifted by dy rows and dx columns. The valid part is one
 * contiguous run of the plane, copied at once; the entries where a row wrapped into its
 * neighbour, and the rows above and below the plane, are then zeroed. */
static void im2col_same_tap(const conv_geom *g, const float *restrict plane, float *restrict row,
                            int dy, int dx, int ylo, int yhi, int xlo, int xhi)
{
    const int W = g->W;
    if (ylo >= yhi || xlo >= xhi) {
        memset(row, 0, (size_t)g->p * sizeof(float));
        return;
    }
    const int64_t start = (int64_t)ylo * W + xlo, end = (int64_t)(yhi - 1) * W + xhi;
    memset(row, 0, (size_t)start * sizeof(float));
    memcpy(row + start, plane + start + (int64_t)dy * W + dx, (size_t)(end - start) * sizeof(float));
    memset(row + end, 0, (size_t)(g->p - end) * sizeof(float));
    zero_edge_columns(row, W, ylo, yhi, xlo, xhi);
}

/* x (C,H,W) -> cols (ck, p) with rows ld floats apart (ld >= p, so that several images'
 * columns can sit side by side); row (c,ki,kj) holds the input under kernel tap (ki,kj).
 * Rows are short (OW floats): plain loops, which the compiler vectorises, beat a memcpy call
 * per row; "same" convolutions copy a whole tap at once instead. */
void tq_im2col(const conv_geom *g, const float *restrict x, float *restrict cols, int64_t ld)
{
    const int s = g->stride, OW = g->OW;
    for (int c = 0; c < g->C; c++) {
        const float *plane = x + (int64_t)c * g->H * g->W;
        for (int ki = 0; ki < g->kh; ki++)
            for (int kj = 0; kj < g->kw; kj++) {
                float *restrict row = cols + ((int64_t)(c * g->kh + ki) * g->kw + kj) * ld;
                int ylo, yhi, xlo, xhi;
                valid_range(ki - g->pad, g->H, s, g->OH, &ylo, &yhi);
                valid_range(kj - g->pad, g->W, s, OW, &xlo, &xhi);
                if (g->same) {
                    im2col_same_tap(g, plane, row, ki - g->pad, kj - g->pad, ylo, yhi, xlo, xhi);
                    continue;
                }
                for (int i = 0; i < ylo * OW; i++) row[i] = 0.0f;
                for (int oy = ylo; oy < yhi; oy++) {
                    float *restrict r = row + (int64_t)oy * OW;
                    const float *restrict src = plane + (int64_t)(oy * s + ki - g->pad) * g->W;
                    const int shift = kj - g->pad;
                    for (int ox = 0; ox < xlo; ox++) r[ox] = 0.0f;
                    if (s == 1)
                        for (int ox = xlo; ox < xhi; ox++) r[ox] = src[ox + shift];
                    else
                        for (int ox = xlo; ox < xhi; ox++) r[ox] = src[ox * s + shift];
                    for (int ox = xhi; ox < OW; ox++) r[ox] = 0.0f;
                }
                for (int i = yhi * OW; i < g->p; i++) row[i] = 0.0f;
            }
    }
}

/* The adjoint of im2col: dx (C,H,W) += scatter of dcols (ck, p); padding taps are dropped.
 * For "same" convolutions a tap is added as one contiguous run after zeroing, in dcols (a
 * scratch buffer), the entries that im2col would have zeroed: they land on a neighbouring
 * row's pixels in that run. */
void tq_col2im_add(const conv_geom *g, float *restrict dcols, float *restrict dx)
{
    const int s = g->stride, W = g->W;
    for (int c = 0; c < g->C; c++) {
        float *restrict plane = dx + (int64_t)c * g->H * W;
        for (int ki = 0; ki < g->kh; ki++)
            for (int kj = 0; kj < g->kw; kj++) {
                float *restrict row = dcols + ((int64_t)(c * g->kh + ki) * g->kw + kj) * g->p;
                int ylo, yhi, xlo, xhi;
                valid_range(ki - g->pad, g->H, s, g->OH, &ylo, &yhi);
                valid_range(kj - g->pad, W, s, g->OW, &xlo, &xhi);
                if (ylo >= yhi || xlo >= xhi) continue;
                if (g->same) {
                    zero_edge_columns(row, W, ylo, yhi, xlo, xhi);
                    const int64_t start = (int64_t)ylo * W + xlo, end = (int64_t)(yhi - 1) * W + xhi;
                    const int64_t shift = (int64_t)(ki - g->pad) * W + (kj - g->pad);
                    for (int64_t i = start; i < end; i++) plane[i + shift] += row[i];
                    continue;
                }
                for (int oy = ylo; oy < yhi; oy++) {
                    const float *r = row + (int64_t)oy * g->OW;
                    float *d = plane + (int64_t)(oy * s + ki - g->pad) * W;
                    for (int ox = xlo, ix = xlo * s + kj - g->pad; ox < xhi; ox++, ix += s)
                        d[ix] += r[ox];
                }
            }
    }
}

/* tq_sgemm_conv works out each kernel tap's sources once per sliver and reuses them for
 * every channel: with fewer channels than this (a first layer on RGB or grey input) that
 * setup is not repaid and im2col's whole-plane copies are faster (measured: 3 -> 16 channels
 * 3x3 on 32x32 at 75 against 110 GFLOP/s; 16 -> 32 1x1 stride 2 at 100 against 75). */
