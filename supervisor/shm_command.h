/* SPDX-License-Identifier: MIT */
/*
 * A shared segment's data from a command's stdout (for shm.c only).
 */
#pragma once

#include "supervisor/shm_sink.h"

/* Runs sc->command to its end, its stdout into k. 0, or a negative errno
 * with err filled. */
int shm_load_command(const struct shared_config *sc, struct sink *k, struct shm_source *ret_source,
                     struct shm_error *err);
