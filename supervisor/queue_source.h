/* SPDX-License-Identifier: MIT */
/*
 * The work queue task source (tasks.from: redis://...): entries of a Redis
 * stream read through a consumer group, for any consumer of task lines
 * (task_source.h), the per-task batch or the stream.
 */
#pragma once

#include <systemd/sd-event.h>

#include "conf/config.h"
#include "supervisor/task_source.h"

/*
 * Opens the work queue config->tasks.from names on loop e: connects, checks,
 * creates the group. What it needs of config is copied (a reload does not
 * reach it). The consumer table is copied; its data must outlive the source.
 * Problems are logged; 0, -EINVAL for a user error, or another negative
 * errno. On failure *ret may hold a source to free all the same.
 */
int queue_source_open(sd_event *e, const struct corral_config *config, const struct task_consumer *consumer,
                      struct task_source *ret);
