/* Check suite for autograd/parallel.h: chunk counts and bounds by hand, every piece run once
 * on a valid slot, and the fixed-order reduction's result against its tree written out by
 * hand, with values whose float sum tells one order from another, on 1 to 4 threads and
 * inside a parallel region. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"
#include "tq_test.h"

START_TEST(test_chunk_counts_and_bounds)
{
    ck_assert_int_eq(tq_chunk_count(0, 1), 1);
    ck_assert_int_eq(tq_chunk_count(3, 1), 3);
    ck_assert_int_eq(tq_chunk_count(100, 1), TQ_REDUCE_CHUNKS);
    ck_assert_int_eq(tq_chunk_count(35, 10), 3);
    ck_assert_int_eq(tq_chunk_count(9, 10), 1);
    ck_assert_int_eq(tq_chunk_count(5, 0), 5); /* min_items < 1 counts as 1 */
    /* 10 items in 4 chunks: 0-2, 2-5, 5-7, 7-10 */
    const int64_t want[] = {0, 2, 5, 7, 10};
    for (int c = 0; c <= 4; c++) ck_assert_int_eq(tq_chunk_begin(10, 4, c), want[c]);
    ck_assert_int_eq(tq_piece_slots(3, 8), 3);
    ck_assert_int_eq(tq_piece_slots(8, 2), 2);
    ck_assert_int_eq(tq_piece_slots(0, 4), 1);
    ck_assert_int_eq(tq_piece_slots(5, 0), 1);
}
END_TEST

typedef struct count_ctx {
    int runs[64], bad_slot, slots;
} count_ctx;

static void count_piece(void *ctx, int piece, int slot)
{
    count_ctx *c = ctx;
#pragma omp atomic
    c->runs[piece]++;
    if (slot < 0 || slot >= c->slots) {
#pragma omp atomic write
        c->bad_slot = 1;
    }
}

START_TEST(test_every_piece_runs_once_on_a_valid_slot)
{
    const int saved = tq_get_threads();
    for (int threads = 1; threads <= 4; threads++)
        for (int pieces = 0; pieces <= 13; pieces += 1) {
            tq_set_threads(threads);
            count_ctx c = {.slots = tq_piece_slots(pieces, threads)};
            tq_run_pieces(pieces, threads, count_piece, &c);
            for (int p = 0; p < pieces; p++)
                ck_assert_msg(c.runs[p] == 1, "%d pieces on %d threads: piece %d ran %d times",
                              pieces, threads, p, c.runs[p]);
            ck_assert_int_eq(c.runs[pieces], 0);
            ck_assert_msg(!c.bad_slot, "%d pieces on %d threads: a slot out of range", pieces,
                          threads);
        }
    tq_set_threads(saved);
}
END_TEST

/* Chunk c adds, to each of its LEN values, VALUES[c] once per item of its share of N items,
 * so the part of chunk c is VALUES[c] * (its item count) exactly (small integers times a
 * power of two or 1e8-sized values: exact in float). */
enum { LEN = 20000, N_ITEMS = 5 };
static const float VALUES[5] = {1e8f, 1.0f, -1e8f, 1.0f, 0.5f};

typedef struct sum_ctx {
    int chunks;
} sum_ctx;

static void add_share(void *ctx, int chunk, int slot, float *part)
{
    (void)slot;
    const sum_ctx *s = ctx;
    const int64_t i0 = tq_chunk_begin(N_ITEMS, s->chunks, chunk),
                  i1 = tq_chunk_begin(N_ITEMS, s->chunks, chunk + 1);
    for (int64_t item = i0; item < i1; item++)
        for (int i = 0; i < LEN; i++) part[i] += VALUES[chunk] * (float)(i % 3 + 1);
}

START_TEST(test_reduction_follows_the_fixed_tree)
{
    /* five chunks of one item: ((p0 + p1) + (p2 + p3)) + p4, where a left-to-right sum would
     * give ((((p0 + p1) + p2) + p3) + p4): for element i, with k = i % 3 + 1,
     * tree: (1e8 k + k) rounds to 1e8 k, (-1e8 k + k) to -1e8 k, their sum 0, plus 0.5 k;
     * in order: 1e8 k + k -> 1e8 k, - 1e8 k -> 0, + k, + 0.5 k = 1.5 k. */
    const int chunks = tq_chunk_count(N_ITEMS, 1);
    ck_assert_int_eq(chunks, 5);
    for (int k = 1; k <= 3; k++) { /* the premise: float rounding tells the orders apart */
        volatile float big = 1e8f * (float)k, small = (float)k;
        ck_assert_float_eq(big + small, big);
    }
    const int64_t stride = LEN + 16;
    float *parts = malloc((size_t)(chunks * stride) * sizeof(float)),
          *out = malloc(LEN * sizeof(float));
    ck_assert(parts && out);
    const int saved = tq_get_threads();
    for (int threads = 1; threads <= 4; threads++) {
        tq_set_threads(threads);
        for (int i = 0; i < LEN; i++) out[i] = 2.0f;
        memset(parts, 0xff, (size_t)(chunks * stride) * sizeof(float)); /* NaN: must be zeroed */
        sum_ctx s = {.chunks = chunks};
        tq_reduce_chunks(chunks, threads, parts, LEN, stride, add_share, &s, out);
        for (int i = 0; i < LEN; i++) {
            const float k = (float)(i % 3 + 1);
            ck_assert_msg(out[i] == 2.0f + 0.5f * k, "%d threads: out[%d] = %.9g, expected %.9g",
                          threads, i, (double)out[i], (double)(2.0f + 0.5f * k));
        }
    }
    /* inside a parallel region: on the calling thread, the same sum */
    tq_set_threads(2);
    int wrong = 0;
#pragma omp parallel num_threads(2) reduction(+ : wrong)
    {
        float *mine = malloc((size_t)(chunks * stride) * sizeof(float)),
              *res = calloc(LEN, sizeof(float));
        if (!mine || !res) {
            wrong++;
        } else {
            sum_ctx s = {.chunks = chunks};
            tq_reduce_chunks(chunks, 2, mine, LEN, stride, add_share, &s, res);
            for (int i = 0; i < LEN; i++) wrong += res[i] != 0.5f * (float)(i % 3 + 1);
        }
        free(mine);
        free(res);
    }
    ck_assert_int_eq(wrong, 0);
    tq_set_threads(saved);
    free(parts);
    free(out);
}
END_TEST

/* parts NULL: the chunks still run (a caller with no gradient to sum), nothing is summed. */
static void mark_chunk(void *ctx, int chunk, int slot, float *part)
{
    (void)slot;
    ck_assert_ptr_null(part);
    int *ran = ctx;
#pragma omp atomic
    ran[chunk]++;
}

START_TEST(test_reduction_without_parts_runs_the_chunks)
{
    int ran[8] = {0};
    tq_reduce_chunks(8, 2, NULL, 0, 0, mark_chunk, ran, NULL);
    for (int c = 0; c < 8; c++) ck_assert_int_eq(ran[c], 1);
}
END_TEST

static Suite *parallel_suite(void)
{
    Suite *s = suite_create("parallel");
    TCase *tc = tcase_create("parallel");
    tcase_add_test(tc, test_chunk_counts_and_bounds);
    tcase_add_test(tc, test_every_piece_runs_once_on_a_valid_slot);
    tcase_add_test(tc, test_reduction_follows_the_fixed_tree);
    tcase_add_test(tc, test_reduction_without_parts_runs_the_chunks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tq_test_run(parallel_suite()); }
