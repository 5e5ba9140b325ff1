/* Progress reporting: a one-line bar redrawn in place on a terminal, plain lines otherwise. */
#include "train.h"

#include <stdarg.h>
#include <unistd.h>

tq_reporter tq_reporter_stdout(bool quiet)
{
    return (tq_reporter){.out = stdout, .quiet = quiet, .tty = isatty(STDOUT_FILENO) != 0};
}

void tq_report_progress(tq_reporter *r, const char *what, int64_t done, int64_t total,
                        double loss, double accuracy)
{
    if (!r || r->quiet || !r->tty || total <= 0) return;
    /* Redraw at most ~50 times per pass: terminals are slow. */
    int64_t every = total / 50 > 0 ? total / 50 : 1;
    if (done != total && done % every != 0) return;
    int width = 30, filled = (int)(width * done / total);
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    fprintf(r->out, "\r%s [%s] %3d%%  loss %.4f  acc %.4f", what, bar, (int)(100 * done / total),
            loss, accuracy);
    if (done == total) fprintf(r->out, "\r\033[K");
    fflush(r->out);
}

void tq_report_line(tq_reporter *r, const char *fmt, ...)
{
    if (!r || r->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(r->out, fmt, ap);
    va_end(ap);
    fputc('\n', r->out);
    fflush(r->out);
}
