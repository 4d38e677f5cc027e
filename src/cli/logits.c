/* logits.c — `kiln logits` (not yet built: see the open issues). */
#include "cli/cli.h"

int cmd_logits(int argc, char **argv) {
    (void)argc;
    (void)argv;
    kiln_error("`kiln logits` is not implemented yet");
    return cli_fail();
}
