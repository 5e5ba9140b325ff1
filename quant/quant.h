/* tinyqat quant: number formats, block formats, quantizers (spec + amax + state), the
 * fake-quant op with straight-through estimator, calibrators and error metrics.
 * Works on tensors only; knows nothing of layers. */
#ifndef TINYQAT_QUANT_H
#define TINYQAT_QUANT_H

#include <stdio.h>

#include "autograd.h"

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
} tq_qspec;

/* ---------------------------------------------------------------- quantizer */

typedef enum tq_qstate {
    TQ_QSTATE_OFF,         /* pass values through */
    TQ_QSTATE_CALIBRATING, /* observe values, pass them through */
    TQ_QSTATE_QUANTIZING,  /* fake-quantize with the fixed amax */
} tq_qstate;

typedef struct tq_quantizer tq_quantizer;

/* The quantizer op layers call on every input and weight: off -> x itself;
 * calibrating -> observes x, returns x; quantizing -> fake-quant op on the tape. */
tq_tensor *tq_quantize(tq_tape *t, tq_tensor *x, tq_quantizer *q);

#ifdef __cplusplus
}
#endif
#endif
