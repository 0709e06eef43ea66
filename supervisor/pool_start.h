/* SPDX-License-Identifier: MIT */
/*
 * Starting a pool's worker (pool_start.c), for pool.c only.
 */
#pragma once

#include <stdbool.h>

#include "supervisor/pool_types.h"

/* workers.notify, which listen: (or socket activation) implies unless the
 * file says otherwise; not for stream workers, whose readiness is their answers. */
bool pool_notify(const struct pool *p);

/* Starts w through its child. 0, or the start's negative errno (the child
 * has gone through its failure already: backoff, or the pool stops). */
int worker_start(struct pool *p, struct worker *w);
