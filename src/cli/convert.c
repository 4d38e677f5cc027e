/* convert.c — `kiln convert` (not yet built: see the open issues). */
#include "cli/cli.h"

int cmd_convert(int argc, char **argv) {
    (void)argc;
    (void)argv;
    kiln_error("`kiln convert` is not implemented yet");
    return cli_fail();
}
