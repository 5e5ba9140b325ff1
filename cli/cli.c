/* Command-line parsing for the subcommands: --name VALUE / --name=VALUE options, flags,
 * positional arguments, --help, and value checks with one-line errors. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tq_cli_usage(const tq_cli_cmd *cmd, FILE *out)
{
    fprintf(out, "usage: tinyqat %s %s\n%s\n\noptions:\n", cmd->name, cmd->synopsis, cmd->summary);
    for (const tq_cli_opt *o = cmd->opts; o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(out, "  %-24s %s\n", left, o->help);
    }
    fprintf(out, "  %-24s %s\n", "--help", "show this help");
}

static int find_opt(const tq_cli_cmd *cmd, const char *name, size_t len)
{
    for (int i = 0; cmd->opts[i].name; i++)
        if (strlen(cmd->opts[i].name) == len && strncmp(cmd->opts[i].name, name, len) == 0)
            return i;
    return -1;
}

int tq_cli_usage_error(const tq_cli_cmd *cmd, const char *fmt, ...)
{
    fprintf(stderr, "tinyqat %s: ", cmd->name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    tq_cli_usage(cmd, stderr);
    return TQ_EXIT_USAGE;
}

int tq_cli_fail(const tq_cli_cmd *cmd, const tq_error *err)
{
    fprintf(stderr, "tinyqat %s: %s\n", cmd->name, err->msg[0] ? err->msg : tq_status_name(err->status));
    return TQ_EXIT_FAIL;
}

int tq_cli_parse(const tq_cli_cmd *cmd, int argc, char **argv, tq_cli_args *a)
{
    memset(a, 0, sizeof *a);
    int n_opts = 0;
    while (cmd->opts[n_opts].name) n_opts++;
    TQ_ASSERT(n_opts <= (int)(sizeof a->value / sizeof *a->value)); /* the table fits value[] */
    a->positional = argv + 1;
    for (int i = 1; i < argc; i++) {
        char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            tq_cli_usage(cmd, stdout);
            return -1;
        }
        if (strncmp(s, "--", 2) != 0 || s[2] == '\0') {
            if (a->n_positional >= cmd->max_positional)
                return tq_cli_usage_error(cmd, "unexpected argument '%s'", s);
            /* Rotate it in after the positionals found so far; the options it passes over
             * are parsed already, and their values are pointers to the strings. */
            char **slot = a->positional + a->n_positional++;
            memmove(slot + 1, slot, (size_t)(argv + i - slot) * sizeof *slot);
            *slot = s;
            continue;
        }
        const char *name = s + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int k = find_opt(cmd, name, len);
        if (k < 0) return tq_cli_usage_error(cmd, "unknown option '--%.*s'", (int)len, name);
        if (!cmd->opts[k].arg) {
            if (eq) return tq_cli_usage_error(cmd, "--%s takes no value", cmd->opts[k].name);
            a->value[k] = "1";
        } else if (eq) {
            a->value[k] = eq + 1;
        } else {
            if (i + 1 >= argc)
                return tq_cli_usage_error(cmd, "--%s needs a value (%s)", cmd->opts[k].name,
                                          cmd->opts[k].arg);
            a->value[k] = argv[++i];
        }
    }
    return 0;
}

const char *tq_cli_get(const tq_cli_cmd *cmd, const tq_cli_args *a, const char *name)
{
    int k = find_opt(cmd, name, strlen(name));
    TQ_ASSERT(k >= 0);
    return a->value[k];
}

bool tq_cli_flag(const tq_cli_cmd *cmd, const tq_cli_args *a, const char *name)
{
    return tq_cli_get(cmd, a, name) != NULL;
}

bool tq_cli_int(const tq_cli_cmd *cmd, const tq_cli_args *a, const char *name, long long lo,
                long long hi, long long *out)
{
    const char *v = tq_cli_get(cmd, a, name);
    if (!v) return true;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        tq_cli_usage_error(cmd, "--%s: expected an integer from %lld to %lld, got '%s'", name, lo,
                           hi, v);
        return false;
    }
    *out = x;
    return true;
}

bool tq_cli_float(const tq_cli_cmd *cmd, const tq_cli_args *a, const char *name, double lo,
                  double hi, double *out)
{
    const char *v = tq_cli_get(cmd, a, name);
    if (!v) return true;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < lo || x > hi) {
        tq_cli_usage_error(cmd, "--%s: expected a number from %g to %g, got '%s'", name, lo, hi, v);
        return false;
    }
    *out = x;
    return true;
}

bool tq_cli_threads(const tq_cli_cmd *cmd, const tq_cli_args *a)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    long long threads = n > 0 ? n : 1;
    if (!tq_cli_int(cmd, a, "threads", 1, 256, &threads)) return false;
    tq_set_threads((int)threads);
    return true;
}
