/* Reading one PNG through libpng into 8-bit grey or RGB pixels: palettes expand to RGB,
 * alpha is dropped and 16-bit samples are scaled (rounded) to 8 bits. */
#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "png_read.h"

/* Everything a longjmp out of libpng must release lives here rather than in locals, so
 * nothing depends on the value of an automatic variable after setjmp returns twice. */
typedef struct png_reader {
    FILE *file;
    png_structp png;
    png_infop info;
    png_bytep *rows;
    uint64_t file_size;
    char msg[200];
} png_reader;

static void on_png_error(png_structp png, png_const_charp msg)
{
    png_reader *r = png_get_error_ptr(png);
    snprintf(r->msg, sizeof r->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    /* Warnings (e.g. a bad gamma chunk) do not affect the pixels: keep stderr quiet. */
    (void)png;
    (void)msg;
}

static void reader_close(png_reader *r)
{
    if (r->png) png_destroy_read_struct(&r->png, r->info ? &r->info : NULL, NULL);
    free(r->rows);
    if (r->file) fclose(r->file);
    memset(r, 0, sizeof *r);
}

/* The part that runs under setjmp; returns false after a libpng error. */
static bool decode(png_reader *r, tq_png_image *img)
{
    if (setjmp(png_jmpbuf(r->png))) return false;
    png_init_io(r->png, r->file);
    png_set_sig_bytes(r->png, 8);
    png_read_info(r->png, r->info);
    png_uint_32 w = png_get_image_width(r->png, r->info);
    png_uint_32 h = png_get_image_height(r->png, r->info);
    int color = png_get_color_type(r->png, r->info);
    int depth = png_get_bit_depth(r->png, r->info);
    if (w > TQ_PNG_MAX_SIDE || h > TQ_PNG_MAX_SIDE) {
        snprintf(r->msg, sizeof r->msg, "absurd size %ux%u (expected sides <= %d)",
                 (unsigned)w, (unsigned)h, TQ_PNG_MAX_SIDE);
        return false;
    }
    /* Deflate expands at most 1032:1, so a header whose pixels could not fit in the file
     * is corrupt: rejecting it here keeps a few bytes from reserving gigabytes. */
    uint64_t packed = ((uint64_t)w * png_get_channels(r->png, r->info) * (uint64_t)depth + 7) / 8;
    if (packed * h / 1032 > r->file_size) {
        snprintf(r->msg, sizeof r->msg,
                 "%ux%u image cannot fit in a %llu-byte file (truncated or corrupt)", (unsigned)w,
                 (unsigned)h, (unsigned long long)r->file_size);
        return false;
    }
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r->png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(r->png);
    if (depth == 16) png_set_scale_16(r->png);
    /* Expanding a palette also turns its tRNS chunk into an alpha channel. */
    if ((color & PNG_COLOR_MASK_ALPHA) || png_get_valid(r->png, r->info, PNG_INFO_tRNS))
        png_set_strip_alpha(r->png);
    png_read_update_info(r->png, r->info);
    int channels = png_get_channels(r->png, r->info);
    size_t rowbytes = png_get_rowbytes(r->png, r->info);
    if ((channels != 1 && channels != 3) || rowbytes != (size_t)w * (size_t)channels) {
        snprintf(r->msg, sizeof r->msg, "unsupported layout (%d channels, %zu bytes per row)",
                 channels, rowbytes);
        return false;
    }
    img->pixels = malloc((size_t)h * rowbytes);
    r->rows = malloc((size_t)h * sizeof *r->rows);
    if (!img->pixels || !r->rows) {
        snprintf(r->msg, sizeof r->msg, "out of memory");
        return false;
    }
    for (png_uint_32 y = 0; y < h; y++) r->rows[y] = img->pixels + (size_t)y * rowbytes;
    png_read_image(r->png, r->rows);
    png_read_end(r->png, NULL);
    img->w = (int32_t)w;
    img->h = (int32_t)h;
    img->c = channels;
    return true;
}

tq_status tq_png_read(const char *path, tq_png_image *img, tq_error *err)
{
    memset(img, 0, sizeof *img);
    png_reader r = {0};
    r.file = fopen(path, "rb");
    if (!r.file)
        return tq_fail(err, TQ_STATUS_IO, "pngdir: %s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(r.file), &sb) == 0) r.file_size = (uint64_t)sb.st_size;
    uint8_t sig[8];
    if (fread(sig, 1, sizeof sig, r.file) != sizeof sig || png_sig_cmp(sig, 0, sizeof sig)) {
        reader_close(&r);
        return tq_fail(err, TQ_STATUS_FORMAT, "pngdir: %s: not a PNG file", path);
    }
    r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, on_png_error, on_png_warning);
    if (r.png) r.info = png_create_info_struct(r.png);
    if (!r.png || !r.info) {
        reader_close(&r);
        return tq_fail(err, TQ_STATUS_NOMEM, "pngdir: %s: out of memory", path);
    }
    bool ok = decode(&r, img);
    if (!ok) {
        tq_status st = tq_fail(err, TQ_STATUS_FORMAT, "pngdir: %s: %s", path, r.msg);
        reader_close(&r);
        tq_png_free(img);
        return st;
    }
    reader_close(&r);
    return TQ_STATUS_OK;
}

void tq_png_free(tq_png_image *img)
{
    free(img->pixels);
    memset(img, 0, sizeof *img);
}
