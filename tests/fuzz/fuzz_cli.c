/* Fuzz target for the subcommand argument parser: the input split at NUL and newline into
 * an argument vector, parsed against tables shaped like the real ones (flags, valued
 * options, names that prefix each other, positional limits or none, a full 48-option table;
 * positionals moved to the front of argv in their order). */
#include <limits.h>

#include "cli.h"
#include "fuzz_util.h"

static const tq_cli_opt train_like[] = {
    {"model", "NAME", "model"},   {"data", "SPEC", "data"},     {"epochs", "N", "epochs"},
    {"lr", "X", "learning rate"}, {"nesterov", NULL, "flag"},   {"step", "N", "step"},
    {"step-size", "N", "size"},   {"quiet", NULL, "flag"},      {"q", "X", "one letter"},
    {0},
};
static const tq_cli_opt eval_like[] = {
    {"data", "SPEC", "data"}, {"json", "FILE", "json"}, {"batch", "N", "batch"}, {0},
};
static const tq_cli_opt no_opts[] = {{0}};

enum { FULL_OPTS = 48 };
static tq_cli_opt full_opts[FULL_OPTS + 1];
static char full_names[FULL_OPTS][8];

static const tq_cli_opt *full_table(void)
{
    if (!full_opts[0].name)
        for (int i = 0; i < FULL_OPTS; i++) {
            snprintf(full_names[i], sizeof full_names[i], "o%d", i);
            full_opts[i] = (tq_cli_opt){full_names[i], i % 3 ? "V" : NULL, "option"};
        }
    return full_opts;
}

/* Whether p points inside one of the argument strings. */
static bool inside_args(const char *p, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (p >= argv[i] && p <= argv[i] + strlen(argv[i])) return true;
    return false;
}

/* Where p sits in the argument vector, or -1. */
static int index_of(char *p, int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (argv[i] == p) return i;
    return -1;
}

static void check_cmd(const tq_cli_cmd *cmd, int argc, char **argv)
{
    char *before[65];
    FUZZ_CHECK(argc <= 65);
    memcpy(before, argv, (size_t)argc * sizeof *argv);
    tq_cli_args a;
    int r = tq_cli_parse(cmd, argc, argv, &a);
    FUZZ_CHECK(r == 0 || r == -1 || r == TQ_EXIT_USAGE);
    /* parsing permutes argv, whatever it returns: the same arguments, argv[0] first */
    FUZZ_CHECK(argv[0] == before[0]);
    for (int i = 0; i < argc; i++) FUZZ_CHECK(index_of(before[i], argc, argv) >= 0);
    if (r != 0) return;
    FUZZ_CHECK(a.n_positional >= 0 && a.n_positional <= cmd->max_positional);
    FUZZ_CHECK(a.positional == argv + 1);
    int given = a.n_positional;
    for (int i = 0; i < a.n_positional; i++) {
        FUZZ_CHECK(inside_args(a.positional[i], argc, argv));
        FUZZ_CHECK(strncmp(a.positional[i], "--", 2) != 0 || a.positional[i][2] == '\0');
        /* in the order given */
        if (i > 0)
            FUZZ_CHECK(index_of(a.positional[i - 1], argc, before) <
                       index_of(a.positional[i], argc, before));
    }
    for (int k = 0; cmd->opts[k].name; k++) {
        const char *v = a.value[k];
        if (!v) continue;
        given++;
        if (!cmd->opts[k].arg) {
            FUZZ_CHECK(strcmp(v, "1") == 0);
            FUZZ_CHECK(tq_cli_flag(cmd, &a, cmd->opts[k].name));
            continue;
        }
        FUZZ_CHECK(inside_args(v, argc, argv));
        FUZZ_CHECK(tq_cli_get(cmd, &a, cmd->opts[k].name) == v);
        long long i = 12345;
        if (tq_cli_int(cmd, &a, cmd->opts[k].name, -1000, 1000, &i)) {
            FUZZ_CHECK(i >= -1000 && i <= 1000);
        } else {
            FUZZ_CHECK(i == 12345);
        }
        double x = 0.5;
        if (tq_cli_float(cmd, &a, cmd->opts[k].name, -1.0, 1.0, &x)) {
            FUZZ_CHECK(x >= -1.0 && x <= 1.0);
        } else {
            FUZZ_CHECK(x == 0.5);
        }
    }
    /* Every argument after the command name is a positional, an option or its value. */
    FUZZ_CHECK(given <= argc - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum { MAX_ARGS = 64 };
    char *buf = malloc(size + 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    argv[argc++] = "cmd";
    for (size_t start = 0; argc < MAX_ARGS && start <= size;) {
        size_t end = start;
        while (end < size && buf[end] != '\0' && buf[end] != '\n') end++;
        buf[end] = '\0';
        argv[argc++] = buf + start;
        start = end + 1;
    }
    argv[argc] = NULL;

    const tq_cli_cmd cmds[] = {
        {"train", "[options]", "train-like", train_like, 0},
        {"eval", "CHECKPOINT [options]", "eval-like", eval_like, 1},
        {"compare", "A B", "two positionals", eval_like, 2},
        {"many", "ARGS...", "all positionals", no_opts, 16},
        {"unbounded", "[VALUE...]", "no limit, as fq", eval_like, INT_MAX},
        {"full", "[options]", "48 options", full_table(), 16},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) check_cmd(&cmds[i], argc, argv);
    free(buf);
    return 0;
}
