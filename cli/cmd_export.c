/* `tinyqat export`: a checkpoint (float, PTQ or QAT) as an ONNX model with QDQ quantizers,
 * and `tinyqat info M.onnx`'s view of such a file. */
#include "checkpoint.h"
#include "cli.h"
#include "onnx.h"

#include <stdlib.h>
#include <string.h>

static const tq_cli_opt export_opts[] = {
    {"model-file", "FILE", "checkpoint to export (required)"},
    {"out", "FILE", "ONNX model to write (required)"},
    {"codes", NULL, "also expose each QuantizeLinear's codes (cast to float32) and its input as "
                    "graph outputs codes.LAYER and qin.LAYER, for comparing with tinyqat's codes"},
    {0},
};
static const tq_cli_cmd export_cmd = {
    "export", "--model-file FILE --out FILE [options]",
    "Export a checkpoint as an ONNX model. The graph takes pixels scaled to [0,1] as float32\n"
    "`input` [N,C,H,W], normalises them itself and gives `logits` [N,classes]. Each quantizer\n"
    "becomes QuantizeLinear/DequantizeLinear (weights: their codes as an initializer, then\n"
    "DequantizeLinear) with fake quant's own scales.\n"
    "Formats that export: " TQ_ONNX_FORMATS ";\n"
    "opset 13 for 8-bit integers, 19 with FP8, 21 with 4-bit containers or per-block weights.\n"
    "Refused: e2m1 (FP4), mxfp8/mxfp4/mxint8 (E8M0 block scales), nvfp4, per-block activations.",
    export_opts, 0};

int tq_cmd_export(int argc, char **argv)
{
    const tq_cli_cmd *cmd = &export_cmd;
    tq_cli_args a;
    int rc = tq_cli_parse(cmd, argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    const char *path = tq_cli_get(cmd, &a, "model-file"), *out = tq_cli_get(cmd, &a, "out");
    if (!path) return tq_cli_usage_error(cmd, "--model-file is required");
    if (!out) return tq_cli_usage_error(cmd, "--out is required");
    tq_error err = {0};
    if (tq_check_writable(out, "ONNX model", &err)) return tq_cli_fail(cmd, &err);
    tq_run run = {0};
    if (tq_run_load(path, &run, &err)) return tq_cli_fail(cmd, &err);
    tq_onnx_options opt = {.mean = run.mean, .std = run.std,
                           .expose_codes = tq_cli_flag(cmd, &a, "codes")};
    tq_onnx_stats st;
    if (tq_onnx_export(run.model, &opt, out, &st, &err)) {
        tq_run_free(&run);
        return tq_cli_fail(cmd, &err);
    }
    printf("exported %s to %s: %d ops, %d quantizers as QDQ, %d initializers, opset %lld "
           "(IR %lld), %zu bytes\n", tq_model_name(run.model), out, st.nodes, st.quantizers,
           st.initializers, (long long)st.opset, (long long)st.ir_version, st.bytes);
    tq_run_free(&run);
    return 0;
}

bool tq_is_onnx_path(const char *path)
{
    static const uint8_t ckpt_magic[6] = {'T', 'Q', 'C', 'K', 'P', 'T'};
    size_t n = strlen(path);
    if (n < 5 || strcmp(path + n - 5, ".onnx") != 0) return false;
    /* a checkpoint named .onnx is still a checkpoint */
    FILE *f = fopen(path, "rb");
    uint8_t head[6] = {0};
    size_t got = f ? fread(head, 1, sizeof head, f) : 0;
    if (f) fclose(f);
    return !(got == sizeof head && memcmp(head, ckpt_magic, sizeof head) == 0);
}

int tq_info_onnx(const char *path)
{
    tq_error err = {0};
    tq_onnx *o = tq_onnx_load(path, &err);
    if (!o) {
        fprintf(stderr, "tinyqat info: %s\n", err.msg);
        return TQ_EXIT_FAIL;
    }
    printf("onnx model %s\n", path);
    tq_onnx_describe(o, stdout);
    tq_onnx_free(o);
    return 0;
}
