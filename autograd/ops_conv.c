/* 2-D convolution with zero padding: per image a direct convolution (stride 1, outputs in
 * multiples of 16, AVX-512) or an implicit-im2col product in forward (im2col + sgemm under
 * OpenBLAS), sgemm + col2im or the direct convolution for the input gradient, the direct
 * weight gradient or im2col + sgemm for the weights; images spread over the OpenMP pool, the
 * weight gradient summed over fixed chunks of images in a fixed order. */
#include "internal.h"

#include "conv_cols.h"
#include "conv_direct.h"
#include "gemm.h"
#include "parallel.h"
#include <stdio.h>
#include <string.h>

/* Per-thread slices padded to 64 bytes so neighbouring threads never share a cache line. */
static int64_t padded(int64_t n) { return (n + 15) & ~(int64_t)15; }

#define CONV_IMPLICIT_MIN_C 8

/* Whether the forward product stores the column matrix: not for 1x1 stride-1 convolutions
 * (the image is the column matrix), nor with the AVX-512 backend for long enough columns:
 * tq_sgemm_conv builds them sliver by sliver in L1 instead of writing up to kh*kw times the
 * input to memory and reading it back. */
static bool use_direct(const conv_geom *g);
static bool needs_im2col(const conv_geom *g)
{
    return !g->input_is_cols && !use_direct(g) &&
           (g->C < CONV_IMPLICIT_MIN_C || strcmp(tq_sgemm_backend(), "avx512") != 0);
}

static tq_conv_shape conv_shape(const conv_geom *g)
{
    return (tq_conv_shape){.C = g->C, .H = g->H, .W = g->W, .kh = g->kh, .kw = g->kw,
                           .stride = g->stride, .pad = g->pad};
}

/* The direct convolution (conv_direct.c) beats the product for stride-1 convolutions with
 * taps to gather (measured per image, 1 thread, 3x3 pad 1: 16 -> 16 on 32x32 215 against 145
 * GFLOP/s, 64 -> 64 on 8x8 223 against 176, 3 -> 16 on 32x32 191 against 81); a 1x1 stride-1
 * convolution needs no gathering and stays a product. */
static bool use_direct(const conv_geom *g)
{
    const tq_conv_shape s = conv_shape(g);
    return !g->input_is_cols && tq_conv_direct_supported(g->O, &s);
}

/* Per-thread buffers and packed weights of the direct convolution, on the tape. */
typedef struct direct_plan {
    float *wp, *scratch;
    int64_t slice;
} direct_plan;

/* Packs w for conv (or, with adjoint, for the input gradient) and takes T scratch slices for
 * shape s; false when the tape is out of memory. */
static bool plan_direct(tq_tape *t, direct_plan *dp, const conv_geom *g, const tq_conv_shape *s,
                        const float *w, bool adjoint, int T)
{
    dp->slice = padded((int64_t)tq_conv_direct_scratch_len(s));
    dp->wp = tq_tape_alloc(t, tq_conv_direct_packed_len(g->C, g->O, g->kh, g->kw) * sizeof(float));
    dp->scratch = tq_tape_alloc(t, (size_t)(T * dp->slice) * sizeof(float));
    if (!dp->wp || !dp->scratch) return false;
    tq_conv_direct_pack(w, g->O, g->C, g->kh, g->kw, adjoint, dp->wp);
    return true;
}

/* yn (O,p) = w (O,ck) cols (ck,p) + beta yn for one image xn; scratch holds the column matrix
 * when needs_im2col (NULL otherwise), dp the direct convolution's buffers when use_direct
 * (NULL otherwise). The product's ways give the same bits; the direct one sums in another
 * order. */
static void conv_forward_product(const conv_geom *g, const float *w, const float *xn, float beta,
                                 float *yn, float *scratch, const direct_plan *dp)
{
    const float *cols = xn;
    if (dp) {
        const tq_conv_shape s = conv_shape(g);
        tq_conv_direct(g->O, &s, dp->wp, xn, beta, yn, g->p,
                       dp->scratch + tq_omp_thread_id() * dp->slice); /* true: use_direct */
        return;
    }
    if (needs_im2col(g)) {
        tq_im2col(g, xn, scratch, g->p);
        cols = scratch;
    } else if (!g->input_is_cols) {
        const tq_conv_shape s = conv_shape(g);
        tq_sgemm_conv(g->O, &s, 1.0f, w, g->ck, xn, beta, yn, g->p); /* true: avx512 */
        return;
    }
    tq_sgemm(false, false, g->O, g->p, g->ck, 1.0f, w, g->ck, cols, g->p, beta, yn, g->p);
}

/* Eight independent partial sums let the compiler vectorise the reduction. */
static float plane_sum(const float *p, int n)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += p[i + j];
    float s = 0.0f;
    for (; i < n; i++) s += p[i];
    for (int j = 0; j < 8; j++) s += acc[j];
    return s;
}

/* Arena scratch saved for backward. The images are cut into `chunks` fixed chunks
 * (tq_reduce_chunks): each chunk sums its images' weight gradient into a part of its own, and
 * the parts are added in a fixed order, so the bits depend on the batch, never on the
 * threads. `slots` scratch slices of `slice` floats serve the threads (column buffers; none
 * when direct). */
typedef struct conv_saved {
    float *cols, *dw_parts;
    int64_t slice, dw_stride;
    int threads, slots, chunks, group;
    direct_plan dx; /* input gradient as a direct convolution of gy when dx.wp is not NULL */
    /* weight gradient of the direct kernel when dw_direct: the parts are packed, and each
     * slot has a scratch slice of dw_slice floats */
    bool dw_direct;
    float *dw_scratch;
    int64_t dw_slice;
} conv_saved;

/* A "same" stride-1 convolution's input gradient is the "same" convolution of gy by the
 * flipped, transposed kernel: taken directly when C suits the direct convolution, instead of
 * a product and col2im. */
static tq_conv_shape grad_x_shape(const conv_geom *g)
{
    return (tq_conv_shape){.C = g->O, .H = g->H, .W = g->W, .kh = g->kh, .kw = g->kw,
                           .stride = 1, .pad = g->pad};
}
static bool grad_x_direct(const conv_geom *g)
{
    const tq_conv_shape s = grad_x_shape(g);
    return g->same && !g->input_is_cols && tq_conv_direct_supported(g->C, &s);
}

/* The weight gradient through tq_conv_direct_dw, packed parts unpacked at the end, instead
 * of im2col and a product: for the stride-1 convolutions the direct forward takes. */
static bool grad_w_direct(const conv_geom *g) { return use_direct(g); }

/* Below this many multiply-adds a convolution stays on one thread: forking the pool costs
 * microseconds, and on a shared machine a descheduled thread can stall a join for a whole
 * time slice. */
#define CONV_PARALLEL_MIN_MACS (1 << 20)

/* Images per weight-gradient GEMM. One image's product has K = OH*OW, which for small
 * planes (8x8 in ResNet's last stage) or few output channels (LeNet's conv1: 6x25 with
 * K = 784) runs far below sgemm's peak; laying several images' columns side by side gives
 * one product with K = group*OH*OW, at the cost of a larger scratch slice. A group never
 * crosses a chunk. */
#define CONV_DW_TARGET_K 2048
static int dw_group(const conv_geom *g, int chunks)
{
    if (g->input_is_cols) return 1;
    int per_chunk = (g->N + chunks - 1) / chunks;
    int b = (CONV_DW_TARGET_K + g->p - 1) / g->p;
    return b < per_chunk ? b : per_chunk;
}

typedef struct conv_bwd {
    conv_geom g;
    tq_tensor *x, *w;
    const conv_saved *sv;
    const float *gy_all;
} conv_bwd;

/* dW (O,ck) += G (O, k*p) C^T (k*p, ck) over images n0 .. n1, k at a time (the group). */
static void grad_w_products(const conv_bwd *cb, int n0, int n1, float *scratch, float *dw)
{
    const conv_geom g = cb->g;
    const int64_t in_len = (int64_t)g.C * g.H * g.W, out_len = (int64_t)g.O * g.p;
    for (int n = n0; n < n1; n += cb->sv->group) {
        const int k = n1 - n < cb->sv->group ? n1 - n : cb->sv->group;
        const int64_t ld = (int64_t)k * g.p;
        const float *cols = cb->x->data + n * in_len, *gy = cb->gy_all + n * out_len;
        if (!g.input_is_cols) {
            float *gcols = scratch + (int64_t)g.ck * ld;
            for (int j = 0; j < k; j++) {
                tq_im2col(&g, cb->x->data + (n + j) * in_len, scratch + (int64_t)j * g.p, ld);
                if (k > 1)
                    for (int o = 0; o < g.O; o++)
                        memcpy(gcols + o * ld + (int64_t)j * g.p,
                               cb->gy_all + (n + j) * out_len + (int64_t)o * g.p,
                               (size_t)g.p * sizeof(float));
            }
            cols = scratch;
            if (k > 1) gy = gcols;
        }
        tq_sgemm(false, true, g.O, g.ck, (int)ld, 1.0f, gy, (int)ld, cols, (int)ld, 1.0f, dw, g.ck);
    }
}

/* One chunk of images: their weight gradient into part, their input gradients in place. */
static void backward_chunk(void *ctx, int chunk, int slot, float *part)
{
    const conv_bwd *cb = ctx;
    const conv_geom g = cb->g;
    const conv_saved *sv = cb->sv;
    const int n0 = (int)tq_chunk_begin(g.N, sv->chunks, chunk),
              n1 = (int)tq_chunk_begin(g.N, sv->chunks, chunk + 1);
    const int64_t in_len = (int64_t)g.C * g.H * g.W, out_len = (int64_t)g.O * g.p;
    float *scratch = g.input_is_cols || !sv->cols ? NULL : sv->cols + slot * sv->slice;
    if (part && sv->dw_direct) {
        const tq_conv_shape s = conv_shape(&g);
        for (int n = n0; n < n1; n++)
            tq_conv_direct_dw(g.O, &s, cb->x->data + n * in_len, cb->gy_all + n * out_len, part,
                              sv->dw_scratch + slot * sv->dw_slice); /* true: direct */
    } else if (part) {
        grad_w_products(cb, n0, n1, scratch, part);
    }
    tq_tensor *x = cb->x;
    for (int n = n0; x->grad && n < n1; n++) { /* dcols (ck,p) = w^T (ck,O) gy (O,p) */
        const float *gy = cb->gy_all + n * out_len, *w = cb->w->data;
        float *dx = x->grad + n * in_len;
        if (sv->dx.wp) {
            const tq_conv_shape s = grad_x_shape(&g);
            tq_conv_direct(g.C, &s, sv->dx.wp, gy, 1.0f, dx, g.p,
                           sv->dx.scratch + slot * sv->dx.slice); /* true: grad_x_direct */
        } else if (g.input_is_cols) {
            tq_sgemm(true, false, g.ck, g.p, g.O, 1.0f, w, g.ck, gy, g.p, 1.0f, dx, g.p);
        } else {
            tq_sgemm(true, false, g.ck, g.p, g.O, 1.0f, w, g.ck, gy, g.p, 0.0f, scratch, g.p);
            tq_col2im_add(&g, scratch, dx);
        }
    }
}

static void conv_backward(tq_node *nd)
{
    tq_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->n_in > 2 ? nd->in[2] : NULL;
    const conv_bwd cb = {.g = tq_conv_geometry(x, w, (int)nd->iarg[0], (int)nd->iarg[1]),
                         .x = x, .w = w, .sv = nd->saved, .gy_all = nd->out->grad};
    const conv_geom g = cb.g;
    const conv_saved *sv = cb.sv;
    const int64_t out_len = (int64_t)g.O * g.p;
    if (x->grad || w->grad) {
        /* the direct kernel's parts are packed: summed in place, then unpacked */
        const int64_t len = !w->grad ? 0
                            : sv->dw_direct ? (int64_t)tq_conv_direct_packed_len(g.C, g.O, g.kh, g.kw)
                                            : (int64_t)g.O * g.ck;
        tq_reduce_chunks(sv->chunks, sv->threads, w->grad ? sv->dw_parts : NULL, len,
                         sv->dw_stride, backward_chunk, (void *)&cb,
                         sv->dw_direct ? NULL : w->grad);
        if (w->grad && sv->dw_direct)
            tq_conv_direct_unpack_add(sv->dw_parts, g.O, g.C, g.kh, g.kw, w->grad);
    }
    if (b && b->grad) {
        /* each channel sums its own planes, so any thread count gives the same bits */
#pragma omp parallel for schedule(static) if ((int64_t)g.N * out_len >= 32768)
        for (int o = 0; o < g.O; o++) {
            float s = 0.0f;
            for (int n = 0; n < g.N; n++) s += plane_sum(cb.gy_all + n * out_len + (int64_t)o * g.p, g.p);
            b->grad[o] += s;
        }
    }
}
static const tq_op_def op_conv2d = {.name = "conv2d", .backward = conv_backward};

/* Shape and argument checks shared by conv2d and its fused inference form; false after
 * recording the error on the tape. */
static bool conv_args_ok(tq_tape *t, const tq_tensor *x, const tq_tensor *w, const tq_tensor *b,
                         int stride, int pad)
{
    if (x->ndim != 4 || w->ndim != 4 || x->shape[1] != w->shape[1])
        return tq_fail_shapes(t, "conv2d", "expected x (N,C,H,W) and w (O,C,kh,kw), got", x, w), false;
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        return tq_fail_shapes(t, "conv2d", "bias does not match w: w and bias are", w, b), false;
    if (stride < 1 || pad < 0)
        return tq_tape_fail(t, TQ_STATUS_ARG,
                            "conv2d: stride %d and padding %d (expected stride >= 1, padding >= 0)",
                            stride, pad), false;
    if (w->shape[2] > x->shape[2] + 2 * pad || w->shape[3] > x->shape[3] + 2 * pad) {
        char sx[64], sw[64];
        tq_tape_fail(t, TQ_STATUS_SHAPE, "conv2d: kernel of w %s does not fit x %s with padding %d",
                     tq_shape_str(w, sw, sizeof sw), tq_shape_str(x, sx, sizeof sx), pad);
        return false;
    }
    return true;
}

tq_tensor *tq_conv2d(tq_tape *t, tq_tensor *x, tq_tensor *w, tq_tensor *b, int stride, int pad)
{
    TQ_REQUIRE_INPUTS(t, "conv2d", x, w);
    if (!conv_args_ok(t, x, w, b, stride, pad)) return NULL;
    const conv_geom g = tq_conv_geometry(x, w, stride, pad);
    tq_tensor *in[] = {x, w, b};
    int n_in = b ? 3 : 2;
    tq_tensor *y = tq_op_output(t, in, n_in, 4, (int32_t[]){g.N, g.O, g.OH, g.OW});
    if (!y) return NULL;

    bool record = tq_tape_needs_grad(t, in, n_in);
    int T = tq_omp_max_threads();
    if (T > g.N) T = g.N; /* with one image, sgemm gets the whole pool instead */
    if ((int64_t)g.N * g.O * g.p * g.ck < CONV_PARALLEL_MIN_MACS) T = 1;
    conv_saved *sv = record ? tq_tape_alloc(t, sizeof *sv) : &(conv_saved){0};
    if (!sv) return NULL;
    sv->threads = T;
    sv->chunks = tq_chunk_count(g.N, 1);
    sv->slots = tq_piece_slots(sv->chunks, T);
    sv->group = dw_group(&g, sv->chunks);
    sv->cols = sv->dw_parts = sv->dw_scratch = NULL;
    sv->dx = (direct_plan){0};
    direct_plan fwd;
    if (use_direct(&g)) {
        const tq_conv_shape s = conv_shape(&g);
        if (!plan_direct(t, &fwd, &g, &s, w->data, false, T)) return NULL;
    }
    if (record && x->grad && grad_x_direct(&g)) {
        const tq_conv_shape s = grad_x_shape(&g);
        if (!plan_direct(t, &sv->dx, &g, &s, w->data, true, sv->slots)) return NULL;
    }
    sv->dw_direct = record && w->grad && grad_w_direct(&g);
    if (sv->dw_direct) {
        const tq_conv_shape s = conv_shape(&g);
        sv->dw_stride = padded((int64_t)tq_conv_direct_packed_len(g.C, g.O, g.kh, g.kw));
        sv->dw_slice = padded((int64_t)tq_conv_direct_dw_scratch_len(g.O, &s));
        if (!(sv->dw_scratch = tq_tape_alloc(t, (size_t)(sv->slots * sv->dw_slice) * sizeof(float))))
            return NULL;
    } else {
        sv->dw_stride = padded((int64_t)g.O * g.ck);
    }
    if (record && w->grad &&
        !(sv->dw_parts = tq_tape_alloc(t, (size_t)(sv->chunks * sv->dw_stride) * sizeof(float))))
        return NULL;
    /* forward with im2col needs one image's columns per thread; backward a group's columns
     * and gy per slot */
    sv->slice = padded((int64_t)g.ck * g.p);
    if (record && w->grad && !sv->dw_direct) {
        int64_t grouped = padded((int64_t)(g.ck + g.O) * sv->group * g.p);
        if (grouped > sv->slice) sv->slice = grouped;
    }
    /* backward's input gradient takes a product and col2im unless it is direct */
    const bool cols_needed =
        record ? !g.input_is_cols && (!sv->dw_direct || !sv->dx.wp) : needs_im2col(&g);
    const int col_slices = T > sv->slots ? T : sv->slots;
    if (cols_needed &&
        !(sv->cols = tq_tape_alloc(t, (size_t)(col_slices * sv->slice) * sizeof(float))))
        return NULL;

    const int64_t in_len = (int64_t)g.C * g.H * g.W, out_len = (int64_t)g.O * g.p;
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
    for (int n = 0; n < g.N; n++) {
        float *yn = y->data + n * out_len; /* (O, p) = w (O,ck) cols (ck,p) [+ b] */
        float beta = 0.0f;
        if (b) {
            for (int o = 0; o < g.O; o++)
                for (int i = 0; i < g.p; i++) yn[(int64_t)o * g.p + i] = b->data[o];
            beta = 1.0f;
        }
        conv_forward_product(&g, w->data, x->data + n * in_len, beta, yn,
                             sv->cols ? sv->cols + tq_omp_thread_id() * sv->slice : NULL,
                             use_direct(&g) ? &fwd : NULL);
    }

    tq_node *nd = tq_tape_record(t, &op_conv2d, y, in, n_in);
    if (nd) {
        nd->saved = sv;
        nd->iarg[0] = stride;
        nd->iarg[1] = pad;
    }
    return y;
}

tq_tensor *tq_conv2d_bn_eval(tq_tape *t, tq_tensor *x, tq_tensor *w, tq_tensor *b, int stride,
                             int pad, tq_tensor *gamma, tq_tensor *beta,
                             const tq_batchnorm_state *bn, bool relu)
{
    TQ_REQUIRE_INPUTS(t, "conv2d_bn_eval", x, w, gamma, beta);
    if (!conv_args_ok(t, x, w, b, stride, pad)) return NULL;
    tq_tensor *in[] = {x, w, gamma, beta, b};
    if (tq_tape_training(t) || tq_tape_needs_grad(t, in, b ? 5 : 4))
        return tq_tape_fail(t, TQ_STATUS_ARG,
                            "conv2d_bn_eval: inference only (tape in training mode or recording "
                            "a gradient)");
    if (gamma->ndim != 1 || gamma->shape[0] != w->shape[0])
        return tq_fail_shapes(t, "conv2d_bn_eval", "gamma does not match w: w and gamma are", w,
                              gamma);
    if (beta->ndim != 1 || beta->shape[0] != w->shape[0])
        return tq_fail_shapes(t, "conv2d_bn_eval", "beta does not match w: w and beta are", w, beta);
    if (!bn || !bn->running_mean || !bn->running_var || !(bn->eps > 0.0f))
        return tq_tape_fail(t, TQ_STATUS_ARG,
                            "conv2d_bn_eval: no running statistics state, or eps <= 0");
    const conv_geom g = tq_conv_geometry(x, w, stride, pad);
    tq_tensor *y = tq_tape_tensor(t, 4, (int32_t[]){g.N, g.O, g.OH, g.OW}, false);
    float *coef = tq_tape_alloc(t, (size_t)(3 * g.O) * sizeof(float));
    if (!y || !coef) return NULL;
    float *k = coef, *mean = coef + g.O, *shift = coef + 2 * g.O;
    for (int o = 0; o < g.O; o++) {
        k[o] = gamma->data[o] * tq_batchnorm_eval_invstd(bn, o);
        mean[o] = bn->running_mean[o];
        shift[o] = beta->data[o];
    }
    int T = tq_omp_max_threads();
    if (T > g.N) T = g.N;
    if ((int64_t)g.N * g.O * g.p * g.ck < CONV_PARALLEL_MIN_MACS) T = 1;
    const int64_t slice = padded((int64_t)g.ck * g.p);
    float *scratch = NULL;
    if (needs_im2col(&g) && !(scratch = tq_tape_alloc(t, (size_t)(T * slice) * sizeof(float))))
        return NULL;
    direct_plan fwd;
    if (use_direct(&g)) {
        const tq_conv_shape s = conv_shape(&g);
        if (!plan_direct(t, &fwd, &g, &s, w->data, false, T)) return NULL;
    }

    const int64_t in_len = (int64_t)g.C * g.H * g.W, out_len = (int64_t)g.O * g.p;
#pragma omp parallel for num_threads(T) schedule(static) if (T > 1)
    for (int n = 0; n < g.N; n++) {
        float *yn = y->data + n * out_len;
        float beta0 = 0.0f;
        if (b) {
            for (int o = 0; o < g.O; o++)
                for (int i = 0; i < g.p; i++) yn[(int64_t)o * g.p + i] = b->data[o];
            beta0 = 1.0f;
        }
        conv_forward_product(&g, w->data, x->data + n * in_len, beta0, yn,
                             scratch ? scratch + tq_omp_thread_id() * slice : NULL,
                             use_direct(&g) ? &fwd : NULL);
        /* the same expressions as batchnorm's and relu's forward, on a cache-hot plane */
        for (int o = 0; o < g.O; o++) {
            float *restrict row = yn + (int64_t)o * g.p;
            const float ko = k[o], mo = mean[o], so = shift[o];
            if (relu)
                for (int i = 0; i < g.p; i++) {
                    float v = ko * (row[i] - mo) + so;
                    row[i] = v > 0.0f ? v : 0.0f;
                }
            else
                for (int i = 0; i < g.p; i++) row[i] = ko * (row[i] - mo) + so;
        }
    }
    return y;
}
