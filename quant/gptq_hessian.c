/* GPTQ's H = (2/n) sum x x^T over a layer's calibration inputs: the rows of a Linear's
 * input, or the im2col columns of a Conv2d's, summed by a float rank-k update per chunk. */
#include "quant_internal.h"

#include <cblas.h>
#include <stdlib.h>

/* Floats of im2col columns built at once: 4 MB, a few images of the largest layers, so the
 * rank-k update runs on long panels without holding a whole batch's columns. */
#define COLS_CHUNK (1 << 20)

tq_status tq_gptq_hessian_init(tq_gptq_hessian *h, int64_t k, tq_error *err)
{
    *h = (tq_gptq_hessian){.k = k};
    if (k < 1 || k > 1 << 15)
        return tq_fail(err, TQ_STATUS_ARG, "gptq: %lld inputs per vector (expected 1..32768)",
                       (long long)k);
    h->h = calloc((size_t)k * (size_t)k, sizeof *h->h);
    if (!h->h) return tq_fail(err, TQ_STATUS_NOMEM, "gptq: out of memory for a %lld x %lld H",
                              (long long)k, (long long)k);
    return TQ_STATUS_OK;
}

void tq_gptq_hessian_free(tq_gptq_hessian *h)
{
    free(h->h);
    h->h = NULL;
}

/* Folds the float sum S = sum x x^T of m new vectors (upper triangle) into the running
 * average: H <- H n/(n+m) + (2/(n+m)) S, kept symmetric. Sums are float within one call
 * (a batch) and double across calls. */
static void fold(tq_gptq_hessian *h, const float *S, int64_t m)
{
    int64_t k = h->k, n = h->n;
    double keep = (double)n / (double)(n + m), add = 2.0 / (double)(n + m);
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = i; j < k; j++) {
            double v = h->h[i * k + j] * keep + add * (double)S[i * k + j];
            h->h[i * k + j] = h->h[j * k + i] = v;
        }
    h->n = n + m;
}

tq_status tq_gptq_hessian_add_rows(tq_gptq_hessian *h, const tq_tensor *x, const float *mul,
                                   tq_error *err)
{
    int64_t k = h->k, n = x->ndim > 0 ? x->shape[0] : 0;
    if (n < 1 || x->numel != n * k) {
        char s[64];
        return tq_fail(err, TQ_STATUS_SHAPE, "gptq: input %s is not (N, %lld)",
                       tq_shape_str(x, s, sizeof s), (long long)k);
    }
    int64_t rows_per_chunk = COLS_CHUNK / k > 0 ? COLS_CHUNK / k : 1;
    float *S = calloc((size_t)(k * k), sizeof *S);
    float *buf = mul ? malloc((size_t)(rows_per_chunk * k) * sizeof *buf) : NULL;
    if (!S || (mul && !buf)) {
        free(S);
        free(buf);
        return tq_fail(err, TQ_STATUS_NOMEM, "gptq: out of memory");
    }
    for (int64_t r0 = 0; r0 < n; r0 += rows_per_chunk) {
        int64_t m = n - r0 < rows_per_chunk ? n - r0 : rows_per_chunk;
        const float *a = x->data + r0 * k;
        if (mul) {
            for (int64_t r = 0; r < m; r++)
                for (int64_t c = 0; c < k; c++) buf[r * k + c] = a[r * k + c] * mul[c];
            a = buf;
        }
        /* S += a^T a, a (m, k) */
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)k, (int)m, 1.0f, a, (int)k, 1.0f,
                    S, (int)k);
    }
    fold(h, S, n);
    free(S);
    free(buf);
    return TQ_STATUS_OK;
}

/* One image's columns: row (c, ki, kj), column (oy, ox) holds the input under that kernel
 * tap, times mul[c]; rows ld floats apart. (autograd's im2col is private to it.) */
static void im2col(const float *x, int C, int H, int W, int kh, int kw, int stride, int pad,
                   int OH, int OW, const float *mul, float *cols, int64_t ld)
{
    for (int c = 0; c < C; c++) {
        const float *plane = x + (int64_t)c * H * W;
        float m = mul ? mul[c] : 1.0f;
        for (int ki = 0; ki < kh; ki++)
            for (int kj = 0; kj < kw; kj++) {
                float *row = cols + ((int64_t)(c * kh + ki) * kw + kj) * ld;
                for (int oy = 0; oy < OH; oy++) {
                    int iy = oy * stride + ki - pad;
                    for (int ox = 0; ox < OW; ox++) {
                        int ix = ox * stride + kj - pad;
                        bool in = iy >= 0 && iy < H && ix >= 0 && ix < W;
                        row[oy * OW + ox] = in ? plane[(int64_t)iy * W + ix] * m : 0.0f;
                    }
                }
            }
    }
}

tq_status tq_gptq_hessian_add_conv(tq_gptq_hessian *h, const tq_tensor *x, int kh, int kw,
                                   int stride, int pad, const float *mul, tq_error *err)
{
    char s[64];
    if (x->ndim != 4 || (int64_t)x->shape[1] * kh * kw != h->k || kh < 1 || kw < 1 ||
        stride < 1 || pad < 0)
        return tq_fail(err, TQ_STATUS_SHAPE,
                       "gptq: input %s with a %dx%d kernel, stride %d, pad %d does not give "
                       "%lld inputs per vector",
                       tq_shape_str(x, s, sizeof s), kh, kw, stride, pad, (long long)h->k);
    int N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int OH = (H + 2 * pad - kh) / stride + 1, OW = (W + 2 * pad - kw) / stride + 1;
    if (H + 2 * pad < kh || W + 2 * pad < kw)
        return tq_fail(err, TQ_STATUS_SHAPE, "gptq: input %s is smaller than a %dx%d kernel",
                       tq_shape_str(x, s, sizeof s), kh, kw);
    int64_t k = h->k, p = (int64_t)OH * OW;
    int64_t per_chunk = COLS_CHUNK / (k * p) > 0 ? COLS_CHUNK / (k * p) : 1;
    if (per_chunk > N) per_chunk = N;
    float *S = calloc((size_t)(k * k), sizeof *S);
    float *cols = malloc((size_t)(k * p * per_chunk) * sizeof *cols);
    if (!S || !cols) {
        free(S);
        free(cols);
        return tq_fail(err, TQ_STATUS_NOMEM, "gptq: out of memory");
    }
    int64_t image = (int64_t)C * H * W;
    for (int n0 = 0; n0 < N; n0 += (int)per_chunk) {
        int m = N - n0 < per_chunk ? N - n0 : (int)per_chunk;
        int64_t ld = p * m; /* the m images' columns side by side */
        for (int i = 0; i < m; i++)
            im2col(x->data + (n0 + i) * image, C, H, W, kh, kw, stride, pad, OH, OW, mul,
                   cols + i * p, ld);
        /* S += cols cols^T, cols (k, ld) */
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)k, (int)ld, 1.0f, cols,
                    (int)ld, 1.0f, S, (int)k);
    }
    fold(h, S, (int64_t)N * p);
    free(S);
    free(cols);
    return TQ_STATUS_OK;
}
