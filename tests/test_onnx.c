/* Check suite for onnx/: export -> read back gives the graph the model describes (ops counted
 * from tq_model_layer, inputs, outputs, opset), every weight initializer decodes to the
 * quantizer's own codes and scales (tq_quantizer_codes), activation scales and zero-point
 * types are fake quant's; refusals name the layer; broken files get a message, not a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layers.h"
#include "onnx.h"
#include "ptq.h"
#include "tq_test.h"

static const float MEAN[4] = {0.5f, 0, 0, 0}, STD[4] = {0.25f, 1, 1, 1};

/* A zoo model on 16x16 grey images, quantized with `recipe` (NULL: float) by PTQ on
 * generated data, its batch norms folded first when fold_bn. */
static tq_model *make_model_folded(const char *zoo, const char *recipe, bool fold_bn)
{
    tq_error e = {0};
    tq_rng rng;
    tq_rng_seed(&rng, 7);
    tq_model *m = tq_model_create(zoo, 1, 16, 16, 4, &rng, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    if (!recipe) return m;
    tq_dataset d;
    tq_synthetic_config cfg = {.n = 128, .side = 16, .classes = 4, .signal = 40, .noise = 30,
                               .seed = 3};
    ck_assert(tq_dataset_synthetic(&d, &cfg, &e) == TQ_STATUS_OK);
    tq_recipe r;
    ck_assert_msg(tq_recipe_make(recipe, NULL, NULL, &r, &e) == TQ_STATUS_OK, "%s", e.msg);
    r.fold_bn = fold_bn;
    ck_assert_msg(tq_ptq_run(m, &r, -1, &d, MEAN, STD, 2, 32, 1, &e) == TQ_STATUS_OK, "%s", e.msg);
    tq_dataset_free(&d);
    return m;
}

static tq_model *make_model(const char *zoo, const char *recipe)
{
    return make_model_folded(zoo, recipe, false);
}

static tq_onnx *round_trip(tq_model *m, bool codes)
{
    tq_onnx_options opt = {.mean = MEAN, .std = STD, .expose_codes = codes};
    uint8_t *buf;
    size_t len;
    tq_onnx_stats st;
    tq_error e = {0};
    ck_assert_msg(tq_onnx_encode(m, &opt, &buf, &len, &st, &e) == TQ_STATUS_OK, "%s", e.msg);
    ck_assert_uint_eq(st.bytes, len);
    tq_onnx *o = tq_onnx_read(buf, len, "round-trip", &e);
    free(buf);
    ck_assert_msg(o != NULL, "%s", e.msg);
    ck_assert_int_eq(tq_onnx_opset(o), st.opset);
    ck_assert_int_eq(tq_onnx_ir_version(o), st.ir_version);
    ck_assert_int_eq(tq_onnx_node_count(o), st.nodes);
    return o;
}

static int count_op(const tq_onnx *o, const char *op)
{
    int n = 0;
    for (int i = 0; i < tq_onnx_node_count(o); i++) {
        tq_onnx_node node;
        tq_onnx_node_get(o, i, &node);
        n += strcmp(node.op_type, op) == 0;
    }
    return n;
}

static float *init_values(const tq_onnx *o, const char *name, tq_onnx_init *info)
{
    int i = tq_onnx_init_find(o, name);
    ck_assert_msg(i >= 0, "no initializer %s", name);
    tq_onnx_init_get(o, i, info);
    float *v = malloc((size_t)(info->numel ? info->numel : 1) * sizeof *v);
    tq_error e = {0};
    ck_assert_msg(tq_onnx_init_values(o, i, v, &e) == TQ_STATUS_OK, "%s", e.msg);
    return v;
}

static int32_t expected_type(tq_format f)
{
    if (f.kind == TQ_FORMAT_E4M3) return TQ_ONNX_FLOAT8E4M3FN;
    if (f.kind == TQ_FORMAT_E5M2) return TQ_ONNX_FLOAT8E5M2;
    if (f.kind == TQ_FORMAT_INT) return f.bits <= 4 ? TQ_ONNX_INT4 : TQ_ONNX_INT8;
    return f.bits <= 4 ? TQ_ONNX_UINT4 : TQ_ONNX_UINT8;
}

/* The per-tensor scale of q's input quantizer (fixed amax: any input of its width gives it). */
static float input_scale(const tq_qlayer *q)
{
    tq_error e = {0};
    tq_tensor *probe = tq_tensor_new(2, (int32_t[]){1, q->weight->shape[1]}, false);
    float scale;
    ck_assert(tq_quantizer_scale_count(q->input_q, probe, &e) == 1);
    ck_assert_msg(tq_quantizer_codes(q->input_q, probe, NULL, &scale, &e) == TQ_STATUS_OK, "%s", e.msg);
    tq_tensor_free(probe);
    return scale;
}

/* Every weight initializer against tq_quantizer_codes; activation scales against the
 * quantizer's; float weights as stored. Returns how many quantizers were checked. */
static int check_quantizers(tq_model *m, const tq_onnx *o)
{
    int checked = 0;
    char name[128];
    tq_error e = {0};
    for (int qi = 0; qi < tq_model_qlayer_count(m); qi++) {
        tq_qlayer *q = tq_model_qlayer(m, qi);
        tq_onnx_init info;
        if (!q->weight_q) {
            snprintf(name, sizeof name, "%s.weight", q->name);
            float *w = init_values(o, name, &info);
            ck_assert_int_eq(info.elem_type, TQ_ONNX_FLOAT);
            ck_assert(memcmp(w, q->weight->data, (size_t)q->weight->numel * sizeof *w) == 0);
            free(w);
        } else {
            int64_t ns = tq_quantizer_scale_count(q->weight_q, q->weight, &e);
            float *codes = malloc((size_t)q->weight->numel * sizeof *codes);
            float *scales = malloc((size_t)ns * sizeof *scales);
            ck_assert(tq_quantizer_codes(q->weight_q, q->weight, codes, scales, &e) == TQ_STATUS_OK);
            snprintf(name, sizeof name, "%s.weight_codes", q->name);
            float *got = init_values(o, name, &info);
            ck_assert_int_eq(info.elem_type, expected_type(tq_quantizer_format(q->weight_q)));
            ck_assert_int_eq(info.numel, q->weight->numel);
            for (int d = 0; d < q->weight->ndim; d++) ck_assert_int_eq(info.dims[d], q->weight->shape[d]);
            for (int64_t k = 0; k < info.numel; k++)
                ck_assert_msg(got[k] == codes[k], "%s[%lld]: %g, expected %g", name, (long long)k,
                              (double)got[k], (double)codes[k]);
            free(got);
            snprintf(name, sizeof name, "%s.weight_scale", q->name);
            got = init_values(o, name, &info);
            ck_assert_int_eq(info.numel, ns);
            ck_assert(memcmp(got, scales, (size_t)ns * sizeof *got) == 0); /* to the bit */
            free(got);
            snprintf(name, sizeof name, "%s.weight_zero_point", q->name);
            got = init_values(o, name, &info);
            for (int64_t k = 0; k < info.numel; k++) ck_assert(got[k] == 0.0f);
            free(got);
            /* the DequantizeLinear reading the codes carries the block format */
            snprintf(name, sizeof name, "%s.weight_codes", q->name);
            int node = tq_onnx_node_consuming(o, name);
            ck_assert_int_ge(node, 0);
            const tq_qspec *s = tq_quantizer_spec(q->weight_q);
            ck_assert_int_eq(tq_onnx_node_attr_int(o, node, "block_size", 0),
                             s->block == TQ_BLOCK_BLOCK ? s->block_size : 0);
            if (s->block != TQ_BLOCK_TENSOR)
                ck_assert_int_eq(tq_onnx_node_attr_int(o, node, "axis", -99),
                                 s->axis < 0 ? s->axis + q->weight->ndim : s->axis);
            free(codes);
            free(scales);
            checked++;
        }
        if (q->input_q) {
            float scale = input_scale(q);
            snprintf(name, sizeof name, "%s.input_scale", q->name);
            float *got = init_values(o, name, &info);
            ck_assert_int_eq(info.ndim, 0);
            ck_assert(memcmp(got, &scale, sizeof scale) == 0);
            free(got);
            snprintf(name, sizeof name, "%s.input_zero_point", q->name);
            free(init_values(o, name, &info));
            ck_assert_int_eq(info.elem_type, expected_type(tq_quantizer_format(q->input_q)));
            checked++;
        }
    }
    return checked;
}

/* Ops the model's layers should become, counted from the graph view. */
static void check_ops(tq_model *m, const tq_onnx *o, bool codes)
{
    int conv = 0, gemm = 0, bn = 0, relu = 0, maxpool = 0, add = 0, gap = 0, flatten = 0;
    int wq = 0, aq = 0, mul = 0;
    for (int i = 0; i < tq_model_layer_count(m); i++) {
        tq_layer_info l;
        tq_model_layer(m, i, &l);
        switch (l.kind) {
        case TQ_LAYER_CONV2D: conv++; break;
        case TQ_LAYER_LINEAR: gemm++; flatten += l.in_ndim == 3; break;
        case TQ_LAYER_BATCHNORM: bn += !l.folded; break;
        case TQ_LAYER_RELU: relu++; break;
        case TQ_LAYER_MAXPOOL2D: maxpool++; break;
        case TQ_LAYER_ADD: add++; break;
        case TQ_LAYER_GLOBAL_AVGPOOL: gap++; flatten++; break;
        case TQ_LAYER_FLATTEN: flatten += l.in_ndim == 3; break;
        default: break;
        }
        if (l.qlayer >= 0) {
            tq_qlayer *q = tq_model_qlayer(m, l.qlayer);
            wq += q->weight_q != NULL;
            aq += q->input_q != NULL;
            mul += q->input_mul != NULL;
        }
    }
    ck_assert_int_eq(count_op(o, "Conv"), conv);
    ck_assert_int_eq(count_op(o, "Gemm"), gemm);
    ck_assert_int_eq(count_op(o, "BatchNormalization"), bn);
    ck_assert_int_eq(count_op(o, "Relu"), relu);
    ck_assert_int_eq(count_op(o, "MaxPool"), maxpool);
    ck_assert_int_eq(count_op(o, "Add"), add);
    ck_assert_int_eq(count_op(o, "GlobalAveragePool"), gap);
    ck_assert_int_eq(count_op(o, "Flatten"), flatten);
    ck_assert_int_eq(count_op(o, "QuantizeLinear"), aq);
    ck_assert_int_eq(count_op(o, "DequantizeLinear"), aq + wq);
    ck_assert_int_eq(count_op(o, "Mul"), mul);
    ck_assert_int_eq(count_op(o, "Sub"), 1);
    ck_assert_int_eq(count_op(o, "Div"), 1);
    ck_assert_int_eq(count_op(o, "Cast"), codes ? aq : 0);
    /* one input [N,C,H,W], `logits` [N,classes] first, then codes.X and qin.X */
    int32_t c, h, w, classes;
    tq_model_input(m, &c, &h, &w, &classes);
    ck_assert_int_eq(tq_onnx_input_count(o), 1);
    tq_onnx_value v;
    tq_onnx_input(o, 0, &v);
    ck_assert_str_eq(v.name, "input");
    ck_assert_int_eq(v.elem_type, TQ_ONNX_FLOAT);
    ck_assert_int_eq(v.ndim, 4);
    ck_assert_str_eq(v.dim_param[0], "N");
    ck_assert(v.dims[1] == c && v.dims[2] == h && v.dims[3] == w);
    ck_assert_int_eq(tq_onnx_output_count(o), 1 + (codes ? 2 * aq : 0));
    tq_onnx_output(o, 0, &v);
    ck_assert_str_eq(v.name, "logits");
    ck_assert(v.ndim == 2 && v.dim_param[0] && v.dims[1] == classes);
    ck_assert_int_ge(tq_onnx_node_producing(o, "logits"), 0);
}

static const char *const ZOO[] = {"mlp", "lenet5", "convnet", "resnet20"};

START_TEST(test_round_trip_float)
{
    tq_model *m = make_model(ZOO[_i], NULL);
    tq_onnx *o = round_trip(m, false);
    ck_assert_int_eq(tq_onnx_opset(o), 13);
    check_ops(m, o, false);
    ck_assert_int_eq(check_quantizers(m, o), 0);
    /* the normalisation is the checkpoint's */
    tq_onnx_init info;
    float *mean = init_values(o, "input_mean", &info), *std = init_values(o, "input_std", &info);
    ck_assert(mean[0] == MEAN[0] && std[0] == STD[0]);
    free(mean);
    free(std);
    tq_onnx_free(o);
    tq_model_free(m);
}
END_TEST

/* recipe, the opset and IR version it needs */
static const struct {
    const char *recipe;
    int64_t opset, ir;
} RECIPES[] = {
    {"int8", 13, 8}, {"w4a16", 21, 10}, {"w4a8", 21, 10}, {"fp8", 19, 9},
    {"w2a2", 21, 10}, {"int8-sq", 13, 8}, {"w4a16-awq", 21, 10},
};
enum { N_RECIPES = sizeof RECIPES / sizeof *RECIPES };

START_TEST(test_round_trip_quantized)
{
    const char *zoo = ZOO[_i / N_RECIPES];
    int r = _i % N_RECIPES;
    tq_model *m = make_model(zoo, RECIPES[r].recipe);
    for (int codes = 0; codes < 2; codes++) {
        tq_onnx *o = round_trip(m, codes);
        ck_assert_msg(tq_onnx_opset(o) == RECIPES[r].opset, "%s %s: opset %lld", zoo,
                      RECIPES[r].recipe, (long long)tq_onnx_opset(o));
        ck_assert_int_eq(tq_onnx_ir_version(o), RECIPES[r].ir);
        check_ops(m, o, codes);
        ck_assert_int_gt(check_quantizers(m, o), 0);
        tq_onnx_free(o);
    }
    tq_model_free(m);
}
END_TEST

/* Folded batch norms pass their input through: no BatchNormalization left, the convolutions
 * carry the biases they absorbed. */
START_TEST(test_folded_batchnorms)
{
    tq_model *m = make_model_folded(_i ? "resnet20" : "convnet", "int8", true);
    tq_onnx *o = round_trip(m, false);
    ck_assert_int_eq(count_op(o, "BatchNormalization"), 0);
    check_ops(m, o, false);
    ck_assert_int_gt(check_quantizers(m, o), 0);
    tq_onnx_init info;
    free(init_values(o, "conv1.bias", &info));
    ck_assert_int_eq(info.elem_type, TQ_ONNX_FLOAT);
    tq_onnx_free(o);
    tq_model_free(m);
}
END_TEST

/* Narrow grids in wider containers: int3 activations in int4 get a Clip at 3 and -4 steps. */
START_TEST(test_clip_for_narrow_activations)
{
    tq_model *m = make_model("mlp", NULL);
    tq_error e = {0};
    tq_recipe r;
    tq_dataset d;
    tq_synthetic_config cfg = {.n = 64, .side = 16, .classes = 4, .signal = 40, .noise = 30, .seed = 3};
    ck_assert(tq_dataset_synthetic(&d, &cfg, &e) == TQ_STATUS_OK);
    ck_assert(tq_recipe_make(NULL, "int6:channel=0", "int3:unsigned=off", &r, &e) == TQ_STATUS_OK);
    ck_assert_msg(tq_ptq_run(m, &r, -1, &d, MEAN, STD, 1, 32, 1, &e) == TQ_STATUS_OK, "%s", e.msg);
    tq_onnx *o = round_trip(m, false);
    ck_assert_int_eq(count_op(o, "Clip"), 3);
    tq_onnx_init info;
    tq_qlayer *q = tq_model_qlayer(m, 0);
    float scale = input_scale(q), *lo = init_values(o, "fc1.input_min", &info),
          *hi = init_values(o, "fc1.input_max", &info);
    ck_assert(*lo == -4.0f * scale && *hi == 3.0f * scale);
    free(lo);
    free(hi);
    /* int6 weights sit in int8, their codes within +-31 */
    float *w = init_values(o, "fc1.weight_codes", &info);
    ck_assert_int_eq(info.elem_type, TQ_ONNX_INT8);
    for (int64_t k = 0; k < info.numel; k++) ck_assert(w[k] >= -32 && w[k] <= 31);
    free(w);
    tq_onnx_free(o);
    tq_dataset_free(&d);
    tq_model_free(m);
}
END_TEST

START_TEST(test_refusals)
{
    static const char *const refused[] = {"mxfp8", "mxfp4", "nvfp4"};
    tq_model *m = make_model("lenet5", refused[_i]);
    tq_onnx_options opt = {.mean = MEAN, .std = STD};
    uint8_t *buf = (uint8_t *)1;
    size_t len = 1;
    tq_error e = {0};
    ck_assert(tq_onnx_encode(m, &opt, &buf, &len, NULL, &e) == TQ_STATUS_ARG);
    ck_assert_ptr_null(buf);
    ck_assert_msg(strstr(e.msg, "layer conv1") && strstr(e.msg, "formats that export: int2..int8") &&
                      !strchr(e.msg, '\n'),
                  "%s", e.msg);
    ck_assert_msg(strstr(e.msg, refused[_i][0] == 'n' ? "NVFP4" : "E8M0"), "%s", e.msg);
    tq_model_free(m);
}
END_TEST

/* A ModelProto whose graph holds a node whose attribute holds a graph ... `depth` times. */
static uint8_t *nested(int depth, size_t *len)
{
    size_t cap = (size_t)depth * 16 + 64, n = 0;
    uint8_t *inner = malloc(cap), *outer = malloc(cap);
    for (int i = 0; i < depth; i++) {
        /* GraphProto.node (1) { NodeProto.attribute (5) { AttributeProto.g (6) { inner } } } */
        static const uint8_t tags[3] = {(6 << 3) | 2, (5 << 3) | 2, (1 << 3) | 2};
        for (int t = 0; t < 3; t++) {
            size_t k = 0;
            outer[k++] = tags[t];
            size_t v = n;
            do {
                outer[k++] = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
                v >>= 7;
            } while (v);
            memcpy(outer + k, inner, n);
            n += k;
            uint8_t *tmp = inner;
            inner = outer;
            outer = tmp;
        }
    }
    /* ModelProto: ir_version (1) = 8, graph (7) */
    uint8_t *out = malloc(n + 16);
    size_t k = 0;
    out[k++] = 1 << 3;
    out[k++] = 8;
    out[k++] = (7 << 3) | 2;
    size_t v = n;
    do {
        out[k++] = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        v >>= 7;
    } while (v);
    memcpy(out + k, inner, n);
    *len = k + n;
    free(inner);
    free(outer);
    return out;
}

START_TEST(test_bad_files)
{
    tq_error e = {0};
    /* not protobuf, empty, a model without a graph */
    ck_assert_ptr_null(tq_onnx_read("\xff\xff\xff\xff", 4, "junk.onnx", &e));
    ck_assert_msg(strstr(e.msg, "junk.onnx: not an ONNX model"), "%s", e.msg);
    tq_error_clear(&e);
    ck_assert_ptr_null(tq_onnx_read("", 0, "empty.onnx", &e));
    ck_assert_msg(strstr(e.msg, "empty.onnx: not an ONNX model (no ir_version)"), "%s", e.msg);
    tq_error_clear(&e);
    /* a real model cut short */
    tq_model *m = make_model("lenet5", "int8");
    tq_onnx_options opt = {.mean = MEAN, .std = STD};
    uint8_t *buf;
    size_t len;
    ck_assert(tq_onnx_encode(m, &opt, &buf, &len, NULL, &e) == TQ_STATUS_OK);
    ck_assert_ptr_null(tq_onnx_read(buf, len - 100, "cut.onnx", &e));
    ck_assert_msg(strstr(e.msg, "cut.onnx: not an ONNX model"), "%s", e.msg);
    free(buf);
    tq_model_free(m);
    /* nesting: 20 levels read, 10,000 are refused before protobuf-c recurses into them */
    tq_error_clear(&e);
    uint8_t *deep = nested(20, &len);
    tq_onnx *o = tq_onnx_read(deep, len, "nested", &e);
    ck_assert_msg(o != NULL, "%s", e.msg);
    ck_assert_int_eq(tq_onnx_node_count(o), 1);
    tq_onnx_free(o);
    free(deep);
    deep = nested(10000, &len);
    ck_assert_ptr_null(tq_onnx_read(deep, len, "deep", &e));
    ck_assert_msg(strstr(e.msg, "deep: not an ONNX model"), "%s", e.msg);
    free(deep);
}
END_TEST

START_TEST(test_export_file)
{
    tq_model *m = make_model("mlp", "int8");
    tq_onnx_options opt = {.mean = MEAN, .std = STD};
    tq_error e = {0};
    char dir[] = "/tmp/tq_onnx_XXXXXX", path[256];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    tq_onnx_stats st;
    ck_assert_msg(tq_onnx_export(m, &opt, path, &st, &e) == TQ_STATUS_OK, "%s", e.msg);
    tq_onnx *o = tq_onnx_load(path, &e);
    ck_assert_msg(o != NULL, "%s", e.msg);
    ck_assert_int_eq(tq_onnx_node_count(o), st.nodes);
    tq_onnx_free(o);
    unlink(path);
    rmdir(dir);
    /* a folder that is gone: one message naming the file */
    ck_assert(tq_onnx_export(m, &opt, path, &st, &e) == TQ_STATUS_IO);
    ck_assert_msg(strstr(e.msg, path) != NULL, "%s", e.msg);
    tq_error_clear(&e);
    ck_assert_ptr_null(tq_onnx_load(path, &e));
    ck_assert_msg(strstr(e.msg, "cannot open"), "%s", e.msg);
    tq_model_free(m);
}
END_TEST

static Suite *onnx_suite(void)
{
    Suite *s = suite_create("onnx");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_round_trip_float, 0, 4);
    tcase_add_loop_test(tc, test_round_trip_quantized, 0, 4 * N_RECIPES);
    tcase_add_loop_test(tc, test_folded_batchnorms, 0, 2);
    tcase_add_test(tc, test_clip_for_narrow_activations);
    tcase_add_loop_test(tc, test_refusals, 0, 3);
    tcase_add_test(tc, test_bad_files);
    tcase_add_test(tc, test_export_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tq_test_run(onnx_suite()); }
