/* End-to-end tests of the `tinyqat` command on a small generated IDX data set: training,
 * evaluation, resume, PTQ, QAT, compare, the teaching commands, and bad input. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "tq_test.h"

static char dir[256];      /* fixture directory */
static char tinyqat[1024]; /* the command under test */

/* Runs a shell fragment in the fixture directory, with $TQ naming the command under test;
 * returns the exit status, standard output and error in out. */
static int run(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int run(char *out, size_t cap, const char *fmt, ...)
{
    char args[2048], cmd[4096 + 1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd %s && TQ=%s && { %s ; } 2>&1", dir, tinyqat, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t len = fread(out, 1, cap - 1, p);
    out[len] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* The value of the last "accuracy: X" line, or -1. */
static double accuracy_of(const char *out)
{
    const char *s = strstr(out, "accuracy: "), *last = NULL;
    for (; s; s = strstr(s + 1, "accuracy: ")) last = s;
    return last ? atof(last + 10) : -1;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static bool file_exists(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/tq_cli_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    const char *build = getenv("TQ_BUILD_DIR");
    snprintf(tinyqat, sizeof tinyqat, "%s/tinyqat", build ? build : ".");
    /* the data: easy bars in dir, hard ones in dir/hard (see tests/fixture/make_bars.c) */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "mkdir %s/hard && %s/make_bars %s 120 3 && %s/make_bars %s/hard 20 1",
             dir, build ? build : ".", dir, build ? build : ".", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void teardown(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static char out[1 << 16];

START_TEST(test_usage_errors_exit_2)
{
    ck_assert_int_eq(run(out, sizeof out, "$TQ --help"), 0);
    ck_assert_ptr_nonnull(strstr(out, "compare"));
    const char *cmds[] = {"train", "eval", "ptq", "qat", "compare", "info", "grid", "fq", "export"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        ck_assert_int_eq(run(out, sizeof out, "$TQ %s --help", cmds[i]), 0);
        ck_assert_ptr_nonnull(strstr(out, "usage: tinyqat"));
    }
    ck_assert_int_eq(run(out, sizeof out, "$TQ train --bogus"), 2);
    ck_assert_ptr_nonnull(strstr(out, "tinyqat train: unknown option '--bogus'"));
    ck_assert_int_eq(run(out, sizeof out, "$TQ train --epochs abc"), 2);
    ck_assert_ptr_nonnull(strstr(out, "--epochs: expected an integer from 1 to 100000, got 'abc'"));
    ck_assert_int_eq(run(out, sizeof out, "$TQ train --optim rmsprop"), 2);
    ck_assert_int_eq(run(out, sizeof out, "$TQ frobnicate"), 2);
    ck_assert_int_eq(run(out, sizeof out, "$TQ ptq --model-file x --recipe w3a3 --out y"), 2);
    ck_assert_ptr_nonnull(strstr(out, "unknown recipe 'w3a3'"));
    ck_assert_int_eq(run(out, sizeof out, "$TQ fq --spec int9 --amax 1 0.5"), 2);
    ck_assert_ptr_nonnull(strstr(out, "unknown format"));
}
END_TEST

START_TEST(test_bad_input_exit_1_one_line)
{
    ck_assert_int_eq(run(out, sizeof out, "$TQ eval --model-file missing.tqc"), 1);
    ck_assert_ptr_nonnull(strstr(out, "missing.tqc"));
    ck_assert_int_eq(count_lines(out), 1);
    ck_assert_int_eq(run(out, sizeof out, "$TQ train --model mlp --data mnist:nodir --epochs 1 --quiet"), 1);
    ck_assert_ptr_nonnull(strstr(out, "nodir"));
    ck_assert_int_eq(count_lines(out), 1);
    /* an output that cannot be written is reported before any training */
    ck_assert_int_eq(run(out, sizeof out, "$TQ train --model mlp --data mnist:. --out nodir/m.tqc"), 1);
    ck_assert_ptr_nonnull(strstr(out, "nodir/m.tqc"));
    ck_assert_ptr_null(strstr(out, "epoch"));
    /* a corrupt checkpoint */
    ck_assert_int_eq(run(out, sizeof out, "$TQ train --model mlp --data mnist:. --epochs 1 --quiet --out m.tqc"), 0);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd %s && printf 'X' | dd of=m.tqc bs=1 seek=200 conv=notrunc 2>/dev/null", dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(run(out, sizeof out, "$TQ eval --model-file m.tqc"), 1);
    ck_assert_ptr_nonnull(strstr(out, "checksum mismatch"));
    ck_assert_int_eq(run(out, sizeof out, "$TQ qat --model-file m.tqc --out q.tqc"), 1);
    /* a learning rate that blows up: a message naming the step and layer, no NaN model */
    ck_assert_int_eq(run(out, sizeof out, "$TQ train --model lenet5 --data mnist:. --optim sgd "
                         "--lr 1e9 --epochs 2 --out nan.tqc"), 1);
    ck_assert_ptr_nonnull(strstr(out, "first non-finite values in"));
    ck_assert(!file_exists("nan.tqc"));
}
END_TEST

START_TEST(test_train_eval_info_json)
{
    ck_assert_int_eq(run(out, sizeof out,
                         "$TQ train --model lenet5 --data mnist:. --epochs 2 --seed 3 --out l.tqc "
                         "--json l.json --threads 2"), 0);
    double train_acc = accuracy_of(out);
    ck_assert_msg(train_acc >= 0.95, "lenet5 on the bars reached only %.4f", train_acc);
    ck_assert_ptr_nonnull(strstr(out, "epoch 2/2"));
    /* the run names its thread count and its kernels (this process sees the same CPU and TQ_GEMM) */
    char want[64];
    snprintf(want, sizeof want, "2 threads, %s sgemm", tq_sgemm_backend());
    ck_assert_msg(strstr(out, want), "no '%s' in: %s", want, out);
    ck_assert(file_exists("l.json"));
    ck_assert_int_eq(run(out, sizeof out, "$TQ eval --model-file l.tqc --json e.json"), 0);
    TQ_ASSERT_NEAR(accuracy_of(out), train_acc, 1e-9);
    char path[512], json[4096];
    snprintf(path, sizeof path, "%s/e.json", dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    json[fread(json, 1, sizeof json - 1, f)] = '\0';
    fclose(f);
    ck_assert_ptr_nonnull(strstr(json, "\"accuracy\": "));
    ck_assert_ptr_nonnull(strstr(json, "\"command\": \"eval\""));
    ck_assert_int_eq(run(out, sizeof out, "$TQ train --model mlp --data mnist:. --epochs 1 --val 0.25 --out v.tqc"), 0);
    ck_assert_ptr_nonnull(strstr(out, "900 images")); /* 1200 minus a quarter held out */
    ck_assert_ptr_nonnull(strstr(out, "val acc"));
    ck_assert_int_eq(run(out, sizeof out, "$TQ info v.tqc"), 0);
    ck_assert_ptr_nonnull(strstr(out, "validation split: 0.25 of the training set held out (seed 1)"));
    ck_assert_int_eq(run(out, sizeof out, "$TQ info l.tqc"), 0);
    ck_assert_ptr_null(strstr(out, "validation split"));
    ck_assert_ptr_nonnull(strstr(out, "conv1"));
    ck_assert_ptr_nonnull(strstr(out, "61706"));
}
END_TEST

static uint32_t le32_at(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* export, info on the .onnx, and eval --dump: the dump's images are the data set's pixels / 255,
 * its labels the data set's, its logits give eval's accuracy, its codes lie on the grid. */
START_TEST(test_export_info_and_dump)
{
    ck_assert_int_eq(run(out, sizeof out, "$TQ train --model lenet5 --data mnist:. --epochs 1 --out l.tqc --quiet"), 0);
    ck_assert_int_eq(run(out, sizeof out, "$TQ ptq --model-file l.tqc --recipe w4a8 --calib-batches 2 --out q.tqc --quiet"), 0);
    double acc = accuracy_of(out);
    /* usage errors, and an unwritable output reported before any work */
    ck_assert_int_eq(run(out, sizeof out, "$TQ export --model-file q.tqc"), 2);
    ck_assert_ptr_nonnull(strstr(out, "--out is required"));
    ck_assert_int_eq(run(out, sizeof out, "$TQ export --model-file missing.tqc --out nodir/q.onnx"), 1);
    ck_assert_ptr_nonnull(strstr(out, "nodir/q.onnx"));
    ck_assert_int_eq(count_lines(out), 1);
    ck_assert_int_eq(run(out, sizeof out, "$TQ export --model-file q.tqc --out q.onnx"), 0);
    ck_assert_ptr_nonnull(strstr(out, "exported lenet5 to q.onnx: "));
    ck_assert_ptr_nonnull(strstr(out, "10 quantizers as QDQ"));
    ck_assert_ptr_nonnull(strstr(out, "opset 21 (IR 10)"));
    ck_assert_int_eq(run(out, sizeof out, "$TQ info q.onnx"), 0);
    ck_assert_ptr_nonnull(strstr(out, "input float [N,1,28,28]"));
    ck_assert_ptr_nonnull(strstr(out, "logits float [N,10]"));
    ck_assert_ptr_nonnull(strstr(out, "QuantizeLinear 5, DequantizeLinear 10"));
    ck_assert_ptr_nonnull(strstr(out, "conv2.weight_codes int4 [16,6,5,5] 1200 bytes"));
    ck_assert_ptr_nonnull(strstr(out, "conv2.input_zero_point uint8 [] 1 bytes"));
    /* a corrupt or foreign .onnx: one line */
    ck_assert_int_eq(run(out, sizeof out, "head -c 5000 q.onnx > cut.onnx && $TQ info cut.onnx"), 1);
    ck_assert_ptr_nonnull(strstr(out, "tinyqat info: onnx: cut.onnx: not an ONNX model"));
    ck_assert_int_eq(count_lines(out), 1);
    ck_assert_int_eq(run(out, sizeof out, "head -c 300 t10k-labels-idx1-ubyte > f.onnx && $TQ info f.onnx"), 1);
    ck_assert_int_eq(count_lines(out), 1);
    ck_assert_int_eq(run(out, sizeof out, "$TQ export --model-file l.tqc --out q.onnx"), 0); /* replaced */
    ck_assert_int_eq(run(out, sizeof out, "$TQ info q.onnx"), 0);
    ck_assert_ptr_null(strstr(out, "QuantizeLinear"));
    ck_assert_int_eq(run(out, sizeof out, "$TQ ptq --model-file l.tqc --recipe mxfp8 --calib-batches 1 --out mx.tqc --quiet && "
                         "$TQ export --model-file mx.tqc --out mx.onnx"), 1);
    ck_assert_ptr_nonnull(strstr(out, "layer conv1: activations mxfp8 do not export"));
    ck_assert(!file_exists("mx.onnx"));

    ck_assert_int_eq(run(out, sizeof out, "$TQ eval --model-file q.tqc --dump d.bin --dump-codes 3"), 0);
    TQ_ASSERT_NEAR(accuracy_of(out), acc, 1e-9);
    char path[512];
    snprintf(path, sizeof path, "%s/d.bin", dir);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    static unsigned char d[1 << 24];
    size_t len = fread(d, 1, sizeof d, f);
    fclose(f);
    ck_assert(memcmp(d, "TQDUMP1", 8) == 0);
    uint32_t n = le32_at(d + 8), c = le32_at(d + 12), h = le32_at(d + 16), w = le32_at(d + 20);
    uint32_t classes = le32_at(d + 24), nq = le32_at(d + 28), coded = le32_at(d + 32);
    ck_assert(n == 300 && c == 1 && h == 28 && w == 28 && classes == 10 && nq == 5 && coded == 3);
    size_t off = 40, per_q[5], codes_per_image = 0;
    float qmin[5], qmax[5];
    for (uint32_t k = 0; k < nq; k++) {
        uint32_t name_len = le32_at(d + off);
        off += 4 + name_len;
        memcpy(&qmin[k], d + off, 4);
        memcpy(&qmax[k], d + off + 4, 4);
        per_q[k] = le32_at(d + off + 12);
        codes_per_image += per_q[k];
        off += 16;
    }
    ck_assert(qmin[0] == -128 && qmax[0] == 127 && qmin[1] == 0 && qmax[1] == 255); /* uint8 after ReLU */
    ck_assert_uint_eq(per_q[0], 784);
    size_t record = 4 * (784 + 1 + classes);
    ck_assert_uint_eq(len, off + n * record + coded * 4 * codes_per_image);
    FILE *img = fopen(strcat(strcpy(path, dir), "/t10k-images-idx3-ubyte"), "rb");
    FILE *lab = fopen(strcat(strcpy(path, dir), "/t10k-labels-idx1-ubyte"), "rb");
    ck_assert(img && lab);
    static unsigned char pixels[300 * 784 + 16], labels[300 + 8];
    ck_assert_uint_eq(fread(pixels, 1, sizeof pixels, img), sizeof pixels);
    ck_assert_uint_eq(fread(labels, 1, sizeof labels, lab), sizeof labels);
    fclose(img);
    fclose(lab);
    int correct = 0;
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *r = d + off;
        for (int j = 0; j < 784; j++) {
            float v;
            memcpy(&v, r + 4 * j, 4);
            ck_assert(v == (float)pixels[16 + i * 784 + j] / 255.0f);
        }
        ck_assert_uint_eq(le32_at(r + 4 * 784), labels[8 + i]);
        float best = -1e30f;
        uint32_t arg = 0;
        for (uint32_t k = 0; k < classes; k++) {
            float v;
            memcpy(&v, r + 4 * (785 + k), 4);
            if (v > best) best = v, arg = k;
        }
        correct += arg == labels[8 + i];
        off += record;
        for (uint32_t q = 0; i < coded && q < nq; q++)
            for (size_t j = 0; j < per_q[q]; j++, off += 4) {
                float v;
                memcpy(&v, d + off, 4);
                ck_assert(v == rintf(v) && v >= qmin[q] && v <= qmax[q]);
            }
    }
    TQ_ASSERT_NEAR((double)correct / n, acc, 5e-5); /* eval prints 4 decimals */
}
END_TEST

/* Two epochs in one go and one epoch plus a resumed one end with the same bits. */
START_TEST(test_resume_is_bit_exact)
{
    ck_assert_int_eq(run(out, sizeof out, "$TQ train --model lenet5 --data mnist:. --epochs 2 --seed 5 --quiet --out a.tqc"), 0);
    ck_assert_int_eq(run(out, sizeof out, "$TQ train --model lenet5 --data mnist:. --epochs 1 --seed 5 --quiet --out b.tqc"), 0);
    ck_assert_int_eq(run(out, sizeof out, "$TQ train --resume b.tqc --epochs 2 --quiet --out c.tqc"), 0);
    char pa[512], pc[512];
    snprintf(pa, sizeof pa, "%s/a.tqc", dir);
    snprintf(pc, sizeof pc, "%s/c.tqc", dir);
    tq_error err = {0};
    tq_ckpt *a = tq_ckpt_load(pa, &err), *c = tq_ckpt_load(pc, &err);
    ck_assert_msg(a && c, "%s", err.msg);
    const char *sections[] = {"model.params", "model.state", "optim.state"};
    for (int i = 0; i < 3; i++) {
        int64_t na = 0, nc = 0;
        const float *xa = tq_ckpt_get_f32(a, sections[i], &na), *xc = tq_ckpt_get_f32(c, sections[i], &nc);
        ck_assert_msg(na == nc && (na == 0 || (xa && xc)), "section %s", sections[i]);
        ck_assert_msg(memcmp(xa, xc, (size_t)na * sizeof(float)) == 0, "%s differs after resume",
                      sections[i]);
    }
    tq_ckpt_free(a);
    tq_ckpt_free(c);
    /* and a run with another seed does differ, so the comparison can fail */
    ck_assert_int_eq(run(out, sizeof out, "$TQ train --model lenet5 --data mnist:. --epochs 2 --seed 6 --quiet --out d.tqc"), 0);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cmp -s %s/a.tqc %s/d.tqc", dir, dir);
    ck_assert_int_ne(system(cmd), 0);
}
END_TEST

/* SIGINT finishes the step, saves, says how to resume; the resumed run ends with the same
 * bits as one never interrupted. */
START_TEST(test_sigint_saves_and_resumes_exactly)
{
    const char *args = "--model mlp --data mnist:. --seed 7 --quiet";
    ck_assert_int_eq(run(out, sizeof out, "$TQ train %s --epochs 40 --out full.tqc", args), 0);
    /* SIGINT once the first epoch is saved, so that the run is surely under way */
    int rc = run(out, sizeof out, "$TQ train %s --epochs 40 --out cut.tqc & pid=$!; "
                 "while [ ! -e cut.tqc ] && kill -0 $pid 2>/dev/null; do sleep 0.05; done; "
                 "kill -INT $pid; wait $pid; exit $?", args);
    if (rc == 0) return; /* the machine was fast enough to finish first: nothing to test */
    ck_assert_msg(rc == 130, "exit status %d: %s", rc, out);
    ck_assert_ptr_nonnull(strstr(out, "continue with: tinyqat train --resume cut.tqc --epochs 40"));
    ck_assert_int_eq(run(out, sizeof out, "$TQ train --resume cut.tqc --epochs 40 --quiet --out cut.tqc"), 0);
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/full.tqc", dir);
    snprintf(pb, sizeof pb, "%s/cut.tqc", dir);
    tq_error err = {0};
    tq_ckpt *a = tq_ckpt_load(pa, &err), *b = tq_ckpt_load(pb, &err);
    ck_assert_msg(a && b, "%s", err.msg);
    int64_t na = 0, nb = 0;
    const float *xa = tq_ckpt_get_f32(a, "model.params", &na), *xb = tq_ckpt_get_f32(b, "model.params", &nb);
    ck_assert(xa && xb && na == nb);
    ck_assert_msg(memcmp(xa, xb, (size_t)na * sizeof(float)) == 0, "parameters differ after resume");
    tq_ckpt_free(a);
    tq_ckpt_free(b);
}
END_TEST

/* SIGKILL at random moments of a run that saves every epoch (a 3 MB file): the checkpoint
 * on disk, once there, always loads. Five kills fall up to 0.6 s after the first checkpoint
 * appears, so however slow the machine they land among later saves and the steps between
 * them; two fall 0.05 to 0.5 s from the start, where a kill during the first save must
 * leave no file or a good one. */
START_TEST(test_sigkill_never_leaves_a_broken_checkpoint)
{
    const char *train = "$TQ train --model mlp --data mnist:. --epochs 200 --quiet --out k.tqc";
    tq_rng rng;
    tq_rng_seed(&rng, 11);
    for (int i = 0; i < 7; i++) {
        const bool early = i < 2;
        /* timeout takes 0 as "no limit": the early kills come from 0.05 s on */
        const double u = tq_rng_uniform(&rng), after = early ? 0.05 + 0.45 * u : 0.6 * u;
        if (early) {
            run(out, sizeof out, "rm -f k.tqc; timeout -s KILL %.3f %s", after, train);
        } else {
            run(out, sizeof out, "rm -f k.tqc; %s & pid=$!; "
                "while [ ! -e k.tqc ] && kill -0 $pid 2>/dev/null; do sleep 0.02; done; "
                "sleep %.3f; kill -KILL $pid; wait $pid; echo \"status $?\"", train, after);
            ck_assert_msg(strstr(out, "status 137"), "the run was not killed %.3f s after its "
                          "first checkpoint: %s", after, out);
            ck_assert(file_exists("k.tqc"));
        }
        if (!file_exists("k.tqc")) continue;
        int rc = run(out, sizeof out, "$TQ info k.tqc");
        ck_assert_msg(rc == 0, "after SIGKILL %.3f s %s the checkpoint does not load: %s", after,
                      early ? "from the start" : "after the first save", out);
    }
}
END_TEST

/* The heart of the tool: at two bits PTQ loses accuracy and QAT wins it back. */
START_TEST(test_ptq_then_qat_at_two_bits_raises_accuracy)
{
    ck_assert_int_eq(run(out, sizeof out, "$TQ train --model mlp --data mnist:hard --epochs 2 --quiet --out f.tqc"), 0);
    double float_acc = accuracy_of(out);
    ck_assert_int_eq(run(out, sizeof out,
                         "$TQ ptq --model-file f.tqc --weights int2:channel=0 --acts int2 --keep none "
                         "--calib max --out p.tqc"), 0);
    double ptq_acc = accuracy_of(out);
    ck_assert_ptr_nonnull(strstr(out, "uint2 (calibration saw no negative values)"));
    ck_assert_int_eq(run(out, sizeof out, "$TQ qat --model-file p.tqc --epochs 4 --lr 3e-4 --quiet --out q.tqc"), 0);
    double qat_acc = accuracy_of(out);
    ck_assert_msg(ptq_acc < float_acc - 0.02, "PTQ %.4f vs float %.4f", ptq_acc, float_acc);
    ck_assert_msg(qat_acc > ptq_acc + 0.02, "QAT %.4f did not beat PTQ %.4f", qat_acc, ptq_acc);
    /* the quantized checkpoint reproduces its accuracy */
    ck_assert_int_eq(run(out, sizeof out, "$TQ eval --model-file q.tqc"), 0);
    TQ_ASSERT_NEAR(accuracy_of(out), qat_acc, 1e-9);
}
END_TEST

/* Without --lr, QAT starts at 1% of the rate the float model was trained with; with it, at --lr. */
START_TEST(test_qat_default_lr_is_a_hundredth_of_the_float_rate)
{
    ck_assert_int_eq(run(out, sizeof out, "$TQ train --model mlp --data mnist:. --epochs 1 --lr 0.004 --quiet --out f4.tqc"), 0);
    ck_assert_int_eq(run(out, sizeof out, "$TQ ptq --model-file f4.tqc --recipe w4a8 --calib-batches 2 --quiet --out p4.tqc"), 0);
    ck_assert_int_eq(run(out, sizeof out, "$TQ qat --model-file p4.tqc --epochs 1 --out q4.tqc"), 0);
    ck_assert_msg(strstr(out, "adam from lr 4e-05"), "%s", out);
    ck_assert_int_eq(run(out, sizeof out, "$TQ qat --model-file p4.tqc --epochs 1 --lr 0.003 --optim sgd --out q4.tqc"), 0);
    ck_assert_msg(strstr(out, "sgd from lr 0.003"), "%s", out);
}
END_TEST

/* QAT with batch norm unfolded, folded at the end: the saved model is the folded one and
 * reproduces the accuracy reported after folding. */
START_TEST(test_qat_folds_batch_norm_at_the_end)
{
    ck_assert_int_eq(run(out, sizeof out, "$TQ train --model convnet --data mnist:. --epochs 1 --batch 32 --quiet --out cn.tqc"), 0);
    ck_assert_int_eq(run(out, sizeof out, "$TQ ptq --model-file cn.tqc --recipe w4a8 --calib-batches 4 --quiet --out cq.tqc"), 0);
    ck_assert_int_eq(run(out, sizeof out, "$TQ qat --model-file cq.tqc --epochs 1 --batch 32 --fold-bn-at-end --out cf.tqc"), 0);
    ck_assert_ptr_nonnull(strstr(out, "batch norm folded after QAT"));
    double folded = accuracy_of(out);
    ck_assert_int_eq(run(out, sizeof out, "$TQ eval --model-file cf.tqc"), 0);
    TQ_ASSERT_NEAR(accuracy_of(out), folded, 1e-9);
}
END_TEST

START_TEST(test_compare_writes_table_csv_md_json)
{
    ck_assert_int_eq(run(out, sizeof out,
                         "$TQ compare --model mlp --data mnist:. --epochs 1 --recipes int8,w2a2 "
                         "--calibs max,entropy --quiet --out cmp --json cmp.json"), 0);
    ck_assert_ptr_nonnull(strstr(out, "| w2a2 |"));
    ck_assert(file_exists("cmp.csv") && file_exists("cmp.md") && file_exists("cmp-float.tqc"));
    char path[512], json[1 << 14];
    snprintf(path, sizeof path, "%s/cmp.json", dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    json[fread(json, 1, sizeof json - 1, f)] = '\0';
    fclose(f);
    ck_assert_ptr_nonnull(strstr(json, "\"method\": \"ptq-entropy\""));
    ck_assert_ptr_nonnull(strstr(json, "\"method\": \"qat\""));
    ck_assert_ptr_nonnull(strstr(json, "\"recipe\": \"w2a2\""));
    ck_assert_ptr_null(strstr(json, "ptq-mse"));
    /* compare trained the model with a tenth held out, and chose on it */
    ck_assert_ptr_nonnull(strstr(json, "\"selected_on\": \"validation\""));
    ck_assert_ptr_nonnull(strstr(json, "\"validation_accuracy\""));
    ck_assert_ptr_nonnull(strstr(json, "\"p_value\""));
    /* ptq and qat keep the held-out images out, and qat reports its accuracy on them */
    ck_assert_int_eq(run(out, sizeof out, "$TQ ptq --model-file cmp-float.tqc --recipe w4a8 --calib-batches 2 --quiet --out cq.tqc"), 0);
    ck_assert_int_eq(run(out, sizeof out, "$TQ qat --model-file cq.tqc --epochs 2 --out cqq.tqc"), 0);
    ck_assert_ptr_nonnull(strstr(out, "val acc"));
    /* it ends with the epoch best on them, and the checkpoint holds that epoch */
    int kept = -1;
    const char *k = strstr(out, "kept epoch ");
    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(sscanf(k, "kept epoch %d", &kept), 1);
    ck_assert(kept >= 0 && kept <= 2);
    double qat_acc = accuracy_of(out);
    ck_assert_int_eq(run(out, sizeof out, "$TQ eval --model-file cqq.tqc"), 0);
    TQ_ASSERT_NEAR(accuracy_of(out), qat_acc, 1e-9);
    ck_assert_int_eq(run(out, sizeof out, "$TQ qat --model-file cq.tqc --epochs 1 --keep-last --seed 9 --out cql.tqc"), 0);
    ck_assert_ptr_null(strstr(out, "kept epoch"));
    /* QAT's own seed leaves the split as the float model drew it */
    ck_assert_int_eq(run(out, sizeof out, "$TQ info cql.tqc"), 0);
    ck_assert_ptr_nonnull(strstr(out, "validation split: 0.1 of the training set held out (seed 1)"));
    /* sensitivity measures on the held-out images and reports the proposal on the test set */
    ck_assert_int_eq(run(out, sizeof out, "$TQ sensitivity --model-file cmp-float.tqc --recipe w2a2 "
                                          "--calib-batches 2 --target-drop 100 --out mix.recipe"), 0);
    ck_assert_ptr_nonnull(strstr(out, "on held-out training images"));
    ck_assert_ptr_nonnull(strstr(out, "on the test set: mix.recipe"));
    ck_assert(file_exists("mix.recipe"));
    ck_assert_int_eq(run(out, sizeof out, "$TQ compare --model-file cmp-float.tqc --val 0.2 --quiet"), 2);
    ck_assert_ptr_nonnull(strstr(out, "--val: only when compare trains the float model"));
    ck_assert_int_eq(run(out, sizeof out, "$TQ compare --model-file cmp-float.tqc --keep-p 2 --quiet"), 2);
    ck_assert_ptr_nonnull(strstr(out, "--keep-p"));
    ck_assert_int_eq(run(out, sizeof out, "$TQ compare --model-file cmp-float.tqc --qat-lr 1e-3,abc --quiet"), 2);
    ck_assert_ptr_nonnull(strstr(out, "got 'abc'"));
    /* a model trained on the whole training set: the test set chooses, and compare says so */
    ck_assert_int_eq(run(out, sizeof out, "$TQ train --model mlp --data mnist:. --epochs 1 --quiet --out all.tqc"), 0);
    ck_assert_int_eq(run(out, sizeof out, "$TQ compare --model-file all.tqc --recipes w4a8 --calibs max "
                                          "--out cmp2 --json cmp2.json"), 0);
    ck_assert_ptr_nonnull(strstr(out, "no validation split"));
    ck_assert_ptr_nonnull(strstr(out, "(ep 1)"));
    ck_assert_int_eq(run(out, sizeof out, "$TQ compare --model-file all.tqc --qat-lr 1e-3,1e-4 --out cmp3"), 2);
    ck_assert_ptr_nonnull(strstr(out, "several rates need a validation split"));
}
END_TEST

START_TEST(test_grid_and_fq)
{
    ck_assert_int_eq(run(out, sizeof out, "$TQ grid e2m1"), 0);
    ck_assert_int_eq(count_lines(out), 1 + 16); /* header, then +-0, +-0.5 ... +-6 */
    ck_assert_ptr_nonnull(strstr(out, " 6\n"));
    /* int8, amax 1: scale 1/127; 0.5*127 = 63.5 rounds to even 64 */
    ck_assert_int_eq(run(out, sizeof out, "$TQ fq --spec int8 --amax 1 0.5 -2 0.001"), 0);
    float a, b, c;
    ck_assert_int_eq(sscanf(out, "%f %f %f", &a, &b, &c), 3);
    ck_assert_float_eq(a, 64.0f * (1.0f / 127.0f));
    ck_assert_float_eq(b, -128.0f * (1.0f / 127.0f));
    ck_assert_float_eq(c, 0.0f);
    ck_assert_int_eq(run(out, sizeof out, "$TQ fq --spec e4m3 --amax 448 < /dev/null"), 0);
    ck_assert_int_eq(run(out, sizeof out, "$TQ fq --spec int8 --amax 1 abc"), 1);
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_usage_errors_exit_2);
    tcase_add_test(tc, test_bad_input_exit_1_one_line);
    tcase_add_test(tc, test_train_eval_info_json);
    tcase_add_test(tc, test_export_info_and_dump);
    tcase_add_test(tc, test_resume_is_bit_exact);
    tcase_add_test(tc, test_sigint_saves_and_resumes_exactly);
    tcase_add_test(tc, test_sigkill_never_leaves_a_broken_checkpoint);
    tcase_add_test(tc, test_ptq_then_qat_at_two_bits_raises_accuracy);
    tcase_add_test(tc, test_qat_default_lr_is_a_hundredth_of_the_float_rate);
    tcase_add_test(tc, test_qat_folds_batch_norm_at_the_end);
    tcase_add_test(tc, test_compare_writes_table_csv_md_json);
    tcase_add_test(tc, test_grid_and_fq);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tq_test_run(cli_suite()); }
