/* SPDX-License-Identifier: MIT */
/*
 * What stream mode tells the controller (stream_signals.c).
 */
#pragma once

#include "metrics/corral_metrics.h"
#include "policy/signals.h"

struct stream;

/* tasks.backlog (lines waiting for a worker), tasks.busy (share of workers
 * with a line outstanding), tasks.rate (results per second since the previous
 * call). Cannot fail. */
void stream_fill_signals(struct stream *s, struct signals *sig);

/* The task fields of a metrics snapshot: tasks_ok/failed/pending, utilization. */
void stream_fill_snapshot(const struct stream *s, struct metrics_snapshot *m);
