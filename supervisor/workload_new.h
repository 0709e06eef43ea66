/* SPDX-License-Identifier: MIT */
/*
 * Which workload a configuration describes (workload_new.c): above the
 * three kinds, which implement workload.h and know nothing of each other.
 */
#pragma once

#include <systemd/sd-event.h>

#include "conf/config.h"
#include "supervisor/workload.h"

/*
 * The workload config describes on loop e: a batch with tasks.from, a stream
 * with tasks.from and tasks.mode stream, else a pool. The config must outlive
 * it (or be replaced through reconfigure first); owner is borrowed. Problems
 * are logged; returns 0 or a negative errno (-EINVAL: a user error).
 */
int workload_new(sd_event *e, const struct corral_config *config, const struct workload_options *o,
                 const struct workload_owner *owner, struct workload *ret);
