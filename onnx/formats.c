/* tinyqat's formats as ONNX element types: which container holds a quantizer's codes, the
 * opset that container needs, and the packing of codes into initializer bytes. */
#include "onnx_internal.h"

#include <string.h>

const char *tq_onnx_type_name(int32_t elem_type, char *buf, size_t len)
{
    static const char *const names[] = {
        [1] = "float", [2] = "uint8", [3] = "int8", [4] = "uint16", [5] = "int16",
        [6] = "int32", [7] = "int64", [8] = "string", [9] = "bool", [10] = "float16",
        [11] = "double", [12] = "uint32", [13] = "uint64", [14] = "complex64",
        [15] = "complex128", [16] = "bfloat16", [17] = "float8e4m3fn", [18] = "float8e4m3fnuz",
        [19] = "float8e5m2", [20] = "float8e5m2fnuz", [21] = "uint4", [22] = "int4",
        [23] = "float4e2m1",
    };
    if (elem_type > 0 && elem_type < (int32_t)(sizeof names / sizeof *names) && names[elem_type])
        return names[elem_type];
    snprintf(buf, len, "type %d", (int)elem_type);
    return buf;
}

static tq_status refuse(const tq_quantizer *q, bool weight, const char *layer, const char *why,
                        tq_error *err)
{
    char spec[128];
    tq_qspec_format(tq_quantizer_spec(q), spec, sizeof spec);
    return tq_fail(err, TQ_STATUS_ARG,
                   "onnx: layer %s: %s %s do not export (%s); formats that export: %s", layer,
                   weight ? "weights" : "activations", spec, why, TQ_ONNX_FORMATS);
}

tq_status tq_onnx_qtype_of(const tq_quantizer *q, bool weight, const char *layer,
                           tq_onnx_qtype *out, tq_error *err)
{
    const tq_qspec *s = tq_quantizer_spec(q);
    tq_format f = tq_quantizer_format(q);
    if (s->scale == TQ_SCALE_E8M0)
        return refuse(q, weight, layer, "MX block scales (E8M0) have no ONNX Runtime kernel", err);
    if (s->scale == TQ_SCALE_NVFP4)
        return refuse(q, weight, layer, "NVFP4's E4M3 block scales have no ONNX Runtime kernel",
                      err);
    if (f.kind == TQ_FORMAT_E2M1)
        return refuse(q, weight, layer, "FP4 needs opset 23, which the ONNX schema here lacks",
                      err);
    if (!weight && s->block == TQ_BLOCK_BLOCK)
        return refuse(q, weight, layer, "per-block activation scales change with every tensor",
                      err);
    memset(out, 0, sizeof *out);
    out->qmin = tq_format_min(f);
    out->qmax = tq_format_max(f);
    if (f.kind == TQ_FORMAT_E4M3 || f.kind == TQ_FORMAT_E5M2) {
        out->elem_type = f.kind == TQ_FORMAT_E4M3 ? TQ_ONNX_FLOAT8E4M3FN : TQ_ONNX_FLOAT8E5M2;
        out->opset = 19;
    } else {
        bool is_signed = f.kind == TQ_FORMAT_INT;
        bool four = f.bits <= 4;
        out->elem_type = four ? (is_signed ? TQ_ONNX_INT4 : TQ_ONNX_UINT4)
                              : (is_signed ? TQ_ONNX_INT8 : TQ_ONNX_UINT8);
        out->opset = four ? 21 : 13;
        /* A QuantizeLinear saturates at the container's range: a narrower grid (int2 in
         * int4, int6 in int8, narrow range) needs a Clip on the dequantized value, which is
         * exact because DequantizeLinear computes code * scale in float32 as fake quant does. */
        out->clip = !weight && (f.bits != (four ? 4 : 8) || f.narrow);
    }
    if (s->block == TQ_BLOCK_BLOCK && out->opset < 21) out->opset = 21; /* block_size */
    return TQ_STATUS_OK;
}

size_t tq_onnx_storage_bytes(int32_t elem_type, int64_t n)
{
    if (elem_type == TQ_ONNX_INT4 || elem_type == TQ_ONNX_UINT4) return (size_t)(n + 1) / 2;
    if (elem_type == TQ_ONNX_FLOAT) return (size_t)n * 4;
    return (size_t)n;
}

void tq_onnx_store_codes(int32_t elem_type, tq_format f, const float *codes, int64_t n,
                         uint8_t *dst)
{
    switch (elem_type) {
    case TQ_ONNX_INT4:
    case TQ_ONNX_UINT4:
        memset(dst, 0, tq_onnx_storage_bytes(elem_type, n));
        for (int64_t i = 0; i < n; i++) {
            uint8_t nibble = (uint8_t)((int32_t)codes[i] & 0xF); /* two's complement for int4 */
            dst[i / 2] |= (uint8_t)(i % 2 ? nibble << 4 : nibble);
        }
        break;
    case TQ_ONNX_FLOAT8E4M3FN:
    case TQ_ONNX_FLOAT8E5M2:
        for (int64_t i = 0; i < n; i++) dst[i] = (uint8_t)tq_format_encode(f, codes[i]);
        break;
    default: /* int8, uint8 */
        for (int64_t i = 0; i < n; i++) dst[i] = (uint8_t)(int32_t)codes[i];
        break;
    }
}

const char *tq_onnx_printable(const char *s, char *buf, size_t len)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < len; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = c < 0x20 || c == 0x7F ? '?' : (char)c;
    }
    if (len) buf[i] = '\0';
    return buf;
}
