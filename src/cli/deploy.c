/* deploy.c — `kiln deploy` (not yet built: see the open issues). */
#include "cli/cli.h"

int cmd_deploy(int argc, char **argv) {
    (void)argc;
    (void)argv;
    kiln_error("`kiln deploy` is not implemented yet");
    return cli_fail();
}
