/* Raster pictures for the report: heat maps encoded as PNG in memory with libpng, and the
 * base64 that puts them inline in an SVG. */
#include "report.h"

#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

typedef struct membuf {
    uint8_t *data;
    size_t len, cap;
    bool oom;
} membuf;

static void write_mem(png_structp png, png_bytep data, png_size_t n)
{
    membuf *b = png_get_io_ptr(png);
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n) cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d) {
            b->oom = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

static void flush_mem(png_structp png) { (void)png; }

/* One value's colour: sequential white-to-blue, or diverging blue-white-red. */
static void colour(double v, double scale, bool diverging, uint8_t rgb[3])
{
    if (!isfinite(v)) {
        rgb[0] = rgb[1] = rgb[2] = 160;
        return;
    }
    double t = scale > 0 ? v / scale : 0;
    t = t > 1 ? 1 : t < -1 ? -1 : t;
    if (!diverging || t >= 0) {
        const double to[3] = {diverging ? 200 : 8, diverging ? 40 : 81, diverging ? 40 : 156};
        for (int c = 0; c < 3; c++) rgb[c] = (uint8_t)lround(255 + (to[c] - 255) * (diverging ? t : sqrt(t)));
    } else {
        const double to[3] = {33, 102, 172};
        for (int c = 0; c < 3; c++) rgb[c] = (uint8_t)lround(255 + (to[c] - 255) * -t);
    }
}

uint8_t *tq_png_heatmap(const double *v, int rows, int cols, int cell, size_t *len)
{
    if (rows < 1 || cols < 1 || cell < 1 || (int64_t)rows * cell > 4096 || (int64_t)cols * cell > 4096)
        return NULL;
    double scale = 0;
    bool diverging = false;
    for (int i = 0; i < rows * cols; i++)
        if (isfinite(v[i])) {
            scale = fmax(scale, fabs(v[i]));
            diverging |= v[i] < 0;
        }
    int w = cols * cell, h = rows * cell;
    uint8_t *img = malloc((size_t)w * h * 3);
    png_bytep *row_ptrs = malloc((size_t)h * sizeof *row_ptrs);
    membuf out = {0};
    png_structp png = NULL;
    png_infop info = NULL;
    if (!img || !row_ptrs) goto fail;
    for (int y = 0; y < h; y++) {
        row_ptrs[y] = img + (size_t)y * w * 3;
        for (int x = 0; x < w; x++) colour(v[(y / cell) * cols + x / cell], scale, diverging, row_ptrs[y] + 3 * x);
    }
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    info = png ? png_create_info_struct(png) : NULL;
    if (!info) goto fail;
    if (setjmp(png_jmpbuf(png))) goto fail;
    png_set_write_fn(png, &out, write_mem, flush_mem);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, row_ptrs);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(img);
    free(row_ptrs);
    if (out.oom) {
        free(out.data);
        return NULL;
    }
    *len = out.len;
    return out.data;
fail:
    if (png) png_destroy_write_struct(&png, info ? &info : NULL);
    free(img);
    free(row_ptrs);
    free(out.data);
    return NULL;
}

char *tq_base64(const uint8_t *data, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < n ? (uint32_t)data[i + 1] << 8 : 0) |
                     (i + 2 < n ? data[i + 2] : 0);
        *o++ = abc[v >> 18 & 63];
        *o++ = abc[v >> 12 & 63];
        *o++ = i + 1 < n ? abc[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? abc[v & 63] : '=';
    }
    *o = '\0';
    return out;
}
