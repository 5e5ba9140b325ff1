/* How many bytes a model takes for inference at float32, int8, int4, int2 and at its own
 * quantizers' formats, for `tinyqat info`. */
#include "engine.h"

#include <inttypes.h>

/* Bytes of qlayer l's weights and their scales under weight quantizer q. */
static tq_status own_weight_bytes(const tq_qlayer *l, int64_t *bytes, tq_error *err)
{
    const tq_quantizer *q = l->weight_q;
    tq_format f = tq_quantizer_format(q);
    int bits = f.kind == TQ_FORMAT_E2M1 ? 4 : tq_format_is_float(f) ? 8 : tq_packed_bits_for(f.bits);
    int64_t scales = tq_quantizer_scale_count(q, l->weight, err);
    if (scales < 0) return err->status;
    switch (tq_quantizer_spec(q)->scale) {
    case TQ_SCALE_FLOAT: scales *= 4; break;
    case TQ_SCALE_E8M0: break;                 /* one byte each */
    case TQ_SCALE_NVFP4: scales += 4; break;   /* E4M3 bytes and a float32 global scale */
    }
    *bytes = tq_packed_bytes(l->weight->numel, bits) + scales;
    return TQ_STATUS_OK;
}

tq_status tq_model_bytes_of(tq_model *m, tq_model_bytes *out, tq_error *err)
{
    const int64_t everything = 4 * (tq_model_param_count(m) + tq_model_state_count(m));
    tq_model_bytes b = {everything, everything, everything, everything, everything, false};
    for (int qi = 0; qi < tq_model_qlayer_count(m); qi++) {
        const tq_qlayer *l = tq_model_qlayer(m, qi);
        const int64_t nw = l->weight->numel, per_channel = 4 * (int64_t)l->weight->shape[0] + 4;
        b.int8 += tq_packed_bytes(nw, 8) + per_channel - 4 * nw;
        b.int4 += tq_packed_bytes(nw, 4) + per_channel - 4 * nw;
        b.int2 += tq_packed_bytes(nw, 2) + per_channel - 4 * nw;
        if (l->weight_q) {
            int64_t w = 0;
            if (own_weight_bytes(l, &w, err)) return err->status;
            b.own += w - 4 * nw;
        }
        if (l->input_q) b.own += 4;
        b.quantized |= l->weight_q || l->input_q;
    }
    *out = b;
    return TQ_STATUS_OK;
}

void tq_model_bytes_print(tq_model *m, FILE *out)
{
    tq_model_bytes b;
    tq_error err = {0};
    if (tq_model_bytes_of(m, &b, &err)) {
        fprintf(out, "bytes: %s\n", err.msg);
        return;
    }
    fprintf(out, "bytes for inference (Linear/Conv2d weights packed with a float32 scale per "
                 "output channel and one per input; the rest float32):\n");
    const struct {
        const char *name;
        int64_t bytes;
    } rows[] = {{"float32", b.float32}, {"int8", b.int8}, {"int4", b.int4}, {"int2", b.int2},
                {"as quantized", b.own}};
    for (int i = 0; i < (b.quantized ? 5 : 4); i++)
        fprintf(out, "  %-13s %10" PRId64 "  %5.2fx smaller\n", rows[i].name, rows[i].bytes,
                (double)b.float32 / (double)rows[i].bytes);
}
