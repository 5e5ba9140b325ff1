/* Fuzz target for the ONNX reader behind `tinyqat info M.onnx`: tq_onnx_read must fail with
 * a one-line "onnx: ..." message or give a model whose every accessor stays within what the
 * file holds: shapes within bounds, initializer data as long as type and shape say, values
 * decodable for the types the reader names, the description printable. */
#include <math.h>

#include "fuzz_util.h"
#include "onnx.h"

static void check_value(const tq_onnx_value *v)
{
    FUZZ_CHECK(v->name != NULL);
    FUZZ_CHECK(v->ndim >= -1 && v->ndim <= TQ_ONNX_MAX_DIMS);
    for (int d = 0; d < v->ndim; d++) /* a named dimension reads as -1 */
        FUZZ_CHECK(!v->dim_param[d] || v->dims[d] == -1);
}

static bool decodable(int32_t t)
{
    return t == TQ_ONNX_FLOAT || t == TQ_ONNX_INT8 || t == TQ_ONNX_UINT8 || t == TQ_ONNX_INT4 ||
           t == TQ_ONNX_UINT4 || t == TQ_ONNX_FLOAT8E4M3FN || t == TQ_ONNX_FLOAT8E5M2;
}

static void check_model(const tq_onnx *o)
{
    tq_onnx_value v;
    for (int i = 0; i < tq_onnx_input_count(o); i++) {
        tq_onnx_input(o, i, &v);
        check_value(&v);
    }
    for (int i = 0; i < tq_onnx_output_count(o); i++) {
        tq_onnx_output(o, i, &v);
        check_value(&v);
    }
    for (int i = 0; i < tq_onnx_node_count(o); i++) {
        tq_onnx_node n;
        tq_onnx_node_get(o, i, &n);
        FUZZ_CHECK(n.op_type != NULL && n.name != NULL && n.n_inputs >= 0 && n.n_outputs >= 0);
        for (int k = 0; k < n.n_inputs; k++) FUZZ_CHECK(n.inputs[k] != NULL);
        for (int k = 0; k < n.n_outputs; k++) {
            FUZZ_CHECK(n.outputs[k] != NULL);
            int p = tq_onnx_node_producing(o, n.outputs[k]);
            FUZZ_CHECK(p >= 0 && p <= i);
        }
        (void)tq_onnx_node_attr_int(o, i, "axis", 0);
    }
    for (int i = 0; i < tq_onnx_init_count(o); i++) {
        tq_onnx_init t;
        tq_onnx_init_get(o, i, &t);
        FUZZ_CHECK(t.ndim >= 0 && t.ndim <= TQ_ONNX_MAX_DIMS && t.numel >= 0);
        int64_t n = 1;
        for (int d = 0; d < t.ndim; d++) {
            FUZZ_CHECK(t.dims[d] >= 0);
            n *= t.dims[d];
        }
        FUZZ_CHECK(n == t.numel);
        FUZZ_CHECK(tq_onnx_init_find(o, t.name) >= 0);
        if (!decodable(t.elem_type) || t.numel > (1 << 24)) continue;
        float *vals = malloc((size_t)(t.numel ? t.numel : 1) * sizeof *vals);
        FUZZ_CHECK(vals != NULL);
        tq_error err = {0};
        FUZZ_CHECK(tq_onnx_init_values(o, i, vals, &err) == TQ_STATUS_OK);
        for (int64_t k = 0; k < t.numel; k++) {
            if (t.elem_type == TQ_ONNX_INT8) FUZZ_CHECK(vals[k] >= -128 && vals[k] <= 127);
            if (t.elem_type == TQ_ONNX_UINT8) FUZZ_CHECK(vals[k] >= 0 && vals[k] <= 255);
            if (t.elem_type == TQ_ONNX_INT4) FUZZ_CHECK(vals[k] >= -8 && vals[k] <= 7);
            if (t.elem_type == TQ_ONNX_UINT4) FUZZ_CHECK(vals[k] >= 0 && vals[k] <= 15);
            if (t.elem_type == TQ_ONNX_FLOAT8E4M3FN) FUZZ_CHECK(isnan(vals[k]) || fabsf(vals[k]) <= 448);
        }
        free(vals);
    }
    FILE *null = fopen("/dev/null", "w");
    FUZZ_CHECK(null != NULL);
    tq_onnx_describe(o, null);
    fclose(null);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tq_error err = {0};
    tq_onnx *o = tq_onnx_read(data, size, "fuzz.onnx", &err);
    if (!o) {
        fuzz_check_error(err.status, &err, "onnx: fuzz.onnx: ");
        FUZZ_CHECK(strchr(err.msg, '\n') == NULL);
        return 0;
    }
    check_model(o);
    tq_onnx_free(o);
    return 0;
}
