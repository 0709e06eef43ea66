/* SPDX-License-Identifier: MIT */
/* The hard ceiling of a batch pool from the machine's limits (ceiling.h). */
#include "policy/ceiling.h"

static uint64_t least(uint64_t a, uint64_t b) {
        return a < b ? a : b;
}

unsigned ceiling_workers(const struct machine_limits *l, unsigned max) {
        uint64_t n = max;

        if (l->nofile != UINT64_MAX)
                n = least(n, l->nofile > CEILING_FDS_RESERVED
                                     ? (l->nofile - CEILING_FDS_RESERVED) / CEILING_FDS_PER_WORKER : 0);
        if (l->nproc != UINT64_MAX)
                n = least(n, l->nproc / CEILING_PROC_SHARE);
        if (l->pids_max != UINT64_MAX)
                n = least(n, l->pids_max > l->pids_current ? (l->pids_max - l->pids_current) / CEILING_PROC_SHARE : 0);
        if (l->mem_available != UINT64_MAX)
                n = least(n, l->mem_available / CEILING_MEMORY_PER_WORKER);
        return n > 0 ? (unsigned) n : 1;
}
