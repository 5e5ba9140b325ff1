/* GPTQ's column-by-column quantization of one weight matrix against fixed scales: dead
 * inputs, dampening, act-order, the upper Cholesky factor of H^-1 from LAPACK, and the
 * error of each column spread over the rest with lazy block updates. */
#include "quant_internal.h"

#include <cblas.h>
#include <f77blas.h> /* OpenBLAS's own declarations of the LAPACK routines it ships */
#include <stdlib.h>

tq_gptq_opts tq_gptq_defaults(void) { return (tq_gptq_opts){.damp = 0.01, .act_order = false, .block = 128}; }

/* The scale of every element of w under q (numel values): fixed before GPTQ, so that each
 * element keeps its own scale wherever act-order moves its column. */
static tq_status element_scales(const tq_quantizer *q, const tq_tensor *w, float *out,
                                tq_error *err)
{
    tq_layout l;
    if (!tq_layout_of(&q->spec, w, &l, "gptq", err)) return err->status;
    float *buf = malloc(2 * (size_t)l.count * sizeof *buf);
    if (!buf) return tq_fail(err, TQ_STATUS_NOMEM, "gptq: out of memory");
    tq_status st = tq_quant_prepare(q, w, &l, buf, buf + l.count, err);
    const float *scale = buf + l.count;
    int64_t spans = st == TQ_STATUS_OK ? tq_layout_span_count(&l) : 0;
    for (int64_t k = 0; k < spans; k++) {
        tq_span s = tq_layout_span(&l, k);
        for (int64_t i = 0; i < s.len; i++) out[s.start + i] = scale[s.sidx + (s.vec ? i : 0)];
    }
    free(buf);
    return st;
}

/* The quantizer's rounding of one weight: the float division and grid rounding of fake
 * quant, and the value as fake quant computes it (code * scale in float). */
static double round_weight(tq_format f, double w, float s)
{
    if (!(s > 0.0f)) return 0.0;
    return (double)(tq_format_round(f, (float)w / s) * s);
}

/* sum over rows of D (rows, k) of d^T H d / 2, D = A - B. */
static double h_error(const double *A, const double *B, const double *H, int64_t rows, int64_t k,
                      double *scratch /* 2 k */)
{
    double *d = scratch, *hd = scratch + k, e = 0.0;
    for (int64_t o = 0; o < rows; o++) {
        for (int64_t j = 0; j < k; j++) d[j] = A[o * k + j] - B[o * k + j];
        cblas_dsymv(CblasRowMajor, CblasUpper, (int)k, 1.0, H, (int)k, d, 1, 0.0, hd, 1);
        e += cblas_ddot((int)k, d, 1, hd, 1);
    }
    return e / 2.0;
}

/* A column and its diag H entry, for act-order. */
typedef struct diag_entry {
    double d;
    int64_t i;
} diag_entry;

/* Descending diag H, ties in index order (a stable order, so runs agree). */
static int by_diag_desc(const void *a, const void *b)
{
    const diag_entry *x = a, *y = b;
    if (x->d != y->d) return x->d > y->d ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* The order columns are quantized in: as they are, or by descending diag H. */
static tq_status column_order(const double *Hd, int64_t k, bool act_order, int64_t *perm,
                              tq_error *err)
{
    for (int64_t i = 0; i < k; i++) perm[i] = i;
    if (!act_order) return TQ_STATUS_OK;
    diag_entry *e = malloc((size_t)k * sizeof *e);
    if (!e) return tq_fail(err, TQ_STATUS_NOMEM, "gptq: out of memory");
    for (int64_t i = 0; i < k; i++) e[i] = (diag_entry){Hd[i * k + i], i};
    qsort(e, (size_t)k, sizeof *e, by_diag_desc);
    for (int64_t i = 0; i < k; i++) perm[i] = e[i].i;
    free(e);
    return TQ_STATUS_OK;
}

/* Hd (k * k, row-major, damped) -> its upper triangle holds U with Hd^-1 = U^T U. Fortran's
 * column-major view of a row-major symmetric matrix is the same matrix and of its upper
 * triangle the lower one: 'L' there is the upper triangle here. */
static tq_status upper_cholesky_of_inverse(double *Hd, int64_t k, tq_error *err)
{
    char lower = 'L';
    blasint n = (blasint)k, info = 0;
    dpotrf_(&lower, &n, Hd, &n, &info);
    if (info > 0)
        return tq_fail(err, TQ_STATUS_NUMERIC,
                       "gptq: H + lambda I is not positive definite (Cholesky fails at column %d "
                       "of %lld): raise the dampening",
                       (int)info, (long long)k);
    if (info == 0) dpotri_(&lower, &n, Hd, &n, &info);
    if (info == 0) dpotrf_(&lower, &n, Hd, &n, &info);
    if (info != 0)
        return tq_fail(err, TQ_STATUS_NUMERIC,
                       "gptq: H + lambda I is too close to singular to invert (LAPACK info %d): "
                       "raise the dampening",
                       (int)info);
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < i; j++) Hd[i * k + j] = 0.0;
    return TQ_STATUS_OK;
}

/* The algorithm on W (rows, k), scales S alike, U the upper factor of H^-1: W becomes the
 * dequantized codes. E (rows, block) is scratch for the block's scaled errors. */
static void gptq_columns(tq_format f, double *W, const float *S, const double *U, int64_t rows,
                         int64_t k, int64_t block, double *E)
{
    for (int64_t i1 = 0; i1 < k; i1 += block) {
        int64_t i2 = i1 + block < k ? i1 + block : k, nb = i2 - i1;
        for (int64_t i = i1; i < i2; i++) {
            const double *u = U + i * k;
            double d = u[i];
            for (int64_t o = 0; o < rows; o++) {
                double *w = W + o * k;
                double qv = round_weight(f, w[i], S[o * k + i]);
                double e = (w[i] - qv) / d;
                w[i] = qv;
                E[o * nb + (i - i1)] = e;
                /* inside the block now; the rest of W once per block (lazy update) */
                for (int64_t j = i + 1; j < i2; j++) w[j] -= e * u[j];
            }
        }
        if (i2 < k)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)(k - i2),
                        (int)nb, -1.0, E, (int)nb, U + i1 * k + i2, (int)k, 1.0, W + i2, (int)k);
    }
}

/* Permutes the columns of the (rows, k) matrix A (row by row through row, k scratch). */
static void permute_columns(double *A, int64_t rows, int64_t k, const int64_t *perm, double *row)
{
    for (int64_t o = 0; o < rows; o++) {
        for (int64_t j = 0; j < k; j++) row[j] = A[o * k + perm[j]];
        memcpy(A + o * k, row, (size_t)k * sizeof *A);
    }
}

/* Buffers of one call. */
typedef struct gptq_work {
    double *Hd, *Hp, *W, *W0, *Rtn, *E, *scratch;
    float *S, *Sp;
    int64_t *perm;
} gptq_work;

static void work_free(gptq_work *b)
{
    free(b->Hd);
    free(b->Hp);
    free(b->W);
    free(b->W0);
    free(b->Rtn);
    free(b->E);
    free(b->scratch);
    free(b->S);
    free(b->Sp);
    free(b->perm);
}

static bool work_alloc(gptq_work *b, int64_t rows, int64_t k, int block)
{
    size_t kk = (size_t)k * (size_t)k, wn = (size_t)rows * (size_t)k;
    *b = (gptq_work){.Hd = malloc(kk * sizeof(double)), .Hp = malloc(kk * sizeof(double)),
                     .W = malloc(wn * sizeof(double)), .W0 = malloc(wn * sizeof(double)),
                     .Rtn = malloc(wn * sizeof(double)),
                     .E = malloc((size_t)rows * (size_t)block * sizeof(double)),
                     .scratch = malloc(2 * (size_t)k * sizeof(double)),
                     .S = malloc(wn * sizeof(float)), .Sp = malloc(wn * sizeof(float)),
                     .perm = malloc((size_t)k * sizeof(int64_t))};
    return b->Hd && b->Hp && b->W && b->W0 && b->Rtn && b->E && b->scratch && b->S && b->Sp &&
           b->perm;
}

static tq_status check_args(const tq_quantizer *q, const tq_tensor *w, const double *H,
                            const tq_gptq_opts *opts, tq_error *err)
{
    if (!q || !w || !H || !opts) return tq_fail(err, TQ_STATUS_ARG, "gptq: NULL argument");
    if (!(isfinite(opts->damp) && opts->damp >= 0.0))
        return tq_fail(err, TQ_STATUS_ARG, "gptq: dampening %g (expected finite and >= 0)",
                       opts->damp);
    if (opts->block < 1)
        return tq_fail(err, TQ_STATUS_ARG, "gptq: block of %d columns (expected >= 1)", opts->block);
    if (w->ndim < 2 || w->shape[0] < 1)
        return tq_fail(err, TQ_STATUS_SHAPE, "gptq: weights must be (O, K...), got %d dimensions",
                       w->ndim);
    int64_t k = w->numel / w->shape[0];
    if (k > INT32_MAX / 2 || w->numel > INT32_MAX)
        return tq_fail(err, TQ_STATUS_SHAPE, "gptq: a (%d, %lld) layer is too large", w->shape[0],
                       (long long)k);
    for (int64_t i = 0; i < k * k; i++)
        if (!isfinite(H[i]))
            return tq_fail(err, TQ_STATUS_NUMERIC, "gptq: H[%lld][%lld] = %g (expected finite)",
                           (long long)(i / k), (long long)(i % k), H[i]);
    return TQ_STATUS_OK;
}

tq_status tq_gptq_quantize(const tq_quantizer *q, tq_tensor *w, const double *H,
                           const tq_gptq_opts *opts, tq_gptq_result *res, tq_error *err)
{
    if (check_args(q, w, H, opts, err)) return err->status;
    int64_t rows = w->shape[0], k = w->numel / rows;
    size_t kk = (size_t)k * (size_t)k, wn = (size_t)w->numel;
    gptq_work b;
    tq_status st = TQ_STATUS_OK;
    if (!work_alloc(&b, rows, k, opts->block))
        st = tq_fail(err, TQ_STATUS_NOMEM, "gptq: out of memory for a (%lld, %lld) layer",
                     (long long)rows, (long long)k);
    if (st == TQ_STATUS_OK) st = element_scales(q, w, b.S, err);
    tq_format f = q->format;
    tq_gptq_result r = {0};
    if (st == TQ_STATUS_OK) {
        for (size_t i = 0; i < wn; i++) {
            b.W0[i] = b.W[i] = w->data[i];
            b.Rtn[i] = round_weight(f, b.W0[i], b.S[i]);
        }
        memcpy(b.Hd, H, kk * sizeof *b.Hd);
        /* an input never seen nonzero: its weights cannot matter on these data, and H has
         * no inverse with a zero row */
        double trace = 0.0;
        for (int64_t i = 0; i < k; i++) {
            if (b.Hd[i * k + i] == 0.0) {
                b.Hd[i * k + i] = 1.0;
                for (int64_t o = 0; o < rows; o++) b.W[o * k + i] = 0.0;
                r.dead++;
            }
            trace += b.Hd[i * k + i];
        }
        r.lambda = opts->damp * trace / (double)k;
        st = column_order(b.Hd, k, opts->act_order, b.perm, err);
    }
    if (st == TQ_STATUS_OK) {
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < k; j++) b.Hp[i * k + j] = b.Hd[b.perm[i] * k + b.perm[j]];
        for (int64_t i = 0; i < k; i++) b.Hp[i * k + i] += r.lambda;
        for (int64_t o = 0; o < rows; o++)
            for (int64_t j = 0; j < k; j++) b.Sp[o * k + j] = b.S[o * k + b.perm[j]];
        permute_columns(b.W, rows, k, b.perm, b.scratch);
        st = upper_cholesky_of_inverse(b.Hp, k, err);
    }
    if (st == TQ_STATUS_OK) {
        gptq_columns(f, b.W, b.Sp, b.Hp, rows, k, opts->block, b.E);
        for (int64_t o = 0; o < rows; o++) { /* back to the original column order */
            for (int64_t j = 0; j < k; j++) b.scratch[b.perm[j]] = b.W[o * k + j];
            memcpy(b.W + o * k, b.scratch, (size_t)k * sizeof *b.W);
        }
        r.err_gptq = h_error(b.W0, b.W, H, rows, k, b.scratch);
        r.err_rtn = h_error(b.W0, b.Rtn, H, rows, k, b.scratch);
        for (size_t i = 0; i < wn; i++) w->data[i] = (float)b.W[i];
        if (res) *res = r;
    }
    work_free(&b);
    return st;
}
