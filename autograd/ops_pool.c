/* Pooling over the planes of (N,C,H,W): max pool (argmax saved for backward), average pool,
 * and global average pool to (N,C). No padding; output size floor((H-k)/s)+1. */
#include "internal.h"


/* Planes are independent, so the parallel loops below give the same bits for any thread
 * count; small tensors stay on one thread where the fork would cost more than the work. */
#define POOL_PARALLEL_MIN 32768

typedef struct pool_geom {
    int64_t planes; /* N*C */
    int H, W, k, s, OH, OW;
} pool_geom;

/* Checks the arguments and fills in the geometry; false after recording the error. */
static bool pool_setup(tq_tape *t, const char *op, const tq_tensor *x, int kernel, int stride,
                       pool_geom *g)
{
    if (x->ndim != 4) {
        tq_fail_shape(t, op, "x (N,C,H,W)", x);
        return false;
    }
    if (kernel < 1 || stride < 1) {
        tq_tape_fail(t, TQ_STATUS_ARG, "%s: kernel %d and stride %d (expected both >= 1)", op,
                     kernel, stride);
        return false;
    }
    if (kernel > x->shape[2] || kernel > x->shape[3]) {
        char s[64];
        tq_tape_fail(t, TQ_STATUS_SHAPE, "%s: kernel %d does not fit x %s", op, kernel,
                     tq_shape_str(x, s, sizeof s));
        return false;
    }
    g->planes = (int64_t)x->shape[0] * x->shape[1];
    g->H = x->shape[2];
    g->W = x->shape[3];
    g->k = kernel;
    g->s = stride;
    g->OH = (g->H - kernel) / stride + 1;
    g->OW = (g->W - kernel) / stride + 1;
    return true;
}

static pool_geom geometry_of(const tq_node *nd)
{
    const tq_tensor *x = nd->in[0];
    int k = (int)nd->iarg[0], s = (int)nd->iarg[1];
    return (pool_geom){.planes = (int64_t)x->shape[0] * x->shape[1], .H = x->shape[2],
                       .W = x->shape[3], .k = k, .s = s, .OH = (x->shape[2] - k) / s + 1,
                       .OW = (x->shape[3] - k) / s + 1};
}

/* ---- max pool: saved = int32 argmax per output, an index into the input plane */

static void maxpool_backward(tq_node *nd)
{
    const pool_geom g = geometry_of(nd);
    const int32_t *arg = nd->saved;
    const float *gy = nd->out->grad;
    float *gx = nd->in[0]->grad;
    const int64_t in_len = (int64_t)g.H * g.W, out_len = (int64_t)g.OH * g.OW;
    /* Overlapping windows may route several outputs to one input: sequential per plane. */
#pragma omp parallel for schedule(static) if (g.planes * out_len >= POOL_PARALLEL_MIN)
    for (int64_t pl = 0; pl < g.planes; pl++)
        for (int64_t o = 0; o < out_len; o++)
            gx[pl * in_len + arg[pl * out_len + o]] += gy[pl * out_len + o];
}
static const tq_op_def op_maxpool = {.name = "maxpool2d", .backward = maxpool_backward};

/* Strictly greater: the first maximum in scan order wins ties; a NaN sticks. Written as
 * selects rather than branches: on real activations the comparison is a coin flip, and a
 * mispredicted branch per tap cost more than the rest of the pool. */
static inline void take_max(float v, int32_t i, float *best, int32_t *best_i)
{
    bool take = v > *best || (v != v && *best == *best);
    *best = take ? v : *best;
    *best_i = take ? i : *best_i;
}

/* One plane, any kernel and stride. */
static void maxpool_plane(const pool_geom *g, const float *restrict src, float *restrict dst,
                          int32_t *restrict arg)
{
    for (int oy = 0; oy < g->OH; oy++)
        for (int ox = 0; ox < g->OW; ox++) {
            int32_t best_i = oy * g->s * g->W + ox * g->s;
            float best = src[best_i];
            for (int ky = 0; ky < g->k; ky++)
                for (int kx = 0; kx < g->k; kx++) {
                    int32_t i = (oy * g->s + ky) * g->W + ox * g->s + kx;
                    take_max(src[i], i, &best, &best_i);
                }
            int o = oy * g->OW + ox;
            dst[o] = best;
            if (arg) arg[o] = best_i;
        }
}

/* One plane, kernel 2 stride 2 (LeNet, VGG): the same scan order, unrolled. */
static void maxpool_plane_2x2(const pool_geom *g, const float *restrict src,
                              float *restrict dst, int32_t *restrict arg)
{
    for (int oy = 0; oy < g->OH; oy++) {
        const float *r0 = src + (int64_t)2 * oy * g->W, *r1 = r0 + g->W;
        int32_t base = 2 * oy * g->W;
        for (int ox = 0; ox < g->OW; ox++) {
            float best = r0[2 * ox];
            int32_t best_i = base + 2 * ox;
            take_max(r0[2 * ox + 1], base + 2 * ox + 1, &best, &best_i);
            take_max(r1[2 * ox], base + g->W + 2 * ox, &best, &best_i);
            take_max(r1[2 * ox + 1], base + g->W + 2 * ox + 1, &best, &best_i);
            dst[oy * g->OW + ox] = best;
            if (arg) arg[oy * g->OW + ox] = best_i;
        }
    }
}

tq_tensor *tq_maxpool2d(tq_tape *t, tq_tensor *x, int kernel, int stride)
{
    TQ_REQUIRE_INPUTS(t, "maxpool2d", x);
    pool_geom g;
    if (!pool_setup(t, "maxpool2d", x, kernel, stride, &g)) return NULL;
    tq_tensor *y = tq_op_output(t, &x, 1, 4, (int32_t[]){x->shape[0], x->shape[1], g.OH, g.OW});
    if (!y) return NULL;
    const int64_t in_len = (int64_t)g.H * g.W, out_len = (int64_t)g.OH * g.OW;
    int32_t *arg = NULL;
    if (y->grad && !(arg = tq_tape_alloc(t, (size_t)(g.planes * out_len) * sizeof(int32_t))))
        return NULL;
    const bool two = kernel == 2 && stride == 2;
#pragma omp parallel for schedule(static) if (g.planes * out_len >= POOL_PARALLEL_MIN)
    for (int64_t pl = 0; pl < g.planes; pl++) {
        const float *src = x->data + pl * in_len;
        float *dst = y->data + pl * out_len;
        int32_t *a = arg ? arg + pl * out_len : NULL;
        if (two) maxpool_plane_2x2(&g, src, dst, a);
        else maxpool_plane(&g, src, dst, a);
    }
    tq_node *nd = tq_tape_record(t, &op_maxpool, y, &x, 1);
    if (nd) {
        nd->saved = arg;
        nd->iarg[0] = kernel;
        nd->iarg[1] = stride;
    }
    return y;
}

/* ---- average pool */

static void avgpool_backward(tq_node *nd)
{
    const pool_geom g = geometry_of(nd);
    const float *gy = nd->out->grad;
    float *gx = nd->in[0]->grad;
    const int64_t in_len = (int64_t)g.H * g.W, out_len = (int64_t)g.OH * g.OW;
    const float inv = 1.0f / (float)(g.k * g.k);
#pragma omp parallel for schedule(static) if (g.planes * out_len >= POOL_PARALLEL_MIN)
    for (int64_t pl = 0; pl < g.planes; pl++) {
        float *dst = gx + pl * in_len;
        for (int oy = 0; oy < g.OH; oy++)
            for (int ox = 0; ox < g.OW; ox++) {
                float v = gy[pl * out_len + (int64_t)oy * g.OW + ox] * inv;
                for (int ky = 0; ky < g.k; ky++) {
                    float *row = dst + (int64_t)(oy * g.s + ky) * g.W + ox * g.s;
                    for (int kx = 0; kx < g.k; kx++) row[kx] += v;
                }
            }
    }
}
static const tq_op_def op_avgpool = {.name = "avgpool2d", .backward = avgpool_backward};

tq_tensor *tq_avgpool2d(tq_tape *t, tq_tensor *x, int kernel, int stride)
{
    TQ_REQUIRE_INPUTS(t, "avgpool2d", x);
    pool_geom g;
    if (!pool_setup(t, "avgpool2d", x, kernel, stride, &g)) return NULL;
    tq_tensor *y = tq_op_output(t, &x, 1, 4, (int32_t[]){x->shape[0], x->shape[1], g.OH, g.OW});
    if (!y) return NULL;
    const int64_t in_len = (int64_t)g.H * g.W, out_len = (int64_t)g.OH * g.OW;
    const float inv = 1.0f / (float)(kernel * kernel);
#pragma omp parallel for schedule(static) if (g.planes * out_len >= POOL_PARALLEL_MIN)
    for (int64_t pl = 0; pl < g.planes; pl++) {
        const float *src = x->data + pl * in_len;
        for (int oy = 0; oy < g.OH; oy++)
            for (int ox = 0; ox < g.OW; ox++) {
                float s = 0.0f;
                for (int ky = 0; ky < g.k; ky++) {
                    const float *row = src + (int64_t)(oy * g.s + ky) * g.W + ox * g.s;
                    for (int kx = 0; kx < g.k; kx++) s += row[kx];
                }
                y->data[pl * out_len + (int64_t)oy * g.OW + ox] = s * inv;
            }
    }
    tq_node *nd = tq_tape_record(t, &op_avgpool, y, &x, 1);
    if (nd) {
        nd->iarg[0] = kernel;
        nd->iarg[1] = stride;
    }
    return y;
}

/* ---- global average pool: (N,C,H,W) -> (N,C) */

static void global_avgpool_backward(tq_node *nd)
{
    tq_tensor *x = nd->in[0];
    const int64_t planes = nd->out->numel, len = x->numel / planes;
    const float inv = 1.0f / (float)len;
    for (int64_t pl = 0; pl < planes; pl++) {
        float v = nd->out->grad[pl] * inv, *dst = x->grad + pl * len;
        for (int64_t i = 0; i < len; i++) dst[i] += v;
    }
}
static const tq_op_def op_global_avgpool = {.name = "global_avgpool",
                                            .backward = global_avgpool_backward};

tq_tensor *tq_global_avgpool(tq_tape *t, tq_tensor *x)
{
    TQ_REQUIRE_INPUTS(t, "global_avgpool", x);
    if (x->ndim != 4) return tq_fail_shape(t, "global_avgpool", "x (N,C,H,W)", x);
    tq_tensor *y = tq_op_output(t, &x, 1, 2, (int32_t[]){x->shape[0], x->shape[1]});
    if (!y) return NULL;
    const int64_t len = (int64_t)x->shape[2] * x->shape[3];
    const float inv = 1.0f / (float)len;
    for (int64_t pl = 0; pl < y->numel; pl++) {
        const float *src = x->data + pl * len;
        float s = 0.0f;
        for (int64_t i = 0; i < len; i++) s += src[i];
        y->data[pl] = s * inv;
    }
    tq_tape_record(t, &op_global_avgpool, y, &x, 1);
    return y;
}
