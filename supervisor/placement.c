/* SPDX-License-Identifier: MIT */
/* workers.placement (see placement.h): pure, no system calls. */
#include "supervisor/placement.h"

static int spread_cpu(unsigned worker_id, const cpu_set_t *usable) {
        int n = usable ? CPU_COUNT(usable) : 0;
        unsigned nth;

        if (n <= 0)
                return -1;
        nth = worker_id % (unsigned) n;
        for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
                if (CPU_ISSET(cpu, usable) && nth-- == 0)
                        return cpu;
        return -1;
}

static int least_loaded_cpu(const struct core_busy *cores, size_t n_cores) {
        int best = -1;
        double best_busy = 0;

        for (size_t i = 0; i < n_cores; i++)
                if (best < 0 || cores[i].busy < best_busy) {
                        best = cores[i].id;
                        best_busy = cores[i].busy;
                }
        return best;
}

int placement_cpu(enum placement placement, unsigned worker_id, const cpu_set_t *usable,
                  const struct core_busy *cores, size_t n_cores) {
        switch (placement) {
        case PLACEMENT_SPREAD:
                return spread_cpu(worker_id, usable);
        case PLACEMENT_LEAST_LOADED:
                return least_loaded_cpu(cores, n_cores);
        default:
                return -1;
        }
}
