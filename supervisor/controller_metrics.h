/* SPDX-License-Identifier: MIT */
/*
 * The controller's report (controller_metrics.c): the metrics snapshot
 * assembled from a run's state (run_state.h) and published to the HTTP
 * thread and the textfile. For controller.c only; runs on the loop thread.
 */
#pragma once

#include "metrics/corral_metrics.h"
#include "supervisor/run_state.h"

/* Makes room for a row per worker, core, segment and rule. 0 or -ENOMEM. */
int controller_ensure_buffers(struct controller *c);
/* Renders and hands the pages to the HTTP thread and the textfile. */
void controller_publish(struct controller *c);
/* Counts a change of size by the rule (or "manual", "max", ...) that made it. */
void controller_count_scale_event(struct controller *c, const char *label, enum metrics_direction dir);
/* Serves metrics.listen, if any. 0, or a negative errno (logged): the
 * address cannot be listened on. */
int controller_start_metrics(struct controller *c);
/* Has the loop render the pages when a client asks (after
 * controller_start_metrics()). 0, or a negative errno (logged). */
int controller_watch_metrics(struct controller *c);
/* Frees the metrics' buffers and endpoint. */
void controller_metrics_done(struct controller *c);
