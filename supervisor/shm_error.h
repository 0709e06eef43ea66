/* SPDX-License-Identifier: MIT */
/*
 * How the shared segments' code (shm.c, shm_command.c, shm_sink.c) tells a
 * failure: a negative errno plus this ready-to-print line.
 */
#pragma once

/* One line for the user, e.g. "shared segment 'refdata': cannot open
 * /srv/ref.bin: No such file or directory". Filled only on failure. */
struct shm_error {
        char message[1024];
};
