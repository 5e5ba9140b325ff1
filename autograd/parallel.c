/* Fixed pieces over the OpenMP pool and the fixed-order parallel reduction (parallel.h). */
#include "parallel.h"

#include <string.h>

#include "internal.h"

int tq_piece_slots(int pieces, int threads)
{
    int n = pieces < threads ? pieces : threads;
    return n > 1 ? n : 1;
}

void tq_run_pieces(int pieces, int threads, tq_piece_fn fn, void *ctx)
{
    int team = tq_piece_slots(pieces, threads);
#ifdef _OPENMP
    if (omp_in_parallel()) team = 1;
#endif
    if (team <= 1) {
        for (int p = 0; p < pieces; p++) fn(ctx, p, 0);
        return;
    }
    /* dynamic: a piece goes to whichever thread is free, which matters on a shared machine
     * where one thread of the team may be descheduled; which thread runs a piece never
     * changes what it computes */
#pragma omp parallel for num_threads(team) schedule(dynamic, 1)
    for (int p = 0; p < pieces; p++) fn(ctx, p, tq_omp_thread_id());
}

int tq_chunk_count(int64_t n, int64_t min_items)
{
    if (min_items < 1) min_items = 1;
    int64_t c = n / min_items;
    return c < 1 ? 1 : c > TQ_REDUCE_CHUNKS ? TQ_REDUCE_CHUNKS : (int)c;
}

/* Elements per piece of the tree sum: each element's sum is the same whoever adds it. */
#define SUM_PIECE 16384

typedef struct sum_args {
    float *parts;
    int chunks;
    int64_t len, stride;
} sum_args;

static void sum_piece(void *ctx, int piece, int slot)
{
    (void)slot;
    const sum_args *a = ctx;
    const int64_t i0 = (int64_t)piece * SUM_PIECE,
                  n = a->len - i0 < SUM_PIECE ? a->len - i0 : SUM_PIECE;
    for (int step = 1; step < a->chunks; step *= 2)
        for (int c = 0; c + step < a->chunks; c += 2 * step) {
            float *restrict dst = a->parts + c * a->stride + i0;
            const float *restrict src = a->parts + (c + step) * a->stride + i0;
            for (int64_t i = 0; i < n; i++) dst[i] += src[i];
        }
}

void tq_sum_parts(float *parts, int chunks, int64_t len, int64_t stride, int threads)
{
    if (!parts || chunks <= 1 || len <= 0) return;
    sum_args a = {.parts = parts, .chunks = chunks, .len = len, .stride = stride};
    const int pieces = (int)((len + SUM_PIECE - 1) / SUM_PIECE);
    /* a memory-bound pass: worth a fork only when long */
    tq_run_pieces(pieces, (int64_t)chunks * len >= TQ_EW_PARALLEL_MIN ? threads : 1, sum_piece, &a);
}

typedef struct reduce_args {
    tq_chunk_fn fn;
    void *ctx;
    float *parts;
    int64_t len, stride;
} reduce_args;

static void reduce_piece(void *ctx, int chunk, int slot)
{
    const reduce_args *a = ctx;
    float *part = a->parts ? a->parts + chunk * a->stride : NULL;
    if (part) memset(part, 0, (size_t)a->len * sizeof(float));
    a->fn(a->ctx, chunk, slot, part);
}

void tq_reduce_chunks(int chunks, int threads, float *parts, int64_t len, int64_t stride,
                      tq_chunk_fn fn, void *ctx, float *out)
{
    reduce_args a = {.fn = fn, .ctx = ctx, .parts = parts, .len = len, .stride = stride};
    tq_run_pieces(chunks, threads, reduce_piece, &a);
    tq_sum_parts(parts, chunks, len, stride, threads);
    if (out && parts)
        for (int64_t i = 0; i < len; i++) out[i] += parts[i];
}
