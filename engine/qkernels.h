/* Private to engine/: the integer kernels. u8 x s8 -> s32 products over packed weights and
 * requantization by a fixed-point multiplier and shift (the integer-only scheme of Jacob et
 * al. 2018). Each kernel has a portable C path, which is the reference, and on x86-64 a
 * vpdpbusd path (AVX-512 VNNI) or a vpmaddwd one (AVX2) chosen at run time; all give the
 * same bits (integer sums are exact, and neither instruction saturates). */
#ifndef TINYQAT_QKERNELS_H
#define TINYQAT_QKERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "autograd.h"

/* ---- weights packed for tq_qgemm
 * B is n rows (output channels) of k int8 codes. Packed: k rounded up to k4 (a multiple of
 * 4) and n to n16 (a multiple of 16), both padded with zeros; for each group of 16 rows
 * g and each step s of 4 along k, 64 bytes where bytes 4j..4j+3 are
 * b[16g + j][4s .. 4s+3]: one vpdpbusd operand. */
typedef struct tq_qweights {
    int64_t n, k, k4, n16;
    int8_t *data;     /* n16 * k4 bytes, 64-byte aligned */
    int32_t *row_sum; /* n: sum over k of b[j][k] (for inputs shifted to unsigned) */
} tq_qweights;

tq_status tq_qweights_pack(const int8_t *b, int64_t n, int64_t k, tq_qweights *out,
                           tq_error *err);
void tq_qweights_free(tq_qweights *w);

/* At most this many codes along k: then no int32 sum can overflow (|u8 * s8| <= 32640,
 * and 65536 * 32640 < 2^31), so every order of summation gives the same bits. */
#define TQ_QGEMM_MAX_K 65536

/* c[i*ldc + j] = sum over kk < k of a[i*lda + kk] * b[j][kk], for i < m and j < w->n.
 * Rows of a hold w->k4 bytes (lda >= k4); those past k meet zero weights, so their values
 * do not matter. Columns of c from n on are not written. Outside an OpenMP parallel region
 * a large product is split over the pool by rows; inside one it runs on the calling
 * thread. Integer sums are exact, so the bits never depend on the path, the thread count
 * or the split. */
void tq_qgemm(int64_t m, const uint8_t *a, int64_t lda, const tq_qweights *w, int32_t *c,
              int64_t ldc);
/* The portable path, whatever the CPU (tests compare the two). */
void tq_qgemm_ref(int64_t m, const uint8_t *a, int64_t lda, const tq_qweights *w, int32_t *c,
                  int64_t ldc);
/* "vnni", "avx2" or "portable": what tq_qgemm runs here, decided once from the CPU
 * (AVX-512 F, BW, VL and VNNI; else AVX2) and the environment: TQ_QGEMM=portable forces
 * the portable path, TQ_QGEMM=avx2 the AVX2 one on a CPU that has VNNI. */
const char *tq_qgemm_backend(void);

/* ---- requantization
 * A real factor r as mult * 2^-shift, |mult| in [2^30, 2^31) (sign of r), shift in
 * [0, 62]; r == 0 gives mult 0. Relative error of the representation <= 2^-31 (mult is r's
 * mantissa rounded to 31 bits). */
typedef struct tq_requant {
    int32_t mult;
    int32_t shift;
} tq_requant;

/* For |r| in [2^-32, 2^31). Smaller factors keep fewer bits: shift stays 62 and
 * mult = round(|r| 2^62) < 2^30, 0 (with shift 0) below 2^-63. Larger ones saturate to
 * mult 2^31 - 1, shift 0. NaN and infinities give 0. */
tq_requant tq_requant_make(double r);

/* round(v * r): v * mult in 64 bits, then a rounding right shift. Ties go to the even
 * neighbour, the one rule of every rescaling in the engine (as fake quant's rintf and ONNX
 * QuantizeLinear): add 2^(shift-1), shift arithmetically, and where no fraction bits were
 * left (an exact tie) clear the lowest bit. */
static inline int64_t tq_requant_apply(int32_t v, tq_requant q)
{
    int64_t p = (int64_t)v * q.mult;
    if (q.shift == 0) return p;
    const int64_t t = p + ((int64_t)1 << (q.shift - 1)), r = t >> q.shift;
    return (t & (((int64_t)1 << q.shift) - 1)) == 0 ? r & ~(int64_t)1 : r;
}

/* ---- products that end in codes: tq_qgemm with the requantization fused, so the int32
 * sums never go to memory. For output channel j:
 *     y = clamp(tq_requant_apply(sum + bias[j], rq[j]), lo, hi) + offset
 * stored as one byte, out[i*ldo + j] (uint8 or int8 as type says). sum + bias wraps as int32
 * arithmetic does on the machine (the engine's biases stay far from that). lo + offset and
 * hi + offset must lie in the output type's range; lo = 0 fuses a ReLU, offset = 128
 * stores int8 codes as the uint8 the next product takes. */
typedef enum tq_qout_type { TQ_QOUT_U8, TQ_QOUT_S8 } tq_qout_type;

typedef struct tq_qepilogue {
    const int32_t *bias;   /* n values, or NULL for none; at scale s_x * s_w */
    const tq_requant *rq;  /* n factors, one per output channel */
    int32_t lo, hi;        /* clamp of the requantized value */
    int32_t offset;        /* added after the clamp */
    tq_qout_type type;
} tq_qepilogue;

void tq_qgemm_requant(int64_t m, const uint8_t *a, int64_t lda, const tq_qweights *w,
                      const tq_qepilogue *ep, void *out, int64_t ldo);
/* The portable path of tq_qgemm_requant, whatever the CPU. */
void tq_qgemm_requant_ref(int64_t m, const uint8_t *a, int64_t lda, const tq_qweights *w,
                          const tq_qepilogue *ep, void *out, int64_t ldo);

/* One output value of tq_qgemm_requant from its int32 sum: the definition both paths follow. */
static inline int32_t tq_qepilogue_value(int32_t sum, int64_t j, const tq_qepilogue *ep)
{
    const int32_t v = (int32_t)((uint32_t)sum + (uint32_t)(ep->bias ? ep->bias[j] : 0));
    int64_t y = tq_requant_apply(v, ep->rq[j]);
    y = y < ep->lo ? ep->lo : y > ep->hi ? ep->hi : y;
    return (int32_t)y + ep->offset;
}

#endif
