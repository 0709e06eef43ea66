/* SPDX-License-Identifier: MIT */
/*
 * workers.placement, pure: which CPU a new worker is pinned to, from the
 * usable CPUs and the last sample's per-core load. The controller gathers
 * those inputs; the choice lives here so that it is tested with tables of
 * cores rather than with a burner process on a machine that others share.
 */
#pragma once

#include <sched.h>
#include <stddef.h>

#include "conf/config.h"
#include "supervisor/procfs_parse.h"

/*
 * The CPU for worker `worker_id`, or -1 for none (no pinning).
 * - spread: the (worker_id mod N)-th of the N CPUs in `usable`, so that ids
 *   map to cores stably; -1 when usable is NULL or empty.
 * - least-loaded: the core of `cores` (the last sample's, ascending by id)
 *   with the lowest busy share, the lowest id on a tie; -1 without cores
 *   (no sample yet).
 * - none: -1.
 * Cannot fail.
 */
int placement_cpu(enum placement placement, unsigned worker_id, const cpu_set_t *usable,
                  const struct core_busy *cores, size_t n_cores);
