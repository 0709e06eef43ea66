/* SPDX-License-Identifier: MIT */
/*
 * Scaling in (pool_scale_in.c), for pool.c only.
 */
#pragma once

#include "supervisor/pool_types.h"

/* The live worker to stop first when there are too many: a stale one, then a
 * ready one before one still starting, then in a server pool the least busy,
 * then the newest. NULL when none is live. Cannot fail. */
struct worker *pool_pick_surplus(struct pool *p);

/* Leaves the backoff of the highest slot in it (scaled down meanwhile): that
 * slot is not refilled. Cannot fail. */
void pool_cancel_backoff(struct pool *p);
