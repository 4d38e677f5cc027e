/*
 * cli.h — the `kiln VERB` entry points (one file per verb) and the helpers they share.
 */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include "base/base.h"

int cmd_run(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_deploy(int argc, char **argv);

/* Prints "kiln: MESSAGE" (the current error) to stderr and returns the exit status 1. */
int cli_fail(void);
/* Option values; each failure sets an error naming the option and the text. */
int cli_parse_int(const char *opt, const char *text, long long min, long long max, int *out);
int cli_parse_float(const char *opt, const char *text, double min, double max, float *out);
int cli_parse_int_list(const char *opt, const char *text, int32_t **out, int *n_out);

/* MODEL resolved: a model folder or file as given, or a deployment name's model folder. */
char *cli_model_path(const char *arg);
/* The bundled default model's folder (see args.c for where it is looked for). */
const char *cli_default_model(void);

/* The engine flags shared by run, logits and bench: the quantized KV cache (--kv-bits 4|8,
 * --kv-group-size G, --kv-quantized-start N) and --activation-bits 8|16 (quantized weights'
 * activations, compute_set_activation_bits): entries for a verb's getopt_long table, and their
 * parser (the KV ones into the engine's kv_cache_opts). cli_parse_engine_option returns 1 when
 * c is not one of them, 0 when parsed, -1 + error. */
#define CLI_KV_OPT_BITS  0x1001
#define CLI_KV_OPT_GROUP 0x1002
#define CLI_KV_OPT_START 0x1003
#define CLI_OPT_ACT_BITS 0x1004
#define CLI_ENGINE_OPTIONS                                                                         \
    {"kv-bits", required_argument, 0, CLI_KV_OPT_BITS},                                            \
        {"kv-group-size", required_argument, 0, CLI_KV_OPT_GROUP},                                 \
        {"kv-quantized-start", required_argument, 0, CLI_KV_OPT_START}, {                          \
        "activation-bits", required_argument, 0, CLI_OPT_ACT_BITS                                  \
    }
#define CLI_ENGINE_USAGE                                                                           \
    "[--kv-bits 4|8] [--kv-group-size 32|64|128] [--kv-quantized-start N] [--activation-bits "     \
    "8|16]"
struct kv_cache_opts;
int cli_parse_engine_option(int c, const char *arg, struct kv_cache_opts *o);
/* --activation-bits TEXT: 8 or 16, applied process-wide; -1 + error otherwise. */
int cli_set_activation_bits(const char *text);

/* Prints "kiln VERB: usage..." to stderr and returns 2. */
int cli_usage(const char *usage);

#endif
