/* serve.c — `kiln serve` (not yet built: see the open issues). */
#include "cli/cli.h"

int cmd_serve(int argc, char **argv) {
    (void)argc;
    (void)argv;
    kiln_error("`kiln serve` is not implemented yet");
    return cli_fail();
}
