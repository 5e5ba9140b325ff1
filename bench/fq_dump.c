/* Fake quant of a raw float32 matrix, for bench/fq_crosscheck.py: reads ROWS x COLS
 * float32 values, takes per-row (channel 0) abs-max amax as a weight quantizer does, and
 * writes the ROWS amax values followed by the ROWS x COLS fake-quantized values (float32,
 * native byte order).
 * Usage: fq_dump SPEC ROWS COLS IN OUT     e.g. fq_dump int8:channel=0 1000 1000 x.bin y.bin */
#include <stdio.h>
#include <stdlib.h>

#include "quant.h"

static int fail(const char *what, const char *msg)
{
    fprintf(stderr, "fq_dump: %s: %s\n", what, msg);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: fq_dump SPEC ROWS COLS IN OUT\n");
        return 2;
    }
    int32_t rows = atoi(argv[2]), cols = atoi(argv[3]);
    if (rows < 1 || cols < 1) return fail("shape", "ROWS and COLS must be >= 1");
    tq_error err = {0};
    tq_qspec spec;
    if (tq_qspec_parse(argv[1], &spec, &err)) return fail(argv[1], err.msg);
    tq_quantizer *q = tq_quantizer_new(&spec, &err);
    if (!q) return fail(argv[1], err.msg);
    tq_tensor *x = tq_tensor_new(2, (int32_t[]){rows, cols}, false);
    float *y = malloc((size_t)rows * (size_t)cols * sizeof *y);
    if (!x || !y) return fail("memory", "out of memory");
    FILE *in = fopen(argv[4], "rb");
    if (!in) return fail(argv[4], "cannot open");
    size_t got = fread(x->data, sizeof(float), (size_t)x->numel, in);
    fclose(in);
    if (got != (size_t)x->numel) return fail(argv[4], "shorter than ROWS x COLS float32 values");
    if (tq_quantizer_calibrate_weight(q, x, &err) || tq_quantizer_apply(q, x, y, &err))
        return fail(argv[1], err.msg);
    FILE *out = fopen(argv[5], "wb");
    if (!out) return fail(argv[5], "cannot create");
    int64_t na = tq_quantizer_amax_count(q);
    bool ok = fwrite(tq_quantizer_amax(q), sizeof(float), (size_t)na, out) == (size_t)na &&
              fwrite(y, sizeof(float), (size_t)x->numel, out) == (size_t)x->numel;
    if (fclose(out) != 0 || !ok) return fail(argv[5], "write failed");
    free(y);
    tq_tensor_free(x);
    tq_quantizer_free(q);
    return 0;
}
