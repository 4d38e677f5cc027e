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

/* The bundled default model's folder (see args.c for where it is looked for). */
const char *cli_default_model(void);

/* Prints "kiln VERB: usage..." to stderr and returns 2. */
int cli_usage(const char *usage);

#endif
