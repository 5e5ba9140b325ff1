/* tinyqat autograd: float32 tensors, a tape of recorded ops with reverse-mode backward,
 * the ops themselves, a seeded RNG, error reporting and a finite-difference gradient checker. */
#ifndef TINYQAT_AUTOGRAD_H
#define TINYQAT_AUTOGRAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One step on the tape: y = relu(x w^T), a loss, its gradients, the tape reset (checks left
 * out: an op given a NULL input returns NULL and the tape keeps the first error, so checking
 * the last result is enough):
 *
 *     tq_rng rng;
 *     tq_rng_seed(&rng, 1);
 *     tq_tensor *x = tq_tensor_new(2, (int32_t[]){8, 3}, false); // 8 samples, 3 features
 *     tq_tensor *w = tq_tensor_new(2, (int32_t[]){2, 3}, true);  // a parameter: with grad
 *     tq_tensor_fill_uniform(x, &rng, -1, 1);
 *     tq_tensor_fill_uniform(w, &rng, -1, 1);
 *     tq_tape *t = tq_tape_new();
 *     tq_tensor *y = tq_relu(t, tq_linear(t, x, w, NULL));  // (8,2), on the tape's arena
 *     tq_tensor *loss = tq_mean(t, y);
 *     if (!loss) fprintf(stderr, "%s\n", tq_tape_error(t)->msg);
 *     tq_backward(t, loss);   // w->grad += d loss / d w
 *     tq_tape_reset(t);       // the step's activations go at once; x and w stay
 *     tq_tape_free(t);
 *     tq_tensor_free(x);
 *     tq_tensor_free(w);
 *
 * tq_model_forward (layers.h) records a whole model so, and tq_quantize (quant.h) puts fake
 * quant on the tape as one more op. */

#ifdef __cplusplus
extern "C" {
#endif

#define TQ_MAX_DIMS 4

/* ---------------------------------------------------------------- errors */

typedef enum tq_status {
    TQ_STATUS_OK = 0,
    TQ_STATUS_ARG,     /* bad argument or hyperparameter */
    TQ_STATUS_SHAPE,   /* shapes that do not fit together */
    TQ_STATUS_IO,      /* a file that cannot be read or written */
    TQ_STATUS_FORMAT,  /* a file or string whose contents are wrong */
    TQ_STATUS_NOMEM,   /* out of memory */
    TQ_STATUS_NUMERIC, /* NaN or infinity where a finite value was needed */
    TQ_STATUS_INTERRUPTED, /* stopped on request (SIGINT) between two steps */
} tq_status;

/* The first failure wins: later failures do not overwrite the message. */
typedef struct tq_error {
    tq_status status;
    char msg[512];
} tq_error;

/* Records a failure (if none is recorded yet) and returns its status. */
tq_status tq_fail(tq_error *err, tq_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tq_error_clear(tq_error *err);
const char *tq_status_name(tq_status status);

/* Writes len bytes to path atomically (temporary file in the same directory, fsync, rename):
 * on failure the previous file, if any, is left as it was. */
tq_status tq_write_file_atomic(const char *path, const void *data, size_t len, tq_error *err);

/* Internal invariants (not user errors): print file:line and abort. */
#define TQ_ASSERT(cond)                                                        \
    do {                                                                       \
        if (!(cond)) tq_assert_fail(#cond, __FILE__, __LINE__);                \
    } while (0)
void tq_assert_fail(const char *cond, const char *file, int line) __attribute__((noreturn));

/* ---------------------------------------------------------------- RNG */

/* xoshiro128++-style generator; always passed explicitly, never global. */
typedef struct tq_rng {
    uint64_t s[2];
} tq_rng;

void tq_rng_seed(tq_rng *rng, uint64_t seed);
uint32_t tq_rng_u32(tq_rng *rng);
uint32_t tq_rng_below(tq_rng *rng, uint32_t n); /* uniform in [0, n) */
float tq_rng_uniform(tq_rng *rng);              /* uniform in [0, 1) */
float tq_rng_normal(tq_rng *rng);               /* standard normal */

/* ---------------------------------------------------------------- tensors */

/* float32, contiguous, row-major, NCHW, 1..4 dimensions. grad is NULL when no gradient
 * is tracked. Parameters point into a model's buffers; activations into a tape's arena. */
typedef struct tq_tensor {
    float *data;
    float *grad;
    int32_t ndim;
    int32_t shape[TQ_MAX_DIMS];
    int64_t numel;
    const char *name; /* optional, for messages */
} tq_tensor;

/* Fills in ndim, shape and numel; returns false if a dimension is < 1 or ndim is out of range. */
bool tq_shape_set(tq_tensor *t, int32_t ndim, const int32_t *shape);
bool tq_same_shape(const tq_tensor *a, const tq_tensor *b);
/* "(64,1,28,28)" into buf; returns buf. */
const char *tq_shape_str(const tq_tensor *t, char *buf, size_t len);
int64_t tq_shape_numel(int32_t ndim, const int32_t *shape);

/* Heap tensors for tests, fixtures and parameters outside a model. */
tq_tensor *tq_tensor_new(int32_t ndim, const int32_t *shape, bool with_grad);
void tq_tensor_free(tq_tensor *t);
void tq_tensor_fill_uniform(tq_tensor *t, tq_rng *rng, float lo, float hi);

/* ---------------------------------------------------------------- threads */

/* One pool: OpenBLAS (OpenMP build) and tinyqat's own loops share the OpenMP threads. */
void tq_set_threads(int n);
int tq_get_threads(void);
/* "avx512" or "openblas": the kernels matrix products and convolutions use in this process,
 * decided once from the CPU and the environment variable TQ_GEMM (TQ_GEMM=openblas forces
 * OpenBLAS). The two sum in different orders, so their last bits differ. */
const char *tq_sgemm_backend(void);

/* ---------------------------------------------------------------- tape */

typedef struct tq_tape tq_tape;

tq_tape *tq_tape_new(void);
void tq_tape_free(tq_tape *tape);
/* Drops every node, activation and gradient of the step at once; keeps the memory. */
void tq_tape_reset(tq_tape *tape);
/* Recording on: ops record nodes and activations get gradients. Off (evaluation,
 * calibration): nothing is recorded and no gradient memory is taken. On by default. */
void tq_tape_set_recording(tq_tape *tape, bool on);
bool tq_tape_recording(const tq_tape *tape);
/* Training mode for ops that differ (batch norm, dropout). On by default. */
void tq_tape_set_training(tq_tape *tape, bool on);
bool tq_tape_training(const tq_tape *tape);
/* The first error an op reported since the last reset (status TQ_STATUS_OK if none). */
const tq_error *tq_tape_error(const tq_tape *tape);
void tq_tape_fail_clear(tq_tape *tape);
/* Seeds d(loss)/d(loss) = 1 (loss must have one element) and walks the tape in reverse. */
tq_status tq_backward(tq_tape *tape, tq_tensor *loss);
size_t tq_tape_node_count(const tq_tape *tape);
/* How many times the tape has called malloc since it was created (the arena at work). */
size_t tq_tape_malloc_count(const tq_tape *tape);
size_t tq_tape_bytes_reserved(const tq_tape *tape);

/* ---------------------------------------------------------------- ops
 * Every op takes the tape first, returns its output (allocated on the tape), and returns
 * NULL after recording an error on the tape when an input is NULL or shapes do not fit;
 * a NULL input propagates without a new message, so a caller may check once at the end. */

tq_tensor *tq_add(tq_tape *t, tq_tensor *a, tq_tensor *b);      /* same shapes */
tq_tensor *tq_sub(tq_tape *t, tq_tensor *a, tq_tensor *b);      /* same shapes */
tq_tensor *tq_mul(tq_tape *t, tq_tensor *a, tq_tensor *b);      /* same shapes */
tq_tensor *tq_scale(tq_tape *t, tq_tensor *x, float c);         /* c * x */
/* Broadcast along dimension 1: x (N,C) or (N,C,H,W), v (C). */
tq_tensor *tq_add_channel(tq_tape *t, tq_tensor *x, tq_tensor *v);
tq_tensor *tq_mul_channel(tq_tape *t, tq_tensor *x, tq_tensor *v);

tq_tensor *tq_matmul(tq_tape *t, tq_tensor *a, tq_tensor *b);   /* (M,K) x (K,N) */
/* y = x w^T + b: x (N,in), w (out,in), b (out) or NULL. */
tq_tensor *tq_linear(tq_tape *t, tq_tensor *x, tq_tensor *w, tq_tensor *b);
/* x (N,C,H,W), w (O,C,kh,kw), b (O) or NULL; zero padding. */
tq_tensor *tq_conv2d(tq_tape *t, tq_tensor *x, tq_tensor *w, tq_tensor *b, int stride, int pad);

tq_tensor *tq_maxpool2d(tq_tape *t, tq_tensor *x, int kernel, int stride);
tq_tensor *tq_avgpool2d(tq_tape *t, tq_tensor *x, int kernel, int stride);
tq_tensor *tq_global_avgpool(tq_tape *t, tq_tensor *x); /* (N,C,H,W) -> (N,C) */

tq_tensor *tq_relu(tq_tape *t, tq_tensor *x);
tq_tensor *tq_sigmoid(tq_tape *t, tq_tensor *x);
tq_tensor *tq_tanh(tq_tape *t, tq_tensor *x);

/* Views: share data and gradient with x, nothing to do in backward. */
tq_tensor *tq_reshape(tq_tape *t, tq_tensor *x, int32_t ndim, const int32_t *shape);
tq_tensor *tq_flatten(tq_tape *t, tq_tensor *x); /* (N,...) -> (N, rest) */

/* Batch norm over dimension 1 of (N,C) or (N,C,H,W). In training mode (tq_tape_training)
 * normalises with batch statistics and updates the running ones (PyTorch's momentum
 * convention, unbiased running variance); otherwise uses the running statistics. */
typedef struct tq_batchnorm_state {
    float *running_mean; /* (C) */
    float *running_var;  /* (C) */
    float momentum;      /* e.g. 0.1 */
    float eps;           /* e.g. 1e-5 */
} tq_batchnorm_state;
tq_tensor *tq_batchnorm(tq_tape *t, tq_tensor *x, tq_tensor *gamma, tq_tensor *beta,
                        const tq_batchnorm_state *bn);

/* Inverted dropout with probability p in training mode; identity otherwise. */
tq_tensor *tq_dropout(tq_tape *t, tq_tensor *x, float p, tq_rng *rng);

/* Mean over the batch of -log softmax(logits)[label]; logits (N,K), labels in [0,K). */
tq_tensor *tq_softmax_cross_entropy(tq_tape *t, tq_tensor *logits, const int32_t *labels);
tq_tensor *tq_mse(tq_tape *t, tq_tensor *pred, tq_tensor *target); /* mean of squares */
tq_tensor *tq_sum(tq_tape *t, tq_tensor *x);  /* -> (1) */
tq_tensor *tq_mean(tq_tape *t, tq_tensor *x); /* -> (1) */

/* ---------------------------------------------------------------- writing ops
 * For modules that add ops on top of autograd (e.g. fake quant). */

typedef struct tq_node tq_node;
typedef void (*tq_backward_fn)(tq_node *node);

/* What an op is: its name (for messages) and its backward. Each op family defines its
 * records next to its code; a node points at one. */
typedef struct tq_op_def {
    const char *name;
    tq_backward_fn backward;
} tq_op_def;

#define TQ_NODE_MAX_INPUTS 4
struct tq_node {
    const tq_op_def *op;
    tq_tensor *out;
    tq_tensor *in[TQ_NODE_MAX_INPUTS];
    int n_in;
    void *saved;       /* op-specific, on the arena */
    int64_t iarg[4];   /* op-specific integer arguments */
    float farg[4];     /* op-specific float arguments */
};

/* A new activation on the arena (data uninitialised; grad zeroed when with_grad). */
tq_tensor *tq_tape_tensor(tq_tape *t, int32_t ndim, const int32_t *shape, bool with_grad);
/* Arena memory for the current step, 64-byte aligned, uninitialised. NULL only on OOM
 * (and then the tape's error says so). */
void *tq_tape_alloc(tq_tape *t, size_t bytes);
/* True when an output of these inputs needs a gradient: recording and some input has one. */
bool tq_tape_needs_grad(const tq_tape *t, tq_tensor *const *in, int n_in);
/* Appends a node; returns NULL when nothing is recorded (recording off or no input grad). */
tq_node *tq_tape_record(tq_tape *t, const tq_op_def *op, tq_tensor *out, tq_tensor *const *in,
                        int n_in);
/* Records an op error on the tape and returns NULL (for `return tq_tape_fail(...)`). */
tq_tensor *tq_tape_fail(tq_tape *t, tq_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------------- gradient checking */

/* Builds the function under test from the inputs, on the given tape. */
typedef tq_tensor *(*tq_gradcheck_fn)(tq_tape *t, tq_tensor **inputs, void *ctx);

typedef struct tq_gradcheck_opts {
    double eps;          /* finite-difference step, default 1e-2 */
    double rtol, atol;   /* |analytic - numeric| <= atol + rtol * |numeric|; defaults 2e-2, 1e-3 */
    bool skip_kinks;     /* skip coordinates where one-sided differences disagree (ReLU at 0,
                            max-pool ties) instead of failing on them */
    uint64_t seed;       /* for the random projection of the output */
} tq_gradcheck_opts;

typedef struct tq_gradcheck_result {
    bool ok;
    int64_t checked, skipped, failed;
    double max_abs_err;
    char msg[640]; /* first failure: which input, which element, both values */
} tq_gradcheck_result;

/* Compares d(sum(out * r))/d(input) from backward against central differences (forward
 * in float, the projected sum in double) for every element of every input that has a grad. */
tq_gradcheck_result tq_gradcheck(tq_gradcheck_fn fn, void *ctx, tq_tensor **inputs, int n_in,
                                 const tq_gradcheck_opts *opts);
tq_gradcheck_opts tq_gradcheck_defaults(void);

#ifdef __cplusplus
}
#endif
#endif
