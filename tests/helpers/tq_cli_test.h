/* Helpers for end-to-end tests of the `tinyqat` command: a fixture directory holding a small
 * generated IDX data set (tests/fixture/make_bars.c), shell fragments run inside it, runs
 * interrupted mid-epoch, and checkpoints compared or perturbed section by section. */
#ifndef TQ_CLI_TEST_H
#define TQ_CLI_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
/* Writes a generated data set into subdirectory sub of the fixture directory (mnist:sub):
 * args are make_bars's after DIR ("120 3 128 32 14"). */
void tq_cli_make_bars(const char *sub, const char *args);
/* The value of the last "accuracy: X" line of a command's output, or -1. */
double tq_cli_accuracy(const char *out);

/* ---- checkpoints in the fixture directory, by file name */

/* The first section in which checkpoints a and b differ (type, count or bytes, or present
 * in one only), written into buf; NULL when every section is the same. */
const char *tq_cli_ckpt_diff(const char *a, const char *b, char *buf, size_t cap);
/* Whether float section `section` is in both checkpoints with the same count and bits. */
bool tq_cli_same_f32(const char *a, const char *b, const char *section);
/* Values in float section `section` of checkpoint name (-1: no such section). */
int64_t tq_cli_f32_count(const char *name, const char *section);
/* Copies checkpoint `from` into `to` section by section through the checkpoint writer, with
 * delta added to value `index` of float section `section`: a checkpoint that differs from
 * a good one in exactly one value. */
void tq_cli_ckpt_perturb(const char *from, const char *to, const char *section, int64_t index,
                         float delta);

/* Runs the shell command cmd (a training command writing checkpoint ckpt after every epoch)
 * in the background and sends it SIGINT a fraction of its first epoch's duration after that
 * epoch's checkpoint appears, so that it lands in the middle of a later epoch. A signal that
 * arrives too late (the run finished) or between epochs is tried again with another
 * fraction; after six tries the test fails. Returns with the output of the interrupted run
 * in out, and the epochs and batches it had done, from its "interrupted after" line. */
void tq_cli_interrupt_mid_epoch(char *out, size_t cap, const char *ckpt, const char *cmd,
                                long long *epoch, long long *batch);

#endif
