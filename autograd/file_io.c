/* Whole-file writes that never leave a half-written file behind: a temporary file in the
 * same directory, fsync, rename. Every module that saves a file goes through this. */
#include "autograd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

tq_status tq_write_file_atomic(const char *path, const void *data, size_t len, tq_error *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return tq_fail(err, TQ_STATUS_ARG, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return tq_fail(err, TQ_STATUS_IO, "%s: cannot create: %s", path, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return tq_fail(err, TQ_STATUS_IO, "%s: write failed: %s", path, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return tq_fail(err, TQ_STATUS_IO, "%s: write failed: %s", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return tq_fail(err, TQ_STATUS_IO, "%s: cannot replace: %s", path, strerror(e));
    }
    return TQ_STATUS_OK;
}
