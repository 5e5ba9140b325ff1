/* Private to engine/: the compiled program (values, steps), how it is planned from the layer
 * graph, and the kernels that run each step on a chunk of images. */
#ifndef TINYQAT_ENGINE_INTERNAL_H
#define TINYQAT_ENGINE_INTERNAL_H

#include "engine.h"
#include "qconv.h"
#include "qkernels.h"

/* Fine integers carry 16 bits below the step of the quantizer they are meant for: a
 * rescaling then errs by at most 2^-17 of a step, and an int32 still holds 32768 steps. */
#define TQ_ENGINE_FINE_BITS 16
/* Images per pass through the program (the size of every activation buffer): at most 64,
 * fewer (down to 8) while a chunk's buffers would pass TQ_ENGINE_CHUNK_BYTES, so that a
 * step's input and output stay in a core's L2 cache (ResNet-20 on CIFAR-10: 8). */
#define TQ_ENGINE_CHUNK 64
#define TQ_ENGINE_MIN_CHUNK 8
#define TQ_ENGINE_CHUNK_BYTES (512 * 1024)
/* Output pixels per product of a convolution (one thread's im2col rows). */
#define TQ_ENGINE_ROW_BLOCK 128

/* A tensor of the program, for one chunk of images, stored (H,W,C) per image. */
typedef enum tq_val_domain {
    TQ_VAL_CODES, /* one byte per value: code + zp */
    TQ_VAL_FINE,  /* int32, value = v * unit */
} tq_val_domain;

typedef struct tq_val {
    tq_val_domain domain;
    int32_t c, h, w;
    int64_t numel;  /* c * h * w */
    int64_t stride; /* elements per image in the buffer (codes: numel rounded up to 64) */
    double unit;    /* the real value of one integer step: the quantizer's scale for codes */
    int32_t zp;     /* codes: 128 for signed formats, 0 for unsigned */
    int32_t lo, hi; /* codes: the format's range (before adding zp) */
    char fmt[16];   /* codes: "int8", "uint4"; fine: "int32" */
    int q;          /* codes: the qlayer whose input quantizer made them */
    int buf;        /* index of its buffer */
    int first, last; /* the step that writes it and the last that reads it */
} tq_val;

typedef enum tq_step_kind {
    TQ_STEP_INPUT,    /* pixels -> codes or fine through a table per channel */
    TQ_STEP_QLAYER,   /* codes -> u8 x s8 product -> requantized output (or logits) */
    TQ_STEP_TO_CODES, /* fine -> codes for one quantizer (per channel multipliers) */
    TQ_STEP_RELU,
    TQ_STEP_MAXPOOL,
    TQ_STEP_AVGPOOL,
    TQ_STEP_GAP,
    TQ_STEP_BN,       /* a batch norm no Linear/Conv2d absorbed, on fine integers */
    TQ_STEP_ADD,
} tq_step_kind;

/* Every rescaling rounds half to even, as fake quant (rintf) and ONNX QuantizeLinear do:
 * floor((t + half) / 2^shift), less one where that is odd and t + half has no fraction bits
 * (the exact tie). Ties up would make the engine's codes differ from fake quant's wherever
 * both land on an exact half: in ResNet-20 those were nearly all the first differences of
 * an image, which then spread to thousands of codes downstream. */

/* v -> round(v * scale + offset) in integers: (v * mult + bias) >> shift, where mult and
 * shift are the scale's fixed-point form (tq_requant_make) and bias holds the offset at
 * 2^-shift plus one half. A bias added before the one rounding, rather than after it, keeps
 * the output a single rounding of the exact value. */
typedef struct tq_affine {
    int64_t mult, bias;
    int32_t shift;
    int64_t mask; /* the fraction bits: 2^shift - 1, or all ones without any */
} tq_affine;
tq_affine tq_affine_make(double scale, double offset);

/* A product's requantization, every output channel at one shift so that a row of outputs
 * vectorizes: out[o] = ((acc[o] - corr[o]) * mult[o] + bias[o]) >> shift, minus offset.
 * corr is zp * the weight row's sum (the product saw codes + zp); bias holds the real bias
 * at 2^-shift, one half and 2^62, which keeps the sum positive, so that a logical shift does
 * (x86 has no arithmetic shift of 64-bit lanes before AVX-512); offset = 2^(62 - shift)
 * takes it out again. |acc - corr| < 2^30 (at most 16384 inputs per output)
 * keeps the sum inside (0, 2^63). */
typedef struct tq_rowquant {
    int32_t *mult, *corr; /* period values: the n channels repeated, so that a run of several */
    int64_t *bias;        /* output pixels' channels is one loop over contiguous arrays */
    int64_t period;       /* n times the repeats, at least 32 */
    int32_t shift;        /* at most 61: offset stays even, and with it the parity */
    int64_t offset;
    uint64_t mask;        /* the fraction bits (all ones for shift 0: a sum is never 0) */
} tq_rowquant;
#define TQ_ENGINE_MAX_K 16384
/* From real multipliers m and biases c (n channels, in output units) and the weights' row
 * sums times the input zp (row_sum NULL: no correction, for steps on fine integers). */
tq_status tq_rowquant_make(tq_rowquant *q, const double *m, const double *c, const int32_t *row_sum,
                           int32_t zp, int64_t n, tq_error *err);
void tq_rowquant_free(tq_rowquant *q);
/* y[j] for sums a[j], j < len <= q->period: codes clamped to [lo, hi] plus zp, or fine
 * integers clamped below at lo (INT32_MIN, or 0 with a folded ReLU). AVX2 where the CPU has
 * it (requant_rows.c); the _ref forms are the portable path, for the tests. */
void tq_rowquant_codes(const int32_t *a, int64_t len, const tq_rowquant *q, int64_t lo,
                       int64_t hi, int32_t zp, uint8_t *y);
void tq_rowquant_fine(const int32_t *a, int64_t len, const tq_rowquant *q, int64_t lo,
                      int32_t *y);
void tq_rowquant_codes_ref(const int32_t *a, int64_t len, const tq_rowquant *q, int64_t lo,
                           int64_t hi, int32_t zp, uint8_t *y);
void tq_rowquant_fine_ref(const int32_t *a, int64_t len, const tq_rowquant *q, int64_t lo,
                          int32_t *y);

/* A residual add: round(a * ma' + b * mb') at one shift, the sum kept positive for the
 * logical shift as in tq_rowquant; |ma|, |mb| < 2^29 keep |a ma| + |b mb| < 2^61 for any
 * int32 a and b. */
typedef struct tq_addquant {
    int32_t ma, mb, shift;
    int64_t bias, offset;
    uint64_t mask;
} tq_addquant;
tq_addquant tq_addquant_make(double ra, double rb);
/* y[i] from a[i] + b[i], i < n: codes clamped to [lo, hi] plus zp, or fine integers clamped
 * below at lo (AVX2 where the CPU has it). */
void tq_add_codes(const int32_t *a, const int32_t *b, int64_t n, const tq_addquant *q, int64_t lo,
                  int64_t hi, int32_t zp, uint8_t *y);
void tq_add_fine(const int32_t *a, const int32_t *b, int64_t n, const tq_addquant *q, int64_t lo,
                 int32_t *y);

/* The last rescaling of a step that computes at a finer unit than its output's (add, pools):
 * none (already in the output's unit) or one multiplier. */
typedef struct tq_emit {
    bool rescale;
    tq_affine a;
} tq_emit;

typedef struct tq_step {
    tq_step_kind kind;
    char name[48];     /* the layer it runs */
    int layer;         /* its index in the model (QLAYER, BN) */
    int in, in2, out;  /* values; out -1: the logits */
    bool relu;         /* a ReLU after it, folded into its output's clamp */
    int kernel, stride, pad;
    tq_emit emit;
    /* Per channel: QLAYER's output channels (not for the logits), TO_CODES's channels or a
     * Linear's input positions after a flatten, BN's channels. */
    int64_t n_chan;
    tq_rowquant rq;
    tq_addquant add;   /* ADD */
    /* QLAYER */
    int qlayer;
    bool is_conv;
    tq_packed wcodes;  /* the weights as stored */
    tq_qweights w;     /* unpacked into the product's operand */
    tq_qconv_weights cw; /* the same as 16-bit pairs, for the direct path */
    int32_t *cw_mult;  /* the direct path's requantization: rq's first n values, zeros to n8 * 8 */
    int64_t *cw_bias;
    /* The direct path fuses a 2x2 max pool of stride 2 that alone reads a convolution's output
     * into it (every multiplier >= 0, so pooling commutes with the requantization): the
     * convolution writes value pool_out, the pool step (pool_fused) does nothing. */
    bool fuse_pool, pool_fused;
    int pool_out;
    char wfmt[16];     /* the weight format, "int4" */
    double *deq_scale, *deq_bias; /* the last layer: logits = acc * scale + bias */
    bool merged_bn;    /* a batch norm folded into the requantization: layer bn_layer */
    int bn_layer;
    /* INPUT: [c][256] stored codes or fine integers */
    int32_t *lut;
} tq_step;

/* The memory one chunk of images runs in: every value's buffer, padded images, and for each
 * thread of a step's own parallel loops im2col rows and accumulators. Chunks run in parallel,
 * each in a workspace of its own. */
typedef struct tq_workspace {
    void **bufs;     /* n_bufs, each buf_cap bytes per image for e->chunk images */
    uint8_t *padded; /* a chunk of images with a border, for padded convolutions */
    uint8_t **scr_a; /* n_scratch of each */
    int32_t **scr_acc;
    int n_scratch;
} tq_workspace;

struct tq_engine {
    int32_t c, h, w, classes; /* the input image and the logits */
    tq_val *vals;
    int n_vals;
    tq_step *steps;
    int n_steps;
    int n_qlayers;
    int *qlayer_input;        /* value holding each qlayer's input codes */
    /* the sizes of a workspace's memory, in bytes */
    int n_bufs;
    int64_t *buf_cap;         /* per image */
    int64_t padded_bytes, scratch_a, scratch_acc;
    int64_t chunk;            /* images per pass (TQ_ENGINE_CHUNK) */
    /* products run as direct convolutions on 16-bit codes (tq_qconv) rather than as im2col
     * and tq_qgemm: where tq_qconv_available() says so; tests switch it to compare */
    bool direct;
    tq_workspace *ws;
    int n_ws;
};

/* ---- planning (plan.c): checks the model, decides which tensors are codes and which fine
 * integers and at which unit, and lays out values and steps (numbers filled in by build.c). */
tq_status tq_engine_plan(tq_engine *e, tq_model *m, tq_error *err);
/* Refuses (one line naming the layer) a Linear/Conv2d the engine cannot run (check.c). */
tq_status tq_engine_check_qlayer(tq_model *m, int qi, tq_error *err);
/* The per-tensor scale of qlayer qi's input quantizer (after the check). */
double tq_engine_input_scale(tq_model *m, int qi);

/* ---- building (build.c, build_qlayer.c) */
tq_status tq_engine_build_qlayer(tq_engine *e, tq_step *s, tq_model *m, tq_error *err);
/* Assigns buffers to values (reusing them once a value is dead) and sizes a workspace. */
tq_status tq_engine_plan_buffers(tq_engine *e, tq_error *err);
/* At least n workspaces, each with scratch for `threads` threads. */
tq_status tq_engine_workspaces(tq_engine *e, int n, int threads, tq_error *err);
void tq_engine_free_workspaces(tq_engine *e);

/* ---- kernels (steps.c, qlayer_run.c): one step on images [0, n) of the chunk in workspace
 * ws; logits (n, classes) for the last layer. */
void tq_engine_step_run(const tq_engine *e, tq_workspace *ws, const tq_step *s,
                        const uint8_t *images, int64_t n, float *logits);
void tq_engine_qlayer_run(const tq_engine *e, tq_workspace *ws, const tq_step *s, int64_t n,
                          float *logits);
/* The same on the direct path (qlayer_direct.c), the same bits. */
void tq_engine_qlayer_direct(const tq_engine *e, tq_workspace *ws, const tq_step *s, int64_t n,
                             float *logits);
/* Bytes of a thread's scratch that the direct path needs for step s. */
int64_t tq_engine_direct_scratch(const tq_engine *e, const tq_step *s);

/* ---- a value's integers for image img of the chunk in workspace ws */
static inline uint8_t *tq_val_codes(const tq_workspace *ws, const tq_val *v, int64_t img)
{
    return (uint8_t *)ws->bufs[v->buf] + img * v->stride;
}
static inline int32_t *tq_val_fine(const tq_workspace *ws, const tq_val *v, int64_t img)
{
    return (int32_t *)ws->bufs[v->buf] + img * v->stride;
}

/* ---- integer helpers */

/* |v| is clamped to 2^31 - 1 (int32 values and accumulators never reach it), so that
 * |v * mult| < 2^62 and adding the bias cannot overflow. */
static inline int64_t tq_affine_apply(int64_t v, const tq_affine *a)
{
    const int64_t lim = INT32_MAX;
    v = v > lim ? lim : v < -lim ? -lim : v;
    const int64_t t = v * a->mult + a->bias, r = t >> a->shift;
    return (t & a->mask) == 0 ? r & ~(int64_t)1 : r; /* a tie: to even */
}

static inline int32_t tq_sat32(int64_t v)
{
    return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

static inline int64_t tq_emit_value(const tq_emit *e, int64_t v)
{
    return e->rescale ? tq_affine_apply(v, &e->a) : v;
}
/* A code clamped to the format's range and stored with its zp. */
static inline uint8_t tq_store_code(const tq_val *out, int64_t code)
{
    code = code < out->lo ? out->lo : code > out->hi ? out->hi : code;
    return (uint8_t)(code + out->zp);
}
/* The lowest code a step writes: the format's, or 0 with a ReLU folded in. */
static inline int64_t tq_step_lo(const tq_step *s, const tq_val *out)
{
    return s->relu && out->lo < 0 ? 0 : out->lo;
}

#endif
