/* Private to onnx/: a builder that assembles protobuf-c ONNX messages (every allocation
 * tracked, freed at once), and the mapping of tinyqat's formats onto ONNX types. */
#ifndef TINYQAT_ONNX_INTERNAL_H
#define TINYQAT_ONNX_INTERNAL_H

#include "onnx.h"
#include "onnx.pb-c.h" /* generated at build time by protoc-c from onnx.proto */

/* The graph under construction. Strings, arrays and messages all come from ob_alloc; the
 * first failure (out of memory) is kept and makes later calls no-ops returning NULL. */
typedef struct tq_ob {
    void **allocs;
    size_t n_allocs, cap_allocs;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    Onnx__ValueInfoProto **outputs;
    size_t n_outputs, cap_outputs;
    bool oom;
} tq_ob;

void *tq_ob_alloc(tq_ob *b, size_t size); /* zeroed */
char *tq_ob_str(tq_ob *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tq_ob_free(tq_ob *b);

/* A node op_type(inputs) -> output; inputs may hold "" for an omitted optional input. */
Onnx__NodeProto *tq_ob_node(tq_ob *b, const char *op_type, const char *name, int n_inputs,
                            const char *const *inputs, const char *output);
void tq_ob_attr_int(tq_ob *b, Onnx__NodeProto *n, const char *name, int64_t v);
void tq_ob_attr_float(tq_ob *b, Onnx__NodeProto *n, const char *name, float v);
void tq_ob_attr_ints(tq_ob *b, Onnx__NodeProto *n, const char *name, int count,
                     const int64_t *v);
/* An initializer holding `bytes` of little-endian raw data (copied). */
void tq_ob_init_raw(tq_ob *b, const char *name, int32_t elem_type, int ndim,
                    const int64_t *dims, const void *raw, size_t bytes);
void tq_ob_init_float(tq_ob *b, const char *name, int ndim, const int64_t *dims,
                      const float *v);
/* A tensor type [N, dims...] with N symbolic (dim_param "N"). */
Onnx__ValueInfoProto *tq_ob_value(tq_ob *b, const char *name, int32_t elem_type, int ndim,
                                  const int64_t *dims);
void tq_ob_output(tq_ob *b, Onnx__ValueInfoProto *v);

/* ---- formats */

/* How one quantizer's codes are stored: the ONNX element type, the opset it needs, and the
 * grid a Clip must restore when the container's range is wider (clip false: none needed). */
typedef struct tq_onnx_qtype {
    int32_t elem_type;
    int64_t opset;
    bool clip;
    float qmin, qmax;
} tq_onnx_qtype;
/* The storage of quantizer q (weight or activation) of layer `layer`, or an error naming the
 * layer and listing what exports. */
tq_status tq_onnx_qtype_of(const tq_quantizer *q, bool weight, const char *layer,
                           tq_onnx_qtype *out, tq_error *err);
/* Bytes for n codes of elem_type (int4/uint4 packed two per byte). */
size_t tq_onnx_storage_bytes(int32_t elem_type, int64_t n);
/* Stores n codes (grid values, as tq_quantizer_codes gives them) as elem_type, packing
 * 4-bit values low nibble first as ONNX does. dst holds tq_onnx_storage_bytes bytes. */
void tq_onnx_store_codes(int32_t elem_type, tq_format f, const float *codes, int64_t n,
                         uint8_t *dst);

/* ---- the export in progress */

typedef struct tq_onnx_ex {
    tq_ob b;
    tq_model *m;
    const tq_onnx_options *opt;
    tq_error *err;
    int64_t opset;    /* the highest any node needs */
    int quantizers;   /* QDQ pairs emitted */
} tq_onnx_ex;

/* Emits layer l's input quantizer (and input_mul) on tensor `in`; returns the name of the
 * tensor the op reads, or NULL (error set). */
const char *tq_onnx_emit_input(tq_onnx_ex *x, const tq_layer_info *l, const tq_qlayer *q,
                               const char *in);
/* Emits layer l's weight: a float initializer, or codes + DequantizeLinear. Returns the
 * name of the weight tensor the op reads, or NULL (error set). */
const char *tq_onnx_emit_weight(tq_onnx_ex *x, const tq_layer_info *l, const tq_qlayer *q);

/* s cut to fit buf, with every control character shown as '?': names from a file go into
 * one-line messages and `info` lines. */
const char *tq_onnx_printable(const char *s, char *buf, size_t len);

/* Rejects protobuf input whose messages nest deeper than `max_depth` (protobuf-c's
 * unpacker recurses once per level and has no limit of its own), or whose wire format is
 * broken before that depth. true when the input is safe to unpack. */
bool tq_onnx_depth_ok(const uint8_t *data, size_t len, const ProtobufCMessageDescriptor *d,
                      int max_depth);

#endif
