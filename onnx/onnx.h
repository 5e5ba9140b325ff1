/* tinyqat onnx: exports a model (float, PTQ or QAT) as an ONNX graph in which every quantizer
 * is a QuantizeLinear/DequantizeLinear (QDQ) pair, and reads ONNX files back for `info` and
 * the tests. Encoding and decoding go through protobuf-c and the ONNX schema. */
#ifndef TINYQAT_ONNX_H
#define TINYQAT_ONNX_H

#include <stdio.h>

#include "autograd.h"
#include "layers.h"
#include "quant.h"

/* A quantized model exported with QDQ quantizers and read back (checks left out; run as in
 * ptq.h's example):
 *
 *     tq_error err = {0};
 *     tq_onnx_options opt = {.mean = run.mean, .std = run.std};
 *     tq_onnx_stats stats;
 *     tq_onnx_export(run.model, &opt, "model.onnx", &stats, &err);
 *     tq_onnx *o = tq_onnx_load("model.onnx", &err);
 *     tq_onnx_describe(o, stdout);                     // inputs, outputs, ops, initializers
 *     tq_onnx_free(o);
 */

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- export
 * The graph takes one float32 input `input` [N,C,H,W] (N symbolic) of pixels scaled to
 * [0,1], normalises it itself (Sub mean, Div std, per channel, as the data loader does) and
 * gives one output `logits` [N,classes].
 *
 * Quantizers, as TensorRT's QAT guide places them: a layer's input quantizer becomes
 * QuantizeLinear -> DequantizeLinear on its input (after a Mul by its input_mul, if any);
 * its weight quantizer becomes an initializer holding the codes (integers or FP8 bits)
 * followed by DequantizeLinear (per tensor, per channel with `axis`, per block with
 * `block_size`). Scales are the ones fake quant uses (tq_quantizer_codes), zero points 0.
 *
 * What exports (TQ_ONNX_FORMATS): int8/uint8 (opset 13); int2..int4/uint2..uint4 in ONNX
 * INT4/UINT4 and int5..int7/uint5..uint7 in INT8/UINT8 (opset 21 for 4-bit containers); a
 * Clip after the activation's DequantizeLinear keeps narrower or narrow-range activations on
 * their grid, exactly; e4m3/e5m2 as FLOAT8E4M3FN/FLOAT8E5M2 (opset 19); per-block weights
 * (opset 21). Refused, with a message naming the layer: e2m1 (FP4), MX and NVFP4 (their E8M0
 * or E4M3 block scales have no ONNX Runtime kernel), per-block activations (their scales
 * change with every tensor). */
#define TQ_ONNX_FORMATS                                                                        \
    "int2..int8 and uint2..uint8 (per tensor or per channel; weights also per block), e4m3 " \
    "and e5m2 (FP8), with float32 scales"

typedef struct tq_onnx_options {
    const float *mean, *std; /* per input channel, as the checkpoint's normalisation */
    /* Also expose each QuantizeLinear's output, cast to float32 (the codes as numbers), as a
     * graph output `codes.<layer>` [N, per-sample shape], and its input as `qin.<layer>`,
     * for comparing codes (and telling rounding ties from errors). */
    bool expose_codes;
} tq_onnx_options;

/* Summary of an exported model. */
typedef struct tq_onnx_stats {
    int64_t opset, ir_version;
    int nodes, initializers, quantizers; /* quantizers: QDQ pairs, weights and activations */
    size_t bytes;
} tq_onnx_stats;

/* The model's ONNX encoding in a malloc'd buffer (*data, *len; the caller frees it).
 * Fails, with one line naming the layer and the formats that export, on a quantizer that
 * cannot be expressed, and on an activation quantizer without amax. */
tq_status tq_onnx_encode(tq_model *m, const tq_onnx_options *opt, uint8_t **data, size_t *len,
                         tq_onnx_stats *stats, tq_error *err);
/* tq_onnx_encode written to path atomically (tq_write_file_atomic). */
tq_status tq_onnx_export(tq_model *m, const tq_onnx_options *opt, const char *path,
                         tq_onnx_stats *stats, tq_error *err);

/* ---------------------------------------------------------------- reading back */

/* ONNX TensorProto element types this code names (the numbers are the schema's). */
enum {
    TQ_ONNX_FLOAT = 1, TQ_ONNX_UINT8 = 2, TQ_ONNX_INT8 = 3, TQ_ONNX_INT32 = 6,
    TQ_ONNX_INT64 = 7, TQ_ONNX_FLOAT8E4M3FN = 17, TQ_ONNX_FLOAT8E5M2 = 19, TQ_ONNX_UINT4 = 21,
    TQ_ONNX_INT4 = 22,
};
/* "float", "int8", "float8e4m3fn", ... ("type 42" for others, in buf). */
const char *tq_onnx_type_name(int32_t elem_type, char *buf, size_t len);

#define TQ_ONNX_MAX_DIMS 8

typedef struct tq_onnx tq_onnx; /* a model read back */

/* Parses an ONNX model; name is used in messages. A file that is not a protobuf ModelProto
 * with a graph, or whose graph is malformed (tensor data that does not match its shape and
 * type, more than TQ_ONNX_MAX_DIMS dimensions, nesting deeper than ONNX models go), is an
 * error naming the file and the problem. */
tq_onnx *tq_onnx_read(const void *data, size_t len, const char *name, tq_error *err);
tq_onnx *tq_onnx_load(const char *path, tq_error *err);
void tq_onnx_free(tq_onnx *o);

int64_t tq_onnx_ir_version(const tq_onnx *o);
/* The opset of the default ("" or "ai.onnx") domain, 0 if the model imports none. */
int64_t tq_onnx_opset(const tq_onnx *o);

/* A graph input or output. A dimension given by name has dims[i] = -1 and dim_param[i]. */
typedef struct tq_onnx_value {
    const char *name;
    int32_t elem_type;  /* 0 when the type is not a tensor type */
    int ndim;           /* -1 when no shape is given */
    int64_t dims[TQ_ONNX_MAX_DIMS];
    const char *dim_param[TQ_ONNX_MAX_DIMS];
} tq_onnx_value;
int tq_onnx_input_count(const tq_onnx *o);
int tq_onnx_output_count(const tq_onnx *o);
void tq_onnx_input(const tq_onnx *o, int i, tq_onnx_value *out);
void tq_onnx_output(const tq_onnx *o, int i, tq_onnx_value *out);

typedef struct tq_onnx_node {
    const char *name, *op_type, *domain;
    int n_inputs, n_outputs;
    const char *const *inputs, *const *outputs; /* "" for an omitted optional input */
} tq_onnx_node;
int tq_onnx_node_count(const tq_onnx *o);
void tq_onnx_node_get(const tq_onnx *o, int i, tq_onnx_node *out);
/* Integer attribute `attr` of node i, or dflt when it has none. */
int64_t tq_onnx_node_attr_int(const tq_onnx *o, int i, const char *attr, int64_t dflt);
/* Index of the first node that has `tensor` among its outputs (or inputs), -1 if none. */
int tq_onnx_node_producing(const tq_onnx *o, const char *tensor);
int tq_onnx_node_consuming(const tq_onnx *o, const char *tensor);

typedef struct tq_onnx_init {
    const char *name;
    int32_t elem_type;
    int ndim;
    int64_t dims[TQ_ONNX_MAX_DIMS];
    int64_t numel;
    size_t bytes; /* of its stored data */
} tq_onnx_init;
int tq_onnx_init_count(const tq_onnx *o);
void tq_onnx_init_get(const tq_onnx *o, int i, tq_onnx_init *out);
/* Index of the initializer with this name, -1 if none. */
int tq_onnx_init_find(const tq_onnx *o, const char *name);
/* Initializer i's values as float32 (numel of them): float as stored, integers (int4/uint4
 * unpacked, low nibble first) as numbers, FP8 bits decoded to their values. Fails for other
 * types. */
tq_status tq_onnx_init_values(const tq_onnx *o, int i, float *out, tq_error *err);

/* What `tinyqat info M.onnx` prints: versions, inputs, outputs, op counts, initializers. */
void tq_onnx_describe(const tq_onnx *o, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
