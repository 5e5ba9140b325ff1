/* Private to quant/: minifloat rounding kernels, amax layouts, scale computation, the
 * calibration observers and the quantizer's internals. */
#ifndef TINYQAT_QUANT_INTERNAL_H
#define TINYQAT_QUANT_INTERNAL_H

#include <math.h>
#include <string.h>

#include "quant.h"

/* ---- minifloat rounding: sign, ebits, mbits, bias; saturating, ties to even */

typedef struct tq_fp_params {
    int mbits;
    int emin;  /* exponent of the smallest normal (1 - bias) */
    float max; /* largest finite value */
} tq_fp_params;

tq_fp_params tq_fp_params_of(tq_format f);

/* |v| rounded onto the grid, sign restored. Divisions are by powers of two (exact), done as
 * multiplications by the exact inverse. NaN stays NaN, +-inf saturates. */
static inline float tq_fp_round(float v, tq_fp_params p)
{
    float a = fabsf(v);
    uint32_t bits;
    memcpy(&bits, &a, sizeof bits);
    int e = (int)(bits >> 23) - 127;
    if (e < p.emin) e = p.emin;
    if (e > 127) e = 127; /* inf and NaN: keeps the exponents below finite */
    uint32_t qb = (uint32_t)(e - p.mbits + 127) << 23, ib = (uint32_t)(127 - e + p.mbits) << 23;
    float quantum, inv;
    memcpy(&quantum, &qb, sizeof quantum);
    memcpy(&inv, &ib, sizeof inv);
    float r = rintf(a * inv) * quantum;
    r = r > p.max ? p.max : r;
    return copysignf(r, v);
}

/* ---- layouts: which amax each element uses */

typedef struct tq_layout {
    tq_block_kind kind;
    int64_t outer, n, inner; /* dimensions before, at and after the axis */
    int64_t block_size, nblocks;
    int64_t count; /* amax values the layout needs */
} tq_layout;

/* Runs of elements sharing how they find their amax: one index for a whole run, or (vec)
 * consecutive indices from sidx for consecutive elements. Runs never overlap, so they can be
 * processed in parallel when each writes only its own elements. */
typedef struct tq_span {
    int64_t start, len, sidx;
    bool vec;
} tq_span;
int64_t tq_layout_span_count(const tq_layout *l);
tq_span tq_layout_span(const tq_layout *l, int64_t k);

/* Fills *l for tensor x under spec s; false (err set, naming who) if the axis does not exist. */
bool tq_layout_of(const tq_qspec *s, const tq_tensor *x, tq_layout *l, const char *who,
                  tq_error *err);

/* Per-block abs max of x into amax[l->count]. */
void tq_layout_block_absmax(const tq_layout *l, const float *x, float *amax);

/* The element-domain step each amax implies (0 when amax is 0): amax/qmax for float
 * scales, a power of two for E8M0, e4m3 block scale times global scale for NVFP4. */
void tq_scales_from_amax(const tq_qspec *s, tq_format f, const float *amax, int64_t count,
                         float global_amax, float *scale);
/* MX shared exponent floor(log2 amax) - emax_elem, clamped to E8M0's [-127, 127]. */
int tq_e8m0_exponent(float amax, tq_format elem);
/* NVFP4 global scale global_amax / (448 * 6) and the e4m3-rounded block scale. */
float tq_nvfp4_global_scale(float global_amax);
float tq_nvfp4_block_scale(float block_amax, float global_scale);

/* Fake quant of x (laid out by l) into y with per-layout-index scales. */
void tq_fake_quant_forward(tq_format f, const tq_layout *l, const float *scale, const float *x,
                           float *y);

/* The amax (amax_out) and scales (scale_out), l->count each, quantizer q uses for x: its
 * own amax, or per-block amax from x clipped to its single amax. */
tq_status tq_quant_prepare(const tq_quantizer *q, const tq_tensor *x, const tq_layout *l,
                           float *amax_out, float *scale_out, tq_error *err);

/* The op itself: forward with q's amax, backward by q's STE; errors go to the tape. A
 * quantizer that learns its scales records the LSQ op instead (lsq.c). */
tq_tensor *tq_fake_quant_op(tq_tape *t, tq_tensor *x, tq_quantizer *q);
tq_tensor *tq_lsq_op(tq_tape *t, tq_tensor *x, tq_quantizer *q);

/* Whether a spec's scales can be learned: one float scale per tensor or per channel (an MX
 * or NVFP4 step, or per-block amax computed from each tensor, has nothing to learn from). */
static inline bool tq_qspec_learnable(const tq_qspec *s)
{
    return s->scale == TQ_SCALE_FLOAT && s->block != TQ_BLOCK_BLOCK;
}

/* ---- calibration observers: running abs max and an |x| histogram */

#define TQ_HIST_BINS 2048

typedef struct tq_observer {
    float amax;    /* running abs max */
    float range;   /* histogram covers [0, range) in TQ_HIST_BINS bins; 0 = not started */
    int64_t count; /* values seen */
    double *hist;  /* NULL for max calibration */
} tq_observer;

/* Observes n values at x with the given stride between runs: values x[k*stride + i] for
 * k < runs, i < len. */
void tq_observer_add(tq_observer *o, const float *x, int64_t runs, int64_t len, int64_t stride,
                     bool *seen_negative);
tq_status tq_observer_init(tq_observer *o, bool with_hist, tq_error *err);
void tq_observer_free(tq_observer *o);
/* amax from the observations with the given calibrator for elements of format f. */
float tq_observer_amax(const tq_observer *o, const tq_qspec *s, tq_format f);

/* Thresholds from a histogram of nbins over [0, range); cap is the abs max seen, which a
 * range grown by doubling exceeds: MSE and entropy consider no threshold beyond it. */
float tq_calib_percentile(const double *hist, int nbins, float range, float pct);
float tq_calib_mse(const double *hist, int nbins, float range, float cap, tq_format f);
float tq_calib_entropy(const double *hist, int nbins, float range, float cap, tq_format f);

/* ---- the quantizer */

struct tq_quantizer {
    tq_qspec spec;
    tq_format format; /* effective: spec's, or uintN after the unsigned switch */
    bool unsigned_chosen;
    tq_qstate state;
    float *amax;
    int64_t amax_count;
    bool from_weights; /* amax came from calibrate_weight: observations do not override it */
    float *amax_grad;  /* amax_count values while the spec learns its scales, else NULL */
    bool seen_negative;
    bool keep_hist;    /* observe into a histogram whatever the calibrator (for figures) */
    tq_observer *obs; /* one per channel for per-channel, else one */
    int64_t n_obs;
};

#endif
