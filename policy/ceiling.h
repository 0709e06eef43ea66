/* SPDX-License-Identifier: MIT */
/*
 * The hard ceiling of a batch pool with no --max (DESIGN.md "Sizing and
 * stream dispatch"): not the CPU count, but what the machine can hold. Each
 * worker is a process (RLIMIT_NPROC, the pids cgroup), costs corral a few
 * descriptors (RLIMIT_NOFILE: its pidfd, pipes and /proc fd) and some memory.
 * Below the ceiling the throughput seeker decides, with mem.available,
 * psi.memory and the backlog as its brakes (policy/optimize.h).
 *
 * Pure: the limits come in as numbers; supervisor/machine_limits.c reads them.
 */
#pragma once

#include <stdint.h>

#define CEILING_FDS_PER_WORKER 6u              /* pidfd, stdin/stdout/stderr pipes, /proc/PID/stat, spare */
#define CEILING_FDS_RESERVED 64u               /* corral's own: the loop, HTTP, logs, input */
#define CEILING_PROC_SHARE 2u                  /* of the free processes: half, workers may fork */
#define CEILING_MEMORY_PER_WORKER (4u << 20)   /* the least a worker process costs, bytes */

/* What the machine allows; UINT64_MAX: no limit (or unknown). */
struct machine_limits {
        uint64_t nproc;          /* RLIMIT_NPROC (soft), UINT64_MAX when unlimited or not enforced (root) */
        uint64_t nofile;         /* RLIMIT_NOFILE (hard: corral raises its soft limit to it) */
        uint64_t pids_max;       /* the pids cgroup's pids.max */
        uint64_t pids_current;   /* ... and its pids.current (0 if unknown) */
        uint64_t mem_available;  /* MemAvailable, bytes */
};

/* The most workers the machine holds: the least of (nofile - reserved) /
 * fds per worker, (nproc) / share, (pids_max - pids_current) / share and
 * mem_available / memory per worker; at least 1, at most max (the
 * configuration's own limit). Cannot fail. */
unsigned ceiling_workers(const struct machine_limits *l, unsigned max);
