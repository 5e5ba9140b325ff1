/* Private to data/: one PNG decoded into 8-bit interleaved (HWC) grey or RGB pixels. */
#ifndef TINYQAT_PNG_READ_H
#define TINYQAT_PNG_READ_H

#include "data_internal.h"

#define TQ_PNG_MAX_SIDE TQ_DATA_MAX_SIDE

typedef struct tq_png_image {
    int32_t w, h, c; /* c is 1 (grey) or 3 (RGB) */
    uint8_t *pixels; /* h rows of w*c bytes */
} tq_png_image;

tq_status tq_png_read(const char *path, tq_png_image *img, tq_error *err);
void tq_png_free(tq_png_image *img);

#endif
