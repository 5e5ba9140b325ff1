/* Reading an ONNX model back: protobuf-c unpacks it (after the nesting pre-pass), then
 * every part the accessors hand out is checked (shapes, tensor data against type and shape)
 * so callers never index past what the file holds. */
#include "onnx_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ONNX models nest a few levels (model, graph, node, attribute, subgraph, ...); If and Loop
 * bodies add four per level. 64 leaves room for deep control flow. */
enum { MAX_NESTING = 64 };
/* Largest element count accepted, far beyond any model here, so sizes never overflow. */
#define MAX_NUMEL ((int64_t)1 << 40)

struct tq_onnx {
    Onnx__ModelProto *mp;
    char name[256];
};

static const char *str(const char *s) { return s ? s : ""; }

/* Bytes of raw data for n elements of type t, 0 for types without a fixed size. */
static size_t raw_bytes(int32_t t, int64_t n)
{
    static const unsigned char size[] = {
        [1] = 4, [2] = 1, [3] = 1, [4] = 2, [5] = 2, [6] = 4, [7] = 8, [9] = 1, [10] = 2,
        [11] = 8, [12] = 4, [13] = 8, [14] = 8, [15] = 16, [16] = 2, [17] = 1, [18] = 1,
        [19] = 1, [20] = 1,
    };
    if (t == TQ_ONNX_INT4 || t == TQ_ONNX_UINT4) return (size_t)(n + 1) / 2;
    if (t > 0 && t < (int32_t)sizeof size && size[t]) return (size_t)n * size[t];
    return 0;
}

/* Checks one initializer; returns false with err set. */
static bool check_tensor(const tq_onnx *o, size_t i, const Onnx__TensorProto *t, tq_error *err)
{
    char buf[65];
    const char *name = tq_onnx_printable(str(t->name), buf, sizeof buf);
    if (t->n_dims > TQ_ONNX_MAX_DIMS)
        return tq_fail(err, TQ_STATUS_FORMAT, "onnx: %s: initializer %zu (%s) has %zu "
                       "dimensions (at most %d)", o->name, i, name, t->n_dims, TQ_ONNX_MAX_DIMS), false;
    int64_t n = 1;
    for (size_t d = 0; d < t->n_dims; d++) {
        if (t->dims[d] < 0 || (t->dims[d] > 0 && n > MAX_NUMEL / t->dims[d]))
            return tq_fail(err, TQ_STATUS_FORMAT, "onnx: %s: initializer %s: dimension %zu "
                           "is %lld (expected 0..2^40 elements in all)", o->name, name, d,
                           (long long)t->dims[d]), false;
        n *= t->dims[d];
    }
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return tq_fail(err, TQ_STATUS_FORMAT, "onnx: %s: initializer %s keeps its data in an "
                       "external file (not supported)", o->name, name), false;
    size_t have, want;
    if (t->has_raw_data) {
        have = t->raw_data.len;
        want = raw_bytes(t->data_type, n);
        if (want == 0 && n > 0) return true; /* a type this reader does not decode */
    } else {
        int32_t ty = t->data_type;
        have = ty == TQ_ONNX_FLOAT ? t->n_float_data
               : ty == TQ_ONNX_INT64 ? t->n_int64_data
               : ty == 11 ? t->n_double_data
               : ty == 12 || ty == 13 ? t->n_uint64_data
               : ty == 8 ? t->n_string_data
               : t->n_int32_data;
        want = (ty == TQ_ONNX_INT4 || ty == TQ_ONNX_UINT4) ? (size_t)(n + 1) / 2 : (size_t)n;
    }
    if (have != want)
        return tq_fail(err, TQ_STATUS_FORMAT, "onnx: %s: initializer %s holds %zu %s for %lld "
                       "elements (expected %zu)", o->name, name, have,
                       t->has_raw_data ? "bytes" : "values", (long long)n, want), false;
    return true;
}

static bool check_value(const tq_onnx *o, const Onnx__ValueInfoProto *v, tq_error *err)
{
    char buf[65];
    const Onnx__TypeProto *tp = v->type;
    if (tp && tp->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && tp->tensor_type &&
        tp->tensor_type->shape && tp->tensor_type->shape->n_dim > TQ_ONNX_MAX_DIMS)
        return tq_fail(err, TQ_STATUS_FORMAT, "onnx: %s: value %s has %zu dimensions (at most %d)",
                       o->name, tq_onnx_printable(str(v->name), buf, sizeof buf),
                       tp->tensor_type->shape->n_dim, TQ_ONNX_MAX_DIMS), false;
    return true;
}

static bool check_model(const tq_onnx *o, tq_error *err)
{
    const Onnx__ModelProto *mp = o->mp;
    if (!mp->has_ir_version || !mp->graph)
        return tq_fail(err, TQ_STATUS_FORMAT, "onnx: %s: not an ONNX model (no %s)", o->name,
                       mp->has_ir_version ? "graph" : "ir_version"), false;
    const Onnx__GraphProto *g = mp->graph;
    for (size_t i = 0; i < g->n_input; i++)
        if (!check_value(o, g->input[i], err)) return false;
    for (size_t i = 0; i < g->n_output; i++)
        if (!check_value(o, g->output[i], err)) return false;
    for (size_t i = 0; i < g->n_initializer; i++)
        if (!check_tensor(o, i, g->initializer[i], err)) return false;
    if (g->n_node > INT32_MAX || g->n_initializer > INT32_MAX)
        return tq_fail(err, TQ_STATUS_FORMAT, "onnx: %s: too many nodes", o->name), false;
    return true;
}

tq_onnx *tq_onnx_read(const void *data, size_t len, const char *name, tq_error *err)
{
    tq_onnx *o = calloc(1, sizeof *o);
    if (!o) return tq_fail(err, TQ_STATUS_NOMEM, "onnx: out of memory"), NULL;
    tq_onnx_printable(name ? name : "(memory)", o->name, sizeof o->name);
    if (!tq_onnx_depth_ok(data, len, &onnx__model_proto__descriptor, MAX_NESTING) ||
        !(o->mp = onnx__model_proto__unpack(NULL, len, data))) {
        tq_fail(err, TQ_STATUS_FORMAT, "onnx: %s: not an ONNX model (the protobuf encoding is "
                "broken or nests more than %d levels)", o->name, MAX_NESTING);
        free(o);
        return NULL;
    }
    if (!check_model(o, err)) {
        tq_onnx_free(o);
        return NULL;
    }
    return o;
}

tq_onnx *tq_onnx_load(const char *path, tq_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return tq_fail(err, TQ_STATUS_IO, "onnx: %s: cannot open: %s", path, strerror(errno)), NULL;
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap) break;
        uint8_t *nb = cap < ((size_t)1 << 31) ? realloc(buf, cap * 2) : NULL;
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    bool bad = !buf || ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return tq_fail(err, TQ_STATUS_IO, "onnx: %s: cannot read (or larger than 2 GiB)", path), NULL;
    }
    tq_onnx *o = tq_onnx_read(buf, len, path, err);
    free(buf);
    return o;
}

void tq_onnx_free(tq_onnx *o)
{
    if (!o) return;
    if (o->mp) onnx__model_proto__free_unpacked(o->mp, NULL);
    free(o);
}

int64_t tq_onnx_ir_version(const tq_onnx *o) { return o->mp->ir_version; }

int64_t tq_onnx_opset(const tq_onnx *o)
{
    for (size_t i = 0; i < o->mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *s = o->mp->opset_import[i];
        const char *d = str(s->domain);
        if (d[0] == '\0' || strcmp(d, "ai.onnx") == 0) return s->version;
    }
    return 0;
}

static void value_get(const Onnx__ValueInfoProto *v, tq_onnx_value *out)
{
    memset(out, 0, sizeof *out);
    out->name = str(v->name);
    out->ndim = -1;
    const Onnx__TypeProto *tp = v->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type) return;
    out->elem_type = tp->tensor_type->elem_type;
    const Onnx__TensorShapeProto *sh = tp->tensor_type->shape;
    if (!sh) return;
    out->ndim = (int)sh->n_dim; /* at most TQ_ONNX_MAX_DIMS: checked on reading */
    for (int i = 0; i < out->ndim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = sh->dim[i];
        out->dims[i] = -1;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
            out->dims[i] = d->dim_value;
        else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
            out->dim_param[i] = str(d->dim_param);
    }
}

int tq_onnx_input_count(const tq_onnx *o) { return (int)o->mp->graph->n_input; }
int tq_onnx_output_count(const tq_onnx *o) { return (int)o->mp->graph->n_output; }
void tq_onnx_input(const tq_onnx *o, int i, tq_onnx_value *out) { value_get(o->mp->graph->input[i], out); }
void tq_onnx_output(const tq_onnx *o, int i, tq_onnx_value *out) { value_get(o->mp->graph->output[i], out); }

int tq_onnx_node_count(const tq_onnx *o) { return (int)o->mp->graph->n_node; }

void tq_onnx_node_get(const tq_onnx *o, int i, tq_onnx_node *out)
{
    const Onnx__NodeProto *n = o->mp->graph->node[i];
    out->name = str(n->name);
    out->op_type = str(n->op_type);
    out->domain = str(n->domain);
    out->n_inputs = (int)n->n_input;
    out->n_outputs = (int)n->n_output;
    out->inputs = (const char *const *)n->input;
    out->outputs = (const char *const *)n->output;
}

int64_t tq_onnx_node_attr_int(const tq_onnx *o, int i, const char *attr, int64_t dflt)
{
    const Onnx__NodeProto *n = o->mp->graph->node[i];
    for (size_t k = 0; k < n->n_attribute; k++)
        if (strcmp(str(n->attribute[k]->name), attr) == 0 && n->attribute[k]->has_i)
            return n->attribute[k]->i;
    return dflt;
}

static int find_node(const tq_onnx *o, const char *tensor, bool outputs)
{
    const Onnx__GraphProto *g = o->mp->graph;
    for (size_t i = 0; i < g->n_node; i++) {
        size_t n = outputs ? g->node[i]->n_output : g->node[i]->n_input;
        char **names = outputs ? g->node[i]->output : g->node[i]->input;
        for (size_t k = 0; k < n; k++)
            if (strcmp(str(names[k]), tensor) == 0) return (int)i;
    }
    return -1;
}
int tq_onnx_node_producing(const tq_onnx *o, const char *tensor) { return find_node(o, tensor, true); }
int tq_onnx_node_consuming(const tq_onnx *o, const char *tensor) { return find_node(o, tensor, false); }

int tq_onnx_init_count(const tq_onnx *o) { return (int)o->mp->graph->n_initializer; }

void tq_onnx_init_get(const tq_onnx *o, int i, tq_onnx_init *out)
{
    const Onnx__TensorProto *t = o->mp->graph->initializer[i];
    memset(out, 0, sizeof *out);
    out->name = str(t->name);
    out->elem_type = t->data_type;
    out->ndim = (int)t->n_dims;
    out->numel = 1;
    for (int d = 0; d < out->ndim; d++) {
        out->dims[d] = t->dims[d];
        out->numel *= t->dims[d];
    }
    out->bytes = t->has_raw_data ? t->raw_data.len : raw_bytes(t->data_type, out->numel);
}

int tq_onnx_init_find(const tq_onnx *o, const char *name)
{
    const Onnx__GraphProto *g = o->mp->graph;
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strcmp(str(g->initializer[i]->name), name) == 0) return (int)i;
    return -1;
}

/* FP8 bits to their value: the format's own grid (tq_format_grid) read backwards; NaN for
 * the patterns the grid does not list (NaN, and E5M2's infinities). */
static void fp8_table(int32_t type, float table[256])
{
    tq_format f = {.kind = type == TQ_ONNX_FLOAT8E4M3FN ? TQ_FORMAT_E4M3 : TQ_FORMAT_E5M2};
    tq_grid_entry g[256];
    int n = tq_format_grid(f, g, 256);
    for (int i = 0; i < 256; i++) table[i] = NAN;
    for (int i = 0; i < n; i++) table[g[i].code & 0xFF] = g[i].value;
    if (type == TQ_ONNX_FLOAT8E5M2) {
        table[0x7C] = INFINITY;
        table[0xFC] = -INFINITY;
    }
}

tq_status tq_onnx_init_values(const tq_onnx *o, int i, float *out, tq_error *err)
{
    const Onnx__TensorProto *t = o->mp->graph->initializer[i];
    tq_onnx_init info;
    tq_onnx_init_get(o, i, &info);
    int32_t ty = t->data_type;
    const uint8_t *raw = t->has_raw_data ? t->raw_data.data : NULL;
    int64_t n = info.numel;
    float fp8[256];
    if (ty == TQ_ONNX_FLOAT8E4M3FN || ty == TQ_ONNX_FLOAT8E5M2) fp8_table(ty, fp8);
    for (int64_t k = 0; k < n; k++) {
        /* without raw data, the small types sit one per int32 (4-bit ones two per int32) */
        int32_t bits = 0;
        if (ty == TQ_ONNX_FLOAT) {
            if (raw) memcpy(&out[k], raw + 4 * k, 4);
            else out[k] = t->float_data[k];
            continue;
        }
        if (ty == TQ_ONNX_INT4 || ty == TQ_ONNX_UINT4) {
            uint8_t byte = raw ? raw[k / 2] : (uint8_t)t->int32_data[k / 2];
            bits = k % 2 ? byte >> 4 : byte & 0xF;
            out[k] = (float)(ty == TQ_ONNX_INT4 && bits > 7 ? bits - 16 : bits);
            continue;
        }
        bits = raw ? raw[k] : t->int32_data[k];
        switch (ty) {
        case TQ_ONNX_INT8: out[k] = (float)(int8_t)(uint8_t)bits; break;
        case TQ_ONNX_UINT8: out[k] = (float)(uint8_t)bits; break;
        case TQ_ONNX_FLOAT8E4M3FN:
        case TQ_ONNX_FLOAT8E5M2: out[k] = fp8[(uint8_t)bits]; break;
        default: {
            char tn[32], nb[65];
            return tq_fail(err, TQ_STATUS_ARG, "onnx: %s: initializer %s: cannot decode %s", o->name,
                           tq_onnx_printable(info.name, nb, sizeof nb),
                           tq_onnx_type_name(ty, tn, sizeof tn));
        }
        }
    }
    return TQ_STATUS_OK;
}
