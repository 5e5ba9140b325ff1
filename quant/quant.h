/* tinyqat quant: number formats, block formats, quantizers (spec + amax + state), the
 * fake-quant op with straight-through estimator, calibrators and error metrics.
 * Works on tensors only; knows nothing of layers. */
#ifndef TINYQAT_QUANT_H
#define TINYQAT_QUANT_H

#include <stdio.h>

#include "autograd.h"

/* A weight quantizer and an input quantizer around one Linear op (checks left out; w, b,
 * x and the tape as in autograd.h's example, batches[] some calibration inputs):
 *
 *     tq_error err = {0};
 *     tq_qspec ws, xs;
 *     tq_qspec_parse("int4:channel=0", &ws, &err);      // 4 bits, a scale per output channel
 *     tq_qspec_parse("int8:calib=percentile", &xs, &err);
 *     tq_quantizer *wq = tq_quantizer_new(&ws, &err), *xq = tq_quantizer_new(&xs, &err);
 *
 *     tq_quantizer_calibrate_weight(wq, w, &err);       // weights: amax from the weights
 *     tq_quantizer_set_state(wq, TQ_QSTATE_QUANTIZING);
 *
 *     tq_quantizer_set_state(xq, TQ_QSTATE_CALIBRATING); // inputs: observe some batches
 *     for (int i = 0; i < n_batches; i++) tq_quantize(tape, batches[i], xq);
 *     tq_quantizer_finish_calibration(xq, &err);        // amax: the 99.99th percentile
 *     tq_quantizer_set_state(xq, TQ_QSTATE_QUANTIZING);
 *
 *     tq_tensor *y = tq_linear(tape, tq_quantize(tape, x, xq), tq_quantize(tape, w, wq), b);
 *     // forward with fake-quantized x and w; in backward the gradient passes where
 *     // |value| <= amax (STE with clipping), and w's lands in w->grad as without quantizers
 *     tq_quantizer_free(wq);
 *     tq_quantizer_free(xq);
 *
 * Linear and Conv2d layers hold such quantizers in their slots (layers.h), and recipes put
 * them there (ptq.h). */

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- formats */

typedef enum tq_format_kind {
    TQ_FORMAT_INT,  /* signed, bits 2..8 */
    TQ_FORMAT_UINT, /* unsigned, bits 2..8 */
    TQ_FORMAT_E4M3, /* FP8, no infinities, max 448 */
    TQ_FORMAT_E5M2, /* FP8, IEEE-like, max 57344 */
    TQ_FORMAT_E2M1, /* FP4: 0, 0.5, 1, 1.5, 2, 3, 4, 6 */
} tq_format_kind;

typedef struct tq_format {
    tq_format_kind kind;
    int bits;        /* for INT/UINT */
    bool narrow;     /* INT only: symmetric -(2^(b-1)-1)..2^(b-1)-1 */
} tq_format;

float tq_format_max(tq_format f);  /* largest representable value (qmax) */
float tq_format_min(tq_format f);  /* smallest (qmin): -qmax, -2^(b-1), or 0 */
/* Rounds v (already divided by the scale) onto the format's grid: half to even,
 * saturating at the largest finite value, subnormals included. */
float tq_format_round(tq_format f, float v);
bool tq_format_is_float(tq_format f);
/* Number of non-negative representable values (int8: 128, uint8: 256, e2m1: 8). */
int tq_format_nonneg_levels(tq_format f);
/* "int8", "uint4", "e4m3" (narrow range is a spec option, not part of the name). */
const char *tq_format_name(tq_format f, char *buf, size_t len);

/* One representable value and its bit pattern (two's complement for INT). */
typedef struct tq_grid_entry {
    float value;
    uint32_t code;
} tq_grid_entry;
/* Every representable finite value (both zeros for FP formats, -0 first), ascending by
 * value. Writes at most cap entries and returns how many there are (at most 256). */
int tq_format_grid(tq_format f, tq_grid_entry *out, int cap);
/* The grid as "code value" lines under a one-line header, for `tinyqat grid`. */
void tq_format_print_grid(FILE *out, tq_format f);

/* ---------------------------------------------------------------- block formats */

typedef enum tq_block_kind {
    TQ_BLOCK_TENSOR,  /* one scale */
    TQ_BLOCK_CHANNEL, /* one scale per index along axis */
    TQ_BLOCK_BLOCK,   /* blocks of block_size along axis (last block may be shorter) */
} tq_block_kind;

typedef enum tq_scale_kind {
    TQ_SCALE_FLOAT, /* float32 scale = amax / qmax */
    TQ_SCALE_E8M0,  /* MX: power-of-two scales */
    TQ_SCALE_NVFP4, /* E4M3 block scales under one float32 global scale */
} tq_scale_kind;

typedef enum tq_calib_kind {
    TQ_CALIB_MAX,
    TQ_CALIB_PERCENTILE,
    TQ_CALIB_MSE,
    TQ_CALIB_ENTROPY,
} tq_calib_kind;

typedef enum tq_ste_kind {
    TQ_STE_CLIP,        /* gradient where |x| <= amax, zero outside */
    TQ_STE_PASSTHROUGH, /* gradient everywhere */
} tq_ste_kind;

/* A quantizer's specification, as parsed from "int4:block=32:calib=mse". */
typedef struct tq_qspec {
    tq_format format;
    tq_block_kind block;
    int axis;        /* CHANNEL/BLOCK; -1 = last */
    int block_size;  /* BLOCK */
    tq_scale_kind scale;
    tq_calib_kind calib;
    float percentile; /* TQ_CALIB_PERCENTILE, default 99.99 */
    tq_ste_kind ste;
    bool auto_unsigned; /* activations never negative in calibration -> uintN (default on) */
    bool learn_scale;   /* scale=learn: QAT learns amax (LSQ, see below); default fixed */
} tq_qspec;

/* int8, per-tensor, max calibration, STE with clipping, auto-unsigned on, fixed scales. */
tq_qspec tq_qspec_default(void);
/* Parses "format[:option...]"; on error leaves *out untouched and says which token is bad
 * and what is accepted. */
tq_status tq_qspec_parse(const char *str, tq_qspec *out, tq_error *err);
/* Canonical string (only non-default options) that parses back to the same spec.
 * Returns the length it needed (snprintf convention). */
int tq_qspec_format(const tq_qspec *s, char *buf, size_t len);
bool tq_qspec_equal(const tq_qspec *a, const tq_qspec *b);

/* ---------------------------------------------------------------- quantizer */

typedef enum tq_qstate {
    TQ_QSTATE_OFF,         /* pass values through */
    TQ_QSTATE_CALIBRATING, /* observe values, pass them through */
    TQ_QSTATE_QUANTIZING,  /* fake-quantize with the fixed amax */
} tq_qstate;

typedef struct tq_quantizer tq_quantizer;

/* Starts OFF with no amax. NULL (and err set) for an invalid spec. */
tq_quantizer *tq_quantizer_new(const tq_qspec *spec, tq_error *err);
void tq_quantizer_free(tq_quantizer *q);
/* The spec as given (before any auto-unsigned switch); its canonical string is what a
 * checkpoint stores. */
const tq_qspec *tq_quantizer_spec(const tq_quantizer *q);
/* The element format in use: the spec's, or uintN after the auto-unsigned switch. */
tq_format tq_quantizer_format(const tq_quantizer *q);
void tq_quantizer_set_state(tq_quantizer *q, tq_qstate state);
tq_qstate tq_quantizer_state(const tq_quantizer *q);
const char *tq_qstate_name(tq_qstate state);

/* amax layout: per-tensor 1; per-channel shape[axis]; per-block [outer][blocks][inner]
 * (outer/inner = product of the dimensions before/after the axis). A per-block quantizer
 * holding a single amax not from weights (calibrated on activations) computes block amax
 * from each tensor, clipped to that value, however many blocks the tensor has. */
int64_t tq_quantizer_amax_count(const tq_quantizer *q);
const float *tq_quantizer_amax(const tq_quantizer *q);
/* Replaces the amax array (checkpoint load); values must be finite and >= 0. */
tq_status tq_quantizer_set_amax(tq_quantizer *q, const float *amax, int64_t n, tq_error *err);
/* Marks q's amax as coming from weights, as tq_quantizer_calibrate_weight leaves it (for a
 * checkpoint's weight slots): a per-block quantizer holding a single amax then uses it as
 * the amax of the single block, not as a clip on block amax computed from each tensor. */
void tq_quantizer_mark_from_weights(tq_quantizer *q);
/* The auto-unsigned decision (restored from a checkpoint with the setter). */
bool tq_quantizer_unsigned_chosen(const tq_quantizer *q);
tq_status tq_quantizer_set_unsigned_chosen(tq_quantizer *q, bool on, tq_error *err);

/* amax straight from the weights: abs max per block (per-channel, per-block), or the
 * calibrator run over the weights for per-tensor. Works in any state; later observations
 * do not override it. */
tq_status tq_quantizer_calibrate_weight(tq_quantizer *q, const tq_tensor *w, tq_error *err);
/* Turns what the calibrator observed into amax, then applies the auto-unsigned rule.
 * A quantizer already calibrated from weights keeps its amax. Fails if nothing was seen. */
tq_status tq_quantizer_finish_calibration(tq_quantizer *q, tq_error *err);
/* Forgets observations and amax (back to an uncalibrated quantizer, state unchanged). */
void tq_quantizer_reset(tq_quantizer *q);
/* One line for `tinyqat info`: format, block format, calibrator, amax range, unsigned choice. */
const char *tq_quantizer_describe(const tq_quantizer *q, char *buf, size_t len);
/* Fake-quantizes x into out (x->numel floats) with the quantizer's amax, whatever its
 * state: for error metrics outside the tape. */
tq_status tq_quantizer_apply(const tq_quantizer *q, const tq_tensor *x, float *out,
                             tq_error *err);

/* The quantizer op layers call on every input and weight: off -> x itself;
 * calibrating -> observes x, returns x; quantizing -> fake-quant op on the tape.
 * A NULL quantizer (a float slot) returns x. */
tq_tensor *tq_quantize(tq_tape *t, tq_tensor *x, tq_quantizer *q);

/* What calibration saw (quant/calib_view.c), for figures: the |x| histogram of a per-tensor
 * quantizer calibrated with a histogram calibrator (percentile, MSE, entropy), nbins equal
 * bins over [0, range); valid until the quantizer is reset, recalibrated or freed. */
typedef struct tq_calib_hist {
    const double *counts;
    int nbins;
    float range, absmax; /* the range covered, the largest |x| seen */
    int64_t count;       /* values seen */
    bool negative;       /* a negative value was seen */
} tq_calib_hist;
/* Makes q keep the histogram in its next calibration even with max calibration (whose amax
 * it leaves unchanged), for the report's figures. */
void tq_quantizer_keep_histogram(tq_quantizer *q);
/* false when q kept no histogram (max calibration, per-channel, nothing seen). */
bool tq_quantizer_calib_hist(const tq_quantizer *q, tq_calib_hist *out);
/* The amax calibrator k (percentile: at `percentile`) picks from h for elements of format f:
 * what calibration itself computes. */
float tq_calib_hist_amax(const tq_calib_hist *h, tq_calib_kind k, float percentile, tq_format f);
/* The squared error of fake-quantizing h's values (each bin's at its centre) with amax on
 * format f, summed: over the values beyond amax (clipping) and within it (rounding). */
void tq_calib_hist_error(const tq_calib_hist *h, float amax, tq_format f, double *clip,
                         double *rounding);

/* ---------------------------------------------------------------- learned scales (LSQ)
 * With scale=learn in its spec, a quantizer's amax is a parameter of QAT: Learned Step Size
 * Quantization (Esser et al. 2019). With s = amax / qmax the step, v = x / s and the format's
 * code range [qmin, qmax] = [-Q_N, Q_P] (Q_P = qmax for intN/uintN, the format's largest
 * value for e4m3/e5m2/e2m1):
 *   d x_hat / d s = round(v) - v   where qmin <= v <= qmax (round: the format's rounding)
 *                 = qmin or qmax   where v is below or above the range (the clipped code)
 *   d x_hat / d x = 1 inside the range, 0 outside (LSQ's STE, on the code range itself;
 *                   ste=pass passes it everywhere)
 * and amax's gradient is g * sum(dL/dx_hat * dx_hat/ds) * ds/damax, ds/damax = 1 / qmax,
 * with LSQ's gradient scale g = 1 / sqrt(N * Q_P), N the elements that amax covers in the
 * call (the whole tensor per tensor, one channel's elements per channel). The forward is the
 * fixed-scale fake quant's, to the bit. Learned: float scales per tensor or per channel;
 * not per-block amax (block=N) nor MX/NVFP4 scales, whose steps are powers of two or E4M3
 * values computed from each block. A zero amax (a channel with no range) learns nothing. */

/* The smallest amax a learned step can leave (tq_quantizer_set_learned_amax). */
#define TQ_LEARNED_AMAX_FLOOR 1e-6f
/* The formats and block formats that can learn, for messages. */
#define TQ_LEARN_SCALE_ACCEPTED \
    "intN, uintN, e4m3, e5m2 and e2m1 with float scales per tensor or per channel"

/* Whether spec s can learn its scales; when not, err says which can. */
tq_status tq_qspec_check_learnable(const tq_qspec *s, tq_error *err);
/* Turns scale learning on or off for q (its spec changes; amax stays). Fails, q unchanged,
 * when q's spec cannot learn. */
tq_status tq_quantizer_set_learn_scale(tq_quantizer *q, bool on, tq_error *err);
bool tq_quantizer_learns_scale(const tq_quantizer *q);
/* amax's gradient (tq_quantizer_amax_count values), accumulated by every backward of the
 * fake-quant op since the caller last zeroed it; NULL unless q learns and has amax. */
float *tq_quantizer_amax_grad(tq_quantizer *q);
/* Replaces a learning quantizer's amax after an optimizer step: each value at least
 * TQ_LEARNED_AMAX_FLOOR; a zero amax stays zero, a non-finite value keeps the old one. */
void tq_quantizer_set_learned_amax(tq_quantizer *q, const float *amax);

/* ---------------------------------------------------------------- codes, for deployment
 * Fake quant split in two: fake_quant(x)[i] = codes[i] * scale[layout index of i], to the
 * bit, with codes on the format's grid (integers for intN/uintN, grid values for FP
 * formats). Exporters store the codes as integers or FP8 bits; the integer engine
 * multiplies them. Scales are laid out like amax (see tq_quantizer_amax_count). */

/* How many scales quantizer q uses on a tensor of x's shape (per tensor 1, per channel
 * shape[axis], per block outer * blocks * inner), or -1 (err set) if its axis does not
 * exist in x. */
int64_t tq_quantizer_scale_count(const tq_quantizer *q, const tq_tensor *x, tq_error *err);
/* The scales q uses on x and, when codes is not NULL, x's codes (x->numel floats). A scale
 * of 0 (amax 0) gives codes 0. Fails if q has no amax or its count does not fit x. */
tq_status tq_quantizer_codes(const tq_quantizer *q, const tq_tensor *x, float *codes,
                             float *scales, tq_error *err);
/* The bit pattern of value v on format f's grid, as tq_format_grid lists it (two's
 * complement in f.bits for intN; the E4M3/E5M2/E2M1 encoding, +0 for zero). v must be a
 * grid value (a code from tq_quantizer_codes). */
uint32_t tq_format_encode(tq_format f, float v);

/* One scale as its scale format stores it. The step is the scale tq_quantizer_codes gives
 * (fake_quant(x)[i] = code * step); the other fields say where it comes from:
 *   TQ_SCALE_FLOAT  step = amax / qmax, a float32.
 *   TQ_SCALE_E8M0   (MX) a shared exponent stored as the byte exponent + 127; step =
 *                   2^exponent for FP elements, 2^(exponent - (N-2)) for intN elements (MXINT8
 *                   codes are 1.6 fixed point: -2..2 in steps of 2^-6).
 *   TQ_SCALE_NVFP4  step = block_scale * global_scale: an E4M3 block scale under one float32
 *                   global scale, global amax / (448 * 6).
 * A block whose amax is 0 has step 0 and codes 0 (any stored scale would do). */
typedef struct tq_scale_parts {
    float step;         /* what the codes multiply */
    float amax;         /* the amax behind it (a block's abs max, clipped to a single amax) */
    int exponent;       /* E8M0: the shared exponent, -127..127 */
    float block_scale;  /* NVFP4: the E4M3 block scale (a value on the e4m3 grid) */
    float global_scale; /* NVFP4: the float32 global scale, the same for every block */
} tq_scale_parts;
/* The scales q uses on x, laid out as tq_quantizer_codes's (tq_quantizer_scale_count of
 * them), each split into the parts its scale format stores: what `tinyqat fq` prints, and
 * what an exporter of MX or NVFP4 writes. Fails as tq_quantizer_codes does. */
tq_status tq_quantizer_scale_parts(const tq_quantizer *q, const tq_tensor *x,
                                   tq_scale_parts *parts, tq_error *err);

/* ---------------------------------------------------------------- weight rescaling
 * SmoothQuant and AWQ move range between the input activations of a Linear or Conv2d and
 * its weights, one scale per input channel c (axis 1 of (O,C) or (O,C,kh,kw)): weights are
 * multiplied by s[c], inputs divided by it. These compute the scales; the layer does the
 * rest. */

/* s[c] = act_amax[c]^alpha / w_amax[c]^(1-alpha), w_amax[c] the abs max of the weights of
 * input channel c; 1 for a channel whose activation or weight amax is 0, clamped to
 * [1e-5, 1e5]. alpha in [0, 1]. */
tq_status tq_smoothquant_scales(const tq_tensor *w, const float *act_amax, float alpha,
                                float *s, tq_error *err);
/* AWQ candidate: s[c] = act_mean[c]^a (mean |x_c| over calibration data), normalised so
 * that sqrt(max s * min s) = 1; channels with a zero mean count as the smallest nonzero one. */
void tq_awq_scales(const float *act_mean, int32_t n, float a, float *s);
/* AWQ clipping: shrinks each amax of weight quantizer q (already calibrated on w) by the
 * factor in 1.0, 0.95, ..., 0.5 minimising sum over its elements of
 * importance[c] * (w - Q(w))^2, importance[c] = mean x_c^2 (the expected squared output
 * error for inputs uncorrelated across channels). */
tq_status tq_awq_clip_search(tq_quantizer *q, const tq_tensor *w, const float *importance,
                             tq_error *err);
/* For each amax of weight quantizer q on w (O,...), the output channel (index along axis 0)
 * of every weight it scales, or -1 when it scales weights of several output channels
 * (per-tensor, per-channel along another axis): which amax can be changed for one output
 * channel without touching the others. */
tq_status tq_quantizer_amax_rows(const tq_quantizer *q, const tq_tensor *w, int32_t *rows,
                                 tq_error *err);

/* ---------------------------------------------------------------- GPTQ
 * GPTQ (Frantar et al. 2022) chooses the codes of a weight matrix W (O, K) one input column
 * at a time so that the layer's output W X moves as little as possible over calibration
 * inputs X: each column is rounded, and its rounding error, weighted by the inverse of
 * H = (2/N) sum x x^T, is spread over the columns not yet rounded. The scales stay those
 * the weight quantizer took from the weights (max or MSE, as its spec says); GPTQ only
 * picks codes against them, with the quantizer's own rounding, so every format and block
 * format works. A Linear's x is its input row (K = C); a Conv2d's is one im2col column,
 * the receptive field of an output position in the (C, kh, kw) order of the weight's
 * flattening (K = C kh kw). */

/* H over the inputs seen so far, (2/n) sum x x^T in double (k * k, both triangles). */
typedef struct tq_gptq_hessian {
    int64_t k; /* inputs per vector: C (Linear) or C kh kw (Conv2d) */
    int64_t n; /* vectors seen */
    double *h;
} tq_gptq_hessian;

tq_status tq_gptq_hessian_init(tq_gptq_hessian *h, int64_t k, tq_error *err);
void tq_gptq_hessian_free(tq_gptq_hessian *h);
/* Adds the rows of x (N, k) (any shape of N * k values, N = shape[0]). mul: NULL, or k
 * factors each x_c is multiplied by first (the layer's input_mul). */
tq_status tq_gptq_hessian_add_rows(tq_gptq_hessian *h, const tq_tensor *x, const float *mul,
                                   tq_error *err);
/* Adds every receptive field of a square-or-not kh x kw kernel moved by stride over x
 * (N, C, H, W) zero-padded by pad: N OH OW vectors of C kh kw values. mul: NULL or C
 * factors. */
tq_status tq_gptq_hessian_add_conv(tq_gptq_hessian *h, const tq_tensor *x, int kh, int kw,
                                   int stride, int pad, const float *mul, tq_error *err);

typedef struct tq_gptq_opts {
    double damp;    /* lambda = damp * mean(diag H), added to the diagonal; finite, >= 0 */
    bool act_order; /* columns by descending diag H (the inputs with most energy first) */
    int block;      /* columns per lazy update of the rest of W (>= 1) */
} tq_gptq_opts;
/* damp 0.01, in order, blocks of 128: the paper's. */
tq_gptq_opts tq_gptq_defaults(void);

typedef struct tq_gptq_result {
    int64_t dead;     /* inputs that were always 0 (H_ii = 0): their weights set to 0 */
    double lambda;    /* the dampening added to diag H */
    /* The layer output's squared error on the calibration inputs, per input vector,
     * sum_o (w_o - q_o)^T H (w_o - q_o) / 2 with H undamped: GPTQ's codes, and
     * round-to-nearest's with the same scales. */
    double err_gptq, err_rtn;
} tq_gptq_result;

/* GPTQ on weights w (O, ...) viewed as (O, K), K = numel / O, with H (K * K, symmetric,
 * row-major; the (2/N) sum x x^T of tq_gptq_hessian). q holds amax from w (e.g.
 * tq_quantizer_calibrate_weight) and is not changed. On success w holds the dequantized
 * GPTQ weights, code * scale exactly as fake quant computes them, so fake quant with q
 * reproduces them to the bit. Fails, leaving w untouched, when damp is negative or not
 * finite, H is not finite, or H + lambda I is not positive definite (raise damp: a
 * positive damp makes any H that is a sum of x x^T positive definite). */
tq_status tq_gptq_quantize(const tq_quantizer *q, tq_tensor *w, const double *H,
                           const tq_gptq_opts *opts, tq_gptq_result *res, tq_error *err);

/* ---------------------------------------------------------------- metrics */

/* 10 log10(sum x^2 / sum (x - xq)^2); +inf when the error is zero. */
double tq_sqnr_db(const float *x, const float *xq, int64_t n);
/* mean (x - xq)^2 */
double tq_quant_mse(const float *x, const float *xq, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
