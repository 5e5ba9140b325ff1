/* End-to-end tests of the `tinyqat` command on a small generated IDX data set: training,
 * evaluation, resume, PTQ, QAT, compare, the teaching commands, and bad input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "tq_cli_test.h"
#include "tq_test.h"
#include "train.h"

/* The fixture: easy bars in the fixture directory, hard ones in hard/ (tests/fixture/make_bars.c). */
static void setup(void)
{
    tq_cli_setup();
    tq_cli_make_bars("hard", "20 1");
}

static char out[1 << 16];
#define RUN(...) tq_cli_run(out, sizeof out, __VA_ARGS__)

START_TEST(test_usage_errors_exit_2)
{
    ck_assert_int_eq(RUN("$TQ --help"), 0);
    ck_assert_ptr_nonnull(strstr(out, "compare"));
    const char *cmds[] = {"train", "eval", "ptq", "qat", "compare", "info", "grid", "fq", "export"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        ck_assert_int_eq(RUN("$TQ %s --help", cmds[i]), 0);
        ck_assert_ptr_nonnull(strstr(out, "usage: tinyqat"));
    }
    ck_assert_int_eq(RUN("$TQ train --bogus"), 2);
    ck_assert_ptr_nonnull(strstr(out, "tinyqat train: unknown option '--bogus'"));
    ck_assert_int_eq(RUN("$TQ train --epochs abc"), 2);
    ck_assert_ptr_nonnull(strstr(out, "--epochs: expected an integer from 1 to 100000, got 'abc'"));
    ck_assert_int_eq(RUN("$TQ train --optim rmsprop"), 2);
    ck_assert_int_eq(RUN("$TQ frobnicate"), 2);
    ck_assert_int_eq(RUN("$TQ ptq --model-file x --recipe w3a3 --out y"), 2);
    ck_assert_ptr_nonnull(strstr(out, "unknown recipe 'w3a3'"));
    ck_assert_int_eq(RUN("$TQ fq --spec int9 --amax 1 0.5"), 2);
    ck_assert_ptr_nonnull(strstr(out, "unknown format"));
}
END_TEST

START_TEST(test_bad_input_exit_1_one_line)
{
    ck_assert_int_eq(RUN("$TQ eval --model-file missing.tqc"), 1);
    ck_assert_ptr_nonnull(strstr(out, "missing.tqc"));
    ck_assert_int_eq(tq_cli_count_lines(out), 1);
    ck_assert_int_eq(RUN("$TQ train --model mlp --data mnist:nodir --epochs 1 --quiet"), 1);
    ck_assert_ptr_nonnull(strstr(out, "nodir"));
    ck_assert_int_eq(tq_cli_count_lines(out), 1);
    /* an output that cannot be written is reported before any training */
    ck_assert_int_eq(RUN("$TQ train --model mlp --data mnist:. --out nodir/m.tqc"), 1);
    ck_assert_ptr_nonnull(strstr(out, "nodir/m.tqc"));
    ck_assert_ptr_null(strstr(out, "epoch"));
    /* a corrupt checkpoint */
    ck_assert_int_eq(RUN("$TQ train --model mlp --data mnist:. --epochs 1 --quiet --out m.tqc"), 0);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd %s && printf 'X' | dd of=m.tqc bs=1 seek=200 conv=notrunc 2>/dev/null", tq_cli_dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(RUN("$TQ eval --model-file m.tqc"), 1);
    ck_assert_ptr_nonnull(strstr(out, "checksum mismatch"));
    ck_assert_int_eq(RUN("$TQ qat --model-file m.tqc --out q.tqc"), 1);
    /* a learning rate that blows up: a message naming the step and layer, no NaN model */
    ck_assert_int_eq(RUN("$TQ train --model lenet5 --data mnist:. --optim sgd "
                         "--lr 1e9 --epochs 2 --out nan.tqc"), 1);
    ck_assert_ptr_nonnull(strstr(out, "first non-finite values in"));
    ck_assert(!tq_cli_file_exists("nan.tqc"));
}
END_TEST

START_TEST(test_train_eval_info_json)
{
    ck_assert_int_eq(RUN("$TQ train --model lenet5 --data mnist:. --epochs 2 --seed 3 --out l.tqc "
                         "--json l.json --threads 2"), 0);
    double train_acc = tq_cli_accuracy(out);
    ck_assert_msg(train_acc >= 0.95, "lenet5 on the bars reached only %.4f", train_acc);
    ck_assert_ptr_nonnull(strstr(out, "epoch 2/2"));
    /* the run names its thread count and its kernels (this process sees the same CPU and TQ_GEMM) */
    char want[64];
    snprintf(want, sizeof want, "2 threads, %s sgemm", tq_sgemm_backend());
    ck_assert_msg(strstr(out, want), "no '%s' in: %s", want, out);
    ck_assert(tq_cli_file_exists("l.json"));
    ck_assert_int_eq(RUN("$TQ eval --model-file l.tqc --json e.json"), 0);
    TQ_ASSERT_NEAR(tq_cli_accuracy(out), train_acc, 1e-9);
    char path[512], json[4096];
    snprintf(path, sizeof path, "%s/e.json", tq_cli_dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    json[fread(json, 1, sizeof json - 1, f)] = '\0';
    fclose(f);
    ck_assert_ptr_nonnull(strstr(json, "\"accuracy\": "));
    ck_assert_ptr_nonnull(strstr(json, "\"command\": \"eval\""));
    ck_assert_int_eq(RUN("$TQ train --model mlp --data mnist:. --epochs 1 --val 0.25 --out v.tqc"), 0);
    ck_assert_ptr_nonnull(strstr(out, "900 images")); /* 1200 minus a quarter held out */
    ck_assert_ptr_nonnull(strstr(out, "val acc"));
    ck_assert_int_eq(RUN("$TQ info v.tqc"), 0);
    ck_assert_ptr_nonnull(strstr(out, "validation split: 0.25 of the training set held out (seed 1)"));
    ck_assert_int_eq(RUN("$TQ info l.tqc"), 0);
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
    ck_assert_int_eq(RUN("$TQ train --model lenet5 --data mnist:. --epochs 1 --out l.tqc --quiet"), 0);
    ck_assert_int_eq(RUN("$TQ ptq --model-file l.tqc --recipe w4a8 --calib-batches 2 --out q.tqc --quiet"), 0);
    double acc = tq_cli_accuracy(out);
    /* usage errors, and an unwritable output reported before any work */
    ck_assert_int_eq(RUN("$TQ export --model-file q.tqc"), 2);
    ck_assert_ptr_nonnull(strstr(out, "--out is required"));
    ck_assert_int_eq(RUN("$TQ export --model-file missing.tqc --out nodir/q.onnx"), 1);
    ck_assert_ptr_nonnull(strstr(out, "nodir/q.onnx"));
    ck_assert_int_eq(tq_cli_count_lines(out), 1);
    ck_assert_int_eq(RUN("$TQ export --model-file q.tqc --out q.onnx"), 0);
    ck_assert_ptr_nonnull(strstr(out, "exported lenet5 to q.onnx: "));
    ck_assert_ptr_nonnull(strstr(out, "10 quantizers as QDQ"));
    ck_assert_ptr_nonnull(strstr(out, "opset 21 (IR 10)"));
    ck_assert_int_eq(RUN("$TQ info q.onnx"), 0);
    ck_assert_ptr_nonnull(strstr(out, "input float [N,1,28,28]"));
    ck_assert_ptr_nonnull(strstr(out, "logits float [N,10]"));
    ck_assert_ptr_nonnull(strstr(out, "QuantizeLinear 5, DequantizeLinear 10"));
    ck_assert_ptr_nonnull(strstr(out, "conv2.weight_codes int4 [16,6,5,5] 1200 bytes"));
    ck_assert_ptr_nonnull(strstr(out, "conv2.input_zero_point uint8 [] 1 bytes"));
    /* a corrupt or foreign .onnx: one line */
    ck_assert_int_eq(RUN("head -c 5000 q.onnx > cut.onnx && $TQ info cut.onnx"), 1);
    ck_assert_ptr_nonnull(strstr(out, "tinyqat info: onnx: cut.onnx: not an ONNX model"));
    ck_assert_int_eq(tq_cli_count_lines(out), 1);
    ck_assert_int_eq(RUN("head -c 300 t10k-labels-idx1-ubyte > f.onnx && $TQ info f.onnx"), 1);
    ck_assert_int_eq(tq_cli_count_lines(out), 1);
    ck_assert_int_eq(RUN("$TQ export --model-file l.tqc --out q.onnx"), 0); /* replaced */
    ck_assert_int_eq(RUN("$TQ info q.onnx"), 0);
    ck_assert_ptr_null(strstr(out, "QuantizeLinear"));
    ck_assert_int_eq(RUN("$TQ ptq --model-file l.tqc --recipe mxfp8 --calib-batches 1 --out mx.tqc --quiet && "
                         "$TQ export --model-file mx.tqc --out mx.onnx"), 1);
    ck_assert_ptr_nonnull(strstr(out, "layer conv1: activations mxfp8 do not export"));
    ck_assert(!tq_cli_file_exists("mx.onnx"));

    ck_assert_int_eq(RUN("$TQ eval --model-file q.tqc --dump d.bin --dump-codes 3"), 0);
    TQ_ASSERT_NEAR(tq_cli_accuracy(out), acc, 1e-9);
    char path[512];
    snprintf(path, sizeof path, "%s/d.bin", tq_cli_dir);
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
    FILE *img = fopen(strcat(strcpy(path, tq_cli_dir), "/t10k-images-idx3-ubyte"), "rb");
    FILE *lab = fopen(strcat(strcpy(path, tq_cli_dir), "/t10k-labels-idx1-ubyte"), "rb");
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

/* Asserts that checkpoints a and b agree in every section. */
static void assert_same_checkpoint(const char *a, const char *b)
{
    char where[300];
    const char *diff = tq_cli_ckpt_diff(a, b, where, sizeof where);
    ck_assert_msg(diff == NULL, "%s and %s differ in section %s", a, b, diff);
}

/* Two epochs in one go and one epoch plus a resumed one end with the same bits; resumed from
 * a copy with one optimizer value changed, they do not. (A model with batch norm, schedules
 * and a resume in the middle of an epoch: test_resume.c.) */
START_TEST(test_resume_is_bit_exact)
{
    ck_assert_int_eq(RUN("$TQ train --model lenet5 --data mnist:. --epochs 2 --seed 5 --quiet --out a.tqc"), 0);
    ck_assert_int_eq(RUN("$TQ train --model lenet5 --data mnist:. --epochs 1 --seed 5 --quiet --out b.tqc"), 0);
    tq_cli_ckpt_perturb("b.tqc", "p.tqc", "optim.state", 100, 1e-4f);
    ck_assert_int_eq(RUN("$TQ train --resume b.tqc --epochs 2 --quiet --out c.tqc"), 0);
    assert_same_checkpoint("a.tqc", "c.tqc");
    ck_assert_int_gt(tq_cli_f32_count("c.tqc", "optim.state"), 0);
    ck_assert_int_eq(RUN("$TQ train --resume p.tqc --epochs 2 --quiet --out p.tqc"), 0);
    ck_assert(!tq_cli_same_f32("a.tqc", "p.tqc", "model.params"));
    ck_assert(!tq_cli_same_f32("a.tqc", "p.tqc", "optim.state"));
}
END_TEST

/* SIGINT finishes the step, saves, says how to resume; the resumed run ends with the same
 * bits as one never interrupted, its optimizer state included. The signal is sent in the
 * middle of an epoch, and tried again until it lands there (tq_cli_interrupt_mid_epoch). */
START_TEST(test_sigint_saves_and_resumes_exactly)
{
    const char *args = "--model mlp --data mnist:. --epochs 3 --batch 16 --seed 7 --threads 1 --quiet";
    ck_assert_int_eq(RUN("$TQ train %s --out full.tqc", args), 0);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "$TQ train %s --out cut.tqc", args);
    long long epoch, batch;
    tq_cli_interrupt_mid_epoch(out, sizeof out, "cut.tqc", cmd, &epoch, &batch);
    ck_assert_msg(epoch >= 1 && epoch < 3 && batch > 0 && batch < 75, "epoch %lld, batch %lld", epoch, batch);
    char want[128];
    snprintf(want, sizeof want, "interrupted after epoch %lld, batch %lld; saved cut.tqc\n", epoch, batch);
    ck_assert_ptr_nonnull(strstr(out, want));
    ck_assert_ptr_nonnull(strstr(out, "continue with: tinyqat train --resume cut.tqc --epochs 3 --out cut.tqc\n"));
    ck_assert_int_eq(RUN("$TQ train --resume cut.tqc --epochs 3 --threads 1 --quiet --out cut.tqc"), 0);
    assert_same_checkpoint("full.tqc", "cut.tqc");
    ck_assert_int_gt(tq_cli_f32_count("cut.tqc", "optim.state"), 0);
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
            RUN("rm -f k.tqc; timeout -s KILL %.3f %s", after, train);
        } else {
            RUN("rm -f k.tqc; %s & pid=$!; "
                "while [ ! -e k.tqc ] && kill -0 $pid 2>/dev/null; do sleep 0.02; done; "
                "sleep %.3f; kill -KILL $pid; wait $pid; echo \"status $?\"", train, after);
            ck_assert_msg(strstr(out, "status 137"), "the run was not killed %.3f s after its "
                          "first checkpoint: %s", after, out);
            ck_assert(tq_cli_file_exists("k.tqc"));
        }
        if (!tq_cli_file_exists("k.tqc")) continue;
        int rc = RUN("$TQ info k.tqc");
        ck_assert_msg(rc == 0, "after SIGKILL %.3f s %s the checkpoint does not load: %s", after,
                      early ? "from the start" : "after the first save", out);
    }
}
END_TEST

/* The heart of the tool: at two bits PTQ loses accuracy and QAT wins it back. */
START_TEST(test_ptq_then_qat_at_two_bits_raises_accuracy)
{
    ck_assert_int_eq(RUN("$TQ train --model mlp --data mnist:hard --epochs 2 --quiet --out f.tqc"), 0);
    double float_acc = tq_cli_accuracy(out);
    ck_assert_int_eq(RUN("$TQ ptq --model-file f.tqc --weights int2:channel=0 --acts int2 --keep none "
                         "--calib max --out p.tqc"), 0);
    double ptq_acc = tq_cli_accuracy(out);
    ck_assert_ptr_nonnull(strstr(out, "uint2 (calibration saw no negative values)"));
    ck_assert_int_eq(RUN("$TQ qat --model-file p.tqc --epochs 4 --lr 3e-4 --quiet --out q.tqc"), 0);
    double qat_acc = tq_cli_accuracy(out);
    ck_assert_msg(ptq_acc < float_acc - 0.02, "PTQ %.4f vs float %.4f", ptq_acc, float_acc);
    ck_assert_msg(qat_acc > ptq_acc + 0.02, "QAT %.4f did not beat PTQ %.4f", qat_acc, ptq_acc);
    /* the quantized checkpoint reproduces its accuracy */
    ck_assert_int_eq(RUN("$TQ eval --model-file q.tqc"), 0);
    TQ_ASSERT_NEAR(tq_cli_accuracy(out), qat_acc, 1e-9);
}
END_TEST

/* Without --lr, QAT starts at 1% of the rate the float model was trained with; with it, at --lr. */
START_TEST(test_qat_default_lr_is_a_hundredth_of_the_float_rate)
{
    ck_assert_int_eq(RUN("$TQ train --model mlp --data mnist:. --epochs 1 --lr 0.004 --quiet --out f4.tqc"), 0);
    ck_assert_int_eq(RUN("$TQ ptq --model-file f4.tqc --recipe w4a8 --calib-batches 2 --quiet --out p4.tqc"), 0);
    ck_assert_int_eq(RUN("$TQ qat --model-file p4.tqc --epochs 1 --out q4.tqc"), 0);
    ck_assert_msg(strstr(out, "adam from lr 4e-05"), "%s", out);
    ck_assert_int_eq(RUN("$TQ qat --model-file p4.tqc --epochs 1 --lr 0.003 --optim sgd --out q4.tqc"), 0);
    ck_assert_msg(strstr(out, "sgd from lr 0.003"), "%s", out);
}
END_TEST

static tq_run load_run(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tq_cli_dir, name);
    tq_run run;
    tq_error err = {0};
    ck_assert_msg(tq_run_load(path, &run, &err) == TQ_STATUS_OK, "%s", err.msg);
    return run;
}

static bool same_floats(const float *a, const float *b, int64_t n)
{
    return memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

/* QAT with batch norm unfolded, folded at the end. The same QAT without the fold (same seed:
 * the same training, to the bit) is the reference: each convolution's weights in the folded
 * checkpoint are the reference's times g = gamma / sqrt(running var + eps) per output channel
 * (eps = 1e-5, as in PyTorch), and its bias (the batch norm's beta, which a convolution
 * without bias takes over) is beta - mean g; each weight amax is taken afresh (int8 weights:
 * the channel's abs max); the rest is untouched. The folded checkpoint reproduces the
 * accuracy reported after folding. */
START_TEST(test_qat_folds_batch_norm_at_the_end)
{
    tq_cli_make_bars("small", "120 3 128 32 14");
    ck_assert_int_eq(RUN("$TQ train --model convnet --data mnist:small --epochs 1 --batch 16 --threads 1 --quiet --out cn.tqc && "
                         "$TQ ptq --model-file cn.tqc --recipe int8 --calib-batches 2 --threads 1 --quiet --out cq.tqc && "
                         "$TQ qat --model-file cq.tqc --epochs 1 --batch 16 --threads 1 --quiet --out cu.tqc"), 0);
    ck_assert_int_eq(RUN("$TQ qat --model-file cq.tqc --epochs 1 --batch 16 --threads 1 --fold-bn-at-end --out cf.tqc"), 0);
    ck_assert_ptr_nonnull(strstr(out, "batch norm folded after QAT"));
    double folded_acc = tq_cli_accuracy(out);
    ck_assert_int_eq(RUN("$TQ eval --model-file cf.tqc --threads 1"), 0);
    TQ_ASSERT_NEAR(tq_cli_accuracy(out), folded_acc, 1e-9);

    tq_run u = load_run("cu.tqc"), f = load_run("cf.tqc");
    int n_folded = 0;
    for (int i = 0; i < tq_model_layer_count(u.model); i++) {
        tq_layer_info bu, bf, conv;
        tq_model_layer(u.model, i, &bu);
        tq_model_layer(f.model, i, &bf);
        if (bu.kind != TQ_LAYER_BATCHNORM) continue;
        ck_assert(!bu.folded && bf.folded);
        ck_assert_float_eq(bu.eps, 1e-5f);
        tq_model_layer(u.model, bu.src, &conv);
        tq_qlayer *qu = tq_model_qlayer(u.model, conv.qlayer), *qf = tq_model_qlayer(f.model, conv.qlayer);
        int32_t channels = bu.shape[0];
        int64_t row = qu->weight->numel / channels;
        /* the same training: the batch norm's own values agree to the bit */
        ck_assert(same_floats(bu.gamma, bf.gamma, channels) && same_floats(bu.running_mean, bf.running_mean, channels) &&
                  same_floats(bu.running_var, bf.running_var, channels));
        ck_assert_ptr_null(qu->bias);
        ck_assert_ptr_eq(qf->bias->data, bf.beta);
        const float *amax = tq_quantizer_amax(qf->weight_q);
        ck_assert_int_eq(tq_quantizer_amax_count(qf->weight_q), channels);
        int64_t moved = 0;
        for (int32_t c = 0; c < channels; c++) {
            double g = bu.gamma[c] / sqrt((double)bu.running_var[c] + 1e-5), wmax = 0;
            /* float32 g and one float32 product (or subtraction): within 3 ulp */
            for (int64_t k = 0; k < row; k++) {
                double want = qu->weight->data[c * row + k] * g, got = qf->weight->data[c * row + k];
                ck_assert_msg(fabs(got - want) <= 3 * 0x1p-24 * fabs(want), "%s[%d,%lld]: %.9g, expected %.9g",
                              qu->name, c, (long long)k, got, want);
                wmax = fmax(wmax, fabs(got));
                moved += got != qu->weight->data[c * row + k];
            }
            double beta = bu.beta[c] - bu.running_mean[c] * g;
            ck_assert_msg(fabs(bf.beta[c] - beta) <= 3 * 0x1p-24 * (fabs(bu.beta[c]) + fabs(bu.running_mean[c] * g)),
                          "%s bias %d: %.9g, expected %.9g", qu->name, c, (double)bf.beta[c], beta);
            ck_assert_float_eq(amax[c], (float)wmax);
        }
        ck_assert_int_gt(moved, row * channels / 2); /* g = 1 would fail above */
        n_folded++;
    }
    ck_assert_int_eq(n_folded, 5);
    /* fc, with no batch norm after it, is as QAT left it */
    tq_qlayer *fu = tq_model_qlayer(u.model, 5), *ff = tq_model_qlayer(f.model, 5);
    ck_assert_str_eq(fu->name, "fc");
    ck_assert(same_floats(fu->weight->data, ff->weight->data, fu->weight->numel));
    ck_assert(same_floats(tq_quantizer_amax(fu->weight_q), tq_quantizer_amax(ff->weight_q), 10));
    tq_run_free(&u);
    tq_run_free(&f);
}
END_TEST

static void read_fixture_file(const char *name, char *buf, size_t cap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tq_cli_dir, name);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s missing", name);
    buf[fread(buf, 1, cap - 1, f)] = '\0';
    fclose(f);
}

/* The value after "key": at or after p (a number; a string's first character for strings). */
static const char *json_field(const char *p, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *f = strstr(p, pat);
    ck_assert_msg(f != NULL, "no %s after: %.80s", key, p);
    return f + strlen(pat) + (f[strlen(pat)] == '"');
}

/* Cell `col` (0-based) of the table row that starts with `lead` ("\nRECIPE," or
 * "\n| RECIPE |") in text, '|' or ',' separated; NULL if there is no such row. */
static const char *table_cell(const char *text, const char *lead, char sep, int col)
{
    const char *row = strstr(text, lead);
    if (!row) return NULL;
    row += sep == '|' ? 2 : 1; /* past the newline, and a Markdown row's opening separator */
    for (int c = 0; c < col; c++) {
        row = strchr(row, sep);
        ck_assert_ptr_nonnull(row);
        row++;
    }
    while (*row == ' ') row++;
    return row;
}

/* compare's JSON says what its tables say: every accuracy, the calibrator and epoch kept, the
 * images gained and lost and McNemar's p; and its float accuracy is what eval measures on
 * the float checkpoint it saved. */
START_TEST(test_compare_writes_table_csv_md_json)
{
    ck_assert_int_eq(RUN("$TQ compare --model mlp --data mnist:. --epochs 1 --recipes int8,w2a2 "
                         "--calibs max,entropy --quiet --out cmp --json cmp.json"), 0);
    ck_assert_ptr_nonnull(strstr(out, "| w2a2 |"));
    ck_assert(tq_cli_file_exists("cmp.csv") && tq_cli_file_exists("cmp.md") && tq_cli_file_exists("cmp-float.tqc"));
    static char json[1 << 14], csv[4096], md[4096], eval_json[4096];
    read_fixture_file("cmp.json", json, sizeof json);
    read_fixture_file("cmp.csv", csv, sizeof csv);
    read_fixture_file("cmp.md", md, sizeof md);
    ck_assert_ptr_null(strstr(json, "ptq-mse"));
    /* compare trained the model with a tenth held out, and chose on it */
    ck_assert_ptr_nonnull(strstr(json, "\"selected_on\": \"validation\""));
    ck_assert_int_eq(atoi(json_field(json, "validation_images")), 120);
    ck_assert_int_eq(atoi(json_field(json, "test_images")), 300);
    ck_assert_int_eq(RUN("$TQ eval --model-file cmp-float.tqc --json e.json --quiet"), 0);
    read_fixture_file("e.json", eval_json, sizeof eval_json);
    double float_acc = atof(json_field(json, "float_accuracy"));
    ck_assert_msg(float_acc == atof(json_field(eval_json, "accuracy")), "compare's float accuracy %.10g, eval's %s",
                  float_acc, json_field(eval_json, "accuracy"));
    /* column of each method in the CSV (recipe,float,ptq-max,ptq-percentile,ptq-mse,
     * ptq-entropy,best ptq,qat,...) and the Markdown table (the same first eight) */
    const char *methods[] = {"float", "ptq-max", "ptq-percentile", "ptq-mse", "ptq-entropy", "", "qat"};
    int rows = 0;
    for (const char *p = strstr(json, "\"recipe\": "); p; p = strstr(p + 1, "\"recipe\": ")) {
        char recipe[32], method[32], lead_csv[40], lead_md[40];
        ck_assert_int_eq(sscanf(json_field(p, "recipe"), "%31[^\"]", recipe), 1);
        ck_assert_int_eq(sscanf(json_field(p, "method"), "%31[^\"]", method), 1);
        double acc = atof(json_field(p, "accuracy"));
        int col = 0;
        while (col < 7 && strcmp(methods[col], method) != 0) col++;
        ck_assert_msg(col < 7, "method %s", method);
        snprintf(lead_csv, sizeof lead_csv, "\n%s,", recipe);
        snprintf(lead_md, sizeof lead_md, "\n| %s |", recipe);
        const char *c = table_cell(csv, lead_csv, ',', col + 1), *m = table_cell(md, lead_md, '|', col + 1);
        ck_assert_msg(c && m, "no row for %s", recipe);
        /* the CSV has 4 decimals, the Markdown table 2 of a percentage */
        ck_assert_msg(fabs(acc - atof(c)) <= 0.5e-4 + 1e-12, "%s %s: JSON %.10g, CSV %.6s", recipe, method, acc, c);
        ck_assert_msg(fabs(100 * acc - atof(m)) <= 0.5e-2 + 1e-9, "%s %s: JSON %.10g, Markdown %.6s", recipe, method, acc, m);
        if (col == 0) ck_assert(acc == float_acc);
        if (col == 6) {
            char from[32], calib[32];
            ck_assert_int_eq(sscanf(json_field(p, "from"), "%31[^\"]", from), 1);
            ck_assert_int_eq(sscanf(table_cell(csv, lead_csv, ',', 9), "%31[^,]", calib), 1);
            ck_assert_str_eq(from, calib);
            ck_assert_int_eq(atoi(json_field(p, "epoch")), atoi(table_cell(csv, lead_csv, ',', 10)));
            long long gained = atoll(json_field(p, "gained")), lost = atoll(json_field(p, "lost"));
            ck_assert_int_eq(gained, atoll(table_cell(csv, lead_csv, ',', 12)));
            ck_assert_int_eq(lost, atoll(table_cell(csv, lead_csv, ',', 13)));
            double pv = atof(json_field(p, "p_value"));
            ck_assert(pv == tq_mcnemar_p(gained, lost));
            ck_assert_msg(fabs(pv - atof(table_cell(csv, lead_csv, ',', 14))) <= 5e-4 * pv, "p %g", pv);
            ck_assert(atof(json_field(p, "validation_p")) >= 0 && atof(json_field(p, "validation_p")) <= 1);
        }
        rows++;
    }
    ck_assert_int_eq(rows, 2 * 4); /* float, two calibrators and qat for each recipe */
    /* ptq and qat keep the held-out images out, and qat reports its accuracy on them */
    ck_assert_int_eq(RUN("$TQ ptq --model-file cmp-float.tqc --recipe w4a8 --calib-batches 2 --quiet --out cq.tqc"), 0);
    ck_assert_int_eq(RUN("$TQ qat --model-file cq.tqc --epochs 2 --out cqq.tqc"), 0);
    ck_assert_ptr_nonnull(strstr(out, "val acc"));
    /* it ends with the epoch best on them, the PTQ start (epoch 0, printed first) included,
     * and the checkpoint holds that epoch */
    double val_acc[3];
    const char *e0 = strstr(out, "epoch 0/2 (the PTQ start)  val acc ");
    ck_assert_msg(e0 && sscanf(e0, "epoch 0/2 (the PTQ start)  val acc %lf", &val_acc[0]) == 1, "%s", out);
    for (int e = 1; e <= 2; e++) {
        char head[32];
        snprintf(head, sizeof head, "epoch %d/2 ", e);
        const char *line = strstr(out, head), *v = line ? strstr(line, "val acc ") : NULL;
        ck_assert_msg(v && sscanf(v, "val acc %lf", &val_acc[e]) == 1, "%s", out);
    }
    int kept = -1, argmax = 0;
    double kept_acc = -1;
    for (int e = 1; e <= 2; e++) if (val_acc[e] > val_acc[argmax]) argmax = e;
    const char *k = strstr(out, "kept epoch ");
    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(sscanf(k, "kept epoch %d: validation accuracy %lf", &kept, &kept_acc), 2);
    ck_assert_int_eq(kept, argmax);
    TQ_ASSERT_NEAR(kept_acc, val_acc[argmax], 1e-9);
    double qat_acc = tq_cli_accuracy(out);
    ck_assert_int_eq(RUN("$TQ eval --model-file cqq.tqc"), 0);
    TQ_ASSERT_NEAR(tq_cli_accuracy(out), qat_acc, 1e-9);
    ck_assert_int_eq(RUN("$TQ qat --model-file cq.tqc --epochs 1 --keep-last --seed 9 --out cql.tqc"), 0);
    ck_assert_ptr_null(strstr(out, "kept epoch"));
    /* QAT's own seed leaves the split as the float model drew it */
    ck_assert_int_eq(RUN("$TQ info cql.tqc"), 0);
    ck_assert_ptr_nonnull(strstr(out, "validation split: 0.1 of the training set held out (seed 1)"));
    /* sensitivity measures on the held-out images and reports the proposal on the test set */
    ck_assert_int_eq(RUN("$TQ sensitivity --model-file cmp-float.tqc --recipe w2a2 "
                                          "--calib-batches 2 --target-drop 100 --out mix.recipe"), 0);
    ck_assert_ptr_nonnull(strstr(out, "on held-out training images"));
    ck_assert_ptr_nonnull(strstr(out, "on the test set: mix.recipe"));
    ck_assert(tq_cli_file_exists("mix.recipe"));
    ck_assert_int_eq(RUN("$TQ compare --model-file cmp-float.tqc --val 0.2 --quiet"), 2);
    ck_assert_ptr_nonnull(strstr(out, "--val: only when compare trains the float model"));
    ck_assert_int_eq(RUN("$TQ compare --model-file cmp-float.tqc --keep-p 2 --quiet"), 2);
    ck_assert_ptr_nonnull(strstr(out, "--keep-p"));
    ck_assert_int_eq(RUN("$TQ compare --model-file cmp-float.tqc --qat-lr 1e-3,abc --quiet"), 2);
    ck_assert_ptr_nonnull(strstr(out, "got 'abc'"));
    /* a model trained on the whole training set: the test set chooses, and compare says so */
    ck_assert_int_eq(RUN("$TQ train --model mlp --data mnist:. --epochs 1 --quiet --out all.tqc"), 0);
    ck_assert_int_eq(RUN("$TQ compare --model-file all.tqc --recipes w4a8 --calibs max "
                                          "--out cmp2 --json cmp2.json"), 0);
    ck_assert_ptr_nonnull(strstr(out, "no validation split"));
    ck_assert_ptr_nonnull(strstr(out, "(ep 1)"));
    ck_assert_int_eq(RUN("$TQ compare --model-file all.tqc --qat-lr 1e-3,1e-4 --out cmp3"), 2);
    ck_assert_ptr_nonnull(strstr(out, "several rates need a validation split"));
}
END_TEST

START_TEST(test_grid_and_fq)
{
    ck_assert_int_eq(RUN("$TQ grid e2m1"), 0);
    ck_assert_int_eq(tq_cli_count_lines(out), 1 + 16); /* header, then +-0, +-0.5 ... +-6 */
    ck_assert_ptr_nonnull(strstr(out, " 6\n"));
    /* int8, amax 1: scale 1/127; 0.5*127 = 63.5 rounds to even 64 */
    ck_assert_int_eq(RUN("$TQ fq --spec int8 --amax 1 0.5 -2 0.001"), 0);
    float a, b, c;
    ck_assert_int_eq(sscanf(out, "%f %f %f", &a, &b, &c), 3);
    ck_assert_float_eq(a, 64.0f * (1.0f / 127.0f));
    ck_assert_float_eq(b, -128.0f * (1.0f / 127.0f));
    ck_assert_float_eq(c, 0.0f);
    ck_assert_int_eq(RUN("$TQ fq --spec e4m3 --amax 448 < /dev/null"), 0);
    ck_assert_int_eq(RUN("$TQ fq --spec int8 --amax 1 abc"), 1);
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, tq_cli_teardown);
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
