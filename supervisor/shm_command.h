/* SPDX-License-Identifier: MIT */
/*
 * A shared segment's data from a command's stdout (for shm.c only).
 */
#pragma once

#include "supervisor/shm_sink.h"

/* Runs sc->command to its end, its stdout into k. 0, or a negative errno
 * with err filled. A command has no source to compare on reload: it has
 * always changed. */
int shm_load_command(const struct shared_config *sc, struct shm_sink *k, struct shm_error *err);
