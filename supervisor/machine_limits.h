/* SPDX-License-Identifier: MIT */
/* Reads the machine's limits on workers (policy/ceiling.h) for a batch pool's ceiling. */
#pragma once

#include "policy/ceiling.h"

/* Fills *ret from getrlimit, /proc/meminfo and the pids cgroup (v1 or v2,
 * ours and its ancestors). A limit that cannot be read is UINT64_MAX (none).
 * Cannot fail. */
void machine_limits_read(struct machine_limits *ret);
