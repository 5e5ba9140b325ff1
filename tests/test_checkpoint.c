/* Check suite for the checkpoint container: round trips, every kind of damage (flipped
 * bytes, truncation, wrong magic, future version), sections by position, atomic replacement
 * and its failures; a run checkpoint whose input shape disagrees with its parameter count,
 * and one that carries QAT's best epoch so far. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "checkpoint.h"
#include "tq_test.h"
#include "train.h"

static char dir[512];
static char path[600];

static void make_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/tq_ckpt_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.ckpt", dir);
}

/* Removes every file in the fixture directory, then the directory: also proves that no
 * temporary file was left behind when expected_files says how many there should be. */
static void remove_dir(int expected_files)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    ck_assert(p && fscanf(p, "%d", &n) == 1);
    pclose(p);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_msg(n == expected_files, "%d files left in the directory, expected %d", n,
                  expected_files);
}

static unsigned char *read_file(const char *p, size_t *size)
{
    FILE *f = fopen(p, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    ck_assert(b && fread(b, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return b;
}

static void write_file(const char *p, const unsigned char *b, size_t n)
{
    FILE *f = fopen(p, "wb");
    ck_assert(f && fwrite(b, 1, n, f) == n);
    fclose(f);
}

/* memmem is a GNU extension */
static unsigned char *find_bytes(unsigned char *hay, size_t n, const void *needle, size_t k)
{
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0) return hay + i;
    return NULL;
}

static const float f_vals[] = {1.5f, -0.0f, 3.4028235e38f, 1e-45f, -2.25f};
static const int64_t i_vals[] = {INT64_MIN, -1, 0, 42, INT64_MAX};

/* Three sections with odd name lengths, so padding is exercised. */
static void write_sample(const char *p, float first)
{
    tq_error err = {0};
    tq_ckpt_writer *w = tq_ckpt_begin(p, &err);
    ck_assert_msg(w != NULL, "%s", err.msg);
    float f[5];
    memcpy(f, f_vals, sizeof f);
    f[0] = first;
    ck_assert_int_eq(tq_ckpt_put(w, "fc1.weight", TQ_CKPT_F32, f, 5), TQ_STATUS_OK);
    ck_assert_int_eq(tq_ckpt_put(w, "steps", TQ_CKPT_I64, i_vals, 5), TQ_STATUS_OK);
    ck_assert_int_eq(tq_ckpt_put_str(w, "recipe", "w4a8 per-block 32"), TQ_STATUS_OK);
    ck_assert_msg(tq_ckpt_commit(w, &err) == TQ_STATUS_OK, "%s", err.msg);
}

static tq_ckpt *load_ok(const char *p)
{
    tq_error err = {0};
    tq_ckpt *c = tq_ckpt_load(p, &err);
    ck_assert_msg(c != NULL, "load: %s", err.msg);
    return c;
}

static void expect_load_error(const char *p, tq_status status, const char *fragment)
{
    tq_error err = {0};
    tq_ckpt *c = tq_ckpt_load(p, &err);
    ck_assert_msg(c == NULL, "loaded, expected an error containing '%s'", fragment);
    ck_assert_int_eq(err.status, status);
    ck_assert_msg(strstr(err.msg, fragment) != NULL, "'%s' lacks '%s'", err.msg, fragment);
    ck_assert_msg(strstr(err.msg, p) != NULL, "'%s' does not name the file", err.msg);
}

START_TEST(test_round_trip_all_types)
{
    make_dir();
    write_sample(path, 1.5f);
    tq_ckpt *c = load_ok(path);
    ck_assert_int_eq(tq_ckpt_section_count(c), 3);
    int64_t n = -1;
    const float *f = tq_ckpt_get_f32(c, "fc1.weight", &n);
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(((uintptr_t)f) % 8, 0); /* aligned: usable as float* without copying */
    ck_assert_int_eq(memcmp(f, f_vals, sizeof f_vals), 0); /* bit-exact, -0 included */
    const int64_t *i = tq_ckpt_get_i64(c, "steps", &n);
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(((uintptr_t)i) % 8, 0);
    ck_assert_int_eq(memcmp(i, i_vals, sizeof i_vals), 0);
    const char *s = tq_ckpt_get_str(c, "recipe", &n);
    ck_assert_str_eq(s, "w4a8 per-block 32");
    ck_assert_int_eq(n, 17);
    /* wrong type or name: NULL and count 0 */
    ck_assert_ptr_null(tq_ckpt_get_f32(c, "steps", &n));
    ck_assert_int_eq(n, 0);
    ck_assert_ptr_null(tq_ckpt_get_i64(c, "nope", &n));
    tq_error err = {0};
    ck_assert_ptr_eq(tq_ckpt_require_f32(c, "fc1.weight", 5, &err), f);
    ck_assert_ptr_eq(tq_ckpt_require_i64(c, "steps", -1, &err), i);
    ck_assert_int_eq(err.status, TQ_STATUS_OK);
    /* by position, in the order written */
    const char *names[] = {"fc1.weight", "steps", "recipe"};
    const tq_ckpt_type types[] = {TQ_CKPT_F32, TQ_CKPT_I64, TQ_CKPT_STR};
    const void *data[] = {f, i, s};
    const int64_t counts[] = {5, 5, 17};
    char name[TQ_CKPT_MAX_NAME + 1];
    for (int k = 0; k < 3; k++) {
        tq_ckpt_type type = 0;
        ck_assert_ptr_eq(tq_ckpt_section_at(c, k, name, sizeof name, &type, &n), data[k]);
        ck_assert_str_eq(name, names[k]);
        ck_assert_int_eq(type, types[k]);
        ck_assert_int_eq(n, counts[k]);
    }
    ck_assert_ptr_null(tq_ckpt_section_at(c, 3, name, sizeof name, NULL, NULL));
    ck_assert_ptr_null(tq_ckpt_section_at(c, -1, name, sizeof name, NULL, NULL));
    ck_assert_ptr_null(tq_ckpt_section_at(c, 0, name, 10, NULL, NULL)); /* "fc1.weight" needs 11 */
    ck_assert_ptr_nonnull(tq_ckpt_section_at(c, 0, name, 11, NULL, NULL));
    tq_ckpt_free(c);

    /* little-endian on disk, whatever the host: the int64 42 is 2a 00 .. 00 */
    size_t size;
    unsigned char *b = read_file(path, &size);
    ck_assert_int_eq(memcmp(b, "TQCKPT\0\0\1\0\0\0\3\0\0\0", 16), 0);
    unsigned char le42[8] = {42, 0, 0, 0, 0, 0, 0, 0};
    ck_assert_ptr_nonnull(find_bytes(b, size, le42, 8));
    free(b);
    remove_dir(1);
}
END_TEST

START_TEST(test_empty_sections_and_empty_file)
{
    make_dir();
    tq_error err = {0};
    tq_ckpt_writer *w = tq_ckpt_begin(path, &err);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(tq_ckpt_put(w, "none", TQ_CKPT_F32, NULL, 0), TQ_STATUS_OK);
    ck_assert_int_eq(tq_ckpt_put_str(w, "e", ""), TQ_STATUS_OK);
    ck_assert_int_eq(tq_ckpt_commit(w, &err), TQ_STATUS_OK);
    tq_ckpt *c = load_ok(path);
    int64_t n = -1;
    ck_assert_ptr_nonnull(tq_ckpt_get_f32(c, "none", &n));
    ck_assert_int_eq(n, 0);
    ck_assert_str_eq(tq_ckpt_get_str(c, "e", &n), "");
    tq_ckpt_free(c);

    w = tq_ckpt_begin(path, &err);
    ck_assert_int_eq(tq_ckpt_commit(w, &err), TQ_STATUS_OK);
    c = load_ok(path);
    ck_assert_int_eq(tq_ckpt_section_count(c), 0);
    tq_ckpt_free(c);
    remove_dir(1);
}
END_TEST

START_TEST(test_any_flipped_byte_is_detected)
{
    make_dir();
    write_sample(path, 1.5f);
    size_t size;
    unsigned char *good = read_file(path, &size);
    char bad[700];
    snprintf(bad, sizeof bad, "%s/bad.ckpt", dir);
    for (size_t i = 0; i < size; i++) {
        good[i] ^= 0x24;
        write_file(bad, good, size);
        good[i] ^= 0x24;
        tq_error err = {0};
        tq_ckpt *c = tq_ckpt_load(bad, &err);
        ck_assert_msg(c == NULL, "byte %zu flipped, file still loads", i);
        ck_assert_int_eq(err.status, TQ_STATUS_FORMAT);
        /* past the magic, version and size fields only the checksum can tell */
        if (i >= 16 && i < 24) ck_assert_msg(strstr(err.msg, "bytes"), "%s", err.msg);
        if (i >= 24 || (i >= 12 && i < 16))
            ck_assert_msg(strstr(err.msg, "checksum mismatch"), "byte %zu: %s", i, err.msg);
    }
    free(good);
    remove_dir(2);
}
END_TEST

START_TEST(test_truncation_is_an_error)
{
    make_dir();
    write_sample(path, 1.5f);
    size_t size;
    unsigned char *good = read_file(path, &size);
    char bad[700];
    snprintf(bad, sizeof bad, "%s/short.ckpt", dir);
    const size_t cuts[] = {0, 3, 8, 12, 23, 24, 27, 28, 40, size / 2, size - 5, size - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        write_file(bad, good, cuts[k]);
        expect_load_error(bad, TQ_STATUS_FORMAT, "truncated");
    }
    /* and trailing bytes after a whole file */
    unsigned char *longer = malloc(size + 3);
    memcpy(longer, good, size);
    memset(longer + size, 0, 3);
    write_file(bad, longer, size + 3);
    expect_load_error(bad, TQ_STATUS_FORMAT, "size mismatch");
    free(longer);
    free(good);
    remove_dir(2);
}
END_TEST

START_TEST(test_wrong_magic_and_future_version)
{
    make_dir();
    write_sample(path, 1.5f);
    size_t size;
    unsigned char *b = read_file(path, &size);
    b[0] = 'X';
    write_file(path, b, size);
    expect_load_error(path, TQ_STATUS_FORMAT, "bad magic");
    b[0] = 'T';
    b[8] = 2; /* version 2 */
    write_file(path, b, size);
    char want[700];
    snprintf(want, sizeof want, "checkpoint %s: version 2 is newer than supported 1", path);
    tq_error err = {0};
    ck_assert_ptr_null(tq_ckpt_load(path, &err));
    ck_assert_str_eq(err.msg, want);
    write_file(path, (const unsigned char *)"PNG", 3);
    expect_load_error(path, TQ_STATUS_FORMAT, "bad magic");
    free(b);
    remove_dir(1);
}
END_TEST

START_TEST(test_duplicate_names_rejected)
{
    make_dir();
    tq_error err = {0};
    tq_ckpt_writer *w = tq_ckpt_begin(path, &err);
    float x = 1;
    tq_ckpt_put(w, "a.w", TQ_CKPT_F32, &x, 1);
    ck_assert_int_eq(tq_ckpt_put(w, "a.w", TQ_CKPT_F32, &x, 1), TQ_STATUS_ARG);
    ck_assert_int_eq(tq_ckpt_commit(w, &err), TQ_STATUS_ARG);
    ck_assert_msg(strstr(err.msg, "section 'a.w': duplicate name"), "%s", err.msg);

    /* a file made by hand with the same name twice and a valid checksum */
    tq_error_clear(&err);
    w = tq_ckpt_begin(path, &err);
    tq_ckpt_put(w, "a.w", TQ_CKPT_F32, &x, 1);
    tq_ckpt_put(w, "b.w", TQ_CKPT_F32, &x, 1);
    ck_assert_int_eq(tq_ckpt_commit(w, &err), TQ_STATUS_OK);
    size_t size;
    unsigned char *b = read_file(path, &size);
    unsigned char *second = find_bytes(b, size, "b.w", 3);
    ck_assert_ptr_nonnull(second);
    second[0] = 'a';
    uint32_t crc = (uint32_t)crc32(0L, b, (uInt)(size - 4));
    for (int i = 0; i < 4; i++) b[size - 4 + i] = (unsigned char)(crc >> (8 * i));
    write_file(path, b, size);
    expect_load_error(path, TQ_STATUS_FORMAT, "duplicate section 'a.w'");
    free(b);
    remove_dir(1);
}
END_TEST

START_TEST(test_require_reports_missing_count_and_nan)
{
    make_dir();
    write_sample(path, NAN);
    tq_ckpt *c = load_ok(path);
    tq_error err = {0};
    int64_t n;
    ck_assert_ptr_nonnull(tq_ckpt_get_f32(c, "fc1.weight", &n)); /* raw access still works */
    ck_assert_ptr_null(tq_ckpt_require_f32(c, "fc1.weight", 5, &err));
    ck_assert_int_eq(err.status, TQ_STATUS_NUMERIC);
    ck_assert_msg(strstr(err.msg, "section 'fc1.weight' holds a non-finite value (nan at index 0)"),
                  "%s", err.msg);
    tq_error_clear(&err);
    ck_assert_ptr_null(tq_ckpt_require_f32(c, "fc2.weight", 5, &err));
    ck_assert_msg(strstr(err.msg, "missing section 'fc2.weight'"), "%s", err.msg);
    tq_error_clear(&err);
    ck_assert_ptr_null(tq_ckpt_require_i64(c, "steps", 4, &err));
    ck_assert_int_eq(err.status, TQ_STATUS_SHAPE);
    ck_assert_msg(strstr(err.msg, "section 'steps' has 5 values, expected 4"), "%s", err.msg);
    tq_error_clear(&err);
    ck_assert_ptr_null(tq_ckpt_require_f32(c, "steps", 5, &err));
    ck_assert_msg(strstr(err.msg, "section 'steps' holds int64, expected float32"), "%s", err.msg);
    tq_ckpt_free(c);

    write_sample(path, INFINITY);
    c = load_ok(path);
    tq_error_clear(&err);
    ck_assert_ptr_null(tq_ckpt_require_f32(c, "fc1.weight", -1, &err));
    ck_assert_msg(strstr(err.msg, "'fc1.weight' holds a non-finite value (inf"), "%s", err.msg);
    tq_ckpt_free(c);
    remove_dir(1);
}
END_TEST

/* ---- the previous file survives every failed save */

static void assert_previous_intact(void)
{
    tq_ckpt *c = load_ok(path);
    int64_t n;
    const float *f = tq_ckpt_get_f32(c, "fc1.weight", &n);
    ck_assert(f && n == 5);
    ck_assert_float_eq(f[0], 7.0f);
    tq_ckpt_free(c);
}

START_TEST(test_abort_keeps_previous_file)
{
    make_dir();
    write_sample(path, 7.0f);
    tq_error err = {0};
    tq_ckpt_writer *w = tq_ckpt_begin(path, &err);
    float zeros[5] = {0};
    tq_ckpt_put(w, "fc1.weight", TQ_CKPT_F32, zeros, 5);
    tq_ckpt_abort(w);
    assert_previous_intact();
    /* an argument error mid-save: commit refuses and cleans up */
    w = tq_ckpt_begin(path, &err);
    tq_ckpt_put(w, "fc1.weight", TQ_CKPT_F32, zeros, 5);
    tq_ckpt_put(w, "", TQ_CKPT_F32, zeros, 5);
    ck_assert_int_eq(tq_ckpt_commit(w, &err), TQ_STATUS_ARG);
    ck_assert_msg(strstr(err.msg, "name must be 1..255 bytes"), "%s", err.msg);
    assert_previous_intact();
    remove_dir(1);
}
END_TEST

START_TEST(test_write_error_keeps_previous_file)
{
    make_dir();
    write_sample(path, 7.0f);
    /* a file-size limit makes write() fail with EFBIG, as a full disk fails with ENOSPC */
    struct rlimit saved, small = {.rlim_cur = 4096, .rlim_max = RLIM_INFINITY};
    getrlimit(RLIMIT_FSIZE, &saved);
    small.rlim_max = saved.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    tq_error err = {0};
    tq_ckpt_writer *w = tq_ckpt_begin(path, &err);
    ck_assert_ptr_nonnull(w);
    static float big[20000];
    tq_ckpt_put(w, "fc1.weight", TQ_CKPT_F32, big, 20000);
    tq_status st = tq_ckpt_commit(w, &err);
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, SIG_DFL);
    ck_assert_int_eq(st, TQ_STATUS_IO);
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, strerror(EFBIG)), "%s", err.msg);
    assert_previous_intact();
    remove_dir(1);
}
END_TEST

START_TEST(test_missing_directory_and_directory_paths)
{
    make_dir();
    char missing[700];
    snprintf(missing, sizeof missing, "%s/no/such/dir/m.ckpt", dir);
    tq_error err = {0};
    ck_assert_ptr_null(tq_ckpt_begin(missing, &err));
    ck_assert_int_eq(err.status, TQ_STATUS_IO);
    ck_assert_msg(strstr(err.msg, missing) && strstr(err.msg, strerror(ENOENT)), "%s", err.msg);
    tq_error_clear(&err);
    ck_assert_int_eq(tq_ckpt_check_writable(missing, &err), TQ_STATUS_IO);
    ck_assert_msg(strstr(err.msg, "cannot create files in") && strstr(err.msg, strerror(ENOENT)),
                  "%s", err.msg);
    tq_error_clear(&err);
    ck_assert_int_eq(tq_ckpt_check_writable(path, &err), TQ_STATUS_OK);

    /* a directory where a file is expected */
    ck_assert_int_eq(tq_ckpt_check_writable(dir, &err), TQ_STATUS_IO);
    ck_assert_msg(strstr(err.msg, "is a directory"), "%s", err.msg);
    tq_error_clear(&err);
    ck_assert_ptr_null(tq_ckpt_begin(dir, &err));
    ck_assert_msg(strstr(err.msg, "is a directory"), "%s", err.msg);
    expect_load_error(dir, TQ_STATUS_IO, "is a directory");
    expect_load_error(path, TQ_STATUS_IO, strerror(ENOENT));
    remove_dir(0); /* the probe was removed too */
}
END_TEST

START_TEST(test_replaces_existing_file)
{
    make_dir();
    write_sample(path, 7.0f);
    write_sample(path, -3.0f);
    tq_ckpt *c = load_ok(path);
    ck_assert_float_eq(tq_ckpt_get_f32(c, "fc1.weight", NULL)[0], -3.0f);
    tq_ckpt_free(c);
    remove_dir(1);
}
END_TEST

/* A run checkpoint in the layout of train/run_io.c: model name, input (c, h, w, classes),
 * n_params parameters, no batch-norm state, normalisation, and the run.i64 (14 values) and
 * run.f32 (10 values) records of a run that has not started (plain SGD, constant rate). */
static void write_run(const char *p, const char *model, const int64_t input[4], int64_t n_params)
{
    tq_error err = {0};
    tq_ckpt_writer *w = tq_ckpt_begin(p, &err);
    ck_assert_msg(w != NULL, "%s", err.msg);
    float *params = calloc((size_t)n_params, sizeof *params);
    ck_assert_ptr_nonnull(params);
    const float norm[8] = {0.5f, 0, 0, 0, 0.25f, 1, 1, 1};
    int64_t i64[14] = {0};
    i64[2] = 32; /* batch */
    float f32[10] = {0};
    f32[5] = 0.01f; /* learning rate */
    tq_ckpt_put_str(w, "model.name", model);
    tq_ckpt_put(w, "model.input", TQ_CKPT_I64, input, 4);
    tq_ckpt_put(w, "model.params", TQ_CKPT_F32, params, n_params);
    tq_ckpt_put(w, "model.state", TQ_CKPT_F32, params, 0);
    tq_ckpt_put_str(w, "data.name", "mnist:test");
    tq_ckpt_put(w, "data.norm", TQ_CKPT_F32, norm, 8);
    tq_ckpt_put(w, "run.i64", TQ_CKPT_I64, i64, 14);
    tq_ckpt_put(w, "run.f32", TQ_CKPT_F32, f32, 10);
    ck_assert_msg(tq_ckpt_commit(w, &err) == TQ_STATUS_OK, "%s", err.msg);
    free(params);
}

/* Peak resident size of this process, in KiB. */
static long peak_rss_kib(void)
{
    struct rusage ru;
    ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
    return ru.ru_maxrss;
}

START_TEST(test_run_with_wrong_parameter_count_is_rejected_before_building)
{
    make_dir();
    /* the layout is right: an mlp on 1x4x4 with 10 classes has
     * (16*256 + 256) + (256*256 + 256) + (256*10 + 10) = 72714 parameters, and loads */
    write_run(path, "mlp", (const int64_t[]){1, 4, 4, 10}, 72714);
    tq_run run;
    tq_error err = {0};
    ck_assert_msg(tq_run_load(path, &run, &err) == TQ_STATUS_OK, "%s", err.msg);
    ck_assert_int_eq(tq_model_param_count(run.model), 72714);
    ck_assert_float_eq(run.mean[0], 0.5f);
    tq_run_free(&run);

    /* LeNet-5 on 1x8193x253: conv1 156, conv2 2416, then 16 planes of 2046x61 into fc1
     * (120 * 1996896 + 120 = 239627640), fc2 10164, fc3 850: 239641226 parameters, about
     * 1 GB, against the 10 in the file */
    write_run(path, "lenet5", (const int64_t[]){1, 8193, 253, 10}, 10);
    const long before = peak_rss_kib();
    ck_assert_int_eq(tq_run_load(path, &run, &err), TQ_STATUS_FORMAT);
    const long grown = peak_rss_kib() - before;
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, "239641226 parameters, expected 10"),
                  "'%s' does not name the file and both parameter counts", err.msg);
    ck_assert_ptr_null(run.model);
    ck_assert_msg(grown < 64 * 1024, "loading grew the peak resident size by %ld KiB", grown);
    remove_dir(1);
}
END_TEST

/* QAT's best epoch so far goes with the run: its weights to the bit, its number, and its
 * validation accuracy exactly (a resumed run compares new epochs against it). */
START_TEST(test_run_keeps_best_epoch)
{
    make_dir();
    tq_rng rng;
    tq_rng_seed(&rng, 4);
    tq_error err = {0};
    tq_run run = {.batch = 8, .std = {1, 1, 1, 1}};
    run.model = tq_model_create("convnet", 1, 8, 8, 4, &rng, &err);
    ck_assert_msg(run.model != NULL, "%s", err.msg);
    float *state = tq_model_state(run.model);
    for (int64_t i = 0; i < tq_model_state_count(run.model); i++) state[i] = 0.5f + 0.001f * (float)i;
    ck_assert_ptr_nonnull(run.best = calloc(1, sizeof *run.best));
    ck_assert(tq_snapshot_init(&run.best->weights, run.model, &err) == TQ_STATUS_OK);
    run.best->epoch = 3;
    run.best->val_acc = 2.0 / 3.0; /* not a float: its double bits must come back */
    tq_model_params(run.model)[0] += 1.0f; /* the run moved on from its best */
    state[0] = 7.0f;
    ck_assert_msg(tq_run_save(&run, path, &err) == TQ_STATUS_OK, "%s", err.msg);
    tq_run back;
    ck_assert_msg(tq_run_load(path, &back, &err) == TQ_STATUS_OK, "%s", err.msg);
    ck_assert_ptr_nonnull(back.best);
    ck_assert_int_eq(back.best->epoch, 3);
    ck_assert(back.best->val_acc == 2.0 / 3.0);
    const tq_snapshot *a = &run.best->weights, *b = &back.best->weights;
    ck_assert(a->n_params == b->n_params && a->n_state == b->n_state && a->n_state == 640);
    ck_assert_mem_eq(a->params, b->params, (size_t)a->n_params * sizeof(float));
    ck_assert_mem_eq(a->state, b->state, (size_t)a->n_state * sizeof(float));
    ck_assert_float_eq(tq_model_params(back.model)[0], tq_model_params(run.model)[0]);
    ck_assert(b->params[0] != tq_model_params(back.model)[0] && b->state[0] != 7.0f);
    tq_run_free(&back);
    /* an accuracy outside [0, 1] (a damaged file) is refused, naming the file */
    run.best->val_acc = 2.0;
    ck_assert(tq_run_save(&run, path, &err) == TQ_STATUS_OK);
    ck_assert_int_eq(tq_run_load(path, &back, &err), TQ_STATUS_FORMAT);
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, "best.meta"), "%s", err.msg);
    /* forgotten, the run saves without it */
    tq_run_forget_best(&run);
    ck_assert_ptr_null(run.best);
    ck_assert(tq_run_save(&run, path, &err) == TQ_STATUS_OK);
    ck_assert(tq_run_load(path, &back, &err) == TQ_STATUS_OK);
    ck_assert_ptr_null(back.best);
    tq_run_free(&back);
    tq_run_free(&run);
    remove_dir(1);
}
END_TEST

static Suite *checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *fmt = tcase_create("format");
    tcase_add_test(fmt, test_round_trip_all_types);
    tcase_add_test(fmt, test_empty_sections_and_empty_file);
    tcase_add_test(fmt, test_any_flipped_byte_is_detected);
    tcase_add_test(fmt, test_truncation_is_an_error);
    tcase_add_test(fmt, test_wrong_magic_and_future_version);
    tcase_add_test(fmt, test_duplicate_names_rejected);
    tcase_add_test(fmt, test_require_reports_missing_count_and_nan);
    suite_add_tcase(s, fmt);

    TCase *atomic = tcase_create("atomic");
    tcase_add_test(atomic, test_abort_keeps_previous_file);
    tcase_add_test(atomic, test_write_error_keeps_previous_file);
    tcase_add_test(atomic, test_missing_directory_and_directory_paths);
    tcase_add_test(atomic, test_replaces_existing_file);
    suite_add_tcase(s, atomic);

    TCase *run = tcase_create("run");
    tcase_add_test(run, test_run_with_wrong_parameter_count_is_rejected_before_building);
    tcase_add_test(run, test_run_keeps_best_epoch);
    suite_add_tcase(s, run);
    return s;
}

int main(void) { return tq_test_run(checkpoint_suite()); }
