/* Helpers for end-to-end tests of the `tinyqat` command (see tq_cli_test.h). */
#include "tq_cli_test.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

char tq_cli_dir[256];
char tq_cli_path[1024];

void tq_cli_setup(void)
{
    snprintf(tq_cli_dir, sizeof tq_cli_dir, "/tmp/tq_cli_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tq_cli_dir));
    const char *build = getenv("TQ_BUILD_DIR");
    if (!build) build = ".";
    snprintf(tq_cli_path, sizeof tq_cli_path, "%s/tinyqat", build);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s/make_bars %s 120 3", build, tq_cli_dir);
    ck_assert_int_eq(system(cmd), 0);
}

void tq_cli_teardown(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tq_cli_dir);
    ck_assert_int_eq(system(cmd), 0);
}

int tq_cli_run(char *out, size_t cap, const char *fmt, ...)
{
    char args[4096], cmd[4096 + 1400];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    ck_assert_msg(n >= 0 && (size_t)n < sizeof args, "command too long: %s", fmt);
    snprintf(cmd, sizeof cmd, "cd %s && TQ=%s && { %s ; } 2>&1", tq_cli_dir, tq_cli_path, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t len = fread(out, 1, cap - 1, p);
    out[len] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

bool tq_cli_file_exists(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tq_cli_dir, name);
    return access(path, F_OK) == 0;
}

int tq_cli_count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}
