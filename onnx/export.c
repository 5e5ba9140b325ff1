/* The export: tinyqat's layer graph walked in order into ONNX nodes (normalisation first,
 * then each layer, quantizers as QDQ), packed with protobuf-c. */
#include "onnx_internal.h"

#include <stdlib.h>
#include <string.h>

/* One ONNX op reading `in` and writing `out`, attributes added by the caller. */
static Onnx__NodeProto *unary(tq_onnx_ex *x, const char *op, const char *in, const char *out)
{
    return tq_ob_node(&x->b, op, out, 1, (const char *[]){in}, out);
}

static void window(tq_onnx_ex *x, Onnx__NodeProto *n, const tq_layer_info *l)
{
    int64_t k[2] = {l->kernel, l->kernel}, s[2] = {l->stride, l->stride};
    tq_ob_attr_ints(&x->b, n, "kernel_shape", 2, k);
    tq_ob_attr_ints(&x->b, n, "strides", 2, s);
}

/* A Linear or Conv2d with its quantizers; returns false on error. */
static bool emit_qlayer(tq_onnx_ex *x, const tq_layer_info *l, const char *in, const char *out)
{
    tq_ob *b = &x->b;
    const tq_qlayer *q = tq_model_qlayer(x->m, l->qlayer);
    if (l->kind == TQ_LAYER_LINEAR && l->in_ndim == 3) { /* Gemm takes (N,F) */
        char *flat = tq_ob_str(b, "%s.flat", l->name);
        tq_ob_attr_int(b, unary(x, "Flatten", in, flat), "axis", 1);
        in = flat;
    }
    const char *xin = tq_onnx_emit_input(x, l, q, in);
    const char *w = xin ? tq_onnx_emit_weight(x, l, q) : NULL;
    if (!w) return false;
    const char *bias = "";
    if (q->bias) {
        int64_t n = q->bias->numel;
        bias = tq_ob_str(b, "%s.bias", l->name);
        tq_ob_init_float(b, bias, 1, &n, q->bias->data);
    }
    int n_in = q->bias ? 3 : 2;
    if (l->kind == TQ_LAYER_LINEAR) {
        Onnx__NodeProto *n = tq_ob_node(b, "Gemm", out, n_in, (const char *[]){xin, w, bias}, out);
        tq_ob_attr_int(b, n, "transB", 1);
    } else {
        Onnx__NodeProto *n = tq_ob_node(b, "Conv", out, n_in, (const char *[]){xin, w, bias}, out);
        int64_t k[2] = {l->kernel, l->kernel}, s[2] = {l->stride, l->stride};
        int64_t p[4] = {l->pad, l->pad, l->pad, l->pad};
        tq_ob_attr_ints(b, n, "kernel_shape", 2, k);
        tq_ob_attr_ints(b, n, "strides", 2, s);
        tq_ob_attr_ints(b, n, "pads", 4, p);
    }
    return true;
}

static void emit_batchnorm(tq_onnx_ex *x, const tq_layer_info *l, const char *in, const char *out)
{
    tq_ob *b = &x->b;
    int64_t c = l->shape[0];
    const char *names[5] = {in};
    const float *values[4] = {l->gamma, l->beta, l->running_mean, l->running_var};
    static const char *const suffix[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int i = 0; i < 4; i++) {
        names[i + 1] = tq_ob_str(b, "%s.%s", l->name, suffix[i]);
        tq_ob_init_float(b, names[i + 1], 1, &c, values[i]);
    }
    Onnx__NodeProto *n = tq_ob_node(b, "BatchNormalization", out, 5, names, out);
    tq_ob_attr_float(b, n, "epsilon", l->eps);
}

/* Layer l from tensor `in` (and in2) into tensor `out`; returns the name of the tensor
 * that holds its output (`in` itself for a layer that passes it through), NULL on error. */
static const char *emit_layer(tq_onnx_ex *x, const tq_layer_info *l, const char *in,
                              const char *in2, const char *out)
{
    tq_ob *b = &x->b;
    switch (l->kind) {
    case TQ_LAYER_LINEAR:
    case TQ_LAYER_CONV2D:
        return emit_qlayer(x, l, in, out) ? out : NULL;
    case TQ_LAYER_BATCHNORM:
        if (l->folded) return in; /* the layer before absorbed it */
        emit_batchnorm(x, l, in, out);
        return out;
    case TQ_LAYER_MAXPOOL2D:
        window(x, unary(x, "MaxPool", in, out), l);
        return out;
    case TQ_LAYER_AVGPOOL2D:
        window(x, unary(x, "AveragePool", in, out), l);
        return out;
    case TQ_LAYER_GLOBAL_AVGPOOL: { /* tinyqat's is flat (C); ONNX's keeps (C,1,1) */
        char *pooled = tq_ob_str(b, "%s.pooled", l->name);
        unary(x, "GlobalAveragePool", in, pooled);
        tq_ob_attr_int(b, unary(x, "Flatten", pooled, out), "axis", 1);
        return out;
    }
    case TQ_LAYER_RELU:
        unary(x, "Relu", in, out);
        return out;
    case TQ_LAYER_DROPOUT: /* identity in inference */
        return in;
    case TQ_LAYER_FLATTEN:
        if (l->in_ndim == 1) return in;
        tq_ob_attr_int(b, unary(x, "Flatten", in, out), "axis", 1);
        return out;
    case TQ_LAYER_ADD:
        tq_ob_node(b, "Add", out, 2, (const char *[]){in, in2}, out);
        return out;
    }
    tq_fail(x->err, TQ_STATUS_ARG, "onnx: layer %s: kind %s does not export", l->name,
            l->kind_name);
    return NULL;
}

/* input -> Sub(mean) -> Div(std): the loader's ((p / 255) - mean[c]) / std[c], the same
 * float operations in the same order. Returns the normalised tensor's name. */
static const char *emit_normalise(tq_onnx_ex *x, int32_t c)
{
    tq_ob *b = &x->b;
    int64_t dims[4] = {1, c, 1, 1};
    tq_ob_init_float(b, "input_mean", 4, dims, x->opt->mean);
    tq_ob_init_float(b, "input_std", 4, dims, x->opt->std);
    tq_ob_node(b, "Sub", "input_centered", 2, (const char *[]){"input", "input_mean"},
               "input_centered");
    tq_ob_node(b, "Div", "input_normalized", 2,
               (const char *[]){"input_centered", "input_std"}, "input_normalized");
    return "input_normalized";
}

static bool build_graph(tq_onnx_ex *x)
{
    tq_ob *b = &x->b;
    int n = tq_model_layer_count(x->m);
    const char **names = tq_ob_alloc(b, (size_t)n * sizeof *names);
    if (!names) return false;
    int32_t c, h, w, classes;
    tq_model_input(x->m, &c, &h, &w, &classes);
    const char *input = emit_normalise(x, c);
    for (int i = 0; i < n; i++) {
        tq_layer_info l;
        tq_model_layer(x->m, i, &l);
        const char *in = l.src == TQ_MODEL_INPUT ? input : names[l.src];
        const char *in2 = l.kind != TQ_LAYER_ADD ? NULL
                          : l.src2 == TQ_MODEL_INPUT ? input : names[l.src2];
        const char *out = i == n - 1 ? "logits" : l.name;
        names[i] = emit_layer(x, &l, in, in2, out);
        if (!names[i]) return false;
    }
    if (strcmp(names[n - 1], "logits") != 0) unary(x, "Identity", names[n - 1], "logits");
    return !b->oom;
}

/* The schema compiled here is IR 8; FP8 needs IR 9 and 4-bit types IR 10 (opset 21). */
static int64_t ir_version_for(int64_t opset) { return opset >= 21 ? 10 : opset >= 19 ? 9 : 8; }

/* Wraps the built nodes, initializers and outputs into a ModelProto and packs it. */
static tq_status pack(tq_onnx_ex *x, int32_t c, int32_t h, int32_t w, int32_t classes,
                      uint8_t **data, size_t *len)
{
    tq_ob *b = &x->b;
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    int64_t in_dims[3] = {c, h, w}, out_dims[1] = {classes};
    Onnx__ValueInfoProto *input = tq_ob_value(b, "input", TQ_ONNX_FLOAT, 3, in_dims);
    Onnx__ValueInfoProto *logits = tq_ob_value(b, "logits", TQ_ONNX_FLOAT, 1, out_dims);
    Onnx__ValueInfoProto **outputs = tq_ob_alloc(b, (b->n_outputs + 1) * sizeof *outputs);
    Onnx__OperatorSetIdProto *opsets[1] = {&opset};
    if (b->oom || !input || !logits || !outputs)
        return tq_fail(x->err, TQ_STATUS_NOMEM, "onnx: out of memory");
    outputs[0] = logits; /* `logits` first, any codes after it */
    if (b->n_outputs) memcpy(outputs + 1, b->outputs, b->n_outputs * sizeof *outputs);
    g.name = tq_ob_str(b, "%s", tq_model_name(x->m));
    g.n_node = b->n_nodes;
    g.node = b->nodes;
    g.n_initializer = b->n_inits;
    g.initializer = b->inits;
    g.n_input = 1;
    g.input = &input;
    g.n_output = b->n_outputs + 1;
    g.output = outputs;
    opset.domain = "";
    opset.has_version = 1;
    opset.version = x->opset;
    mp.has_ir_version = 1;
    mp.ir_version = ir_version_for(x->opset);
    mp.producer_name = "tinyqat";
    mp.producer_version = "0.1.0";
    mp.n_opset_import = 1;
    mp.opset_import = opsets;
    mp.graph = &g;
    *len = onnx__model_proto__get_packed_size(&mp);
    *data = malloc(*len ? *len : 1);
    if (!*data) return tq_fail(x->err, TQ_STATUS_NOMEM, "onnx: out of memory");
    size_t packed = onnx__model_proto__pack(&mp, *data);
    TQ_ASSERT(packed == *len);
    return TQ_STATUS_OK;
}

tq_status tq_onnx_encode(tq_model *m, const tq_onnx_options *opt, uint8_t **data, size_t *len,
                         tq_onnx_stats *stats, tq_error *err)
{
    *data = NULL;
    *len = 0;
    if (!opt || !opt->mean || !opt->std)
        return tq_fail(err, TQ_STATUS_ARG, "onnx: export needs the input normalisation");
    tq_onnx_ex x = {.m = m, .opt = opt, .err = err, .opset = 13};
    int32_t c, h, w, classes;
    tq_model_input(m, &c, &h, &w, &classes);
    tq_status st = TQ_STATUS_OK;
    if (!build_graph(&x))
        st = err->status ? err->status : tq_fail(err, TQ_STATUS_NOMEM, "onnx: out of memory");
    else
        st = pack(&x, c, h, w, classes, data, len);
    if (st == TQ_STATUS_OK && stats)
        *stats = (tq_onnx_stats){.opset = x.opset,
                                 .ir_version = ir_version_for(x.opset),
                                 .nodes = (int)x.b.n_nodes, .initializers = (int)x.b.n_inits,
                                 .quantizers = x.quantizers, .bytes = *len};
    tq_ob_free(&x.b);
    return st;
}

tq_status tq_onnx_export(tq_model *m, const tq_onnx_options *opt, const char *path,
                         tq_onnx_stats *stats, tq_error *err)
{
    uint8_t *data;
    size_t len;
    tq_status st = tq_onnx_encode(m, opt, &data, &len, stats, err);
    if (st == TQ_STATUS_OK) st = tq_write_file_atomic(path, data, len, err);
    free(data);
    return st;
}
