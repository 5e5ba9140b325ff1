/* Weight codes packed 8, 4 or 2 bits each (two's complement, first code in the low bits). */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

int tq_packed_bits_for(int bits) { return bits <= 2 ? 2 : bits <= 4 ? 4 : 8; }

int64_t tq_packed_bytes(int64_t n, int bits) { return (n * bits + 7) / 8; }

tq_status tq_pack_codes(const int8_t *codes, int64_t n, int bits, tq_packed *out,
                        tq_error *err)
{
    memset(out, 0, sizeof *out);
    if (bits != 8 && bits != 4 && bits != 2)
        return tq_fail(err, TQ_STATUS_ARG, "pack: %d bits per code (expected 8, 4 or 2)", bits);
    const int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
    for (int64_t i = 0; i < n; i++)
        if (codes[i] < lo || codes[i] > hi)
            return tq_fail(err, TQ_STATUS_ARG, "pack: code %d at %lld does not fit %d bits",
                           codes[i], (long long)i, bits);
    int64_t bytes = tq_packed_bytes(n, bits);
    out->data = calloc((size_t)(bytes > 0 ? bytes : 1), 1);
    if (!out->data) return tq_fail(err, TQ_STATUS_NOMEM, "pack: out of memory");
    const int per_byte = 8 / bits;
    const unsigned mask = (1u << bits) - 1u;
    for (int64_t i = 0; i < n; i++)
        out->data[i / per_byte] |= (uint8_t)(((unsigned)codes[i] & mask) << (bits * (i % per_byte)));
    out->bits = bits;
    out->n = n;
    return TQ_STATUS_OK;
}

void tq_unpack_codes(const tq_packed *p, int8_t *out)
{
    const int bits = p->bits, per_byte = 8 / bits;
    const unsigned mask = (1u << bits) - 1u, sign = 1u << (bits - 1);
    for (int64_t i = 0; i < p->n; i++) {
        unsigned v = (p->data[i / per_byte] >> (bits * (i % per_byte))) & mask;
        out[i] = (int8_t)((int)(v ^ sign) - (int)sign); /* sign-extend */
    }
}

void tq_packed_free(tq_packed *p)
{
    free(p->data);
    memset(p, 0, sizeof *p);
}
