/* Fuzz target for the checkpoint container and the run checkpoints built on it: the input as
 * it is, then with its size field and checksum repaired so the parsers see every mutation.
 * The container's verdict and every section it hands out are checked against an independent
 * walk of the layout; tq_run_load must fail cleanly or give a usable run. */
#include <math.h>

#include "checkpoint.h"
#include "fuzz_util.h"
#include "train.h"

enum { HEADER = 24, TRAILER = 4, MAX_SECTIONS = 4096 };

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

typedef struct ref_section {
    const uint8_t *name;
    uint32_t name_len, type;
    uint64_t count;
    const uint8_t *payload;
} ref_section;

/* The layout of checkpoint.h read directly; returns the section count, -1 when the file
 * is not a valid checkpoint, or -2 when it claims more sections than the walk can hold
 * (only possible for inputs far larger than the fuzzer makes). */
static long ref_walk(const uint8_t *b, size_t size, ref_section *sec)
{
    static const uint8_t magic[8] = {'T', 'Q', 'C', 'K', 'P', 'T', 0, 0};
    if (size < HEADER + TRAILER || memcmp(b, magic, 8) != 0) return -1;
    uint32_t version = le32(b + 8), n = le32(b + 12);
    if (version < 1 || version > TQ_CKPT_VERSION || le64(b + 16) != size) return -1;
    if ((uint32_t)crc32(0L, b, (uInt)(size - TRAILER)) != le32(b + size - TRAILER)) return -1;
    if (n > MAX_SECTIONS) return -2;
    size_t off = HEADER, end = size - TRAILER;
    for (uint32_t i = 0; i < n; i++) {
        ref_section *s = &sec[i];
        if (end - off < 4) return -1;
        s->name_len = le32(b + off);
        if (s->name_len < 1 || s->name_len > TQ_CKPT_MAX_NAME) return -1;
        if (end - off < 4 + (uint64_t)s->name_len + 12) return -1;
        s->name = b + off + 4;
        off += 4 + s->name_len;
        s->type = le32(b + off);
        s->count = le64(b + off + 4);
        off += 12;
        uint64_t elem = s->type == TQ_CKPT_F32 ? 4 : s->type == TQ_CKPT_I64 ? 8 : 1;
        if (s->type < TQ_CKPT_F32 || s->type > TQ_CKPT_STR) return -1;
        size_t pad = (8 - off % 8) % 8;
        for (size_t k = 0; k < pad; k++)
            if (off + k >= end || b[off + k] != 0) return -1;
        off += pad;
        uint64_t extra = s->type == TQ_CKPT_STR ? 1 : 0;
        if (s->count > (end - off) / elem || s->count * elem + extra > end - off) return -1;
        s->payload = b + off;
        off += s->count * elem + extra;
        if (extra && b[off - 1] != 0) return -1;
        for (uint32_t j = 0; j < i; j++)
            if (sec[j].name_len == s->name_len && memcmp(sec[j].name, s->name, s->name_len) == 0)
                return -1;
    }
    return off == end ? (long)n : -1;
}

/* Every section through the public getters: same type, count and bytes as the walk. */
static void check_sections(const tq_ckpt *c, const ref_section *sec, long n)
{
    FUZZ_CHECK(tq_ckpt_section_count(c) == n);
    for (long i = 0; i < n; i++) {
        const ref_section *s = &sec[i];
        char name[TQ_CKPT_MAX_NAME + 1];
        memcpy(name, s->name, s->name_len);
        name[s->name_len] = '\0';
        if (strlen(name) != s->name_len) continue; /* a NUL inside: no C string names it */
        int64_t nf = -1, ni = -1, ns = -1;
        const float *f = tq_ckpt_get_f32(c, name, &nf);
        const int64_t *v = tq_ckpt_get_i64(c, name, &ni);
        const char *str = tq_ckpt_get_str(c, name, &ns);
        FUZZ_CHECK((f != NULL) == (s->type == TQ_CKPT_F32));
        FUZZ_CHECK((v != NULL) == (s->type == TQ_CKPT_I64));
        FUZZ_CHECK((str != NULL) == (s->type == TQ_CKPT_STR));
        tq_error err = {0};
        if (f) {
            FUZZ_CHECK(nf == (int64_t)s->count && ((uintptr_t)f & 3) == 0);
            FUZZ_CHECK(memcmp(f, s->payload, s->count * 4) == 0);
            bool finite = true;
            for (uint64_t k = 0; k < s->count; k++) finite = finite && isfinite(f[k]);
            const float *r = tq_ckpt_require_f32(c, name, nf, &err);
            FUZZ_CHECK((r != NULL) == finite);
            if (!r) fuzz_check_error(err.status, &err, "checkpoint ");
            tq_error wrong = {0};
            FUZZ_CHECK(tq_ckpt_require_f32(c, name, nf + 1, &wrong) == NULL);
            FUZZ_CHECK(tq_ckpt_require_i64(c, name, -1, &wrong) == NULL);
        } else if (v) {
            FUZZ_CHECK(ni == (int64_t)s->count && ((uintptr_t)v & 7) == 0);
            FUZZ_CHECK(memcmp(v, s->payload, s->count * 8) == 0);
            FUZZ_CHECK(tq_ckpt_require_i64(c, name, -1, &err) == v);
            FUZZ_CHECK(tq_ckpt_require_f32(c, name, -1, &err) == NULL);
        } else {
            FUZZ_CHECK(ns == (int64_t)s->count && str[ns] == '\0');
            FUZZ_CHECK(memcmp(str, s->payload, s->count) == 0);
        }
    }
    int64_t none = -1;
    FUZZ_CHECK(tq_ckpt_get_f32(c, "", &none) == NULL && none == 0);
}

static void check_file(const char *path, const uint8_t *data, size_t size)
{
    static ref_section sec[MAX_SECTIONS];
    fuzz_write(path, data, size);
    long n = ref_walk(data, size, sec);
    tq_error err = {0};
    tq_ckpt *c = tq_ckpt_load(path, &err);
    bool container_ok = c != NULL;
    if (!c) {
        fuzz_check_error(err.status, &err, "checkpoint ");
        FUZZ_CHECK(n < 0);
    } else {
        FUZZ_CHECK(n != -1);
        if (n >= 0) check_sections(c, sec, n);
        tq_ckpt_free(c);
    }

    tq_run run;
    tq_error run_err = {0};
    tq_status st = tq_run_load(path, &run, &run_err);
    if (st != TQ_STATUS_OK) {
        fuzz_check_error(st, &run_err, "checkpoint ");
        return;
    }
    FUZZ_CHECK(container_ok && run.model != NULL);
    int32_t ch, h, w, classes;
    tq_model_input(run.model, &ch, &h, &w, &classes);
    FUZZ_CHECK(ch >= 1 && h >= 1 && w >= 1 && classes >= 1);
    FUZZ_CHECK(run.batch >= 1 && run.epoch >= 0);
    tq_run_free(&run);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[256];
    if (!path[0]) fuzz_path(path, sizeof path, "input.tqc");
    check_file(path, data, size);
    if (size < HEADER + TRAILER) return 0;
    uint8_t *fixed = malloc(size);
    FUZZ_CHECK(fixed != NULL);
    memcpy(fixed, data, size);
    for (int i = 0; i < 8; i++) fixed[16 + i] = (uint8_t)((uint64_t)size >> (8 * i));
    uint32_t crc = (uint32_t)crc32(0L, fixed, (uInt)(size - TRAILER));
    for (int i = 0; i < 4; i++) fixed[size - TRAILER + i] = (uint8_t)(crc >> (8 * i));
    check_file(path, fixed, size);
    free(fixed);
    return 0;
}
