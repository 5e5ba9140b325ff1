/* The tape: an arena for everything a step creates, the list of recorded nodes, and
 * backward, which walks the nodes in reverse. */
#include "autograd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 64
#define ARENA_FIRST_CHUNK (1u << 20)

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t size, used;
    unsigned char *base; /* ARENA_ALIGN-aligned */
} arena_chunk;

struct tq_tape {
    arena_chunk *chunks; /* newest first */
    size_t reserved;
    size_t mallocs;
    tq_node *nodes;
    size_t n_nodes, cap_nodes;
    bool recording, training;
    tq_error err;
};

static arena_chunk *chunk_new(tq_tape *t, size_t size)
{
    arena_chunk *c = malloc(sizeof *c);
    void *base = NULL;
    if (!c || posix_memalign(&base, ARENA_ALIGN, size) != 0) {
        free(c);
        return NULL;
    }
    t->mallocs++;
    c->next = t->chunks;
    c->size = size;
    c->used = 0;
    c->base = base;
    t->chunks = c;
    t->reserved += size;
    return c;
}

static void chunks_free(tq_tape *t)
{
    for (arena_chunk *c = t->chunks, *next; c; c = next) {
        next = c->next;
        free(c->base);
        free(c);
    }
    t->chunks = NULL;
    t->reserved = 0;
}

tq_tape *tq_tape_new(void)
{
    tq_tape *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->recording = true;
    t->training = true;
    return t;
}

void tq_tape_free(tq_tape *t)
{
    if (!t) return;
    chunks_free(t);
    free(t->nodes);
    free(t);
}

void tq_tape_reset(tq_tape *t)
{
    /* A step that overflowed the first chunk gets one chunk big enough for all of it, so
     * the next step of the same shape allocates nothing. */
    if (t->chunks && t->chunks->next) {
        size_t total = t->reserved;
        chunks_free(t);
        if (!chunk_new(t, total)) tq_fail(&t->err, TQ_STATUS_NOMEM, "tape: out of memory");
    } else if (t->chunks) {
        t->chunks->used = 0;
    }
    t->n_nodes = 0;
    tq_error_clear(&t->err);
}

void tq_tape_set_recording(tq_tape *t, bool on) { t->recording = on; }
bool tq_tape_recording(const tq_tape *t) { return t->recording; }
void tq_tape_set_training(tq_tape *t, bool on) { t->training = on; }
bool tq_tape_training(const tq_tape *t) { return t->training; }
const tq_error *tq_tape_error(const tq_tape *t) { return &t->err; }
void tq_tape_fail_clear(tq_tape *t) { tq_error_clear(&t->err); }
size_t tq_tape_node_count(const tq_tape *t) { return t->n_nodes; }
size_t tq_tape_malloc_count(const tq_tape *t) { return t->mallocs; }
size_t tq_tape_bytes_reserved(const tq_tape *t) { return t->reserved; }

void *tq_tape_alloc(tq_tape *t, size_t bytes)
{
    bytes = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (bytes == 0) bytes = ARENA_ALIGN;
    arena_chunk *c = t->chunks;
    if (!c || c->size - c->used < bytes) {
        size_t size = c ? 2 * c->size : ARENA_FIRST_CHUNK;
        if (size < bytes) size = bytes;
        c = chunk_new(t, size);
        if (!c) {
            tq_fail(&t->err, TQ_STATUS_NOMEM, "tape: out of memory allocating %zu bytes", bytes);
            return NULL;
        }
    }
    void *p = c->base + c->used;
    c->used += bytes;
    return p;
}

tq_tensor *tq_tape_tensor(tq_tape *t, int32_t ndim, const int32_t *shape, bool with_grad)
{
    tq_tensor *x = tq_tape_alloc(t, sizeof *x);
    if (!x) return NULL;
    memset(x, 0, sizeof *x);
    if (!tq_shape_set(x, ndim, shape))
        return tq_tape_fail(t, TQ_STATUS_SHAPE, "tape: invalid tensor shape (ndim %d)", ndim);
    x->data = tq_tape_alloc(t, (size_t)x->numel * sizeof(float));
    if (!x->data) return NULL;
    if (with_grad) {
        x->grad = tq_tape_alloc(t, (size_t)x->numel * sizeof(float));
        if (!x->grad) return NULL;
        memset(x->grad, 0, (size_t)x->numel * sizeof(float));
    }
    return x;
}

bool tq_tape_needs_grad(const tq_tape *t, tq_tensor *const *in, int n_in)
{
    if (!t->recording) return false;
    for (int i = 0; i < n_in; i++)
        if (in[i] && in[i]->grad) return true;
    return false;
}

tq_node *tq_tape_record(tq_tape *t, const tq_op_def *op, tq_tensor *out, tq_tensor *const *in,
                        int n_in)
{
    TQ_ASSERT(n_in <= TQ_NODE_MAX_INPUTS);
    if (!tq_tape_needs_grad(t, in, n_in)) return NULL;
    if (t->n_nodes == t->cap_nodes) {
        size_t cap = t->cap_nodes ? 2 * t->cap_nodes : 256;
        tq_node *nodes = realloc(t->nodes, cap * sizeof *nodes);
        if (!nodes) {
            tq_fail(&t->err, TQ_STATUS_NOMEM, "tape: out of memory recording %s", op->name);
            return NULL;
        }
        t->mallocs++;
        t->nodes = nodes;
        t->cap_nodes = cap;
    }
    tq_node *n = &t->nodes[t->n_nodes++];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->out = out;
    n->n_in = n_in;
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    return n;
}

tq_tensor *tq_tape_fail(tq_tape *t, tq_status status, const char *fmt, ...)
{
    if (t->err.status == TQ_STATUS_OK) {
        t->err.status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->err.msg, sizeof t->err.msg, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

tq_status tq_backward(tq_tape *t, tq_tensor *loss)
{
    if (t->err.status != TQ_STATUS_OK) return t->err.status;
    if (!loss) return tq_fail(&t->err, TQ_STATUS_ARG, "backward: no loss tensor");
    if (loss->numel != 1) {
        char s[64];
        return tq_fail(&t->err, TQ_STATUS_SHAPE, "backward: loss must have one element, got %s",
                       tq_shape_str(loss, s, sizeof s));
    }
    if (!loss->grad)
        return tq_fail(&t->err, TQ_STATUS_ARG,
                       "backward: the loss does not depend on anything that needs a gradient");
    loss->grad[0] = 1.0f;
    for (size_t i = t->n_nodes; i-- > 0;) {
        tq_node *n = &t->nodes[i];
        if (n->out->grad) n->op->backward(n);
    }
    return TQ_STATUS_OK;
}
