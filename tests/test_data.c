/* Check suite for data/: fixtures written to a temporary folder (IDX raw and gzipped, CIFAR
 * records, PNGs through libpng) read back exactly; every bad input named in its message;
 * split, statistics, normalisation, shuffling and augmentation of the loader. */
#include <dirent.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data.h"
#include "tq_test.h"

/* ---- fixture folder */

static char tmp[256];

static void rm_rf(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void setup(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/tq_data_XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void teardown(void) { rm_rf(tmp); }

/* tmp/name in a rotating set of buffers, so a few can be alive at once. */
static const char *fx(const char *name)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 512, "%s/%s", tmp, name);
    return b;
}

static void mkdir_fx(const char *name) { ck_assert_int_eq(mkdir(fx(name), 0755), 0); }

static void write_raw(const char *path, const uint8_t *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, len, f), len);
    fclose(f);
}

static void write_gz(const char *path, const uint8_t *bytes, size_t len)
{
    gzFile f = gzopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(gzwrite(f, bytes, (unsigned)len), (int)len);
    ck_assert_int_eq(gzclose(f), Z_OK);
}

static void expect_fail(tq_status st, const tq_error *err, tq_status want, const char *part1,
                        const char *part2)
{
    ck_assert_msg(st == want, "status %s, expected %s (%s)", tq_status_name(st),
                  tq_status_name(want), err->msg);
    ck_assert_int_eq(err->status, want);
    ck_assert_msg(strstr(err->msg, part1), "'%s' lacks '%s'", err->msg, part1);
    if (part2) ck_assert_msg(strstr(err->msg, part2), "'%s' lacks '%s'", err->msg, part2);
    ck_assert_ptr_null(strchr(err->msg, '\n'));
}

/* ---- IDX fixtures: image i, row y, column x holds (i*50 + y*4 + x*3 + 1) mod 256 */

#define IDX_N 5
#define IDX_H 3
#define IDX_W 4
static const uint8_t idx_labels[IDX_N] = {3, 1, 4, 1, 5};

static uint8_t idx_pixel(int i, int y, int x) { return (uint8_t)(i * 50 + y * 4 + x * 3 + 1); }

static size_t put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
    return 4;
}

/* Header (magic, n, rows, cols) and pixels; returns the length. */
static size_t idx_images(uint8_t *buf, uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols)
{
    size_t k = put_be32(buf, magic);
    k += put_be32(buf + k, n);
    k += put_be32(buf + k, rows);
    k += put_be32(buf + k, cols);
    for (uint32_t i = 0; i < n && i < IDX_N; i++)
        for (uint32_t y = 0; y < IDX_H; y++)
            for (uint32_t x = 0; x < IDX_W; x++) buf[k++] = idx_pixel((int)i, (int)y, (int)x);
    return k;
}

static size_t idx_labels_file(uint8_t *buf, uint32_t n)
{
    size_t k = put_be32(buf, 0x801);
    k += put_be32(buf + k, n);
    for (uint32_t i = 0; i < n; i++) buf[k++] = idx_labels[i % IDX_N];
    return k;
}

static void write_idx_pair(const char *images, const char *labels, bool gz)
{
    uint8_t buf[512];
    size_t len = idx_images(buf, 0x803, IDX_N, IDX_H, IDX_W);
    (gz ? write_gz : write_raw)(images, buf, len);
    len = idx_labels_file(buf, IDX_N);
    (gz ? write_gz : write_raw)(labels, buf, len);
}

static void check_idx_dataset(const tq_dataset *d)
{
    ck_assert_int_eq(d->n, IDX_N);
    ck_assert_int_eq(d->c, 1);
    ck_assert_int_eq(d->h, IDX_H);
    ck_assert_int_eq(d->w, IDX_W);
    ck_assert_int_eq(d->classes, 10);
    for (int i = 0; i < IDX_N; i++) {
        ck_assert_int_eq(d->labels[i], idx_labels[i]);
        for (int y = 0; y < IDX_H; y++)
            for (int x = 0; x < IDX_W; x++)
                ck_assert_int_eq(d->images[(i * IDX_H + y) * IDX_W + x], idx_pixel(i, y, x));
    }
}

START_TEST(test_idx_roundtrip)
{
    for (int gz = 0; gz < 2; gz++) {
        const char *img = fx(gz ? "i.gz" : "i"), *lbl = fx(gz ? "l.gz" : "l");
        write_idx_pair(img, lbl, gz);
        tq_dataset d;
        tq_error err = {0};
        ck_assert_int_eq(tq_load_idx(img, lbl, &d, &err), TQ_STATUS_OK);
        check_idx_dataset(&d);
        tq_dataset_free(&d);
        ck_assert_ptr_null(d.images);
    }
}
END_TEST

/* Loads images file `img` (written from buf[0..len)) with good labels; checks the error. */
static void idx_bad_images(const uint8_t *buf, size_t len, bool gz, tq_status want,
                           const char *problem)
{
    const char *img = fx(gz ? "bad-images.gz" : "bad-images"), *lbl = fx("good-labels");
    (gz ? write_gz : write_raw)(img, buf, len);
    uint8_t lb[64];
    write_raw(lbl, lb, idx_labels_file(lb, IDX_N));
    tq_dataset d;
    tq_error err = {0};
    expect_fail(tq_load_idx(img, lbl, &d, &err), &err, want, img, problem);
    ck_assert_ptr_null(d.images);
    ck_assert_int_eq(d.n, 0);
}

START_TEST(test_idx_errors)
{
    uint8_t buf[512];
    size_t len = idx_images(buf, 0x803, IDX_N, IDX_H, IDX_W);
    for (int gz = 0; gz < 2; gz++) {
        idx_bad_images(buf, len - 3, gz, TQ_STATUS_FORMAT, "truncated pixels (57 of 60 bytes)");
        idx_bad_images(buf, 6, gz, TQ_STATUS_FORMAT, "truncated header");
    }
    uint8_t bad[512];
    size_t n = idx_images(bad, 0, IDX_N, IDX_H, IDX_W);
    idx_bad_images(bad, n, true, TQ_STATUS_FORMAT, "bad magic 0x00000000 (expected 0x00000803)");
    n = idx_labels_file(bad, IDX_N);
    idx_bad_images(bad, n, false, TQ_STATUS_FORMAT, "bad magic 0x00000801 (expected 0x00000803)");
    n = idx_images(bad, 0x803, 0xffffffffu, 0xffffffffu, 0xffffffffu);
    idx_bad_images(bad, n, false, TQ_STATUS_FORMAT, "4294967295 x 4294967295 x 4294967295 overflow");
    n = idx_images(bad, 0x803, IDX_N, 0, IDX_W);
    idx_bad_images(bad, n, false, TQ_STATUS_FORMAT, "absurd dimensions 5 x 0 x 4");
    n = idx_images(bad, 0x803, 1, 100000, 1);
    idx_bad_images(bad, n, false, TQ_STATUS_FORMAT, "absurd dimensions 1 x 100000 x 1");
    /* A header that claims far more than the file holds fails as truncated, not OOM. */
    n = idx_images(bad, 0x803, 2000000000u, 28, 28);
    idx_bad_images(bad, n, false, TQ_STATUS_FORMAT, "truncated pixels");

    /* A gzip stream cut in the middle, and gzip magic followed by garbage. */
    write_gz(fx("whole.gz"), buf, len);
    FILE *f = fopen(fx("whole.gz"), "rb");
    uint8_t gzbuf[512];
    size_t gzlen = fread(gzbuf, 1, sizeof gzbuf, f);
    fclose(f);
    idx_bad_images(gzbuf, gzlen / 2, false, TQ_STATUS_FORMAT, NULL);
    uint8_t garbage[64] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    memset(garbage + 10, 0xff, sizeof garbage - 10);
    idx_bad_images(garbage, sizeof garbage, false, TQ_STATUS_FORMAT, NULL);

    tq_dataset d;
    tq_error err = {0};
    const char *missing = fx("train-images-idx3-ubyte.gz");
    expect_fail(tq_load_idx(missing, fx("x"), &d, &err), &err, TQ_STATUS_IO, missing,
                "cannot open");
}
END_TEST

START_TEST(test_idx_label_errors)
{
    const char *img = fx("img"), *lbl = fx("lbl");
    write_idx_pair(img, lbl, false);
    uint8_t lb[64];
    tq_dataset d;
    tq_error err = {0};
    write_raw(lbl, lb, idx_labels_file(lb, IDX_N - 1));
    expect_fail(tq_load_idx(img, lbl, &d, &err), &err, TQ_STATUS_FORMAT, lbl, "5 images but 4 labels");
    ck_assert_ptr_nonnull(strstr(err.msg, img));
    size_t n = idx_labels_file(lb, IDX_N);
    lb[8 + 2] = 10;
    write_raw(lbl, lb, n);
    tq_error_clear(&err);
    expect_fail(tq_load_idx(img, lbl, &d, &err), &err, TQ_STATUS_FORMAT, lbl,
                "label 10 at index 2 out of range (expected < 10)");
    write_raw(lbl, lb, 10);
    tq_error_clear(&err);
    expect_fail(tq_load_idx(img, lbl, &d, &err), &err, TQ_STATUS_FORMAT, lbl, "truncated labels");
}
END_TEST

/* ---- CIFAR fixtures: record i has label (3i) mod 10 and plane c, pixel p (i*31 + c*85 + p) */

#define CIFAR_REC 3073

static uint8_t cifar_pixel(int i, int c, int p) { return (uint8_t)(i * 31 + c * 85 + p); }

/* Records first..first+n-1 into path; returns nothing, asserts on failure. */
static void write_cifar(const char *path, int first, int n)
{
    uint8_t *buf = malloc((size_t)n * CIFAR_REC);
    for (int r = 0; r < n; r++) {
        uint8_t *rec = buf + (size_t)r * CIFAR_REC;
        rec[0] = (uint8_t)((first + r) * 3 % 10);
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 1024; p++) rec[1 + c * 1024 + p] = cifar_pixel(first + r, c, p);
    }
    write_raw(path, buf, (size_t)n * CIFAR_REC);
    free(buf);
}

static void check_cifar_image(const tq_dataset *d, int64_t k, int i)
{
    ck_assert_int_eq(d->labels[k], i * 3 % 10);
    for (int c = 0; c < 3; c++)
        for (int p = 0; p < 1024; p += 37)
            ck_assert_int_eq(d->images[k * 3072 + c * 1024 + p], cifar_pixel(i, c, p));
}

START_TEST(test_cifar_roundtrip)
{
    write_cifar(fx("a.bin"), 0, 2);
    write_cifar(fx("b.bin"), 2, 3);
    const char *paths[] = {fx("a.bin"), fx("b.bin")};
    tq_dataset d;
    tq_error err = {0};
    ck_assert_int_eq(tq_load_cifar10(paths, 2, &d, &err), TQ_STATUS_OK);
    ck_assert_int_eq(d.n, 5);
    ck_assert_int_eq(d.c, 3);
    ck_assert_int_eq(d.h, 32);
    ck_assert_int_eq(d.w, 32);
    ck_assert_int_eq(d.classes, 10);
    for (int i = 0; i < 5; i++) check_cifar_image(&d, i, i);
    tq_dataset_free(&d);
}
END_TEST

START_TEST(test_cifar_errors)
{
    tq_dataset d;
    tq_error err = {0};
    uint8_t odd[2 * CIFAR_REC + 1] = {0};
    write_raw(fx("odd.bin"), odd, sizeof odd);
    write_cifar(fx("ok.bin"), 0, 1);
    const char *paths[] = {fx("ok.bin"), fx("odd.bin")};
    expect_fail(tq_load_cifar10(paths, 2, &d, &err), &err, TQ_STATUS_FORMAT, paths[1],
                "size 6147 bytes is not a positive multiple of the 3073-byte record");
    write_raw(fx("empty.bin"), odd, 0);
    const char *empty = fx("empty.bin");
    tq_error_clear(&err);
    expect_fail(tq_load_cifar10(&empty, 1, &d, &err), &err, TQ_STATUS_FORMAT, empty, "size 0 bytes");
    const char *missing = fx("data_batch_9.bin");
    tq_error_clear(&err);
    expect_fail(tq_load_cifar10(&missing, 1, &d, &err), &err, TQ_STATUS_IO, missing, "cannot open");
    odd[CIFAR_REC] = 10; /* the label of the second record */
    write_raw(fx("label.bin"), odd, 2 * CIFAR_REC);
    const char *label = fx("label.bin");
    tq_error_clear(&err);
    expect_fail(tq_load_cifar10(&label, 1, &d, &err), &err, TQ_STATUS_FORMAT, label,
                "label 10 at record 1 out of range (expected < 10)");
    ck_assert_ptr_null(d.images);
}
END_TEST

/* ---- PNG fixtures */

/* Writes w x h samples s (interleaved, one per channel of color_type, in the bit depth's
 * range) as a PNG; pal holds palette entries for PNG_COLOR_TYPE_PALETTE, trns (when not
 * NULL) their alpha values for a tRNS chunk. */
static void write_png_trns(const char *path, int w, int h, int color_type, int depth,
                           const uint16_t *s, const png_color *pal, int n_pal,
                           const png_byte *trns, int n_trns)
{
    int ch = color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_PALETTE ? 1
             : color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
             : color_type == PNG_COLOR_TYPE_RGB ? 3 : 4;
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert_int_eq(setjmp(png_jmpbuf(png)), 0);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(png, info, pal, n_pal);
    if (trns) png_set_tRNS(png, info, trns, n_trns, NULL);
    png_write_info(png, info);
    uint8_t row[256];
    for (int y = 0; y < h; y++) {
        memset(row, 0, sizeof row);
        for (int k = 0; k < w * ch; k++) {
            uint16_t v = s[y * w * ch + k];
            if (depth == 16) {
                row[2 * k] = (uint8_t)(v >> 8);
                row[2 * k + 1] = (uint8_t)v;
            } else if (depth == 8) {
                row[k] = (uint8_t)v;
            } else { /* packed, most significant bits first */
                int bit = k * depth;
                row[bit / 8] |= (uint8_t)(v << (8 - depth - bit % 8));
            }
        }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

static void write_png(const char *path, int w, int h, int color_type, int depth,
                      const uint16_t *s, const png_color *pal, int n_pal)
{
    write_png_trns(path, w, h, color_type, depth, s, pal, n_pal, NULL, 0);
}

/* A 3x2 grey image whose pixels are base + 10*y + x. */
static void write_grey(const char *path, int base)
{
    uint16_t s[6];
    for (int k = 0; k < 6; k++) s[k] = (uint16_t)(base + 10 * (k / 3) + k % 3);
    write_png(path, 3, 2, PNG_COLOR_TYPE_GRAY, 8, s, NULL, 0);
}

START_TEST(test_pngdir_grey_classes)
{
    /* Class indices follow the sorted sub-folder names, not the creation order. */
    mkdir_fx("root");
    mkdir_fx("root/zeta");
    mkdir_fx("root/alpha");
    write_grey(fx("root/zeta/c.png"), 200);
    write_grey(fx("root/alpha/b.png"), 100);
    write_grey(fx("root/alpha/a.png"), 0);
    write_raw(fx("root/alpha/.hidden"), (const uint8_t *)"x", 1);
    tq_dataset d;
    tq_error err = {0};
    ck_assert_int_eq(tq_load_pngdir(fx("root"), &d, &err), TQ_STATUS_OK);
    ck_assert_int_eq(d.n, 3);
    ck_assert_int_eq(d.c, 1);
    ck_assert_int_eq(d.h, 2);
    ck_assert_int_eq(d.w, 3);
    ck_assert_int_eq(d.classes, 2);
    const int base[] = {0, 100, 200}, label[] = {0, 0, 1};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(d.labels[i], label[i]);
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++)
                ck_assert_int_eq(d.images[i * 6 + y * 3 + x], base[i] + 10 * y + x);
    }
    tq_dataset_free(&d);
}
END_TEST

/* Loads a one-class folder holding just `file` and returns the dataset. */
static tq_dataset load_single(const char *folder)
{
    tq_dataset d;
    tq_error err = {0};
    ck_assert_msg(tq_load_pngdir(fx(folder), &d, &err) == TQ_STATUS_OK, "%s", err.msg);
    ck_assert_int_eq(d.n, 1);
    ck_assert_int_eq(d.classes, 1);
    return d;
}

START_TEST(test_png_formats)
{
    const char *folders[] = {"rgb", "rgb/c", "g16", "g16/c", "rgb16", "rgb16/c", "pal", "pal/c",
                             "rgba", "rgba/c", "ga", "ga/c", "g4", "g4/c", "palt", "palt/c"};
    for (size_t k = 0; k < sizeof folders / sizeof *folders; k++) mkdir_fx(folders[k]);

    /* RGB 8-bit, 2x1: interleaved RGBRGB becomes planes RR GG BB. */
    const uint16_t rgb[] = {1, 2, 3, 4, 5, 6};
    write_png(fx("rgb/c/x.png"), 2, 1, PNG_COLOR_TYPE_RGB, 8, rgb, NULL, 0);
    tq_dataset d = load_single("rgb");
    ck_assert_int_eq(d.c, 3);
    const uint8_t planes[] = {1, 4, 2, 5, 3, 6};
    ck_assert_int_eq(memcmp(d.images, planes, 6), 0);
    tq_dataset_free(&d);

    /* 16-bit samples scale to round(v * 255 / 65535): multiples of 257 are exact. */
    const uint16_t g16[] = {0, 65535, 257 * 100, 257 * 100 + 60, 257 * 100 + 200, 257 * 7};
    const uint8_t g8[] = {0, 255, 100, 100, 101, 7};
    write_png(fx("g16/c/x.png"), 3, 2, PNG_COLOR_TYPE_GRAY, 16, g16, NULL, 0);
    d = load_single("g16");
    ck_assert_int_eq(d.c, 1);
    for (int k = 0; k < 6; k++) ck_assert_int_eq(d.images[k], g8[k]);
    tq_dataset_free(&d);
    write_png(fx("rgb16/c/x.png"), 2, 1, PNG_COLOR_TYPE_RGB, 16, g16, NULL, 0);
    d = load_single("rgb16");
    const uint8_t rgb16_planes[] = {0, 100, 255, 101, 100, 7};
    ck_assert_int_eq(memcmp(d.images, rgb16_planes, 6), 0);
    tq_dataset_free(&d);

    /* Palette indices expand to their RGB entries. */
    const png_color pal[] = {{10, 20, 30}, {200, 150, 100}};
    const uint16_t idx[] = {1, 0, 1};
    write_png(fx("pal/c/x.png"), 3, 1, PNG_COLOR_TYPE_PALETTE, 8, idx, pal, 2);
    d = load_single("pal");
    const uint8_t pal_planes[] = {200, 10, 200, 150, 20, 150, 100, 30, 100};
    ck_assert_int_eq(d.c, 3);
    ck_assert_int_eq(memcmp(d.images, pal_planes, 9), 0);
    tq_dataset_free(&d);
    /* With a tRNS chunk the expanded palette gains alpha, which is dropped: colours stay as
     * stored even where alpha is 0. */
    const png_byte trns[] = {0, 128};
    write_png_trns(fx("palt/c/x.png"), 3, 1, PNG_COLOR_TYPE_PALETTE, 8, idx, pal, 2, trns, 2);
    d = load_single("palt");
    ck_assert_int_eq(d.c, 3);
    ck_assert_int_eq(d.h, 1);
    ck_assert_int_eq(d.w, 3);
    ck_assert_int_eq(memcmp(d.images, pal_planes, 9), 0);
    tq_dataset_free(&d);

    /* Alpha is dropped, colour kept as stored. */
    const uint16_t rgba[] = {9, 8, 7, 0, 60, 70, 80, 255};
    write_png(fx("rgba/c/x.png"), 2, 1, PNG_COLOR_TYPE_RGB_ALPHA, 8, rgba, NULL, 0);
    d = load_single("rgba");
    const uint8_t rgba_planes[] = {9, 60, 8, 70, 7, 80};
    ck_assert_int_eq(d.c, 3);
    ck_assert_int_eq(memcmp(d.images, rgba_planes, 6), 0);
    tq_dataset_free(&d);
    const uint16_t ga[] = {33, 0, 44, 128};
    write_png(fx("ga/c/x.png"), 2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, ga, NULL, 0);
    d = load_single("ga");
    ck_assert_int_eq(d.c, 1);
    ck_assert_int_eq(d.images[0], 33);
    ck_assert_int_eq(d.images[1], 44);
    tq_dataset_free(&d);

    /* 4-bit grey v expands to v * 17. */
    const uint16_t g4[] = {0, 15, 5};
    write_png(fx("g4/c/x.png"), 3, 1, PNG_COLOR_TYPE_GRAY, 4, g4, NULL, 0);
    d = load_single("g4");
    ck_assert_int_eq(d.images[0], 0);
    ck_assert_int_eq(d.images[1], 255);
    ck_assert_int_eq(d.images[2], 85);
    tq_dataset_free(&d);
}
END_TEST

/* A complete 1x1 grey PNG from libpng whose IHDR is then rewritten (with its CRC) to
 * declare w x h: a valid chunk stream far too small for the pixels it declares. */
static void write_png_claiming(const char *path, uint32_t w, uint32_t h)
{
    const uint16_t one = 7;
    write_png(path, 1, 1, PNG_COLOR_TYPE_GRAY, 8, &one, NULL, 0);
    uint8_t buf[512];
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    /* signature (8), IHDR length (4), "IHDR" at 12, width at 16, height at 20, CRC at 29 */
    ck_assert(len > 33 && memcmp(buf + 12, "IHDR", 4) == 0);
    put_be32(buf + 16, w);
    put_be32(buf + 20, h);
    put_be32(buf + 29, (uint32_t)crc32(0L, buf + 12, 17));
    write_raw(path, buf, len);
}

static void pngdir_expect(const char *folder, tq_status want, const char *part1, const char *part2)
{
    tq_dataset d;
    tq_error err = {0};
    expect_fail(tq_load_pngdir(fx(folder), &d, &err), &err, want, part1, part2);
    ck_assert_ptr_null(d.images);
}

START_TEST(test_pngdir_errors)
{
    mkdir_fx("empty");
    pngdir_expect("empty", TQ_STATUS_FORMAT, fx("empty"), "no class sub-folders");
    pngdir_expect("missing", TQ_STATUS_IO, fx("missing"), "cannot open folder");
    mkdir_fx("noimg");
    mkdir_fx("noimg/a");
    pngdir_expect("noimg", TQ_STATUS_FORMAT, fx("noimg/a"), "no images in class folder");

    mkdir_fx("text");
    mkdir_fx("text/a");
    write_grey(fx("text/a/1.png"), 0);
    write_raw(fx("text/a/2.png"), (const uint8_t *)"hello, world", 12);
    pngdir_expect("text", TQ_STATUS_FORMAT, fx("text/a/2.png"), "not a PNG file");

    mkdir_fx("size");
    mkdir_fx("size/a");
    mkdir_fx("size/b");
    write_grey(fx("size/a/1.png"), 0);
    const uint16_t wide[8] = {0};
    write_png(fx("size/b/2.png"), 4, 2, PNG_COLOR_TYPE_GRAY, 8, wide, NULL, 0);
    pngdir_expect("size", TQ_STATUS_FORMAT, fx("size/b/2.png"),
                  "size 4x2 with 1 channel(s) differs from 3x2 with 1 channel(s)");
    pngdir_expect("size", TQ_STATUS_FORMAT, fx("size/a/1.png"), NULL);

    mkdir_fx("chan");
    mkdir_fx("chan/a");
    write_grey(fx("chan/a/1.png"), 0);
    const uint16_t rgb[18] = {0};
    write_png(fx("chan/a/2.png"), 3, 2, PNG_COLOR_TYPE_RGB, 8, rgb, NULL, 0);
    pngdir_expect("chan", TQ_STATUS_FORMAT, fx("chan/a/2.png"), "3x2 with 3 channel(s) differs");

    /* A PNG cut short: libpng's complaint, under the file's name. */
    mkdir_fx("cut");
    mkdir_fx("cut/a");
    write_grey(fx("cut/a/1.png"), 0);
    FILE *f = fopen(fx("cut/a/1.png"), "rb");
    uint8_t buf[512];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_raw(fx("cut/a/1.png"), buf, len - 20);
    pngdir_expect("cut", TQ_STATUS_FORMAT, fx("cut/a/1.png"), NULL);

    /* A header declaring 65536x65536 (4 GiB of grey pixels) in a file of under 200
     * bytes: rejected from the header, before the pixels are allocated. */
    mkdir_fx("huge");
    mkdir_fx("huge/a");
    write_png_claiming(fx("huge/a/1.png"), 65536, 65536);
    struct stat sb;
    ck_assert_int_eq(stat(fx("huge/a/1.png"), &sb), 0);
    ck_assert_int_lt(sb.st_size, 200);
    pngdir_expect("huge", TQ_STATUS_FORMAT, fx("huge/a/1.png"), "65536x65536 image cannot fit");
}
END_TEST

/* ---- dataset specs */

static tq_dataset open_ok(const char *spec, tq_split split)
{
    tq_dataset d;
    tq_error err = {0};
    ck_assert_msg(tq_dataset_open(spec, split, &d, &err) == TQ_STATUS_OK, "%s: %s", spec, err.msg);
    return d;
}

START_TEST(test_open_idx_specs)
{
    /* The training files gzipped, the test files raw: both names are accepted. */
    mkdir_fx("m");
    write_idx_pair(fx("m/train-images-idx3-ubyte.gz"), fx("m/train-labels-idx1-ubyte.gz"), true);
    write_idx_pair(fx("m/t10k-images-idx3-ubyte"), fx("m/t10k-labels-idx1-ubyte"), false);
    char spec[600];
    const char *kinds[] = {"mnist", "fashion-mnist"};
    for (int k = 0; k < 2; k++)
        for (int split = 0; split < 2; split++) {
            snprintf(spec, sizeof spec, "%s:%s", kinds[k], fx("m"));
            tq_dataset d = open_ok(spec, (tq_split)split);
            check_idx_dataset(&d);
            ck_assert_str_eq(d.name, kinds[k]);
            tq_dataset_free(&d);
        }
    mkdir_fx("none");
    snprintf(spec, sizeof spec, "mnist:%s", fx("none"));
    tq_dataset d;
    tq_error err = {0};
    expect_fail(tq_dataset_open(spec, TQ_SPLIT_TEST, &d, &err), &err, TQ_STATUS_IO, fx("none"),
                "neither t10k-images-idx3-ubyte.gz nor t10k-images-idx3-ubyte found");
    const char *bad[] = {"imagenet:/data", "mnist", "mnist:", "cifar10::test_batch", ""};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        tq_error_clear(&err);
        expect_fail(tq_dataset_open(bad[k], TQ_SPLIT_TRAIN, &d, &err), &err, TQ_STATUS_ARG,
                    bad[k], "fashion-mnist:DIR");
        ck_assert_ptr_nonnull(strstr(err.msg, "cifar10:DIR:test_batch"));
        ck_assert_ptr_nonnull(strstr(err.msg, "pngdir:DIR"));
    }
}
END_TEST

START_TEST(test_open_cifar_specs)
{
    mkdir_fx("c");
    const int counts[] = {1, 2, 1, 1, 3};
    char name[64];
    for (int b = 0, first = 0; b < 5; first += counts[b++]) {
        snprintf(name, sizeof name, "c/data_batch_%d.bin", b + 1);
        write_cifar(fx(name), first, counts[b]);
    }
    write_cifar(fx("c/test_batch.bin"), 20, 2);
    char spec[600];
    snprintf(spec, sizeof spec, "cifar10:%s", fx("c"));
    tq_dataset d = open_ok(spec, TQ_SPLIT_TRAIN);
    ck_assert_str_eq(d.name, "cifar10");
    ck_assert_int_eq(d.n, 5);
    for (int i = 0; i < 5; i++) check_cifar_image(&d, i, i);
    tq_dataset_free(&d);
    d = open_ok(spec, TQ_SPLIT_TEST);
    ck_assert_int_eq(d.n, 3);
    for (int i = 0; i < 3; i++) check_cifar_image(&d, i, 5 + i);
    tq_dataset_free(&d);
    snprintf(spec, sizeof spec, "cifar10:%s:test_batch", fx("c"));
    d = open_ok(spec, TQ_SPLIT_TEST);
    ck_assert_int_eq(d.n, 2);
    check_cifar_image(&d, 1, 21);
    tq_dataset_free(&d);
    d = open_ok(spec, TQ_SPLIT_TRAIN);
    ck_assert_int_eq(d.n, 5);
    tq_dataset_free(&d);
}
END_TEST

START_TEST(test_open_pngdir_specs)
{
    /* With train/ and test/ each split reads its own folder; without, both read the root. */
    const char *dirs[] = {"p", "p/train", "p/train/a", "p/train/b", "p/test", "p/test/a", "q", "q/a"};
    for (size_t k = 0; k < sizeof dirs / sizeof *dirs; k++) mkdir_fx(dirs[k]);
    write_grey(fx("p/train/a/1.png"), 1);
    write_grey(fx("p/train/b/2.png"), 2);
    write_grey(fx("p/train/b/3.png"), 3);
    write_grey(fx("p/test/a/4.png"), 4);
    write_grey(fx("q/a/5.png"), 5);
    char spec[600];
    snprintf(spec, sizeof spec, "pngdir:%s", fx("p"));
    tq_dataset d = open_ok(spec, TQ_SPLIT_TRAIN);
    ck_assert_int_eq(d.n, 3);
    ck_assert_int_eq(d.classes, 2);
    ck_assert_int_eq(d.images[2 * 6], 3);
    ck_assert_str_eq(d.name, "pngdir");
    tq_dataset_free(&d);
    d = open_ok(spec, TQ_SPLIT_TEST);
    ck_assert_int_eq(d.n, 1);
    ck_assert_int_eq(d.images[0], 4);
    tq_dataset_free(&d);
    snprintf(spec, sizeof spec, "pngdir:%s", fx("q"));
    for (int split = 0; split < 2; split++) {
        d = open_ok(spec, (tq_split)split);
        ck_assert_int_eq(d.n, 1);
        ck_assert_int_eq(d.images[0], 5);
        tq_dataset_free(&d);
    }
}
END_TEST

/* ---- in-memory datasets: image i of (c,h,w) has first pixel i, label i mod 10 */

static tq_dataset make_dataset(int64_t n, int32_t c, int32_t h, int32_t w)
{
    tq_dataset d = {.n = n, .c = c, .h = h, .w = w, .classes = 10};
    size_t sz = (size_t)(c * h * w);
    d.images = calloc((size_t)n, sz);
    d.labels = malloc((size_t)n);
    for (int64_t i = 0; i < n; i++) {
        d.images[(size_t)i * sz] = (uint8_t)i;
        d.labels[i] = (uint8_t)(i % 10);
    }
    snprintf(d.name, sizeof d.name, "synthetic");
    return d;
}

START_TEST(test_split)
{
    int64_t first_val[5] = {0};
    for (int run = 0; run < 3; run++) {
        tq_dataset all = make_dataset(20, 1, 2, 2), train, val;
        tq_error err = {0};
        uint64_t seed = run < 2 ? 7 : 8;
        ck_assert_int_eq(tq_dataset_split(&all, 0.25, seed, &train, &val, &err), TQ_STATUS_OK);
        ck_assert_int_eq(all.n, 0);
        ck_assert_ptr_null(all.images);
        ck_assert_int_eq(train.n, 15);
        ck_assert_int_eq(val.n, 5);
        ck_assert_str_eq(val.name, "synthetic");
        /* Every image lands in exactly one part, in its original order, with its label. */
        int seen[20] = {0};
        const tq_dataset *parts[] = {&train, &val};
        for (int p = 0; p < 2; p++)
            for (int64_t k = 0; k < parts[p]->n; k++) {
                int id = parts[p]->images[k * 4];
                seen[id]++;
                ck_assert_int_eq(parts[p]->labels[k], id % 10);
                if (k > 0) ck_assert_int_lt(parts[p]->images[(k - 1) * 4], id);
            }
        for (int i = 0; i < 20; i++) ck_assert_int_eq(seen[i], 1);
        bool same = true;
        for (int k = 0; k < 5; k++) {
            if (run == 0) first_val[k] = val.images[k * 4];
            same = same && first_val[k] == val.images[k * 4];
        }
        ck_assert_msg(same == (run < 2), "seed 7 twice must agree, seed 8 must differ");
        tq_dataset_free(&train);
        tq_dataset_free(&val);
    }
    tq_dataset all = make_dataset(4, 1, 1, 1), train, val;
    tq_error err = {0};
    expect_fail(tq_dataset_split(&all, 1.0, 1, &train, &val, &err), &err, TQ_STATUS_ARG,
                "val_fraction 1", "[0, 1)");
    ck_assert_int_eq(all.n, 4);
    tq_dataset_free(&all);
}
END_TEST

START_TEST(test_stats)
{
    /* Channel 0 holds 0, 255, 0, 255: mean 0.5, std 0.5. Channel 1 holds 0.2, 0.4, 0.6, 0.8
     * (times 255): mean 0.5, variance (0.09 + 0.01 + 0.01 + 0.09) / 4 = 0.05. */
    tq_dataset d = make_dataset(2, 2, 1, 2);
    const uint8_t px[] = {0, 255, 51, 102, 0, 255, 153, 204};
    memcpy(d.images, px, sizeof px);
    float mean[2], std[2];
    tq_dataset_stats(&d, mean, std);
    TQ_ASSERT_NEAR(mean[0], 0.5, 1e-7);
    TQ_ASSERT_NEAR(std[0], 0.5, 1e-7);
    TQ_ASSERT_NEAR(mean[1], 0.5, 1e-7);
    TQ_ASSERT_NEAR(std[1], sqrt(0.05), 1e-7);
    tq_dataset_free(&d);
}
END_TEST

/* ---- loader */

static tq_loader *loader_ok(const tq_dataset *d, const tq_loader_config *cfg)
{
    tq_error err = {0};
    tq_loader *l = tq_loader_new(d, cfg, &err);
    ck_assert_msg(l != NULL, "%s", err.msg);
    return l;
}

START_TEST(test_loader_normalise)
{
    tq_dataset d = make_dataset(3, 2, 1, 2);
    const uint8_t px[] = {0, 255, 51, 102, 7, 8, 9, 10, 128, 64, 32, 16};
    memcpy(d.images, px, sizeof px);
    tq_loader_config cfg = {.batch = 3, .mean = {0.5f, 0.25f}, .std = {0.5f, 2.0f}};
    tq_loader *l = loader_ok(&d, &cfg);
    float x[12];
    int32_t labels[3];
    ck_assert_int_eq(tq_loader_fill(l, 0, x, labels), 3);
    for (int k = 0; k < 12; k++) {
        int c = (k / 2) % 2;
        double want = (px[k] / 255.0 - cfg.mean[c]) / cfg.std[c];
        TQ_ASSERT_NEAR(x[k], want, 1e-6);
    }
    TQ_ASSERT_NEAR(x[0], -1.0, 1e-7);
    TQ_ASSERT_NEAR(x[1], 1.0, 1e-7);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(labels[i], i);
    tq_loader_free(l);
    tq_dataset_free(&d);
}
END_TEST

/* The dataset order of epoch `epoch` read back through the first pixel of each image. */
static void epoch_order(tq_loader *l, int64_t epoch, int n, int *order)
{
    float x[64 * 2];
    int32_t labels[64];
    tq_loader_start_epoch(l, epoch);
    int pos = 0;
    for (int64_t b = 0; b < tq_loader_batch_count(l); b++) {
        int32_t got = tq_loader_fill(l, b, x, labels);
        for (int k = 0; k < got; k++, pos++) {
            order[pos] = (int)lrintf(x[k * 2] * 255.0f);
            ck_assert_int_eq(labels[k], order[pos] % 10);
        }
    }
    ck_assert_int_eq(pos, n);
}

START_TEST(test_loader_shuffle)
{
    enum { N = 37 };
    tq_dataset d = make_dataset(N, 1, 1, 2);
    tq_loader_config cfg = {.batch = 8, .shuffle = true, .seed = 42, .mean = {0}, .std = {1}};
    tq_loader *a = loader_ok(&d, &cfg);
    ck_assert_int_eq(tq_loader_batch_count(a), 5);
    int order[4][N];
    for (int e = 0; e < 3; e++) {
        epoch_order(a, e, N, order[e]);
        int seen[N] = {0}, fixed = 0;
        for (int i = 0; i < N; i++) {
            seen[order[e][i]]++;
            fixed += order[e][i] == i;
        }
        for (int i = 0; i < N; i++) ck_assert_int_eq(seen[i], 1);
        ck_assert_int_lt(fixed, N / 2);
    }
    ck_assert_int_ne(memcmp(order[0], order[1], sizeof order[0]), 0);
    ck_assert_int_ne(memcmp(order[1], order[2], sizeof order[0]), 0);
    /* A fresh loader jumping straight to epoch 2 (a resumed run) sees the same order. */
    tq_loader *b = loader_ok(&d, &cfg);
    epoch_order(b, 2, N, order[3]);
    ck_assert_int_eq(memcmp(order[2], order[3], sizeof order[0]), 0);
    epoch_order(a, 0, N, order[3]);
    ck_assert_int_eq(memcmp(order[0], order[3], sizeof order[0]), 0);
    tq_loader_free(b);
    cfg.seed = 43;
    b = loader_ok(&d, &cfg);
    epoch_order(b, 0, N, order[3]);
    ck_assert_int_ne(memcmp(order[0], order[3], sizeof order[0]), 0);
    tq_loader_free(b);
    cfg.shuffle = false;
    b = loader_ok(&d, &cfg);
    epoch_order(b, 5, N, order[3]);
    for (int i = 0; i < N; i++) ck_assert_int_eq(order[3][i], i);
    tq_loader_free(b);
    tq_loader_free(a);
    tq_dataset_free(&d);
}
END_TEST

/* Image i (2 channels, 5x7) holds distinct non-zero pixels so that a crop offset and flip
 * can be recognised from the output alone. */
#define AH 5
#define AW 7
static uint8_t aug_pixel(int i, int c, int y, int x) { return (uint8_t)(1 + i + c * 100 + y * AW + x); }

/* The reference: pad by 4 with zeros, take the h x w window at (dy, dx), then mirror. */
static bool matches(const float *out, int i, int dy, int dx, bool flip)
{
    for (int c = 0; c < 2; c++) {
        uint8_t padded[AH + 8][AW + 8] = {{0}};
        for (int y = 0; y < AH; y++)
            for (int x = 0; x < AW; x++) padded[y + 4][x + 4] = aug_pixel(i, c, y, x);
        for (int y = 0; y < AH; y++)
            for (int x = 0; x < AW; x++) {
                int cx = flip ? AW - 1 - x : x;
                if (out[(c * AH + y) * AW + x] != padded[y + dy][cx + dx] / 255.0f) return false;
            }
    }
    return true;
}

START_TEST(test_loader_augment)
{
    enum { N = 6 };
    tq_dataset d = make_dataset(N, 2, AH, AW);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < 2; c++)
            for (int y = 0; y < AH; y++)
                for (int x = 0; x < AW; x++)
                    d.images[((i * 2 + c) * AH + y) * AW + x] = aug_pixel(i, c, y, x);
    tq_loader_config cfg = {.batch = 4, .augment = true, .seed = 9, .mean = {0, 0}, .std = {1, 1}};
    tq_loader *l = loader_ok(&d, &cfg), *again = loader_ok(&d, &cfg);
    float x[4 * 2 * AH * AW], y[4 * 2 * AH * AW];
    int32_t labels[4];
    int flips[2] = {0}, offsets[9][9] = {{0}}, distinct = 0;
    for (int e = 0; e < 8; e++) {
        tq_loader_start_epoch(l, e);
        tq_loader_start_epoch(again, e);
        for (int b = 1; b >= 0; b--) { /* out of order: batches do not depend on each other */
            int32_t got = tq_loader_fill(l, b, x, labels);
            ck_assert_int_eq(got, b == 0 ? 4 : 2);
            ck_assert_int_eq(tq_loader_fill(again, b, y, labels), got);
            ck_assert_int_eq(memcmp(x, y, (size_t)got * 2 * AH * AW * sizeof *x), 0);
            for (int k = 0; k < got; k++) {
                int i = b * 4 + k, found = 0;
                for (int dy = 0; dy <= 8; dy++)
                    for (int dx = 0; dx <= 8; dx++)
                        for (int f = 0; f < 2; f++)
                            if (matches(x + k * 2 * AH * AW, i, dy, dx, f)) {
                                found++;
                                flips[f]++;
                                distinct += offsets[dy][dx]++ == 0;
                            }
                ck_assert_msg(found == 1, "image %d of epoch %d matches %d crops", i, e, found);
            }
        }
    }
    /* 48 draws: both flips and many of the 81 offsets must turn up. */
    ck_assert_int_gt(flips[0], 8);
    ck_assert_int_gt(flips[1], 8);
    ck_assert_int_gt(distinct, 15);
    tq_loader_free(again);
    tq_loader_free(l);
    tq_dataset_free(&d);
}
END_TEST

START_TEST(test_loader_last_batch)
{
    tq_dataset d = make_dataset(10, 1, 1, 1);
    tq_loader_config cfg = {.batch = 4, .mean = {0}, .std = {1}};
    tq_loader *l = loader_ok(&d, &cfg);
    float x[4];
    int32_t labels[4] = {-1, -1, -1, -1};
    ck_assert_int_eq(tq_loader_batch_count(l), 3);
    ck_assert_int_eq(tq_loader_fill(l, 0, x, labels), 4);
    ck_assert_int_eq(tq_loader_fill(l, 1, x, labels), 4);
    ck_assert_int_eq(tq_loader_fill(l, 2, x, labels), 2);
    TQ_ASSERT_NEAR(x[1], 9 / 255.0, 1e-7);
    ck_assert_int_eq(labels[1], 9);
    ck_assert_int_eq(tq_loader_fill(l, 3, x, labels), 0);
    ck_assert_int_eq(tq_loader_fill(l, -1, x, labels), 0);
    tq_loader_free(l);
    cfg.drop_last = true;
    l = loader_ok(&d, &cfg);
    ck_assert_int_eq(tq_loader_batch_count(l), 2);
    ck_assert_int_eq(tq_loader_fill(l, 2, x, labels), 0);
    tq_loader_free(l);
    tq_dataset_free(&d);
}
END_TEST

/* The generated data set: without noise every image is its class pattern exactly (128 +- signal);
 * the same seed gives the same bytes, another seed other labels over the same patterns. */
START_TEST(test_synthetic_dataset)
{
    tq_error e = {0};
    tq_dataset a, b, c;
    tq_synthetic_config cfg = {.n = 200, .side = 3, .classes = 5, .signal = 40, .noise = 0, .seed = 7};
    ck_assert_int_eq(tq_dataset_synthetic(&a, &cfg, &e), TQ_STATUS_OK);
    ck_assert_int_eq(tq_dataset_synthetic(&b, &cfg, &e), TQ_STATUS_OK);
    cfg.seed = 8;
    ck_assert_int_eq(tq_dataset_synthetic(&c, &cfg, &e), TQ_STATUS_OK);
    ck_assert(a.n == 200 && a.c == 1 && a.h == 3 && a.w == 3 && a.classes == 5);
    ck_assert_mem_eq(a.images, b.images, 200 * 9);
    ck_assert_mem_eq(a.labels, b.labels, 200);
    ck_assert(memcmp(a.labels, c.labels, 200) != 0);
    int seen[5] = {0};
    for (int64_t i = 0; i < a.n; i++) {
        ck_assert_int_lt(a.labels[i], 5);
        seen[a.labels[i]]++;
        for (int p = 0; p < 9; p++) ck_assert(a.images[i * 9 + p] == 88 || a.images[i * 9 + p] == 168);
        /* images of one class are identical, in both sets */
        for (int64_t j = 0; j < c.n; j++)
            if (c.labels[j] == a.labels[i]) ck_assert_mem_eq(a.images + i * 9, c.images + j * 9, 9);
    }
    for (int k = 0; k < 5; k++) ck_assert_int_gt(seen[k], 20);
    tq_dataset_free(&a);
    tq_dataset_free(&b);
    tq_dataset_free(&c);
    cfg.classes = 1;
    ck_assert_int_eq(tq_dataset_synthetic(&a, &cfg, &e), TQ_STATUS_ARG);
    ck_assert_msg(strstr(e.msg, "synthetic: 1 classes"), "%s", e.msg);
    ck_assert_ptr_null(a.images);
}
END_TEST

START_TEST(test_loader_config_errors)
{
    tq_dataset d = make_dataset(4, 1, 1, 1);
    tq_loader_config cfg = {.batch = 0, .mean = {0}, .std = {1}};
    tq_error err = {0};
    ck_assert_ptr_null(tq_loader_new(&d, &cfg, &err));
    expect_fail(err.status, &err, TQ_STATUS_ARG, "batch 0", "expected >= 1");
    cfg.batch = 2;
    cfg.std[0] = 0.0f;
    tq_error_clear(&err);
    ck_assert_ptr_null(tq_loader_new(&d, &cfg, &err));
    expect_fail(err.status, &err, TQ_STATUS_ARG, "channel 0", "std > 0");
    tq_dataset_free(&d);
    tq_error_clear(&err);
    ck_assert_ptr_null(tq_loader_new(&d, &cfg, &err));
    expect_fail(err.status, &err, TQ_STATUS_ARG, "empty", NULL);
}
END_TEST

static Suite *data_suite(void)
{
    Suite *s = suite_create("data");
    TCase *files = tcase_create("files");
    tcase_add_checked_fixture(files, setup, teardown);
    tcase_add_test(files, test_idx_roundtrip);
    tcase_add_test(files, test_idx_errors);
    tcase_add_test(files, test_idx_label_errors);
    tcase_add_test(files, test_cifar_roundtrip);
    tcase_add_test(files, test_cifar_errors);
    tcase_add_test(files, test_pngdir_grey_classes);
    tcase_add_test(files, test_png_formats);
    tcase_add_test(files, test_pngdir_errors);
    tcase_add_test(files, test_open_idx_specs);
    tcase_add_test(files, test_open_cifar_specs);
    tcase_add_test(files, test_open_pngdir_specs);
    suite_add_tcase(s, files);
    TCase *mem = tcase_create("memory");
    tcase_add_test(mem, test_split);
    tcase_add_test(mem, test_stats);
    tcase_add_test(mem, test_loader_normalise);
    tcase_add_test(mem, test_loader_shuffle);
    tcase_add_test(mem, test_loader_augment);
    tcase_add_test(mem, test_loader_last_batch);
    tcase_add_test(mem, test_loader_config_errors);
    tcase_add_test(mem, test_synthetic_dataset);
    suite_add_tcase(s, mem);
    return s;
}

int main(void) { return tq_test_run(data_suite()); }
