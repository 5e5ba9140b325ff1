/* Fuzz target for the IDX loader: the input as an images file and as a labels file, raw
 * and gzipped, each paired with a small valid file of the other kind. The loader's verdict
 * and pixels are checked against a direct reading of the bytes. */
#include "data.h"
#include "fuzz_util.h"

enum { FIXED_N = 2, FIXED_H = 3, FIXED_W = 2 };

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (24 - 8 * i));
}

/* The pair of the input: FIXED_N images of FIXED_H x FIXED_W and FIXED_N labels. */
static void write_fixed(const char *images, const char *labels)
{
    uint8_t img[16 + FIXED_N * FIXED_H * FIXED_W], lbl[8 + FIXED_N];
    put_be32(img, 0x803);
    put_be32(img + 4, FIXED_N);
    put_be32(img + 8, FIXED_H);
    put_be32(img + 12, FIXED_W);
    for (size_t i = 16; i < sizeof img; i++) img[i] = (uint8_t)(i * 37);
    put_be32(lbl, 0x801);
    put_be32(lbl + 4, FIXED_N);
    for (int i = 0; i < FIXED_N; i++) lbl[8 + i] = (uint8_t)(7 - i);
    fuzz_write(images, img, sizeof img);
    fuzz_write(labels, lbl, sizeof lbl);
}

/* What the loader must conclude when `data` (already decompressed) is the images file. */
static bool images_valid(const uint8_t *data, size_t size)
{
    if (size < 16 || be32(data) != 0x803) return false;
    uint64_t n = be32(data + 4), h = be32(data + 8), w = be32(data + 12);
    if (n == 0 || h == 0 || w == 0 || n > 0x7fffffffu || h > 65536 || w > 65536) return false;
    return n == FIXED_N && size - 16 >= n * h * w;
}

static bool labels_valid(const uint8_t *data, size_t size)
{
    if (size < 8 || be32(data) != 0x801) return false;
    uint64_t n = be32(data + 4);
    if (n == 0 || n > 0x7fffffffu || size - 8 < n) return false;
    for (uint64_t i = 0; i < n; i++)
        if (data[8 + i] >= 10) return false;
    return n == FIXED_N;
}

static void check_images(const char *images, const char *labels, const uint8_t *data,
                         size_t size, bool exact)
{
    tq_dataset d;
    tq_error err = {0};
    tq_status st = tq_load_idx(images, labels, &d, &err);
    if (st != TQ_STATUS_OK) {
        fuzz_check_error(st, &err, "idx: ");
        FUZZ_CHECK(d.images == NULL && d.labels == NULL && d.n == 0);
        FUZZ_CHECK(!exact || !images_valid(data, size));
        return;
    }
    FUZZ_CHECK(!exact || images_valid(data, size));
    FUZZ_CHECK(d.n == FIXED_N && d.c == 1 && d.classes == 10);
    if (exact) {
        FUZZ_CHECK((uint32_t)d.h == be32(data + 8) && (uint32_t)d.w == be32(data + 12));
        FUZZ_CHECK(memcmp(d.images, data + 16, (size_t)d.n * d.h * d.w) == 0);
    }
    for (int i = 0; i < FIXED_N; i++) FUZZ_CHECK(d.labels[i] == 7 - i);
    tq_dataset_free(&d);
}

static void check_labels(const char *images, const char *labels, const uint8_t *data,
                         size_t size, bool exact)
{
    tq_dataset d;
    tq_error err = {0};
    tq_status st = tq_load_idx(images, labels, &d, &err);
    if (st != TQ_STATUS_OK) {
        fuzz_check_error(st, &err, "idx: ");
        FUZZ_CHECK(d.images == NULL && d.labels == NULL && d.n == 0);
        FUZZ_CHECK(!exact || !labels_valid(data, size));
        return;
    }
    FUZZ_CHECK(!exact || labels_valid(data, size));
    FUZZ_CHECK(d.n == FIXED_N && d.h == FIXED_H && d.w == FIXED_W);
    for (int i = 0; i < FIXED_N; i++) {
        FUZZ_CHECK(d.labels[i] < 10);
        FUZZ_CHECK(!exact || d.labels[i] == data[8 + i]);
    }
    tq_dataset_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char fixed_images[256], fixed_labels[256], raw[256], gz[256];
    if (!raw[0]) {
        fuzz_path(fixed_images, sizeof fixed_images, "fixed-images-idx3-ubyte");
        fuzz_path(fixed_labels, sizeof fixed_labels, "fixed-labels-idx1-ubyte");
        fuzz_path(raw, sizeof raw, "input-idx");
        fuzz_path(gz, sizeof gz, "input-idx.gz");
        write_fixed(fixed_images, fixed_labels);
    }
    fuzz_write(raw, data, size);
    fuzz_write_gz(gz, data, size);
    /* zlib reads a raw file that starts like gzip as gzip: the direct reading then does
     * not apply, but the loader must still fail cleanly or succeed consistently. */
    bool raw_exact = !(size >= 2 && data[0] == 0x1f && data[1] == 0x8b);
    check_images(raw, fixed_labels, data, size, raw_exact);
    check_images(gz, fixed_labels, data, size, true);
    check_labels(fixed_images, raw, data, size, raw_exact);
    check_labels(fixed_images, gz, data, size, true);
    return 0;
}
