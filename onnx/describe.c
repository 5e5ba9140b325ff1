/* `tinyqat info M.onnx`: an ONNX model's versions, inputs and outputs, op counts and
 * initializers with their types and shapes. */
#include "onnx_internal.h"

#include <stdlib.h>
#include <string.h>

static void print_value(FILE *out, const tq_onnx_value *v)
{
    char tn[32], nb[256];
    fprintf(out, "  %s %s", tq_onnx_printable(v->name, nb, sizeof nb),
            v->elem_type ? tq_onnx_type_name(v->elem_type, tn, sizeof tn) : "(not a tensor)");
    if (v->ndim < 0) {
        fprintf(out, " (no shape)\n");
        return;
    }
    fputs(" [", out);
    for (int i = 0; i < v->ndim; i++) {
        if (i) fputc(',', out);
        if (v->dim_param[i]) fputs(tq_onnx_printable(v->dim_param[i], nb, sizeof nb), out);
        else if (v->dims[i] >= 0) fprintf(out, "%lld", (long long)v->dims[i]);
        else fputc('?', out);
    }
    fputs("]\n", out);
}

/* Op types in order of first appearance with their counts. */
static void print_ops(const tq_onnx *o, FILE *out)
{
    int n = tq_onnx_node_count(o), distinct = 0;
    const char **ops = calloc((size_t)n + 1, sizeof *ops);
    int *counts = calloc((size_t)n + 1, sizeof *counts);
    if (!ops || !counts) {
        free(ops);
        free(counts);
        fprintf(out, "ops: %d nodes\n", n);
        return;
    }
    for (int i = 0; i < n; i++) {
        tq_onnx_node node;
        tq_onnx_node_get(o, i, &node);
        int k = 0;
        while (k < distinct && strcmp(ops[k], node.op_type) != 0) k++;
        if (k == distinct) ops[distinct++] = node.op_type;
        counts[k]++;
    }
    fprintf(out, "ops (%d nodes):", n);
    char nb[65];
    for (int k = 0; k < distinct; k++)
        fprintf(out, "%s %s %d", k ? "," : "", tq_onnx_printable(ops[k], nb, sizeof nb), counts[k]);
    fputc('\n', out);
    free(ops);
    free(counts);
}

void tq_onnx_describe(const tq_onnx *o, FILE *out)
{
    fprintf(out, "ir_version %lld, opset %lld\n", (long long)tq_onnx_ir_version(o),
            (long long)tq_onnx_opset(o));
    tq_onnx_value v;
    fprintf(out, "inputs:\n");
    for (int i = 0; i < tq_onnx_input_count(o); i++) {
        tq_onnx_input(o, i, &v);
        print_value(out, &v);
    }
    fprintf(out, "outputs:\n");
    for (int i = 0; i < tq_onnx_output_count(o); i++) {
        tq_onnx_output(o, i, &v);
        print_value(out, &v);
    }
    print_ops(o, out);
    size_t bytes = 0;
    int n = tq_onnx_init_count(o);
    for (int i = 0; i < n; i++) {
        tq_onnx_init t;
        tq_onnx_init_get(o, i, &t);
        bytes += t.bytes;
    }
    fprintf(out, "initializers (%d, %zu bytes of data):\n", n, bytes);
    for (int i = 0; i < n; i++) {
        tq_onnx_init t;
        char tn[32], nb[256];
        tq_onnx_init_get(o, i, &t);
        fprintf(out, "  %s %s [", tq_onnx_printable(t.name, nb, sizeof nb),
                tq_onnx_type_name(t.elem_type, tn, sizeof tn));
        for (int d = 0; d < t.ndim; d++) fprintf(out, "%s%lld", d ? "," : "", (long long)t.dims[d]);
        fprintf(out, "] %zu bytes\n", t.bytes);
    }
}
