/* The checkpoint container: an atomic writer (temporary file, fsync, rename, directory
 * fsync) and a loader that validates magic, version, size, CRC-32 and every section. */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static const unsigned char magic[8] = {'T', 'Q', 'C', 'K', 'P', 'T', 0, 0};
enum { HEADER_BYTES = 24, TRAILER_BYTES = 4, SECTION_FIXED_BYTES = 16 };

static bool host_is_le(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void swap_bytes(unsigned char *p, size_t elem, size_t count)
{
    for (size_t k = 0; k < count; k++, p += elem)
        for (size_t i = 0; i < elem / 2; i++) {
            unsigned char t = p[i];
            p[i] = p[elem - 1 - i];
            p[elem - 1 - i] = t;
        }
}

/* zlib's length argument is 32-bit: feed large buffers in pieces. */
static uLong crc_update(uLong crc, const unsigned char *p, size_t n)
{
    while (n > 0) {
        uInt piece = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, piece);
        p += piece;
        n -= piece;
    }
    return crc;
}

static size_t elem_size(tq_ckpt_type type) { return type == TQ_CKPT_I64 ? 8 : type == TQ_CKPT_F32 ? 4 : 1; }

static const char *type_name(tq_ckpt_type type)
{
    switch (type) {
    case TQ_CKPT_F32: return "float32";
    case TQ_CKPT_I64: return "int64";
    case TQ_CKPT_STR: return "string";
    }
    return "unknown";
}

static char *str_printf(const char *a, const char *b, long n)
{
    size_t len = strlen(a) + strlen(b) + 24;
    char *s = malloc(len);
    if (s) snprintf(s, len, "%s%s%ld", a, b, n);
    return s;
}

/* The directory holding path ("." for a bare name), for the directory fsync and messages. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, path, len);
        d[len] = '\0';
    }
    return d;
}

static bool is_directory(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---------------------------------------------------------------- writer */

struct tq_ckpt_writer {
    FILE *f;
    char *path, *tmp;
    uint64_t offset; /* bytes written, header included */
    uLong crc_body;  /* CRC of everything after the header; the header is written last */
    uint32_t n_sections;
    char **names;
    tq_error err;
};

tq_ckpt_writer *tq_ckpt_begin(const char *path, tq_error *err)
{
    if (!path || !*path) {
        tq_fail(err, TQ_STATUS_ARG, "checkpoint: empty path");
        return NULL;
    }
    if (is_directory(path)) {
        tq_fail(err, TQ_STATUS_IO, "checkpoint %s: is a directory (expected a file path)", path);
        return NULL;
    }
    tq_ckpt_writer *w = calloc(1, sizeof *w);
    if (w) {
        w->path = strdup(path);
        w->tmp = str_printf(path, ".tmp.", (long)getpid());
    }
    if (!w || !w->path || !w->tmp) {
        tq_fail(err, TQ_STATUS_NOMEM, "checkpoint %s: out of memory", path);
        goto fail;
    }
    int fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0 || !(w->f = fdopen(fd, "wb"))) {
        tq_fail(err, TQ_STATUS_IO, "checkpoint %s: cannot create %s: %s", path, w->tmp,
                strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(w->tmp);
        }
        goto fail;
    }
    /* placeholder: the section count and size are known only at commit */
    unsigned char zero[HEADER_BYTES] = {0};
    if (fwrite(zero, 1, sizeof zero, w->f) != sizeof zero) {
        tq_fail(err, TQ_STATUS_IO, "checkpoint %s: write failed on %s: %s", path, w->tmp,
                strerror(errno));
        tq_ckpt_abort(w);
        return NULL;
    }
    w->offset = HEADER_BYTES;
    w->crc_body = crc32(0L, Z_NULL, 0);
    return w;
fail:
    if (w) {
        free(w->path);
        free(w->tmp);
        free(w);
    }
    return NULL;
}

static void write_bytes(tq_ckpt_writer *w, const void *data, size_t n)
{
    if (w->err.status != TQ_STATUS_OK || n == 0) return;
    errno = 0;
    if (fwrite(data, 1, n, w->f) != n) {
        tq_fail(&w->err, TQ_STATUS_IO, "checkpoint %s: write failed on %s: %s", w->path, w->tmp,
                errno ? strerror(errno) : "short write");
        return;
    }
    w->crc_body = crc_update(w->crc_body, data, n);
    w->offset += n;
}

/* Payloads go out little-endian; a big-endian host swaps a chunk at a time. */
static void write_elems(tq_ckpt_writer *w, const void *data, size_t elem, size_t count)
{
    if (host_is_le() || elem == 1) {
        write_bytes(w, data, elem * count);
        return;
    }
    unsigned char chunk[4096];
    const unsigned char *src = data;
    for (size_t done = 0; done < count;) {
        size_t k = count - done < sizeof chunk / elem ? count - done : sizeof chunk / elem;
        memcpy(chunk, src + done * elem, k * elem);
        swap_bytes(chunk, elem, k);
        write_bytes(w, chunk, k * elem);
        done += k;
    }
}

static tq_status bad_put(tq_ckpt_writer *w, const char *name, const char *what)
{
    return tq_fail(&w->err, TQ_STATUS_ARG, "checkpoint %s: section '%s': %s", w->path,
                   name ? name : "(null)", what);
}

tq_status tq_ckpt_put(tq_ckpt_writer *w, const char *name, tq_ckpt_type type, const void *data,
                      int64_t count)
{
    TQ_ASSERT(w);
    if (w->err.status != TQ_STATUS_OK) return w->err.status;
    size_t name_len = name ? strlen(name) : 0;
    if (name_len < 1 || name_len > TQ_CKPT_MAX_NAME)
        return bad_put(w, name, "name must be 1..255 bytes");
    if (type != TQ_CKPT_F32 && type != TQ_CKPT_I64 && type != TQ_CKPT_STR)
        return bad_put(w, name, "unknown type (expected float32, int64 or string)");
    if (count < 0 || (count > 0 && !data) || (uint64_t)count > (UINT64_MAX >> 4))
        return bad_put(w, name, "count must be >= 0 with data for every element");
    for (uint32_t i = 0; i < w->n_sections; i++)
        if (strcmp(w->names[i], name) == 0) return bad_put(w, name, "duplicate name");
    char **names = realloc(w->names, (w->n_sections + 1) * sizeof *names);
    if (names) w->names = names;
    if (!names || !(names[w->n_sections] = strdup(name)))
        return tq_fail(&w->err, TQ_STATUS_NOMEM, "checkpoint %s: out of memory", w->path);
    w->n_sections++;

    unsigned char head[4 + TQ_CKPT_MAX_NAME + 12 + 8];
    size_t h = 0;
    put_u32(head, (uint32_t)name_len);
    memcpy(head + 4, name, name_len);
    h = 4 + name_len;
    put_u32(head + h, (uint32_t)type);
    put_u64(head + h + 4, (uint64_t)count);
    h += 12;
    size_t pad = (size_t)((8 - (w->offset + h) % 8) % 8);
    memset(head + h, 0, pad);
    write_bytes(w, head, h + pad);
    write_elems(w, data, elem_size(type), (size_t)count);
    if (type == TQ_CKPT_STR) write_bytes(w, "", 1);
    return w->err.status;
}

tq_status tq_ckpt_put_str(tq_ckpt_writer *w, const char *name, const char *s)
{
    return tq_ckpt_put(w, name, TQ_CKPT_STR, s, s ? (int64_t)strlen(s) : 0);
}

void tq_ckpt_abort(tq_ckpt_writer *w)
{
    if (!w) return;
    if (w->f) fclose(w->f);
    if (w->tmp) unlink(w->tmp);
    for (uint32_t i = 0; i < w->n_sections; i++) free(w->names[i]);
    free(w->names);
    free(w->path);
    free(w->tmp);
    free(w);
}

static tq_status fsync_dir(const char *path, tq_error *err)
{
    char *dir = dir_of(path);
    if (!dir) return tq_fail(err, TQ_STATUS_NOMEM, "checkpoint %s: out of memory", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    /* some file systems cannot sync a directory (EINVAL): the rename stands regardless */
    tq_status st = TQ_STATUS_OK;
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL))
        st = tq_fail(err, TQ_STATUS_IO, "checkpoint %s: cannot sync directory %s: %s", path, dir,
                     strerror(errno));
    if (fd >= 0) close(fd);
    free(dir);
    return st;
}

tq_status tq_ckpt_commit(tq_ckpt_writer *w, tq_error *err)
{
    TQ_ASSERT(w);
    unsigned char header[HEADER_BYTES], trailer[TRAILER_BYTES];
    memcpy(header, magic, sizeof magic);
    put_u32(header + 8, TQ_CKPT_VERSION);
    put_u32(header + 12, w->n_sections);
    put_u64(header + 16, w->offset + TRAILER_BYTES);
    uLong crc = crc32_combine(crc32(0L, header, HEADER_BYTES), w->crc_body,
                              (z_off_t)(w->offset - HEADER_BYTES));
    put_u32(trailer, (uint32_t)crc);

    if (w->err.status == TQ_STATUS_OK) {
        errno = 0;
        if (fwrite(trailer, 1, sizeof trailer, w->f) != sizeof trailer ||
            fseek(w->f, 0, SEEK_SET) != 0 ||
            fwrite(header, 1, sizeof header, w->f) != sizeof header || fflush(w->f) != 0 ||
            fsync(fileno(w->f)) != 0)
            tq_fail(&w->err, TQ_STATUS_IO, "checkpoint %s: write failed on %s: %s", w->path,
                    w->tmp, errno ? strerror(errno) : "short write");
    }
    if (w->err.status == TQ_STATUS_OK) {
        FILE *f = w->f;
        w->f = NULL;
        if (fclose(f) != 0)
            tq_fail(&w->err, TQ_STATUS_IO, "checkpoint %s: close failed on %s: %s", w->path,
                    w->tmp, strerror(errno));
    }
    if (w->err.status == TQ_STATUS_OK && rename(w->tmp, w->path) != 0)
        tq_fail(&w->err, TQ_STATUS_IO, "checkpoint %s: cannot rename %s over it: %s", w->path,
                w->tmp, strerror(errno));
    tq_status st = w->err.status;
    if (st != TQ_STATUS_OK) {
        tq_fail(err, st, "%s", w->err.msg);
        tq_ckpt_abort(w); /* removes the temporary file; path is untouched */
        return st;
    }
    st = fsync_dir(w->path, err);
    free(w->tmp);
    w->tmp = NULL; /* renamed: nothing to unlink */
    tq_ckpt_abort(w);
    return st;
}

tq_status tq_check_writable(const char *path, const char *what, tq_error *err)
{
    if (!what) what = "output";
    if (!path || !*path) return tq_fail(err, TQ_STATUS_ARG, "%s: empty path", what);
    if (is_directory(path))
        return tq_fail(err, TQ_STATUS_IO, "%s %s: is a directory (expected a file path)", what,
                       path);
    char *probe = str_printf(path, ".probe.", (long)getpid());
    char *dir = dir_of(path);
    tq_status st = TQ_STATUS_OK;
    if (!probe || !dir) {
        st = tq_fail(err, TQ_STATUS_NOMEM, "%s %s: out of memory", what, path);
    } else {
        int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0) {
            st = tq_fail(err, TQ_STATUS_IO, "%s %s: cannot create files in %s: %s", what, path,
                         dir, strerror(errno));
        } else {
            close(fd);
            unlink(probe);
        }
    }
    free(probe);
    free(dir);
    return st;
}

tq_status tq_ckpt_check_writable(const char *path, tq_error *err)
{
    return tq_check_writable(path, "checkpoint", err);
}

/* ---------------------------------------------------------------- reader */

typedef struct tq_ckpt_section {
    const char *name; /* not NUL-terminated: name_len bytes in the file image */
    uint32_t name_len;
    tq_ckpt_type type;
    int64_t count;
    unsigned char *data;
} tq_ckpt_section;

struct tq_ckpt {
    char *path;
    unsigned char *buf; /* the whole file; malloc alignment keeps payloads 8-aligned */
    size_t size;
    uint32_t n;
    tq_ckpt_section *sec;
};

void tq_ckpt_free(tq_ckpt *c)
{
    if (!c) return;
    free(c->path);
    free(c->buf);
    free(c->sec);
    free(c);
}

static tq_status read_all(tq_ckpt *c, tq_error *err)
{
    int fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tq_fail(err, TQ_STATUS_IO, "checkpoint %s: cannot open: %s", c->path,
                       strerror(errno));
    struct stat st;
    tq_status s = TQ_STATUS_OK;
    if (fstat(fd, &st) != 0)
        s = tq_fail(err, TQ_STATUS_IO, "checkpoint %s: %s", c->path, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        s = tq_fail(err, TQ_STATUS_IO, "checkpoint %s: is a directory (expected a file)", c->path);
    else if (!S_ISREG(st.st_mode))
        s = tq_fail(err, TQ_STATUS_IO, "checkpoint %s: not a regular file", c->path);
    else if (!(c->buf = malloc((size_t)st.st_size + 1)))
        s = tq_fail(err, TQ_STATUS_NOMEM, "checkpoint %s: out of memory for %lld bytes", c->path,
                    (long long)st.st_size);
    c->size = 0;
    while (s == TQ_STATUS_OK && c->size < (size_t)st.st_size) {
        ssize_t r = read(fd, c->buf + c->size, (size_t)st.st_size - c->size);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0)
            s = tq_fail(err, TQ_STATUS_IO, "checkpoint %s: read failed: %s", c->path,
                        strerror(errno));
        else if (r == 0)
            break; /* shrank while reading: the size checks below report it */
        else
            c->size += (size_t)r;
    }
    close(fd);
    return s;
}

static tq_status check_header(tq_ckpt *c, tq_error *err)
{
    const unsigned char *b = c->buf;
    size_t m = c->size < sizeof magic ? c->size : sizeof magic;
    if (memcmp(b, magic, m) != 0)
        return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: bad magic (not a tinyqat checkpoint)",
                       c->path);
    if (c->size < HEADER_BYTES + TRAILER_BYTES)
        return tq_fail(err, TQ_STATUS_FORMAT,
                       "checkpoint %s: truncated: %zu bytes (a checkpoint has at least %d)",
                       c->path, c->size, HEADER_BYTES + TRAILER_BYTES);
    uint32_t version = get_u32(b + 8);
    if (version > TQ_CKPT_VERSION)
        return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: version %u is newer than supported %u",
                       c->path, version, TQ_CKPT_VERSION);
    if (version == 0)
        return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: bad version 0 (expected 1..%u)",
                       c->path, TQ_CKPT_VERSION);
    uint64_t declared = get_u64(b + 16);
    if (c->size < declared)
        return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: truncated: %zu of %llu bytes",
                       c->path, c->size, (unsigned long long)declared);
    if (c->size > declared)
        return tq_fail(err, TQ_STATUS_FORMAT,
                       "checkpoint %s: size mismatch: %zu bytes, header says %llu", c->path,
                       c->size, (unsigned long long)declared);
    uint32_t stored = get_u32(b + c->size - TRAILER_BYTES);
    uint32_t actual = (uint32_t)crc_update(crc32(0L, Z_NULL, 0), b, c->size - TRAILER_BYTES);
    if (stored != actual)
        return tq_fail(err, TQ_STATUS_FORMAT,
                       "checkpoint %s: checksum mismatch (stored 0x%08x, computed 0x%08x)",
                       c->path, stored, actual);
    return TQ_STATUS_OK;
}

/* The checksum guards against damage; these checks guard against a well-formed file that
 * lies about its layout, so no section can point outside the image. */
static tq_status parse_sections(tq_ckpt *c, tq_error *err)
{
    const size_t end = c->size - TRAILER_BYTES;
    uint32_t n = get_u32(c->buf + 12);
    if (n > (end - HEADER_BYTES) / SECTION_FIXED_BYTES)
        return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: %u sections cannot fit in %zu bytes",
                       c->path, n, c->size);
    c->sec = calloc(n ? n : 1, sizeof *c->sec);
    if (!c->sec) return tq_fail(err, TQ_STATUS_NOMEM, "checkpoint %s: out of memory", c->path);
    size_t off = HEADER_BYTES;
    for (uint32_t i = 0; i < n; i++) {
        tq_ckpt_section *s = &c->sec[i];
        if (end - off < 4 || (s->name_len = get_u32(c->buf + off)) > end - off - 4 ||
            end - off - 4 - s->name_len < 12)
            return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: section %u truncated", c->path, i);
        if (s->name_len < 1 || s->name_len > TQ_CKPT_MAX_NAME)
            return tq_fail(err, TQ_STATUS_FORMAT,
                           "checkpoint %s: section %u: name of %u bytes (expected 1..%d)",
                           c->path, i, s->name_len, TQ_CKPT_MAX_NAME);
        s->name = (const char *)c->buf + off + 4;
        off += 4 + s->name_len;
        uint32_t type = get_u32(c->buf + off);
        uint64_t count = get_u64(c->buf + off + 4);
        off += 12;
        int nl = (int)s->name_len;
        if (type != TQ_CKPT_F32 && type != TQ_CKPT_I64 && type != TQ_CKPT_STR)
            return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: section '%.*s': unknown type %u",
                           c->path, nl, s->name, type);
        s->type = (tq_ckpt_type)type;
        size_t pad = (8 - off % 8) % 8, elem = elem_size(s->type);
        uint64_t extra = s->type == TQ_CKPT_STR ? 1 : 0;
        if (end - off < pad || count > (end - off - pad) / elem ||
            count * elem + extra > end - off - pad)
            return tq_fail(err, TQ_STATUS_FORMAT,
                           "checkpoint %s: section '%.*s' truncated (%llu %s values)", c->path,
                           nl, s->name, (unsigned long long)count, type_name(s->type));
        for (size_t k = 0; k < pad; k++)
            if (c->buf[off + k] != 0)
                return tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: section '%.*s': bad padding",
                               c->path, nl, s->name);
        off += pad;
        s->count = (int64_t)count;
        s->data = c->buf + off;
        off += count * elem + extra;
        if (extra && c->buf[off - 1] != 0)
            return tq_fail(err, TQ_STATUS_FORMAT,
                           "checkpoint %s: section '%.*s': string without its NUL", c->path, nl,
                           s->name);
        for (uint32_t j = 0; j < i; j++)
            if (c->sec[j].name_len == s->name_len && memcmp(c->sec[j].name, s->name, nl) == 0)
                return tq_fail(err, TQ_STATUS_FORMAT,
                               "checkpoint %s: duplicate section '%.*s'", c->path, nl, s->name);
        c->n = i + 1;
    }
    if (off != end)
        return tq_fail(err, TQ_STATUS_FORMAT,
                       "checkpoint %s: %zu unexpected bytes after the last section", c->path,
                       end - off);
    if (!host_is_le())
        for (uint32_t i = 0; i < n; i++)
            swap_bytes(c->sec[i].data, elem_size(c->sec[i].type), (size_t)c->sec[i].count);
    return TQ_STATUS_OK;
}

tq_ckpt *tq_ckpt_load(const char *path, tq_error *err)
{
    if (!path || !*path) {
        tq_fail(err, TQ_STATUS_ARG, "checkpoint: empty path");
        return NULL;
    }
    tq_ckpt *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(path))) {
        tq_fail(err, TQ_STATUS_NOMEM, "checkpoint %s: out of memory", path);
        tq_ckpt_free(c);
        return NULL;
    }
    if (read_all(c, err) != TQ_STATUS_OK || check_header(c, err) != TQ_STATUS_OK ||
        parse_sections(c, err) != TQ_STATUS_OK) {
        tq_ckpt_free(c);
        return NULL;
    }
    return c;
}

int tq_ckpt_section_count(const tq_ckpt *c) { return (int)c->n; }

const void *tq_ckpt_section_at(const tq_ckpt *c, int i, char *name, size_t cap,
                               tq_ckpt_type *type, int64_t *count)
{
    if (i < 0 || (uint32_t)i >= c->n || c->sec[i].name_len >= cap) return NULL;
    const tq_ckpt_section *s = &c->sec[i];
    memcpy(name, s->name, s->name_len);
    name[s->name_len] = '\0';
    if (type) *type = s->type;
    if (count) *count = s->count;
    return s->data;
}

static const tq_ckpt_section *find(const tq_ckpt *c, const char *name)
{
    size_t len = strlen(name);
    for (uint32_t i = 0; i < c->n; i++)
        if (c->sec[i].name_len == len && memcmp(c->sec[i].name, name, len) == 0) return &c->sec[i];
    return NULL;
}

static const void *get(const tq_ckpt *c, const char *name, tq_ckpt_type type, int64_t *count)
{
    const tq_ckpt_section *s = find(c, name);
    bool ok = s && s->type == type;
    if (count) *count = ok ? s->count : 0;
    return ok ? s->data : NULL;
}

const float *tq_ckpt_get_f32(const tq_ckpt *c, const char *name, int64_t *count)
{
    return get(c, name, TQ_CKPT_F32, count);
}
const int64_t *tq_ckpt_get_i64(const tq_ckpt *c, const char *name, int64_t *count)
{
    return get(c, name, TQ_CKPT_I64, count);
}
const char *tq_ckpt_get_str(const tq_ckpt *c, const char *name, int64_t *count)
{
    return get(c, name, TQ_CKPT_STR, count);
}

static const void *require(const tq_ckpt *c, const char *name, tq_ckpt_type type,
                           int64_t expected, tq_error *err)
{
    const tq_ckpt_section *s = find(c, name);
    if (!s) {
        tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: missing section '%s'", c->path, name);
        return NULL;
    }
    if (s->type != type) {
        tq_fail(err, TQ_STATUS_FORMAT, "checkpoint %s: section '%s' holds %s, expected %s",
                c->path, name, type_name(s->type), type_name(type));
        return NULL;
    }
    if (expected >= 0 && s->count != expected) {
        tq_fail(err, TQ_STATUS_SHAPE, "checkpoint %s: section '%s' has %lld values, expected %lld",
                c->path, name, (long long)s->count, (long long)expected);
        return NULL;
    }
    return s->data;
}

const float *tq_ckpt_require_f32(const tq_ckpt *c, const char *name, int64_t expected_count,
                                 tq_error *err)
{
    const float *v = require(c, name, TQ_CKPT_F32, expected_count, err);
    if (!v) return NULL;
    int64_t n;
    get(c, name, TQ_CKPT_F32, &n);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            tq_fail(err, TQ_STATUS_NUMERIC,
                    "checkpoint %s: section '%s' holds a non-finite value (%g at index %lld)",
                    c->path, name, (double)v[i], (long long)i);
            return NULL;
        }
    return v;
}

const int64_t *tq_ckpt_require_i64(const tq_ckpt *c, const char *name, int64_t expected_count,
                                   tq_error *err)
{
    return require(c, name, TQ_CKPT_I64, expected_count, err);
}
