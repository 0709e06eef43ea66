/* SPDX-License-Identifier: MIT */
/*
 * A reload seen from the pool's workers (pool_reload.c), for pool.c only.
 */
#pragma once

#include <stdbool.h>

#include "conf/config.h"

/* Whether workers started under old must be replaced under new: the command,
 * workers.env, workers.cwd or the user or group changed. Cannot fail. */
bool pool_config_replaces_workers(const struct corral_config *old, const struct corral_config *new);

/* Whether the new command can run (spawn_check). 0, or its negative errno,
 * logged with the reason ("the running workers stay"). */
int pool_check_command(const struct corral_config *config);
