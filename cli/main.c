/* The `tinyqat` command: dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} subcommand;

static const subcommand subcommands[] = {
    {"train", tq_cmd_train, "train a float model from the zoo"},
    {"eval", tq_cmd_eval, "evaluate a checkpoint on the test split"},
    {"ptq", tq_cmd_ptq, "quantize a trained model after training (calibrate the scales)"},
    {"qat", tq_cmd_qat, "fine-tune a quantized model with its scales fixed"},
    {"compare", tq_cmd_compare, "PTQ per calibrator against QAT, recipe by recipe, in one table"},
    {"sensitivity", tq_cmd_sensitivity, "per-layer sensitivity to a recipe; propose a mixed-precision recipe"},
    {"report", tq_cmd_report, "redraw an HTML report from the report.json of a --report run"},
    {"export", tq_cmd_export, "export a checkpoint as an ONNX model with QDQ quantizers"},
    {"info", tq_cmd_info, "show a checkpoint's layers, shapes and quantizers (or an ONNX model's graph)"},
    {"grid", tq_cmd_grid, "print every value a format can represent"},
    {"fq", tq_cmd_fq, "print the fake-quantized value of numbers"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: tinyqat COMMAND [options]   (tinyqat COMMAND --help for its options)\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof subcommands / sizeof *subcommands; i++)
        fprintf(out, "  %-12s %s\n", subcommands[i].name, subcommands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return TQ_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof subcommands / sizeof *subcommands; i++)
        if (strcmp(argv[1], subcommands[i].name) == 0) return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "tinyqat: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return TQ_EXIT_USAGE;
}
