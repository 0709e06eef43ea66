/* SPDX-License-Identifier: MIT */
/* Names of the policy signals, as the contract spells them. */
#include <stddef.h>
#include <string.h>

#include "common/util.h"
#include "policy/signals.h"

static const char *const signal_names[_SIGNAL_MAX] = {
        [SIGNAL_CPU_BUSY]       = "cpu.busy",
        [SIGNAL_CPU_CORE_MAX]   = "cpu.core_max",
        [SIGNAL_CPU_CORE_MIN]   = "cpu.core_min",
        [SIGNAL_CPU_IDLE_CORES] = "cpu.idle_cores",
        [SIGNAL_LOAD1]          = "load1",
        [SIGNAL_PSI_CPU]        = "psi.cpu",
        [SIGNAL_PSI_MEMORY]     = "psi.memory",
        [SIGNAL_PSI_IO]         = "psi.io",
        [SIGNAL_MEM_AVAILABLE]  = "mem.available",
        [SIGNAL_POOL_SIZE]      = "pool.size",
        [SIGNAL_POOL_CPU]       = "pool.cpu",
        [SIGNAL_TASKS_BACKLOG]  = "tasks.backlog",
        [SIGNAL_TASKS_BUSY]     = "tasks.busy",
        [SIGNAL_TASKS_RATE]     = "tasks.rate",
        [SIGNAL_TASKS_LATENCY]  = "tasks.latency",
        [SIGNAL_QUEUE_LAG]      = "queue.lag",
        [SIGNAL_QUEUE_PENDING]  = "queue.pending",
        [SIGNAL_LISTEN_BACKLOG] = "listen.backlog",
};

const char *signal_name(enum signal_id id) {
        if (id < 0 || id >= _SIGNAL_MAX)
                return NULL;
        return signal_names[id];
}

enum signal_id signal_from_name(const char *name, size_t len) {
        for (enum signal_id id = 0; id < _SIGNAL_MAX; id++)
                if (strlen(signal_names[id]) == len && memcmp(signal_names[id], name, len) == 0)
                        return id;
        return _SIGNAL_INVALID;
}

bool signal_is_percent(enum signal_id id) {
        switch (id) {
        case SIGNAL_CPU_BUSY:
        case SIGNAL_CPU_CORE_MAX:
        case SIGNAL_CPU_CORE_MIN:
        case SIGNAL_PSI_CPU:
        case SIGNAL_PSI_MEMORY:
        case SIGNAL_PSI_IO:
        case SIGNAL_MEM_AVAILABLE:
        case SIGNAL_POOL_CPU:
        case SIGNAL_TASKS_BUSY:
                return true;
        default:
                return false;
        }
}
