/* tokenize.c — `kiln tokenize` (not yet built: see the open issues). */
#include "cli/cli.h"

int cmd_tokenize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    kiln_error("`kiln tokenize` is not implemented yet");
    return cli_fail();
}
