/* Work cut into pieces fixed by the problem alone, never by the thread count, so that what
 * each piece computes, and the order in which pieces are added, is the same on any number of
 * threads: a run gives the same bits on 1 thread or 64. Private to autograd/.
 *
 * The rule for every parallel loop in tinyqat: a thread may choose which pieces it runs, never
 * where a piece begins or ends, and a sum over pieces is taken in a fixed order. Loops whose
 * iterations write disjoint outputs (elementwise ops, one batch-norm channel or pooling plane
 * per iteration, one image's convolution) follow it with a plain `omp parallel for`; sums across
 * iterations (a weight gradient over the images of a batch) go through tq_reduce_chunks. */
#ifndef TINYQAT_PARALLEL_H
#define TINYQAT_PARALLEL_H

#include <stdint.h>

/* A reduction is cut into at most this many chunks. More chunks let more threads share a
 * reduction; each costs a partial result and a shorter product. Eight serves machines up to
 * eight cores fully, and costs 1-2% on one thread (bench/threads_cost.sh). */
#define TQ_REDUCE_CHUNKS 8

/* fn(ctx, piece, slot) for piece = 0 .. pieces-1, spread over at most `threads` threads of the
 * pool, each piece run once, in any order; on the calling thread alone when threads <= 1 or
 * inside a parallel region. slot is the running thread's index in the team, below
 * tq_piece_slots(pieces, threads): per-thread scratch is indexed by it (so a caller with
 * scratch must not be inside a parallel region itself). */
typedef void (*tq_piece_fn)(void *ctx, int piece, int slot);
void tq_run_pieces(int pieces, int threads, tq_piece_fn fn, void *ctx);
/* How many slots tq_run_pieces(pieces, threads, ...) may use: min(pieces, threads), >= 1. */
int tq_piece_slots(int pieces, int threads);

/* How many chunks n items are cut into: n / min_items, at most TQ_REDUCE_CHUNKS, at least 1
 * (a function of n alone). Chunk c holds items tq_chunk_begin(n, chunks, c) up to
 * tq_chunk_begin(n, chunks, c + 1). */
int tq_chunk_count(int64_t n, int64_t min_items);
static inline int64_t tq_chunk_begin(int64_t n, int chunks, int c) { return n * c / chunks; }

/* The fixed-order parallel reduction. parts holds `chunks` partial results of len floats,
 * `stride` floats apart; each is zeroed, then fn(ctx, c, slot, part_c) accumulates chunk c's
 * share into part_c (chunks spread over the pool as by tq_run_pieces). The parts are then added
 * in a fixed pairwise tree, ((p0 + p1) + (p2 + p3)) + ..., into part 0, and part 0 is added to
 * out[0 .. len) when out is not NULL. The result depends on the chunks, never on the threads.
 * With parts NULL (len 0) fn gets part NULL: the chunks run and nothing is summed. */
typedef void (*tq_chunk_fn)(void *ctx, int chunk, int slot, float *part);
void tq_reduce_chunks(int chunks, int threads, float *parts, int64_t len, int64_t stride,
                      tq_chunk_fn fn, void *ctx, float *out);

/* The pairwise tree alone: part 0 = the fixed-order sum of the `chunks` parts (as above). */
void tq_sum_parts(float *parts, int chunks, int64_t len, int64_t stride, int threads);

#endif
