/* bench.c — `kiln bench` (not yet built: see the open issues). */
#include "cli/cli.h"

int cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    kiln_error("`kiln bench` is not implemented yet");
    return cli_fail();
}
