/* The VNNI kernels of engine/qgemm_vnni.c compiled over SIMDe's portable emulation of the
 * AVX-512 intrinsics, so test_qkernels checks their logic (tiles, tails, masks, the fused
 * requantization) on CPUs without VNNI too. SIMDe 0.7 lacks a few of the intrinsics the
 * kernels use; they are defined here, lane by lane, from Intel's descriptions. */
/* Emulated 512-bit vectors pass between this file's own functions only: the ABI clang
 * warns about never meets another compiler's. */
#pragma GCC diagnostic ignored "-Wpsabi"
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include <string.h>

#include "vnni_emulated.h"

#ifndef __mmask16 /* no native alias for the mask types */
typedef simde__mmask8 __mmask8;
typedef simde__mmask16 __mmask16;
#endif

/* The missing intrinsics. Masked-off lanes are neither read nor written, as in hardware:
 * the kernels rely on it at the right edge of the output. */
#define _mm512_maskz_loadu_epi32 emu_maskz_loadu_epi32
static simde__m512i emu_maskz_loadu_epi32(simde__mmask16 k, const void *p)
{
    simde__m512i_private r = {0};
    for (int l = 0; l < 16; l++)
        if (k >> l & 1) {
            int32_t v;
            memcpy(&v, (const char *)p + 4 * l, 4);
            r.i32[l] = v; /* elements, not their addresses: clang's vector types have none */
        }
    return simde__m512i_from_private(r);
}

#define _mm512_maskz_loadu_epi64 emu_maskz_loadu_epi64
static simde__m512i emu_maskz_loadu_epi64(simde__mmask8 k, const void *p)
{
    simde__m512i_private r = {0};
    for (int l = 0; l < 8; l++)
        if (k >> l & 1) {
            int64_t v;
            memcpy(&v, (const char *)p + 8 * l, 8);
            r.i64[l] = v;
        }
    return simde__m512i_from_private(r);
}

#define _mm512_mask_storeu_epi32 emu_mask_storeu_epi32
static void emu_mask_storeu_epi32(void *p, simde__mmask16 k, simde__m512i v)
{
    const simde__m512i_private a = simde__m512i_to_private(v);
    for (int l = 0; l < 16; l++)
        if (k >> l & 1) {
            const int32_t v = a.i32[l];
            memcpy((char *)p + 4 * l, &v, 4);
        }
}

/* vpmovdb: the low byte of each 32-bit lane (truncation, no saturation). */
#define _mm512_mask_cvtepi32_storeu_epi8 emu_mask_cvtepi32_storeu_epi8
static void emu_mask_cvtepi32_storeu_epi8(void *p, simde__mmask16 k, simde__m512i v)
{
    const simde__m512i_private a = simde__m512i_to_private(v);
    for (int l = 0; l < 16; l++)
        if (k >> l & 1) ((unsigned char *)p)[l] = (unsigned char)((uint32_t)a.i32[l] & 0xff);
}

/* vpsravq: arithmetic right shift of each 64-bit lane; counts above 63 give the sign. */
#define _mm512_srav_epi64 emu_srav_epi64
static simde__m512i emu_srav_epi64(simde__m512i v, simde__m512i count)
{
    simde__m512i_private a = simde__m512i_to_private(v);
    const simde__m512i_private c = simde__m512i_to_private(count);
    for (int l = 0; l < 8; l++) {
        const uint64_t n = (uint64_t)c.i64[l] > 63 ? 63 : (uint64_t)c.i64[l];
        a.i64[l] = a.i64[l] < 0 ? ~(~a.i64[l] >> n) : a.i64[l] >> n;
    }
    return simde__m512i_from_private(a);
}

#define TQ_VNNI_EMULATED 1
#define TQ_VNNI
#define TQ_VNNI_ROWS tq_test_vnni_emulated_rows
#include "qgemm_vnni.c"
