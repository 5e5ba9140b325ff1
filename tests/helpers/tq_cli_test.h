/* Helpers for end-to-end tests of the `tinyqat` command: a fixture directory holding a small
 * generated IDX data set (tests/fixture/make_bars.c), and shell fragments run inside it. */
#ifndef TQ_CLI_TEST_H
#define TQ_CLI_TEST_H

#include <stdbool.h>
#include <stddef.h>

/* The fixture directory of the running test, and the command under test. */
extern char tq_cli_dir[256];
extern char tq_cli_path[1024];

/* A fresh fixture directory holding easy bars (mnist:. in it); a check fixture. */
void tq_cli_setup(void);
/* Removes the fixture directory. */
void tq_cli_teardown(void);
/* Runs a shell fragment in the fixture directory, with $TQ naming the command under test;
 * returns the exit status, standard output and error (merged) in out. */
int tq_cli_run(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool tq_cli_file_exists(const char *name);
int tq_cli_count_lines(const char *s);

#endif
