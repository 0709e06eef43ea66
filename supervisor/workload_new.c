/* SPDX-License-Identifier: MIT */
/* Which workload a configuration describes: the one place that asks. */
#include "supervisor/workload_new.h"

int workload_new(sd_event *e, const struct corral_config *config, const struct workload_options *o,
                 const struct workload_owner *owner, struct workload *ret) {
        if (!config->tasks.from)
                return pool_workload_new(e, config, o, owner, ret);
        if (config->tasks.mode == TASK_MODE_STREAM)
                return stream_workload_new(e, config, o, owner, ret);
        return batch_workload_new(e, config, o, owner, ret);
}
