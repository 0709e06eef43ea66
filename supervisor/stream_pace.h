/* SPDX-License-Identifier: MIT */
/*
 * Stream mode's pacing of its workers (stream_pace.c): how many lines each
 * worker may be given now (its pace, see stream_lines.h, and its recycle
 * budget), its answers taken into its pace, and the look at a worker that
 * holds lines and stays silent. It decides; the dispatch (stream.c) acts.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "supervisor/stream_types.h"

/* Lines the worker may be given now under its pace (and tasks.in_flight). */
size_t sworker_room(const struct sworker *sw);

/* Lines the worker may still be given under workers.recycle.tasks
 * (UINT64_MAX: no limit). */
uint64_t sworker_budget(const struct sworker *sw);

/* Marks the start of a silence when an idle worker gets work. */
void sworker_pace_busy(struct sworker *sw, usec_t now);

/* Takes in the workers' answers (before the dispatch picks). */
void stream_pace_update(struct stream *s, usec_t now);

/* Looks at the workers silent with lines (after the dispatch wrote).
 * Returns when to look next (USEC_INFINITY: no worker to watch); sets
 * *ret_stalled when one was seen waiting for more, so that it may now hold
 * more and the dispatch should run again. */
usec_t stream_pace_watch(struct stream *s, usec_t now, bool *ret_stalled);
