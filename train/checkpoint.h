/* tinyqat checkpoint container: a versioned, checksummed binary file of named sections
 * (float32 arrays, int64 arrays, strings), written atomically and validated on load. */
#ifndef TINYQAT_CHECKPOINT_H
#define TINYQAT_CHECKPOINT_H

#include "autograd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* On disk, all integers little-endian:
 *   header   "TQCKPT\0\0" (8 bytes), u32 version, u32 section count, u64 file size
 *   section  u32 name length, name (no NUL), u32 type, u64 count,
 *            zero padding up to a multiple of 8 from the file start, payload
 *            (f32: 4*count bytes, i64: 8*count bytes, str: count bytes then a NUL)
 *   trailer  u32 CRC-32 (zlib) of every byte before it
 * Payloads start 8-byte aligned so a loaded file hands out aligned pointers. */
#define TQ_CKPT_VERSION 1u
#define TQ_CKPT_MAX_NAME 255

typedef enum tq_ckpt_type {
    TQ_CKPT_F32 = 1,
    TQ_CKPT_I64 = 2,
    TQ_CKPT_STR = 3, /* bytes; stored with a NUL after them so they read back as a string */
} tq_ckpt_type;

/* ---- writing */

typedef struct tq_ckpt_writer tq_ckpt_writer;

/* Starts writing to PATH.tmp.<pid> next to path; NULL with a message naming the file and
 * strerror when it cannot be created. Nothing at path changes until commit. */
tq_ckpt_writer *tq_ckpt_begin(const char *path, tq_error *err);
/* Appends a section: count elements of type (for TQ_CKPT_STR, count bytes). Names are
 * 1..TQ_CKPT_MAX_NAME bytes and unique. The first failure (bad argument, write error) is
 * kept and reported by commit; later puts do nothing. */
tq_status tq_ckpt_put(tq_ckpt_writer *w, const char *name, tq_ckpt_type type,
                      const void *data, int64_t count);
tq_status tq_ckpt_put_str(tq_ckpt_writer *w, const char *name, const char *s);
/* Writes the checksum, flushes and fsyncs the file, renames it over path and fsyncs the
 * directory. On any failure the temporary file is removed, the previous file at path is
 * left as it was, and err names the path and the cause. Frees w either way. */
tq_status tq_ckpt_commit(tq_ckpt_writer *w, tq_error *err);
/* Drops the temporary file; frees w. NULL is fine. */
void tq_ckpt_abort(tq_ckpt_writer *w);

/* Whether an output could be written to path (its directory exists and accepts a new file,
 * path is not a directory): creates and removes a probe file. `what` names the output in
 * the message ("JSON output", "CSV table", "ONNX model"...), so that a user told
 * "JSON output out: is a directory" knows which of the paths they gave is wrong. */
tq_status tq_check_writable(const char *path, const char *what, tq_error *err);
/* tq_check_writable for a checkpoint. */
tq_status tq_ckpt_check_writable(const char *path, tq_error *err);

/* ---- reading */

typedef struct tq_ckpt tq_ckpt;

/* Reads and validates the whole file: magic, version, size, checksum, the bounds and
 * padding of every section, unique names. NULL with a message naming the file otherwise. */
tq_ckpt *tq_ckpt_load(const char *path, tq_error *err);
void tq_ckpt_free(tq_ckpt *c);

int tq_ckpt_section_count(const tq_ckpt *c);
/* Section i (0 <= i < tq_ckpt_section_count), in file order: its name into name (cap bytes;
 * TQ_CKPT_MAX_NAME + 1 always suffice), its type and count, and its payload, valid until
 * tq_ckpt_free; NULL when i is out of range or the name does not fit. For copying a
 * checkpoint section by section (a tool that edits one value, a test that perturbs one). */
const void *tq_ckpt_section_at(const tq_ckpt *c, int i, char *name, size_t cap,
                               tq_ckpt_type *type, int64_t *count);
/* Pointers into the loaded file (valid until tq_ckpt_free), or NULL (count 0) when there
 * is no section of that name and type. _str's result is NUL-terminated; count excludes it. */
const float *tq_ckpt_get_f32(const tq_ckpt *c, const char *name, int64_t *count);
const int64_t *tq_ckpt_get_i64(const tq_ckpt *c, const char *name, int64_t *count);
const char *tq_ckpt_get_str(const tq_ckpt *c, const char *name, int64_t *count);
/* Like the getters, but a missing section, another type, a count other than
 * expected_count (any count when expected_count < 0) or, for floats, a NaN or infinity
 * is an error naming the file and the section. */
const float *tq_ckpt_require_f32(const tq_ckpt *c, const char *name, int64_t expected_count,
                                 tq_error *err);
const int64_t *tq_ckpt_require_i64(const tq_ckpt *c, const char *name, int64_t expected_count,
                                   tq_error *err);

#ifdef __cplusplus
}
#endif
#endif
