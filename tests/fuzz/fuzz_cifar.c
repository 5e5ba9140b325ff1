/* Fuzz target for the CIFAR-10 loader: the input as one batch file and as two batches of
 * the same file. Verdict, labels and pixels are checked against the record layout. */
#include "data.h"
#include "fuzz_util.h"

enum { RECORD = 3073, PIXELS = 3072 };

static bool batch_valid(const uint8_t *data, size_t size)
{
    if (size == 0 || size % RECORD != 0) return false;
    for (size_t r = 0; r < size; r += RECORD)
        if (data[r] >= 10) return false;
    return true;
}

static void check(const char *const *paths, int n_paths, const uint8_t *data, size_t size)
{
    tq_dataset d;
    tq_error err = {0};
    tq_status st = tq_load_cifar10(paths, n_paths, &d, &err);
    if (st != TQ_STATUS_OK) {
        fuzz_check_error(st, &err, "cifar10: ");
        FUZZ_CHECK(d.images == NULL && d.labels == NULL && d.n == 0);
        FUZZ_CHECK(!batch_valid(data, size));
        return;
    }
    FUZZ_CHECK(batch_valid(data, size));
    int64_t per_file = (int64_t)(size / RECORD);
    FUZZ_CHECK(d.n == per_file * n_paths);
    FUZZ_CHECK(d.c == 3 && d.h == 32 && d.w == 32 && d.classes == 10);
    for (int64_t i = 0; i < d.n; i++) {
        const uint8_t *rec = data + (size_t)(i % per_file) * RECORD;
        FUZZ_CHECK(d.labels[i] == rec[0]);
        FUZZ_CHECK(memcmp(d.images + (size_t)i * PIXELS, rec + 1, PIXELS) == 0);
    }
    tq_dataset_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[256];
    if (!path[0]) fuzz_path(path, sizeof path, "data_batch_1.bin");
    fuzz_write(path, data, size);
    const char *one[] = {path}, *two[] = {path, path};
    check(one, 1, data, size);
    check(two, 2, data, size);
    return 0;
}
