/* SPDX-License-Identifier: MIT */
/* `corral status`: not implemented yet (see the open issues). */
#include <stdio.h>

#include "supervisor/commands.h"

int cmd_status(int argc, char **argv) {
        (void) argc;
        (void) argv;
        fprintf(stderr, "corral status: not implemented yet\n");
        return EXIT_USAGE;
}
