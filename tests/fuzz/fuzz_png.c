/* Fuzz target for the PNG-folder loader: a folder with one class folder holding the input
 * as its only image. A success must be a consistent one-image dataset. */
#include "data.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char root[256], file[256];
    if (!root[0]) {
        char cls[256];
        fuzz_path(root, sizeof root, "pngdir");
        fuzz_path(cls, sizeof cls, "pngdir/cat");
        fuzz_path(file, sizeof file, "pngdir/cat/input.png");
        FUZZ_CHECK(mkdir(root, 0700) == 0 && mkdir(cls, 0700) == 0);
    }
    fuzz_write(file, data, size);
    tq_dataset d;
    tq_error err = {0};
    tq_status st = tq_load_pngdir(root, &d, &err);
    if (st != TQ_STATUS_OK) {
        fuzz_check_error(st, &err, "pngdir: ");
        FUZZ_CHECK(d.images == NULL && d.labels == NULL && d.n == 0);
        return 0;
    }
    /* Even the smallest PNG holds a signature, IHDR, IDAT and IEND. */
    FUZZ_CHECK(size >= 8 + 25 + 12 + 12);
    FUZZ_CHECK(d.n == 1 && d.classes == 1 && d.labels[0] == 0);
    FUZZ_CHECK(d.c == 1 || d.c == 3);
    FUZZ_CHECK(d.h >= 1 && d.w >= 1);
    /* Touch every pixel so a short buffer shows up under ASan. */
    size_t bytes = (size_t)d.c * d.h * d.w;
    unsigned sum = 0;
    for (size_t i = 0; i < bytes; i++) sum += d.images[i];
    FUZZ_CHECK(sum <= 255u * bytes);
    tq_dataset_free(&d);
    return 0;
}
