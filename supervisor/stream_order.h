/* SPDX-License-Identifier: MIT */
/*
 * The results of stream mode in order and out (stream_order.c): with
 * keep_order a span's results wait until every earlier span is done; a span
 * done leaves the accounting of spans and bytes in flight; results in order
 * go to corral's stdout.
 */
#pragma once

#include <stdint.h>

#include "supervisor/stream_types.h"

/* Notes a failure to write the results once (and that the stream must stop). */
void stream_check_output(struct stream *s);

/* Queues the results in order so far on corral's stdout (never blocks). */
void stream_flush(struct stream *s);

/* Keeps the results p (len bytes of whole lines) to span's next lines:
 * in the output buffer when span is the oldest in flight, else in its own;
 * a task source gets them too (stream_source_answer()). */
void stream_deliver(struct stream *s, struct span *span, const char *p, size_t len);

/* Counts line seq as given up, for the summary, and writes its placeholder
 * (tasks.failed_line) in its place. Called before the line is marked done. */
void stream_note_given_up(struct stream *s, uint64_t seq);

/* keep_order: moves the results of the spans at the front of the ring to the
 * output buffer, and frees those that are done. */
void stream_emit_in_order(struct stream *s);

/* Every line of span answered or given up: it leaves the spans in flight
 * (with keep_order once the spans before it are done too). */
void span_complete(struct stream *s, struct span *span);

/* A span whose lines left are given up on by the stop (counted undone). */
void span_abandon(struct stream *s, struct span *span);
