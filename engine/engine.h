/* tinyqat engine: runs a quantized (PTQ or QAT) model in integers, the integer-only scheme of
 * Jacob et al. 2018, and packs weight codes two or four to a byte. Deployment sits above
 * layers and quant: the engine reads a model, never changes it. */
#ifndef TINYQAT_ENGINE_H
#define TINYQAT_ENGINE_H

#include <stdio.h>

#include "autograd.h"
#include "layers.h"
#include "quant.h"

/* A quantized model run in integers (checks left out; run holds a model quantized with the
 * int8 recipe, ptq.h, and test its test images):
 *
 *     tq_error err = {0};
 *     tq_engine *e = tq_engine_build(run.model, run.mean, run.std, &err);
 *     float *logits = malloc(sizeof(float) * test.n * tq_engine_classes(e));
 *     tq_engine_run(e, test.images, test.n, logits, &err); // uint8 pixels in, logits out
 *     tq_engine_describe(e, stdout);                       // the integer program, step by step
 *     free(logits);
 *     tq_engine_free(e);
 */

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- the integer engine
 *
 * What a fake-quant model computes in float, the engine computes on integer codes:
 *
 *   - A tensor that a quantizer consumes is held as its codes, one byte each: int8 codes
 *     shifted by +128 (the u8 operand that AVX-512 VNNI's vpdpbusd wants; the product is
 *     corrected by 128 * the weight row's sum), uint8 codes as they are. Layout NHWC, so a
 *     convolution is an im2col over (kh, kw, C) rows times the weights reordered to
 *     (O, kh, kw, C), and a Linear after a flatten reads the columns in (H, W, C) order.
 *   - The first layer's codes come straight from the uint8 pixels through a 256-entry
 *     table per channel: the input quantizer's code of the normalised pixel, so they are
 *     fake quant's codes exactly.
 *   - Products are u8 x s8 -> s32 (tq_qgemm, the fastest path the CPU has). int4 and int2
 *     weights are the same int8 operands: the engine keeps every layer's weight codes
 *     packed (8, 4 or 2 bits each, tq_packed) and unpacks them once, at build, into the
 *     product's operand. On AVX2 CPUs without VNNI a convolution runs directly instead:
 *     codes less their zero point, widened to 16 bits into a padded copy of each image,
 *     vpmaddwd against 16-bit weights, the requantization (and a 2x2 max pool after it,
 *     where every multiplier is >= 0) fused, no im2col (qconv.h says why not vpmaddubsw).
 *     Integer sums and the same rounding: the same bits on every path.
 *   - Requantization: the int32 accumulator of output channel o becomes the next tensor by
 *     one fixed-point multiplier and shift, M[o] = s_x * s_w[o] * k[o] / u, and one integer
 *     bias, c[o] / u at the same fixed point, added before the one rounding shift; k and c
 *     are 1 and the layer's bias b, or with a batch norm after the layer gamma /
 *     sqrt(var + eps) (negative when gamma is) and k (b - mean) + beta. u is the output's
 *     step: the scale of the codes (then a clamp to the format's range), or the unit of fine
 *     integers (below). The bias is not rounded to the accumulator's step s_x * s_w, as it
 *     is in Jacob et al.: there it is off by up to half an accumulator step, a sizeable part
 *     of an output step at low widths. On LeNet-5 on Fashion-MNIST that made 0.13% of the
 *     int8 codes and 0.37% of the w2a2 codes differ from fake quant's (4 and 1,313 of the
 *     10,000 test images classified differently); as here, 0.0004% and none (0 and 0).
 *   - Rounding: every rescaling rounds half to even, as fake quant (rintf) and ONNX
 *     QuantizeLinear do: add 2^(shift-1), shift right, and at an exact tie (no fraction bits
 *     left) take the even neighbour. Fake quant rounds float values, the engine exact ones,
 *     so a code differs by one step where float rounding in fake quant's own sums tips a
 *     value across a half step (rarely); by more only after an earlier difference in the
 *     same image (one step upstream moves later values, by several steps where a scale is
 *     fine against the weights).
 *   - Tensors that no quantizer sees in fake quant stay float there (ResNet-20's residual
 *     sum and block outputs, the input of a global average pool). The engine keeps those as
 *     int32 at a fine unit, the scale of the finest quantizer that consumes them / 2^16, so
 *     it adds no error that fake quant does not have; each consumer gets its own codes from
 *     them. ReLU and max pool run on codes or on these integers alike (both commute with
 *     rounding), average pools divide with rounding, a residual add rescales each side to
 *     the sum's unit.
 *   - The last layer is dequantized: logits = s_x s_w[o] acc + b[o], in float.
 *
 * Refused, with one line naming the layer and what the engine needs: float slots (--keep
 * float), weight-only recipes (no activation quantizer: w4a16), FP8/FP4 codes, per-block
 * weights, MX and NVFP4 block scales, per-channel activations, quantizers not yet
 * calibrated, weights wider than int8, a model not ending in a Linear. */

typedef struct tq_engine tq_engine;

/* Compiles model m, whose Linear and Conv2d layers all carry quantizing integer quantizers,
 * for images normalised as (p / 255 - mean[c]) / std[c]. The engine copies what it needs:
 * m may change or be freed afterwards. NULL (err set) when the model cannot run in integers. */
tq_engine *tq_engine_build(tq_model *m, const float *mean, const float *std, tq_error *err);
void tq_engine_free(tq_engine *e);

/* Logits (n, classes) for n images of uint8 pixels (C,H,W each, as data sets hold them).
 * Buffers are the engine's own, reused across calls: one engine runs one call at a time. */
tq_status tq_engine_run(tq_engine *e, const uint8_t *images, int64_t n, float *logits,
                        tq_error *err);

/* As tq_engine_run, also writing the input codes of every Linear and Conv2d (qlayer qi in
 * tq_model_qlayer order) in fake quant's layout, (N,C,H,W) or (N,F): codes[qi] receives
 * n * tq_engine_qlayer_input_numel(e, qi) values (codes[qi] NULL: not wanted). These are
 * what tq_quantizer_codes gives on fake quant's input to that layer. */
tq_status tq_engine_run_traced(tq_engine *e, const uint8_t *images, int64_t n, float *logits,
                               int16_t *const *codes, tq_error *err);
int tq_engine_qlayer_count(const tq_engine *e);
int64_t tq_engine_qlayer_input_numel(const tq_engine *e, int qi); /* per image */
int32_t tq_engine_classes(const tq_engine *e);

/* "vnni", "avx2" or "portable": the products this CPU runs (TQ_QGEMM=portable forces the
 * portable one, TQ_QGEMM=avx2 the AVX2 one on a VNNI CPU); all give the same bits. */
const char *tq_engine_backend(void);

/* The program, one line per step: what each reads and writes, at which scales. */
void tq_engine_describe(const tq_engine *e, FILE *out);

/* ---------------------------------------------------------------- packed weight codes
 * Integer codes at 8, 4 or 2 bits each, two's complement, the first code in the lowest
 * bits of its byte: int4 two per byte, int2 four per byte. */

typedef struct tq_packed {
    int bits;      /* 8, 4 or 2 */
    int64_t n;     /* codes */
    uint8_t *data; /* tq_packed_bytes(n, bits) bytes */
} tq_packed;

/* The container a format of `bits` bits is stored in: 2 (1-2 bits), 4 (3-4) or 8. */
int tq_packed_bits_for(int bits);
int64_t tq_packed_bytes(int64_t n, int bits);
/* Packs n codes, each representable in `bits` bits (signed); fails on one that is not. */
tq_status tq_pack_codes(const int8_t *codes, int64_t n, int bits, tq_packed *out,
                        tq_error *err);
void tq_unpack_codes(const tq_packed *p, int8_t *out);
void tq_packed_free(tq_packed *p);

/* ---------------------------------------------------------------- model bytes
 * What a model takes to store for inference: Linear/Conv2d weights packed at a width, one
 * float32 scale per output channel and one per input, and everything else (biases, batch
 * norm parameters and statistics) as float32. */

typedef struct tq_model_bytes {
    int64_t float32, int8, int4, int2;
    int64_t own;    /* at the formats the model's quantizers use (float32 where none) */
    bool quantized; /* some layer has a quantizer */
} tq_model_bytes;

tq_status tq_model_bytes_of(tq_model *m, tq_model_bytes *out, tq_error *err);
/* The figures as a few lines, for `tinyqat info`. */
void tq_model_bytes_print(tq_model *m, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
