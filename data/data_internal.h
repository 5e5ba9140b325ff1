/* Private helpers shared by the loaders of data/ (not installed): dataset allocation and
 * checked sizes. */
#ifndef TINYQAT_DATA_INTERNAL_H
#define TINYQAT_DATA_INTERNAL_H

#include "data.h"

/* Largest image side any loader accepts; anything bigger is a corrupt header. */
#define TQ_DATA_MAX_SIDE 65536

/* Allocates out's buffers for n images of (c,h,w) after checking that the sizes are sane
 * and their product fits; `who` and `path` name the source in messages. On failure out
 * is left empty. */
tq_status tq_dataset_alloc(tq_dataset *out, int64_t n, int32_t c, int32_t h, int32_t w,
                           int32_t classes, const char *who, const char *path, tq_error *err);

/* c*h*w bytes of one image. */
static inline size_t tq_dataset_image_bytes(const tq_dataset *d)
{
    return (size_t)d->c * (size_t)d->h * (size_t)d->w;
}

#endif
