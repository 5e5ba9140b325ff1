/* Direct stride-1 convolution: each register tile holds 16 output pixels x 16 output channels,
 * fed by one packed weight vector and 16 input broadcasts per channel and tap; and its weight
 * gradient, with 16 output channels x taps of accumulators fed per output pixel. */
#include "conv_direct.h"

#include <stdint.h>
#include <string.h>

#include "avx512.h"

/* Pixels per tile: 16 accumulators cover the FMA latency on two pipes. Planes of at most
 * TILE_PIXELS/2 columns (ResNet's 8x8) take two rows of half as many pixels per tile. */
enum { TILE_PIXELS = 16, CH_BLOCK = 16 };

static int out_size(int in, int k, int pad) { return in + 2 * pad - k + 1; }

bool tq_conv_direct_supported(int O, const tq_conv_shape *s)
{
    return TQ_HAVE_AVX512 && strcmp(tq_sgemm_backend(), "avx512") == 0 && s->stride == 1 &&
           O > 0 && O % CH_BLOCK == 0 && s->C > 0 && s->kh > 0 && s->kw > 0 && s->pad >= 0 &&
           out_size(s->H, s->kh, s->pad) > 0 && out_size(s->W, s->kw, s->pad) > 0;
}

size_t tq_conv_direct_packed_len(int Cin, int Cout, int kh, int kw)
{
    return (size_t)Cin * (size_t)kh * (size_t)kw * (size_t)Cout;
}

void tq_conv_direct_pack(const float *w, int O, int C, int kh, int kw, bool adjoint, float *wp)
{
    const int taps = kh * kw;
    for (int o = 0; o < O; o++)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < taps; t++) {
                const float v = w[((int64_t)o * C + c) * taps + t];
                if (adjoint) /* tap (ki,kj) of the adjoint is tap (kh-1-ki, kw-1-kj) of w */
                    wp[((int64_t)o * taps + (taps - 1 - t)) * C + c] = v;
                else
                    wp[((int64_t)c * taps + t) * O + o] = v;
            }
}

/* The last tile of a row or plane computes pixels past the output (their lanes are never
 * stored); they read at most one padded row plus a tile beyond the planes. */
size_t tq_conv_direct_scratch_len(const tq_conv_shape *s)
{
    const size_t Hp = (size_t)s->H + 2 * (size_t)s->pad, Wp = (size_t)s->W + 2 * (size_t)s->pad;
    return (size_t)s->C * Hp * Wp + Wp + TILE_PIXELS;
}

#if TQ_HAVE_AVX512
typedef struct direct_args {
    int C, O, kh, kw, OH, OW, Wp;
    int64_t plane; /* floats per padded plane */
    const float *xp, *wp;
    float beta;
    float *Y;
    int ldy;
} direct_args;

/* x's planes copied into zero-padded ones, so that no tap needs a bounds test; the tail that
 * the last tiles read past the planes is zeroed too. */
static void pad_planes(const tq_conv_shape *s, const float *restrict x, float *restrict xp)
{
    const int Wp = s->W + 2 * s->pad, pad = s->pad;
    float *d = xp;
    for (int c = 0; c < s->C; c++) {
        memset(d, 0, (size_t)pad * Wp * sizeof(float));
        d += (int64_t)pad * Wp;
        for (int y = 0; y < s->H; y++, d += Wp) {
            const float *src = x + ((int64_t)c * s->H + y) * s->W;
            for (int i = 0; i < pad; i++) d[i] = 0.0f;
            for (int i = 0; i < s->W; i++) d[pad + i] = src[i]; /* rows are short: no call */
            for (int i = pad + s->W; i < Wp; i++) d[i] = 0.0f;
        }
        memset(d, 0, (size_t)pad * Wp * sizeof(float));
        d += (int64_t)pad * Wp;
    }
    memset(d, 0, (size_t)(Wp + TILE_PIXELS) * sizeof(float));
}

static TQ_AVX512 inline __attribute__((always_inline)) void store_run256(float *y, __m256 v,
                                                                         int n, float beta)
{
    const __mmask8 m = (__mmask8)((1u << n) - 1u);
    if (beta != 0.0f) v = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_maskz_loadu_ps(m, y), v);
    _mm256_mask_storeu_ps(y, m, v);
}

/* One tile: R output rows from oy, P = TILE_PIXELS / R pixels of each from ox, channels
 * o0..o0+15. Pixel p of row r sits in acc[r*P+p], all 16 channels in its lanes; after the
 * transpose acc[j] holds channel o0+j over the tile's pixels, stored row by row. */
static TQ_AVX512 inline __attribute__((always_inline)) void tile(const direct_args *a, int R,
                                                                 int kh, int kw, int oy, int ox,
                                                                 int o0)
{
    const int P = TILE_PIXELS / R, Wp = a->Wp, taps = kh * kw;
    __m512 acc[TILE_PIXELS];
    for (int i = 0; i < TILE_PIXELS; i++) acc[i] = _mm512_setzero_ps();
    const float *xc = a->xp + (int64_t)oy * Wp + ox, *wc = a->wp + o0;
    for (int c = 0; c < a->C; c++, xc += a->plane, wc += (int64_t)taps * a->O)
        for (int ki = 0; ki < kh; ki++) {
            const float *xr = xc + (int64_t)ki * Wp, *wr = wc + (int64_t)ki * kw * a->O;
            for (int kj = 0; kj < kw; kj++) {
                const __m512 w = _mm512_loadu_ps(wr + (int64_t)kj * a->O);
#pragma GCC unroll 16
                for (int i = 0; i < TILE_PIXELS; i++)
                    acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(xr[(i / P) * Wp + i % P + kj]), w,
                                             acc[i]);
            }
        }
    tq_transpose16(acc);
    const int n = a->OW - ox < P ? a->OW - ox : P;
    for (int j = 0; j < CH_BLOCK; j++) {
        float *y = a->Y + (int64_t)(o0 + j) * a->ldy + (int64_t)oy * a->OW + ox;
        if (R == 1) {
            const __mmask16 m = (__mmask16)((1u << n) - 1u);
            __m512 v = acc[j];
            if (a->beta != 0.0f)
                v = _mm512_fmadd_ps(_mm512_set1_ps(a->beta), _mm512_maskz_loadu_ps(m, y), v);
            _mm512_mask_storeu_ps(y, m, v);
        } else {
            store_run256(y, _mm512_castps512_ps256(acc[j]), n, a->beta);
            if (oy + 1 < a->OH) store_run256(y + a->OW, _mm512_extractf32x8_ps(acc[j], 1), n, a->beta);
        }
    }
}

/* 3x3 kernels get their taps unrolled (fixed offsets, no tap loop). */
static TQ_AVX512 void tiles_one_row(const direct_args *a, int o0)
{
    const bool k3 = a->kh == 3 && a->kw == 3;
    for (int oy = 0; oy < a->OH; oy++)
        for (int ox = 0; ox < a->OW; ox += TILE_PIXELS) {
            if (k3)
                tile(a, 1, 3, 3, oy, ox, o0);
            else
                tile(a, 1, a->kh, a->kw, oy, ox, o0);
        }
}

static TQ_AVX512 void tiles_two_rows(const direct_args *a, int o0)
{
    const bool k3 = a->kh == 3 && a->kw == 3;
    for (int oy = 0; oy < a->OH; oy += 2)
        for (int ox = 0; ox < a->OW; ox += TILE_PIXELS / 2) {
            if (k3)
                tile(a, 2, 3, 3, oy, ox, o0);
            else
                tile(a, 2, a->kh, a->kw, oy, ox, o0);
        }
}

typedef struct dw_args {
    int C, O, kh, kw, OH, OW, Wp, taps;
    int64_t plane;
    const float *xp, *gt; /* padded planes; gy as gt[pixel][o] */
    const int *off;       /* tap t's offset in a padded plane */
    float *dwp;
} dw_args;

/* gt[q][o] = gy[o][q] for one image, 16 x 16 blocks through registers. */
static TQ_AVX512 void transpose_grad(const float *restrict gy, int O, int p, float *restrict gt)
{
    for (int o0 = 0; o0 < O; o0 += CH_BLOCK)
        for (int q0 = 0; q0 < p; q0 += 16) {
            const int n = p - q0 < 16 ? p - q0 : 16;
            const __mmask16 m = (__mmask16)((1u << n) - 1u);
            __m512 v[16];
            for (int j = 0; j < 16; j++)
                v[j] = _mm512_maskz_loadu_ps(m, gy + (int64_t)(o0 + j) * p + q0);
            tq_transpose16(v);
            for (int i = 0; i < n; i++) _mm512_storeu_ps(gt + (int64_t)(q0 + i) * O + o0, v[i]);
        }
}

/* Accumulators for OB blocks of 16 output channels from o0, CB input channels from c and NT
 * taps from t0 (3x3 kernels: all nine, offsets known), kept in registers over every output
 * pixel: per pixel OB gradient vectors and CB*NT broadcasts of the input feed OB*CB*NT FMAs. */
static TQ_AVX512 inline __attribute__((always_inline)) void dw_block(const dw_args *a, int OB,
                                                                     int CB, int NT, bool k3,
                                                                     int c, int t0, int o0)
{
    __m512 acc[18];
    int off[9];
    for (int i = 0; i < NT; i++) off[i] = k3 ? (i / 3) * a->Wp + i % 3 : a->off[t0 + i];
    const int O = a->O;
    float *d = a->dwp + ((int64_t)c * a->taps + t0) * O + o0;
    for (int k = 0; k < CB; k++)
        for (int i = 0; i < NT; i++)
            for (int b = 0; b < OB; b++)
                acc[(k * NT + i) * OB + b] =
                    _mm512_loadu_ps(d + ((int64_t)k * a->taps + i) * O + b * CH_BLOCK);
    for (int oy = 0; oy < a->OH; oy++) {
        const float *g = a->gt + (int64_t)oy * a->OW * O + o0;
        const float *xr = a->xp + (int64_t)c * a->plane + (int64_t)oy * a->Wp;
        for (int ox = 0; ox < a->OW; ox++, g += O, xr++) {
            __m512 gv[2];
            for (int b = 0; b < OB; b++) gv[b] = _mm512_loadu_ps(g + b * CH_BLOCK);
#pragma GCC unroll 18
            for (int k = 0; k < CB; k++)
#pragma GCC unroll 9
                for (int i = 0; i < NT; i++) {
                    const __m512 xv = _mm512_set1_ps(xr[k * a->plane + off[i]]);
                    for (int b = 0; b < OB; b++)
                        acc[(k * NT + i) * OB + b] =
                            _mm512_fmadd_ps(xv, gv[b], acc[(k * NT + i) * OB + b]);
                }
        }
    }
    for (int k = 0; k < CB; k++)
        for (int i = 0; i < NT; i++)
            for (int b = 0; b < OB; b++)
                _mm512_storeu_ps(d + ((int64_t)k * a->taps + i) * O + b * CH_BLOCK,
                                 acc[(k * NT + i) * OB + b]);
}

/* Two channel blocks per pass when O allows (one broadcast feeds two FMAs), else two input
 * channels per pass, so that every pass keeps 16 or 18 accumulators busy. */
static TQ_AVX512 void dw_taps(const dw_args *a, int NT, bool k3, int t0)
{
    for (int o0 = 0; o0 < a->O;) {
        if (a->O - o0 >= 2 * CH_BLOCK) {
            for (int c = 0; c < a->C; c++) {
                if (k3) dw_block(a, 2, 1, 9, true, c, t0, o0);
                else if (NT == 8) dw_block(a, 2, 1, 8, false, c, t0, o0);
                else dw_block(a, 2, 1, 1, false, c, t0, o0);
            }
            o0 += 2 * CH_BLOCK;
            continue;
        }
        int c = 0;
        for (; c + 2 <= a->C; c += 2) {
            if (k3) dw_block(a, 1, 2, 9, true, c, t0, o0);
            else if (NT == 8) dw_block(a, 1, 2, 8, false, c, t0, o0);
            else dw_block(a, 1, 2, 1, false, c, t0, o0);
        }
        if (c < a->C) {
            if (k3) dw_block(a, 1, 1, 9, true, c, t0, o0);
            else if (NT == 8) dw_block(a, 1, 1, 8, false, c, t0, o0);
            else dw_block(a, 1, 1, 1, false, c, t0, o0);
        }
        o0 += CH_BLOCK;
    }
}
#endif

bool tq_conv_direct(int O, const tq_conv_shape *s, const float *wp, const float *x, float beta,
                    float *Y, int ldy, float *scratch)
{
    if (!tq_conv_direct_supported(O, s)) return false;
#if TQ_HAVE_AVX512
    pad_planes(s, x, scratch);
    const int Wp = s->W + 2 * s->pad;
    const direct_args a = {.C = s->C, .O = O, .kh = s->kh, .kw = s->kw,
                           .OH = out_size(s->H, s->kh, s->pad), .OW = out_size(s->W, s->kw, s->pad),
                           .Wp = Wp, .plane = (int64_t)(s->H + 2 * s->pad) * Wp, .xp = scratch,
                           .wp = wp, .beta = beta, .Y = Y, .ldy = ldy};
    /* one channel block at a time, so that its packed weights stay in L1 across the tiles */
    for (int o0 = 0; o0 < O; o0 += CH_BLOCK) {
        if (a.OW <= TILE_PIXELS / 2)
            tiles_two_rows(&a, o0);
        else
            tiles_one_row(&a, o0);
    }
    return true;
#else
    (void)wp, (void)x, (void)beta, (void)Y, (void)ldy, (void)scratch;
    return false;
#endif
}

size_t tq_conv_direct_dw_scratch_len(int O, const tq_conv_shape *s)
{
    const size_t planes = (tq_conv_direct_scratch_len(s) + 15) & ~(size_t)15;
    return planes + (size_t)out_size(s->H, s->kh, s->pad) * (size_t)out_size(s->W, s->kw, s->pad) *
                        (size_t)O;
}

bool tq_conv_direct_dw(int O, const tq_conv_shape *s, const float *x, const float *gy, float *dwp,
                       float *scratch)
{
    if (!tq_conv_direct_supported(O, s)) return false;
#if TQ_HAVE_AVX512
    const int OH = out_size(s->H, s->kh, s->pad), OW = out_size(s->W, s->kw, s->pad);
    const int Wp = s->W + 2 * s->pad, taps = s->kh * s->kw;
    float *gt = scratch + ((tq_conv_direct_scratch_len(s) + 15) & ~(size_t)15);
    pad_planes(s, x, scratch);
    transpose_grad(gy, O, OH * OW, gt);
    int off[64];
    dw_args a = {.C = s->C, .O = O, .kh = s->kh, .kw = s->kw, .OH = OH, .OW = OW, .Wp = Wp,
                 .taps = taps, .plane = (int64_t)(s->H + 2 * s->pad) * Wp, .xp = scratch,
                 .gt = gt, .off = off, .dwp = dwp};
    if (s->kh == 3 && s->kw == 3) {
        dw_taps(&a, 9, true, 0);
        return true;
    }
    /* other kernels: chunks of 8 taps, then single taps */
    for (int t0 = 0; t0 < taps; t0 += 64) {
        const int n = taps - t0 < 64 ? taps - t0 : 64;
        for (int i = 0; i < n; i++) off[i] = ((t0 + i) / s->kw) * Wp + (t0 + i) % s->kw;
        a.dwp = dwp + (int64_t)t0 * O;
        int i = 0;
        for (; i + 8 <= n; i += 8) dw_taps(&a, 8, false, i);
        for (; i < n; i++) dw_taps(&a, 1, false, i);
    }
    return true;
#else
    (void)x, (void)gy, (void)dwp, (void)scratch;
    return false;
#endif
}

void tq_conv_direct_unpack_add(const float *dwp, int O, int C, int kh, int kw, float *dw)
{
    const int taps = kh * kw;
    for (int o = 0; o < O; o++)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < taps; t++)
                dw[((int64_t)o * C + c) * taps + t] += dwp[((int64_t)c * taps + t) * O + o];
}
