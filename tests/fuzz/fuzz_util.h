/* Shared by the fuzz targets: one scratch folder per process (removed at exit), writing
 * the input to files there (raw or gzipped), and checks that abort with a message. */
#ifndef TINYQAT_FUZZ_UTIL_H
#define TINYQAT_FUZZ_UTIL_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "autograd.h"

/* A failed oracle is a crash: libFuzzer and the replay driver both report an abort. */
#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* The scratch folder lives for the whole process so every input reuses the same paths
 * (creating a folder per input would dominate the run time). This is the only state a
 * target keeps between inputs. */
static char fuzz_dir_path[64];

static inline void fuzz_remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            size_t len = strlen(path) + strlen(e->d_name) + 2;
            char *sub = malloc(len);
            if (!sub) continue;
            snprintf(sub, len, "%s/%s", path, e->d_name);
            fuzz_remove_tree(sub);
            free(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static inline void fuzz_cleanup(void)
{
    if (fuzz_dir_path[0]) fuzz_remove_tree(fuzz_dir_path);
}

static inline const char *fuzz_dir(void)
{
    if (!fuzz_dir_path[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/tqfuzz.XXXXXX",
                 tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
        FUZZ_CHECK(mkdtemp(fuzz_dir_path) != NULL);
        atexit(fuzz_cleanup);
    }
    return fuzz_dir_path;
}

/* The path of `name` inside the scratch folder. */
static inline void fuzz_path(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", fuzz_dir(), name);
    FUZZ_CHECK(n > 0 && (size_t)n < cap);
}

static inline void fuzz_write(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(size == 0 || fwrite(data, 1, size, f) == size);
    FUZZ_CHECK(fclose(f) == 0);
}

static inline void fuzz_write_gz(const char *path, const uint8_t *data, size_t size)
{
    gzFile f = gzopen(path, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(size == 0 || gzwrite(f, data, (unsigned)size) == (int)size);
    FUZZ_CHECK(gzclose(f) == Z_OK);
}

/* A failure must say what failed: a status and a message starting with the loader's name. */
static inline void fuzz_check_error(tq_status st, const tq_error *err, const char *prefix)
{
    FUZZ_CHECK(st != TQ_STATUS_OK);
    FUZZ_CHECK(err->status == st);
    FUZZ_CHECK(strncmp(err->msg, prefix, strlen(prefix)) == 0);
}

#endif
