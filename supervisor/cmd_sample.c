/* SPDX-License-Identifier: MIT */
/* `corral sample`: not implemented yet (see the open issues). */
#include <stdio.h>

#include "supervisor/commands.h"

int cmd_sample(int argc, char **argv) {
        (void) argc;
        (void) argv;
        fprintf(stderr, "corral sample: not implemented yet\n");
        return EXIT_USAGE;
}
