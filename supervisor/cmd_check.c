/* SPDX-License-Identifier: MIT */
/* `corral check`: not implemented yet (see the open issues). */
#include <stdio.h>

#include "supervisor/commands.h"

int cmd_check(int argc, char **argv) {
        (void) argc;
        (void) argv;
        fprintf(stderr, "corral check: not implemented yet\n");
        return EXIT_USAGE;
}
