/* SPDX-License-Identifier: MIT */
/* The Redis Streams task source (placeholder until the queue lands). */
#include "supervisor/batch_internal.h"
#include "supervisor/log.h"

int queue_source_open(struct batch *b) {
        log_error("%s: work queues are not supported yet", b->config->tasks.from);
        return -EINVAL;
}
