/* SPDX-License-Identifier: MIT */
/*
 * Stream mode's input (stream_input.c): read in chunks, cut into spans of
 * lines, and the queue of spans handed back by workers that went away.
 */
#pragma once

#include <stdbool.h>

#include "supervisor/stream_types.h"

/* Whether a new span may be cut: spans and bytes in flight are bounded. */
bool stream_may_cut(const struct stream *s);

/* The next span for worker sw: a handed-back one first, else fresh input
 * cut to what sw may hold. NULL when none can be had now. */
struct span *stream_next_span(struct stream *s, const struct sworker *sw);

/* Hands span back for another worker. Returns 0 or -ENOMEM. */
int stream_requeue(struct stream *s, struct span *span);

/* keep_order: appends span to the ring of spans in input order. Returns 0 or -ENOMEM. */
int stream_ring_push(struct stream *s, struct span *span);

/* Opens config->tasks.from. Returns 0, or -EINVAL (logged), or a negative errno. */
int stream_open_input(struct stream *s);
