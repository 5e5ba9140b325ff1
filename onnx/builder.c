/* The ONNX message builder: protobuf-c structs allocated from one tracked list, so the
 * whole graph is packed once and freed in one go. */
#include "onnx_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Appends p to a growing pointer array; false (and b->oom) when memory runs out. */
static bool push(tq_ob *b, void ***arr, size_t *n, size_t *cap, void *p)
{
    if (b->oom || !p) return false;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        void **na = realloc(*arr, nc * sizeof *na);
        if (!na) {
            b->oom = true;
            return false;
        }
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = p;
    return true;
}

void *tq_ob_alloc(tq_ob *b, size_t size)
{
    if (b->oom) return NULL;
    void *p = calloc(1, size ? size : 1);
    if (!p) {
        b->oom = true;
        return NULL;
    }
    if (!push(b, &b->allocs, &b->n_allocs, &b->cap_allocs, p)) {
        free(p);
        return NULL;
    }
    return p;
}

char *tq_ob_str(tq_ob *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? tq_ob_alloc(b, (size_t)n + 1) : NULL;
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void tq_ob_free(tq_ob *b)
{
    for (size_t i = 0; i < b->n_allocs; i++) free(b->allocs[i]);
    free(b->allocs);
    free(b->nodes);
    free(b->inits);
    free(b->outputs);
    memset(b, 0, sizeof *b);
}

Onnx__NodeProto *tq_ob_node(tq_ob *b, const char *op_type, const char *name, int n_inputs,
                            const char *const *inputs, const char *output)
{
    Onnx__NodeProto *n = tq_ob_alloc(b, sizeof *n);
    char **in = tq_ob_alloc(b, (size_t)n_inputs * sizeof *in);
    char **out = tq_ob_alloc(b, sizeof *out);
    if (!n || !in || !out) return NULL;
    onnx__node_proto__init(n);
    n->op_type = tq_ob_str(b, "%s", op_type);
    n->name = tq_ob_str(b, "%s", name);
    for (int i = 0; i < n_inputs; i++) in[i] = tq_ob_str(b, "%s", inputs[i]);
    out[0] = tq_ob_str(b, "%s", output);
    n->n_input = (size_t)n_inputs;
    n->input = in;
    n->n_output = 1;
    n->output = out;
    if (!push(b, (void ***)&b->nodes, &b->n_nodes, &b->cap_nodes, n)) return NULL;
    return n;
}

static Onnx__AttributeProto *attr(tq_ob *b, Onnx__NodeProto *n, const char *name)
{
    if (!n) return NULL;
    Onnx__AttributeProto *a = tq_ob_alloc(b, sizeof *a);
    Onnx__AttributeProto **list =
        tq_ob_alloc(b, (n->n_attribute + 1) * sizeof *list); /* old lists stay tracked */
    if (!a || !list) return NULL;
    onnx__attribute_proto__init(a);
    a->name = tq_ob_str(b, "%s", name);
    if (n->n_attribute) memcpy(list, n->attribute, n->n_attribute * sizeof *list);
    list[n->n_attribute++] = a;
    n->attribute = list;
    return a;
}

void tq_ob_attr_int(tq_ob *b, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr(b, n, name);
    if (!a) return;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = v;
}

void tq_ob_attr_float(tq_ob *b, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = attr(b, n, name);
    if (!a) return;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    a->has_f = 1;
    a->f = v;
}

void tq_ob_attr_ints(tq_ob *b, Onnx__NodeProto *n, const char *name, int count,
                     const int64_t *v)
{
    Onnx__AttributeProto *a = attr(b, n, name);
    int64_t *ints = tq_ob_alloc(b, (size_t)count * sizeof *ints);
    if (!a || !ints) return;
    memcpy(ints, v, (size_t)count * sizeof *ints);
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->n_ints = (size_t)count;
    a->ints = ints;
}

void tq_ob_init_raw(tq_ob *b, const char *name, int32_t elem_type, int ndim,
                    const int64_t *dims, const void *raw, size_t bytes)
{
    Onnx__TensorProto *t = tq_ob_alloc(b, sizeof *t);
    int64_t *d = tq_ob_alloc(b, (size_t)ndim * sizeof *d);
    uint8_t *data = tq_ob_alloc(b, bytes);
    if (!t || !d || !data) return;
    onnx__tensor_proto__init(t);
    t->name = tq_ob_str(b, "%s", name);
    t->has_data_type = 1;
    t->data_type = elem_type;
    if (ndim) memcpy(d, dims, (size_t)ndim * sizeof *d);
    t->n_dims = (size_t)ndim;
    t->dims = d;
    memcpy(data, raw, bytes);
    t->has_raw_data = 1;
    t->raw_data.len = bytes;
    t->raw_data.data = data;
    push(b, (void ***)&b->inits, &b->n_inits, &b->cap_inits, t);
}

void tq_ob_init_float(tq_ob *b, const char *name, int ndim, const int64_t *dims,
                      const float *v)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= dims[i];
    /* raw_data is little-endian, as float32 is on every machine tinyqat builds for */
    tq_ob_init_raw(b, name, TQ_ONNX_FLOAT, ndim, dims, v, (size_t)n * sizeof *v);
}

Onnx__ValueInfoProto *tq_ob_value(tq_ob *b, const char *name, int32_t elem_type, int ndim,
                                  const int64_t *dims)
{
    Onnx__ValueInfoProto *v = tq_ob_alloc(b, sizeof *v);
    Onnx__TypeProto *tp = tq_ob_alloc(b, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = tq_ob_alloc(b, sizeof *tt);
    Onnx__TensorShapeProto *sh = tq_ob_alloc(b, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dim = tq_ob_alloc(b, (size_t)(ndim + 1) * sizeof *dim);
    if (!v || !tp || !tt || !sh || !dim) return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int i = 0; i <= ndim; i++) {
        dim[i] = tq_ob_alloc(b, sizeof *dim[i]);
        if (!dim[i]) return NULL;
        onnx__tensor_shape_proto__dimension__init(dim[i]);
        if (i == 0) {
            dim[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim[i]->dim_param = tq_ob_str(b, "N");
        } else {
            dim[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim[i]->dim_value = dims[i - 1];
        }
    }
    sh->n_dim = (size_t)ndim + 1;
    sh->dim = dim;
    tt->has_elem_type = 1;
    tt->elem_type = elem_type;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    v->name = tq_ob_str(b, "%s", name);
    v->type = tp;
    return v;
}

void tq_ob_output(tq_ob *b, Onnx__ValueInfoProto *v)
{
    push(b, (void ***)&b->outputs, &b->n_outputs, &b->cap_outputs, v);
}
