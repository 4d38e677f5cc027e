/* run.c — `kiln run` (not yet built: see the open issues). */
#include "cli/cli.h"

int cmd_run(int argc, char **argv) {
    (void)argc;
    (void)argv;
    kiln_error("`kiln run` is not implemented yet");
    return cli_fail();
}
