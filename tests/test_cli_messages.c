/* End-to-end tests of the messages `tinyqat` gives a hurried user: a --resume of another
 * model, outputs named by their kind, a model meeting data of another shape, --help in the
 * order it announces, and `fq` on many values and on block formats with their scales. */
#include <math.h>
#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tq_cli_test.h"
#include "tq_test.h"

static char out[1 << 16];

#define RUN(...) tq_cli_run(out, sizeof out, __VA_ARGS__)
/* The output is one line: "tinyqat CMD: want". */
#define EXPECT_ONE_LINE(cmd_name, want)                                                        \
    do {                                                                                       \
        char line_[1024];                                                                      \
        snprintf(line_, sizeof line_, "tinyqat %s: %s\n", (cmd_name), (want));                 \
        ck_assert_msg(strcmp(out, line_) == 0, "expected '%s', got '%s'", line_, out);         \
    } while (0)

/* An mlp trained on the fixture's bars (1x28x28, 10 classes) in m.tqc. */
static void train_mlp(void)
{
    ck_assert_int_eq(RUN("$TQ train --model mlp --data mnist:. --epochs 1 --quiet --out m.tqc"), 0);
}

START_TEST(test_resume_names_the_checkpoints_model)
{
    train_mlp();
    ck_assert_int_eq(RUN("$TQ train --model lenet5 --data mnist:. --epochs 2 --resume m.tqc "
                         "--out z.tqc"), 2);
    ck_assert_msg(strstr(out, "tinyqat train: --model lenet5 does not match m.tqc, a checkpoint "
                              "of model mlp (resuming needs no --model)\n"), "%s", out);
    ck_assert_ptr_null(strstr(out, "(null)"));
    ck_assert(!tq_cli_file_exists("z.tqc"));
    /* and the same model resumes */
    ck_assert_int_eq(RUN("$TQ train --model mlp --epochs 2 --resume m.tqc --quiet --out z.tqc"), 0);
}
END_TEST

/* The data spec a checkpoint records is kept whole (it was cut at 63 characters, and a later
 * command without --data looked for a folder that does not exist). */
START_TEST(test_long_data_paths_are_recorded_whole)
{
    const char *sub = "a_folder_whose_name_alone_is_longer_than_the_sixty_three_characters_once_kept";
    ck_assert_int_eq(RUN("mkdir %s && cp *-ubyte %s/ && $TQ train --model mlp --data mnist:$PWD/%s "
                         "--epochs 1 --quiet --out m.tqc", sub, sub, sub), 0);
    ck_assert_msg(RUN("$TQ eval --model-file m.tqc --quiet") == 0, "%s", out);
    ck_assert_int_eq(RUN("$TQ info m.tqc"), 0);
    ck_assert_ptr_nonnull(strstr(out, sub));
}
END_TEST

/* Each output refused before any work, named by what it is. */
START_TEST(test_outputs_are_named_by_their_kind)
{
    train_mlp();
    ck_assert_int_eq(RUN("mkdir sub c2.md c3-float.tqc && $TQ ptq --model-file m.tqc --recipe "
                         "int8 --calib-batches 2 --quiet --out p.tqc"), 0);
    const struct {
        const char *args, *cmd, *msg;
    } cases[] = {
        {"eval --model-file m.tqc --json sub", "eval",
         "JSON output sub: is a directory (expected a file path)"},
        {"train --model mlp --data mnist:. --out sub", "train",
         "checkpoint sub: is a directory (expected a file path)"},
        {"train --model mlp --data mnist:. --out t.tqc --json nodir/t.json", "train",
         "JSON output nodir/t.json: cannot create files in nodir: No such file or directory"},
        {"ptq --model-file m.tqc --recipe int8 --out p2.tqc --json sub", "ptq",
         "JSON output sub: is a directory (expected a file path)"},
        {"ptq --model-file m.tqc --recipe int8 --out nodir/p.tqc", "ptq",
         "checkpoint nodir/p.tqc: cannot create files in nodir: No such file or directory"},
        {"qat --model-file p.tqc --out q.tqc --json sub", "qat",
         "JSON output sub: is a directory (expected a file path)"},
        {"compare --model-file m.tqc --out nodir/c", "compare",
         "CSV table nodir/c.csv: cannot create files in nodir: No such file or directory"},
        {"compare --model-file m.tqc --out c2", "compare",
         "Markdown table c2.md: is a directory (expected a file path)"},
        {"compare --model mlp --data mnist:. --out c3", "compare",
         "checkpoint c3-float.tqc: is a directory (expected a file path)"},
        {"compare --model-file m.tqc --out c --json sub", "compare",
         "JSON output sub: is a directory (expected a file path)"},
        {"sensitivity --model-file m.tqc --recipe w4a4 --target-drop 1 --out sub", "sensitivity",
         "recipe file sub: is a directory (expected a file path)"},
        {"ptq --model-file m.tqc --recipe int8 --out p2.tqc --report m.tqc", "ptq",
         "report folder m.tqc: exists and is not a folder"},
        {"qat --model-file p.tqc --out q.tqc --report nodir/r", "qat",
         "report folder nodir/r: cannot create it: No such file or directory"},
        {"compare --model-file m.tqc --out c --report m.tqc", "compare",
         "report folder m.tqc: exists and is not a folder"},
        {"sensitivity --model-file m.tqc --recipe w4a4 --report m.tqc", "sensitivity",
         "report folder m.tqc: exists and is not a folder"},
        {"report nothere.json", "report", "nothere.json: cannot open: No such file or directory"},
        {"report m.tqc", "report", "m.tqc: line 1: expected a value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ck_assert_msg(RUN("$TQ %s", cases[i].args) == 1, "%s: %s", cases[i].args, out);
        EXPECT_ONE_LINE(cases[i].cmd, cases[i].msg);
    }
    ck_assert(!tq_cli_file_exists("t.tqc") && !tq_cli_file_exists("p2.tqc") &&
              !tq_cli_file_exists("q.tqc") && !tq_cli_file_exists("c.csv"));
}
END_TEST

/* CIFAR-10's binary layout in DIR: data_batch_1..5.bin of 20 random records each. */
static void write_cifar(const char *dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", tq_cli_dir, dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    tq_rng rng;
    tq_rng_seed(&rng, 3);
    for (int b = 1; b <= 5; b++) {
        snprintf(path, sizeof path, "%s/%s/data_batch_%d.bin", tq_cli_dir, dir, b);
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        for (int r = 0; r < 20; r++) {
            fputc(r % 10, f);
            for (int k = 0; k < 3072; k++) fputc((int)tq_rng_below(&rng, 256), f);
        }
        ck_assert_int_eq(fclose(f), 0);
    }
}

/* A grey side x side PNG of random pixels. */
static void write_grey_png(const char *path, int side, tq_rng *rng)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert_int_eq(setjmp(png_jmpbuf(png)), 0);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)side, (png_uint_32)side, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    uint8_t row[64];
    for (int y = 0; y < side; y++) {
        for (int x = 0; x < side; x++) row[x] = (uint8_t)tq_rng_below(rng, 256);
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    ck_assert_int_eq(fclose(f), 0);
}

/* Every command that pairs a checkpoint with --data checks the shapes before anything else. */
START_TEST(test_model_and_data_shapes_are_checked_first)
{
    train_mlp();
    ck_assert_int_eq(RUN("$TQ ptq --model-file m.tqc --recipe int8 --calib-batches 2 --quiet "
                         "--out p.tqc"), 0);
    write_cifar("cif");
    const char *want = "data cifar10:cif has 3x32x32 images in 10 classes, but the model (mlp, "
                       "trained on mnist:.) takes 1x28x28 inputs in 10 classes";
    const struct {
        const char *args, *cmd;
    } cases[] = {
        {"eval --model-file m.tqc", "eval"},
        {"ptq --model-file m.tqc --recipe int8 --out p2.tqc", "ptq"},
        {"qat --model-file p.tqc --out q.tqc", "qat"},
        {"compare --model-file m.tqc --out c", "compare"},
        {"sensitivity --model-file m.tqc --recipe w4a4", "sensitivity"},
        {"train --resume m.tqc --epochs 2 --out z.tqc", "train"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ck_assert_msg(RUN("$TQ %s --data cifar10:cif", cases[i].args) == 1, "%s: %s",
                      cases[i].args, out);
        EXPECT_ONE_LINE(cases[i].cmd, want);
    }
    ck_assert(!tq_cli_file_exists("p2.tqc") && !tq_cli_file_exists("q.tqc") &&
              !tq_cli_file_exists("z.tqc") && !tq_cli_file_exists("c.csv"));
    /* the same image shape in another number of classes */
    tq_rng rng;
    tq_rng_seed(&rng, 5);
    const char *classes[] = {"a", "b", "c"};
    for (int c = 0; c < 3; c++) {
        char path[600];
        snprintf(path, sizeof path, "%s/png3/%s", tq_cli_dir, classes[c]);
        ck_assert_int_eq(RUN("mkdir -p png3/%s", classes[c]), 0);
        for (int i = 0; i < 2; i++) {
            snprintf(path, sizeof path, "%s/png3/%s/%d.png", tq_cli_dir, classes[c], i);
            write_grey_png(path, 28, &rng);
        }
    }
    ck_assert_int_eq(RUN("$TQ eval --model-file m.tqc --data pngdir:png3"), 1);
    EXPECT_ONE_LINE("eval", "data pngdir:png3 has 1x28x28 images in 3 classes, but the model "
                               "(mlp, trained on mnist:.) takes 1x28x28 inputs in 10 classes");
}
END_TEST

/* compare's lists are refused whole rather than cut short, as fq's values once were. */
START_TEST(test_compare_lists_are_not_cut_short)
{
    char list[1024] = "int8";
    for (int i = 0; i < 16; i++) strcat(list, ",int8");
    ck_assert_int_eq(RUN("$TQ compare --recipes %s", list), 2);
    ck_assert_ptr_nonnull(strstr(out, "tinyqat compare: --recipes: more than 16 items\n"));
    ck_assert_int_eq(RUN("$TQ compare --qat-lr %s", strchr(list, ',') + 1), 2); /* 16 is fine */
    ck_assert_ptr_nonnull(strstr(out, "--qat-lr: expected positive rates separated by commas, "
                                      "got 'int8'"));
    memset(list, 'x', 600);
    list[600] = '\0';
    ck_assert_int_eq(RUN("$TQ compare --calibs %s", list), 2);
    ck_assert_ptr_nonnull(strstr(out, "tinyqat compare: --calibs: longer than 511 characters\n"));
}
END_TEST

/* No heading of a --help is empty, and ptq lists its recipes after the options, as it says. */
START_TEST(test_help_prints_in_the_order_it_announces)
{
    const char *cmds[] = {"", "train", "eval", "ptq", "qat", "compare", "sensitivity", "info",
                          "grid", "fq", "report"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        ck_assert_int_eq(RUN("$TQ %s --help", cmds[i]), 0);
        /* a heading ("options:") starts at column 0, ends with ':', and rows follow it */
        for (const char *line = out; *line; line = strchr(line, '\n') + 1) {
            const char *end = strchr(line, '\n');
            ck_assert_ptr_nonnull(end);
            if (line[0] != ' ' && end > line && end[-1] == ':')
                ck_assert_msg(strncmp(end + 1, "  ", 2) == 0, "tinyqat %s --help: heading "
                              "'%.*s' has no rows under it", cmds[i], (int)(end - line), line);
        }
    }
    ck_assert_int_eq(RUN("$TQ ptq --help"), 0);
    const char *options = strstr(out, "\noptions:\n"), *help = strstr(out, "  --help");
    const char *recipes = strstr(out, "\nrecipes (--recipe NAME):\n  int8 ");
    ck_assert_msg(options && help && recipes && options < help && help < recipes, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "The recipes are listed after the options."));
    ck_assert_ptr_nonnull(strstr(recipes, "\n  nvfp4 "));
}
END_TEST

/* Each line of out, from the first, parsed as a float into v (at most cap). */
static int parse_lines(const char *s, float *v, int cap)
{
    int n = 0;
    for (char *end; *s && n < cap; s = end + (*end == '\n')) {
        v[n++] = strtof(s, &end);
        ck_assert_msg(end != s && (*end == '\n' || !*end), "not a number: %.40s", s);
    }
    return n;
}

/* More values than the 16 the command line once held, and from standard input. */
START_TEST(test_fq_takes_any_number_of_values)
{
    char args[1024] = "";
    for (int i = 1; i <= 40; i++)
        snprintf(args + strlen(args), sizeof args - strlen(args), " %d", i - 20);
    const float s = 20.0f / 127.0f; /* int8, amax 20 */
    float v[64];
    for (int from_stdin = 0; from_stdin < 2; from_stdin++) {
        if (from_stdin) ck_assert_int_eq(RUN("seq -19 20 | $TQ fq --spec int8 --amax 20"), 0);
        else ck_assert_int_eq(RUN("$TQ fq --spec int8 --amax 20 %s", args), 0);
        ck_assert_int_eq(parse_lines(out, v, 64), 40);
        for (int i = 0; i < 40; i++) {
            float x = (float)(i - 19), code = rintf(x / s);
            ck_assert_msg(v[i] == code * s, "%g: got %.9g, expected %.9g", (double)x,
                          (double)v[i], (double)(code * s));
        }
    }
    ck_assert_int_eq(RUN("$TQ fq --spec int8 --amax 1 --show-scales 0.5"), 0);
    char want[128];
    snprintf(want, sizeof want, "# scale %.9g = amax 1 / 127\n%.9g\n", (double)(1.0f / 127.0f),
             (double)(64.0f * (1.0f / 127.0f))); /* 63.5 rounds to even */
    ck_assert_str_eq(out, want);
}
END_TEST

/* out from the first line on must be exactly want. */
#define EXPECT_OUT(want) ck_assert_msg(strcmp(out, (want)) == 0, "expected:\n%s\ngot:\n%s", (want), out)

START_TEST(test_fq_prints_block_formats_with_their_scales)
{
    char want[4096], *w;
    /* MXFP4: blocks of 32, scale 2^(floor(log2 amax) - 2) (e2m1's largest exponent is 2).
     * Block 1, amax 3: 2^-1; 0.3/0.5 = 0.6 -> 0.5, -1.1/0.5 = -2.2 -> -2, 1.3/0.5 = 2.6 -> 3.
     * Block 2, amax 0.1: floor(log2 0.1) = -4, 2^-6; 0.1 * 64 = 6.4 -> 6. */
    ck_assert_int_eq(RUN("$TQ fq --spec mxfp4 3 0.3 -1.1 1.3 0.75 $(yes 0 | head -27) 0.1"), 0);
    w = want + sprintf(want, "# block 1 (values 1-32): amax 3, E8M0 exponent -1 (byte 0x7e), "
                             "scale 2^-1 = 0.5\n3\n0.25\n-1\n1.5\n0.75\n");
    for (int i = 0; i < 27; i++) w += sprintf(w, "0\n");
    sprintf(w, "# block 2 (values 33-33): amax %.9g, E8M0 exponent -6 (byte 0x79), scale 2^-6 = "
               "0.015625\n0.09375\n", (double)0.1f);
    EXPECT_OUT(want);

    /* NVFP4: global scale = 30 / (448 * 6), the largest block's amax; block 1 (amax 30) has
     * E4M3 scale 448 (0x7e), step 448 * global = 5: 30, 10, -7, 2.2 -> 6, 2, -1.5, 0.5 steps.
     * Block 2 (amax 1.3): 1.3 / 6 / global = 19.4 -> 20 on E4M3's grid (0x5a); 1.3 / (20 *
     * global) = 5.8 -> 6. */
    ck_assert_int_eq(RUN("$TQ fq --spec nvfp4 30 10 -7 2.2 $(yes 0 | head -12) 1.3"), 0);
    const float g = 30.0f / 2688.0f, s1 = 448.0f * g, s2 = 20.0f * g;
    w = want + sprintf(want, "# global scale %.9g = amax 30 / (448 x 6), float32 (amax: the "
                             "largest block's)\n", (double)g);
    w += sprintf(w, "# block 1 (values 1-16): amax 30, E4M3 block scale 448 (byte 0x7e), scale "
                    "448 x global = %.9g\n%.9g\n%.9g\n%.9g\n%.9g\n", (double)s1, (double)(6 * s1),
                 (double)(2 * s1), (double)(-1.5f * s1), (double)(0.5f * s1));
    for (int i = 0; i < 12; i++) w += sprintf(w, "0\n");
    sprintf(w, "# block 2 (values 17-17): amax %.9g, E4M3 block scale 20 (byte 0x5a), scale 20 "
               "x global = %.9g\n%.9g\n", (double)1.3f, (double)s2, (double)(6 * s2));
    EXPECT_OUT(want);

    /* int4 in blocks of 4, each block's amax clipped to 1.5: scales 0.7/7 and 1.5/7;
     * -0.35/0.1 = -3.5 rounds to even (-4), 2/(1.5/7) = 9.3 saturates at 7. */
    ck_assert_int_eq(RUN("$TQ fq --spec int4:block=4 --amax 1.5 0.7 -0.35 0.1 0 2 1"), 0);
    const float a = 0.7f / 7.0f, b = 1.5f / 7.0f;
    sprintf(want, "# block 1 (values 1-4): amax %.9g, scale %.9g = amax / 7\n%.9g\n%.9g\n%.9g\n0\n"
                  "# block 2 (values 5-6): amax 1.5, scale %.9g = amax / 7\n%.9g\n%.9g\n",
            (double)0.7f, (double)a, (double)(7 * a), (double)(-4 * a), (double)(1 * a),
            (double)b, (double)(7 * b), (double)(5 * b));
    EXPECT_OUT(want);

    /* MXINT8: int8 codes are 1.6 fixed point: amax 1 -> exponent 0, step 2^-6; 0.3*64 -> 19 */
    ck_assert_int_eq(RUN("$TQ fq --spec mxint8 1 -0.5 0.3"), 0);
    EXPECT_OUT("# block 1 (values 1-3): amax 1, E8M0 exponent 0 (byte 0x7f), scale 2^0 x 2^-6 = "
               "0.015625\n1\n-0.5\n0.296875\n");
    ck_assert_int_eq(RUN("printf '0\\n\\n0\\n' | $TQ fq --spec mxfp8"), 0);
    EXPECT_OUT("# block 1 (values 1-2): amax 0, scale 0: every value 0\n0\n0\n");

    ck_assert_int_eq(RUN("$TQ fq --spec mxfp4 1 inf"), 1);
    EXPECT_ONE_LINE("fq", "value 2 is inf: give --amax to clip its block's amax");
    ck_assert_int_eq(RUN("$TQ fq --spec mxfp4 1 x"), 1);
    EXPECT_ONE_LINE("fq", "'x' is not a number");
    ck_assert_int_eq(RUN("printf '1\\n2 x\\r\\n' | $TQ fq --spec int8 --amax 1"), 1);
    ck_assert_msg(strstr(out, "tinyqat fq: '2 x' is not a number\n") && tq_cli_count_lines(out) == 2,
                  "%s", out); /* and "1" for the first line */
    ck_assert_int_eq(RUN("$TQ fq --spec int8:channel=0 --amax 1 1"), 2);
    ck_assert_ptr_nonnull(strstr(out, "tinyqat fq: --spec: fq takes a per-tensor or block spec, "
                                      "not per-channel (that needs one amax per channel)\n"));
    ck_assert_int_eq(RUN("$TQ fq --spec int8 1"), 2);
    ck_assert_ptr_nonnull(strstr(out, "tinyqat fq: --amax is required for a per-tensor spec\n"));
}
END_TEST

/* --codes: each value's code (value = code x scale) and the code's bits, by hand. */
START_TEST(test_fq_prints_codes)
{
    /* int4, amax 2: scale 2/7; 0.3/s = 1.05 -> 1, 0.9/s = 3.15 -> 3, -7/s = -24.5 saturates
     * at -8 (two's complement 1000). */
    ck_assert_int_eq(RUN("$TQ fq --spec int4 --amax 2 --codes 0.3 0.9 -7"), 0);
    const float s = 2.0f / 7.0f;
    char want[512];
    snprintf(want, sizeof want, "%.9g  1  0x01 0001\n%.9g  3  0x03 0011\n%.9g  -8  0x08 1000\n",
             (double)s, (double)(3 * s), (double)(-8 * s));
    EXPECT_OUT(want);
    /* e4m3 at scale 1 (amax 448): 0.3 = 1.2 x 2^-2 lies between 1.25 x 2^-2 and 1.125 x
     * 2^-2, nearer the first: sign 0, exponent -2 + 7 = 0101, mantissa 010; -300 lies
     * between 288 and 320 (steps of 32 in [256, 512)), nearer 288: 1 1111 001. */
    ck_assert_int_eq(RUN("$TQ fq --spec e4m3 --amax 448 --codes 0.3 -300"), 0);
    EXPECT_OUT("0.3125  0.3125  0x2a 00101010\n-288  -288  0xf9 11111001\n");
    /* blocks: the codes under each block's scale (0.7/7 and 2/7); -3.5 rounds to even */
    ck_assert_int_eq(RUN("$TQ fq --spec int4:block=2 --codes 0.7 -0.35 2 1"), 0);
    snprintf(want, sizeof want, "# block 1 (values 1-2): amax %.9g, scale %.9g = amax / 7\n"
                                "%.9g  7  0x07 0111\n%.9g  -4  0x0c 1100\n"
                                "# block 2 (values 3-4): amax 2, scale %.9g = amax / 7\n"
                                "2  7  0x07 0111\n%.9g  3  0x03 0011\n",
             (double)0.7f, (double)(0.7f / 7.0f), (double)(7 * (0.7f / 7.0f)),
             (double)(-4 * (0.7f / 7.0f)), (double)s, (double)(3 * s));
    EXPECT_OUT(want);
}
END_TEST

/* Every command once through, printing all it prints (no --quiet) without the optional
 * outputs (no --json): no "(null)", and in the sanitizer build, where a NULL given to %s
 * aborts, no NULL. */
START_TEST(test_every_command_prints_no_null)
{
    const char *cmds[] = {
        "train --model mlp --data mnist:. --epochs 1 --val 0.1 --out m.tqc",
        "train --resume m.tqc --epochs 2 --out m2.tqc",
        "eval --model-file m.tqc",
        "ptq --model-file m.tqc --recipe w4a8 --calib-batches 2 --out p.tqc",
        "qat --model-file p.tqc --epochs 1 --out q.tqc",
        "compare --model-file m.tqc --recipes int8 --calibs max --calib-batches 2 --qat-lr 1e-4",
        "sensitivity --model-file m.tqc --recipe w4a4 --calib-batches 2 --target-drop 100",
        "info q.tqc",
        "grid e2m1",
        "fq --spec nvfp4 --show-scales 1 2 3",
    };
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        ck_assert_msg(RUN("$TQ %s", cmds[i]) == 0, "tinyqat %s: %s", cmds[i], out);
        ck_assert_msg(!strstr(out, "(null)"), "tinyqat %s: %s", cmds[i], out);
    }
}
END_TEST

#ifdef __GLIBC__
/* The test programs (and the sanitizer build of the command) abort on a NULL given to %s
 * (tests/helpers/strict_printf.c), where glibc alone prints "(null)". */
START_TEST(test_null_string_aborts)
{
    ck_assert_ptr_nonnull(freopen("/dev/null", "w", stderr)); /* the expected complaint */
    char buf[32];
    const char *volatile missing = NULL;
    snprintf(buf, sizeof buf, "model %s", missing);
}
END_TEST
#endif

static Suite *messages_suite(void)
{
    Suite *s = suite_create("cli_messages");
    TCase *tc = tcase_create("messages");
    tcase_add_checked_fixture(tc, tq_cli_setup, tq_cli_teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_resume_names_the_checkpoints_model);
    tcase_add_test(tc, test_long_data_paths_are_recorded_whole);
    tcase_add_test(tc, test_outputs_are_named_by_their_kind);
    tcase_add_test(tc, test_model_and_data_shapes_are_checked_first);
    tcase_add_test(tc, test_compare_lists_are_not_cut_short);
    tcase_add_test(tc, test_help_prints_in_the_order_it_announces);
    tcase_add_test(tc, test_fq_takes_any_number_of_values);
    tcase_add_test(tc, test_fq_prints_block_formats_with_their_scales);
    tcase_add_test(tc, test_fq_prints_codes);
    tcase_add_test(tc, test_every_command_prints_no_null);
#ifdef __GLIBC__
    tcase_add_test_raise_signal(tc, test_null_string_aborts, SIGABRT);
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tq_test_run(messages_suite()); }
