/* template.c — `kiln template` (not yet built: see the open issues). */
#include "cli/cli.h"

int cmd_template(int argc, char **argv) {
    (void)argc;
    (void)argv;
    kiln_error("`kiln template` is not implemented yet");
    return cli_fail();
}
