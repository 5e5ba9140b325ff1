/* Private to cli/: the command-line plumbing shared by the `tinyqat` subcommands. */
#ifndef TINYQAT_CLI_H
#define TINYQAT_CLI_H

#include <stdio.h>

#include "train.h"

/* Exit statuses: 1 for a failure while working (bad file, numeric failure), 2 for bad usage. */
enum { TQ_EXIT_FAIL = 1, TQ_EXIT_USAGE = 2 };

/* One option of a subcommand. arg == NULL: a flag without a value. */
typedef struct tq_cli_opt {
    const char *name;  /* without the leading "--" */
    const char *arg;   /* e.g. "N", "FILE"; NULL for flags */
    const char *help;
} tq_cli_opt;

typedef struct tq_cli_cmd {
    const char *name;
    const char *synopsis; /* after "tinyqat NAME " */
    const char *summary;
    const tq_cli_opt *opts; /* terminated by {0} */
    int max_positional;
} tq_cli_cmd;

/* Parsed values, indexed like cmd->opts (NULL when absent, "1" for a given flag). */
typedef struct tq_cli_args {
    const char *value[48];
    char **positional; /* n_positional of them, in the order given: argv + 1 (see below) */
    int n_positional;
} tq_cli_args;

/* Returns 0 on success; prints usage and returns -1 for --help (exit 0), or prints a one-line
 * error plus usage and returns TQ_EXIT_USAGE. Like GNU getopt it permutes argv, moving the
 * positional arguments (in their order) to argv[1..n] ahead of the options: however many
 * values `tinyqat fq` is given, they need no room of their own. */
int tq_cli_parse(const tq_cli_cmd *cmd, int argc, char **argv, tq_cli_args *a);
void tq_cli_usage(const tq_cli_cmd *cmd, FILE *out);
const char *tq_cli_get(const tq_cli_cmd *cmd, const tq_cli_args *a, const char *name);
bool tq_cli_flag(const tq_cli_cmd *cmd, const tq_cli_args *a, const char *name);

/* Value parsing: on a bad value print "tinyqat CMD: --NAME: expected ..., got 'X'" and the
 * usage, and return false. An absent option leaves *out as it is (the default). */
bool tq_cli_int(const tq_cli_cmd *cmd, const tq_cli_args *a, const char *name, long long lo,
                long long hi, long long *out);
bool tq_cli_float(const tq_cli_cmd *cmd, const tq_cli_args *a, const char *name, double lo,
                  double hi, double *out);
/* --threads N (default: all cores), applied to the one thread pool. */
bool tq_cli_threads(const tq_cli_cmd *cmd, const tq_cli_args *a);
/* A one-line usage error naming the command; returns TQ_EXIT_USAGE. */
int tq_cli_usage_error(const tq_cli_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A one-line failure: "tinyqat CMD: message"; returns TQ_EXIT_FAIL. */
int tq_cli_fail(const tq_cli_cmd *cmd, const tq_error *err);

/* Small JSON writer into a memory buffer, saved atomically with tq_json_save. */
typedef struct tq_json {
    char *buf;
    size_t len, cap;
    int depth;
    bool need_comma[16];
} tq_json;
void tq_json_begin(tq_json *j);          /* opens the top-level object */
void tq_json_key(tq_json *j, const char *key);
void tq_json_str(tq_json *j, const char *key, const char *v);
void tq_json_num(tq_json *j, const char *key, double v);
void tq_json_int(tq_json *j, const char *key, long long v);
void tq_json_open(tq_json *j, const char *key, char bracket); /* '{' or '['; key may be NULL */
void tq_json_close(tq_json *j, char bracket);
/* Closes the top-level object and writes it to path (temporary file, fsync, rename). */
tq_status tq_json_save(tq_json *j, const char *path, tq_error *err);
void tq_json_free(tq_json *j);
/* Closes the top-level object and hands over the text (caller frees; NULL without memory). */
char *tq_json_finish(tq_json *j, size_t *len);
/* An array of numbers on one line, 7 significant digits (figures), null for non-finite ones. */
void tq_json_nums(tq_json *j, const char *key, const double *v, int64_t n);

/* A JSON reader: the whole text into a tree (numbers as doubles, null kept as null). */
typedef enum tq_jv_kind { TQ_JV_NULL, TQ_JV_BOOL, TQ_JV_NUM, TQ_JV_STR, TQ_JV_ARR, TQ_JV_OBJ } tq_jv_kind;
typedef struct tq_jv {
    tq_jv_kind kind;
    bool b;
    double num;
    char *str;            /* TQ_JV_STR, decoded to UTF-8 */
    int n;                /* TQ_JV_ARR, TQ_JV_OBJ: items (and keys, for an object) */
    struct tq_jv *items;
    char **keys;
} tq_jv;
/* NULL (err: "line N: expected ...") for text that is not one JSON value, or nested deeper
 * than 32 levels. */
tq_jv *tq_json_parse(const char *text, size_t len, tq_error *err);
void tq_jv_free(tq_jv *v);
/* obj's member key when it has that kind; NULL otherwise (or when obj is not an object). */
const tq_jv *tq_jv_get(const tq_jv *obj, const char *key, tq_jv_kind kind);


/* Subcommands. */
int tq_cmd_train(int argc, char **argv);
int tq_cmd_eval(int argc, char **argv);
int tq_cmd_info(int argc, char **argv);
int tq_cmd_ptq(int argc, char **argv);
int tq_cmd_qat(int argc, char **argv);
int tq_cmd_compare(int argc, char **argv);
int tq_cmd_grid(int argc, char **argv);
int tq_cmd_fq(int argc, char **argv);
int tq_cmd_sensitivity(int argc, char **argv);
int tq_cmd_export(int argc, char **argv);
int tq_cmd_report(int argc, char **argv);
/* `info` on an ONNX file: a path ending in .onnx that is not a checkpoint. */
bool tq_is_onnx_path(const char *path);
int tq_info_onnx(const char *path);
/* `eval --dump`: the first max_images (<= 0: all) test images, labels, logits and, for the
 * first `coded` of them, the codes at every quantized layer's input, in the layout
 * cli/dump.c describes; written to a temporary file and renamed. */
tq_status tq_eval_dump(tq_run *run, const tq_dataset *d, int64_t max_images, int64_t coded,
                       const char *path, tq_error *err);

#endif
