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
/* Prints "kiln VERB: usage..." to stderr and returns 2. */
int cli_usage(const char *usage);

#endif
