/* Private to engine/: direct convolutions (and Linear layers) on 16-bit centered codes with the
 * engine's requantization fused, the path the integer engine takes on AVX2 CPUs without VNNI.
 * No im2col: each output pixel reads its taps from a padded copy of the image. */
#ifndef TINYQAT_QCONV_H
#define TINYQAT_QCONV_H

#include <stdbool.h>
#include <stdint.h>

#include "autograd.h"

/* Why 16 bits: on AVX2 the exact integer product is vpmaddwd (int16 x int16, pairs summed into
 * int32). vpmaddubsw takes bytes but its int16 pair sums saturate for int8 weights (two
 * weights of one sign summing past 128 against codes of 255 overflow), so it is not exact for
 * the engine's int8 layers. Widening both operands once, before the product, takes the
 * conversions out of the inner loop: per pair of taps and 8 output channels one broadcast,
 * one vpmaddwd and one add.
 *
 * Centered codes: an input code minus its zero point (int8 codes stay as they are, uint8
 * codes in [0, 255]), so the padding is 0 and the sums need no zero-point correction: they
 * equal the engine's corrected accumulators (acc - zp * row sum) exactly. */

/* Weights: n output channels, k kernel rows of kc values each ((kx, c) of one kernel row in
 * the engine's (ky, kx, c) order; a Linear is one row of all its inputs). Packed as int16
 * [n8][k][steps][8 channels][2 values of a pair], steps = ceil(kc / 2), zero past kc and n. */
typedef struct tq_qconv_weights {
    int64_t n, n8;   /* channels, groups of 8 */
    int32_t k;       /* kernel rows */
    int64_t kc, steps;
    int16_t *data;   /* 32-byte aligned */
} tq_qconv_weights;

/* codes: (n, k * kc) int8 weight codes, the operand tq_qweights_pack takes. */
tq_status tq_qconv_weights_pack(const int8_t *codes, int64_t n, int32_t k, int64_t kc,
                                tq_qconv_weights *out, tq_error *err);
void tq_qconv_weights_free(tq_qconv_weights *w);

/* What becomes of the int32 sum of channel o: codes as tq_rowquant_codes makes them (the
 * multiply-add, the half-to-even shift, the clamp to [lo, hi], + zp, one byte), fine integers
 * as tq_rowquant_fine (clamped below at lo), or the sum itself (a layer whose sums are
 * dequantized to logits). mult and bias are the rowquant's first n entries, and zeros up to
 * n8 * 8 (the AVX2 path reads whole groups of 8 channels). */
typedef enum tq_qconv_out { TQ_QCONV_CODES, TQ_QCONV_FINE, TQ_QCONV_SUMS } tq_qconv_out;

typedef struct tq_qconv_epilogue {
    tq_qconv_out kind;
    const int32_t *mult; /* n */
    const int64_t *bias; /* n */
    int32_t shift;
    int64_t offset;
    uint64_t mask;
    int64_t lo, hi;      /* codes: the clamp; fine: lo (hi is INT32_MAX) */
    int32_t zp;          /* codes: added after the clamp */
} tq_qconv_epilogue;

/* Where the rows of one product come from and go to: the output pixels of one image (a
 * convolution over a padded image) or, for a Linear (k = 1, out_w = 1), the rows of a matrix.
 * Row r is pixel (oy, ox) = (r / out_w, r % out_w): its kernel row ky starts at
 * x + oy * line_step + ox * pixel_step + ky * tap_row_step, and its n outputs go to
 * out + r * out_stride elements (bytes for codes, int32 otherwise). Past its n outputs a row
 * may get junk up to 8 * n8 elements: in its own slot where out_stride >= 8 * n8, else on the
 * next row's first outputs, which are stored after it; never past the last row's n. */
typedef struct tq_qconv_geom {
    /* pool2: a 2x2 max pool of stride 2 after the convolution, fused: row r is pooled pixel
     * (py, px) = (r / out_w, r % out_w), the maximum of the sums of convolution pixels
     * (2 py + dy, 2 px + dx), then the epilogue. The same as pooling the outputs where every
     * multiplier is >= 0 (the epilogue is then non-decreasing in the sum); the caller checks. */
    bool pool2;
    int64_t rows;          /* output pixels (out_h * out_w), or rows of a matrix */
    int32_t out_w;         /* pixels per output row (1 for a matrix) */
    int64_t pixel_step;    /* elements of x between neighbouring output pixels: stride * C */
    int64_t line_step;     /* elements of x between output rows: stride * padded width * C */
    int64_t tap_row_step;  /* elements of x between kernel rows: padded width * C */
    int64_t out_stride;    /* elements of out between rows (>= n) */
} tq_qconv_geom;

/* out for every row of geom: x is int16 centered codes with at least 2 elements of slack
 * past the last one read (a kernel row of odd kc reads one value past its end, against a
 * zero weight). The dispatched form takes AVX2 where tq_qconv_available() says so; the
 * _ref form is plain C, the definition both follow. */
void tq_qconv_run(const tq_qconv_weights *w, const tq_qconv_epilogue *ep, const int16_t *x,
                  const tq_qconv_geom *g, void *out);
void tq_qconv_run_ref(const tq_qconv_weights *w, const tq_qconv_epilogue *ep, const int16_t *x,
                      const tq_qconv_geom *g, void *out);
/* True where the engine takes this path: an AVX2 CPU whose products are the AVX2 ones
 * (tq_qgemm_backend() "avx2"; VNNI's byte products and the portable path keep im2col). */
bool tq_qconv_available(void);

/* The epilogue's rounding of t (positive: the bias holds 2^62): t >> shift, less one where
 * that is odd and t had no fraction bits (half to even), less offset, clamped, + zp. */
static inline int64_t tq_qconv_round(int64_t t, const tq_qconv_epilogue *ep)
{
    const uint64_t tie = ((uint64_t)t & ep->mask) == 0;
    int64_t v = (int64_t)(((uint64_t)t >> ep->shift) & ~tie) - ep->offset;
    const int64_t hi = ep->kind == TQ_QCONV_CODES ? ep->hi : INT32_MAX;
    v = v < ep->lo ? ep->lo : v > hi ? hi : v;
    return ep->kind == TQ_QCONV_CODES ? v + ep->zp : v;
}

/* One output value from its sum: the definition of the epilogue. */
static inline int64_t tq_qconv_value(int32_t sum, int64_t o, const tq_qconv_epilogue *ep)
{
    if (ep->kind == TQ_QCONV_SUMS) return sum;
    return tq_qconv_round((int64_t)sum * ep->mult[o] + ep->bias[o], ep);
}

/* The engine's other rescalings of int32 tensors, with the same epilogue, 8 values at a time
 * on AVX2 (plain C otherwise): count values whose channels repeat every `period` values (a
 * multiple of 8; mult and bias hold period entries), as tq_rowquant_codes/_fine with no
 * zero-point correction; and a residual add, round(a * ma + b * mb) as tq_add_codes/_fine,
 * t = a ma + b mb + bias through tq_qconv_round (ep's mult and bias unused). */
void tq_qconv_requant(const int32_t *a, int64_t count, int64_t period, const tq_qconv_epilogue *ep,
                      void *out);
void tq_qconv_add(const int32_t *a, const int32_t *b, int64_t count, int32_t ma, int32_t mb,
                  int64_t bias, const tq_qconv_epilogue *ep, void *out);

#endif
