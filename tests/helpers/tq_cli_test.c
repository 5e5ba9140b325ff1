/* Helpers for end-to-end tests of the `tinyqat` command (see tq_cli_test.h). */
#include "tq_cli_test.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"

char tq_cli_dir[256];
char tq_cli_path[1024];

void tq_cli_setup(void)
{
    snprintf(tq_cli_dir, sizeof tq_cli_dir, "/tmp/tq_cli_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tq_cli_dir));
    const char *build = getenv("TQ_BUILD_DIR");
    if (!build) build = ".";
    snprintf(tq_cli_path, sizeof tq_cli_path, "%s/tinyqat", build);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s/make_bars %s 120 3", build, tq_cli_dir);
    ck_assert_int_eq(system(cmd), 0);
}

void tq_cli_teardown(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tq_cli_dir);
    ck_assert_int_eq(system(cmd), 0);
}

int tq_cli_run(char *out, size_t cap, const char *fmt, ...)
{
    char args[4096], cmd[4096 + 1400];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    ck_assert_msg(n >= 0 && (size_t)n < sizeof args, "command too long: %s", fmt);
    snprintf(cmd, sizeof cmd, "cd %s && TQ=%s && { %s ; } 2>&1", tq_cli_dir, tq_cli_path, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t len = fread(out, 1, cap - 1, p);
    out[len] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

bool tq_cli_file_exists(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tq_cli_dir, name);
    return access(path, F_OK) == 0;
}

int tq_cli_count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

void tq_cli_make_bars(const char *sub, const char *args)
{
    const char *build = getenv("TQ_BUILD_DIR");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/%s && %s/make_bars %s/%s %s", tq_cli_dir, sub,
             build ? build : ".", tq_cli_dir, sub, args);
    ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
}

double tq_cli_accuracy(const char *out)
{
    const char *s = strstr(out, "accuracy: "), *last = NULL;
    for (; s; s = strstr(s + 1, "accuracy: ")) last = s;
    return last ? atof(last + 10) : -1;
}

static tq_ckpt *load(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tq_cli_dir, name);
    tq_error err = {0};
    tq_ckpt *c = tq_ckpt_load(path, &err);
    ck_assert_msg(c != NULL, "%s", err.msg);
    return c;
}

/* Whether every section of a is in b with the same type, count and bytes; the first that
 * is not into buf. */
static bool contained(const tq_ckpt *a, const tq_ckpt *b, char *buf, size_t cap)
{
    for (int i = 0; i < tq_ckpt_section_count(a); i++) {
        char name[TQ_CKPT_MAX_NAME + 1], other[TQ_CKPT_MAX_NAME + 1];
        tq_ckpt_type ta, tb;
        int64_t na, nb;
        const void *da = tq_ckpt_section_at(a, i, name, sizeof name, &ta, &na), *db = NULL;
        ck_assert_ptr_nonnull(da);
        for (int j = 0; !db && j < tq_ckpt_section_count(b); j++) {
            const void *d = tq_ckpt_section_at(b, j, other, sizeof other, &tb, &nb);
            if (d && !strcmp(name, other)) db = d;
        }
        size_t size = ta == TQ_CKPT_STR ? 1 : ta == TQ_CKPT_I64 ? 8 : 4;
        if (!db || ta != tb || na != nb || memcmp(da, db, (size_t)na * size) != 0) {
            snprintf(buf, cap, "%s", name);
            return false;
        }
    }
    return true;
}

const char *tq_cli_ckpt_diff(const char *a, const char *b, char *buf, size_t cap)
{
    tq_ckpt *ca = load(a), *cb = load(b);
    bool same = contained(ca, cb, buf, cap) && contained(cb, ca, buf, cap);
    tq_ckpt_free(ca);
    tq_ckpt_free(cb);
    return same ? NULL : buf;
}

bool tq_cli_same_f32(const char *a, const char *b, const char *section)
{
    tq_ckpt *ca = load(a), *cb = load(b);
    int64_t na = 0, nb = 0;
    const float *xa = tq_ckpt_get_f32(ca, section, &na), *xb = tq_ckpt_get_f32(cb, section, &nb);
    bool same = xa && xb && na == nb && memcmp(xa, xb, (size_t)na * sizeof(float)) == 0;
    tq_ckpt_free(ca);
    tq_ckpt_free(cb);
    return same;
}

int64_t tq_cli_f32_count(const char *name, const char *section)
{
    tq_ckpt *c = load(name);
    int64_t n = 0;
    const float *x = tq_ckpt_get_f32(c, section, &n);
    tq_ckpt_free(c);
    return x ? n : -1;
}

void tq_cli_ckpt_perturb(const char *from, const char *to, const char *section, int64_t index,
                         float delta)
{
    tq_ckpt *c = load(from);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tq_cli_dir, to);
    tq_error err = {0};
    tq_ckpt_writer *w = tq_ckpt_begin(path, &err);
    ck_assert_msg(w != NULL, "%s", err.msg);
    bool perturbed = false;
    for (int i = 0; i < tq_ckpt_section_count(c); i++) {
        char name[TQ_CKPT_MAX_NAME + 1];
        tq_ckpt_type type;
        int64_t n;
        const void *data = tq_ckpt_section_at(c, i, name, sizeof name, &type, &n);
        ck_assert_ptr_nonnull(data);
        if (strcmp(name, section) != 0) {
            tq_ckpt_put(w, name, type, data, n);
            continue;
        }
        ck_assert_msg(type == TQ_CKPT_F32 && index >= 0 && index < n,
                      "%s: %s has no float value %lld", from, section, (long long)index);
        float *copy = malloc((size_t)n * sizeof(float));
        memcpy(copy, data, (size_t)n * sizeof(float));
        copy[index] += delta;
        ck_assert_msg(copy[index] != ((const float *)data)[index], "delta %g vanishes", (double)delta);
        tq_ckpt_put(w, name, type, copy, n);
        free(copy);
        perturbed = true;
    }
    ck_assert_msg(perturbed, "%s has no section %s", from, section);
    ck_assert_msg(tq_ckpt_commit(w, &err) == TQ_STATUS_OK, "%s", err.msg);
    tq_ckpt_free(c);
}

void tq_cli_interrupt_mid_epoch(char *out, size_t cap, const char *ckpt, const char *cmd,
                                long long *epoch, long long *batch)
{
    /* Fractions of the first epoch (from the start of the process to its checkpoint) to wait
     * after it: the next epoch takes about as long, so most land inside it. */
    const double fractions[] = {0.3, 0.1, 0.5, 0.2, 0.05, 0.7};
    for (size_t i = 0; i < sizeof fractions / sizeof *fractions; i++) {
        int rc = tq_cli_run(out, cap,
                            "rm -f %s; t0=$(date +%%s%%N); %s & pid=$!; "
                            "while [ ! -e %s ] && kill -0 $pid 2>/dev/null; do sleep 0.005; done; "
                            "t1=$(date +%%s%%N); "
                            "sleep $(awk -v a=$t0 -v b=$t1 'BEGIN { printf \"%%.3f\", (b - a) * %g / 1e9 }'); "
                            "kill -INT $pid; wait $pid",
                            ckpt, cmd, ckpt, fractions[i]);
        const char *line = strstr(out, "interrupted after epoch ");
        if (rc == 130 && line &&
            sscanf(line, "interrupted after epoch %lld, batch %lld", epoch, batch) == 2 &&
            *batch > 0)
            return;
        ck_assert_msg(rc == 0 || rc == 130, "the interrupted run failed (exit %d): %s", rc, out);
    }
    ck_abort_msg("SIGINT never landed in the middle of an epoch in six tries; the last: %s", out);
}
