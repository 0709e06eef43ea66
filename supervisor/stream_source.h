/* SPDX-License-Identifier: MIT */
/*
 * Stream mode's lines from a task source other than a file or stdin (a work
 * queue): stream_source.c. Each function is a no-op on a stream without one.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics/corral_metrics.h"
#include "policy/signals.h"

struct stream;
struct span;

int stream_source_open(struct stream *s);
/* Lines [seq, seq + n) end without an answer (given up, or left by a stop). */
void stream_source_line_failed(struct stream *s, uint64_t seq, uint64_t n);
/* p: whole answer lines (len bytes) to span's lines from its n_done-th on,
 * for the source to record (a results stream's stdout). */
void stream_source_answer(struct stream *s, const struct span *span, const char *p, size_t len);
/* span is done and its results are on the sink: tells the source. */
void stream_source_span_done(struct stream *s, const struct span *span);
void stream_source_give_back(struct stream *s);
void stream_source_fill(struct stream *s);
void stream_source_stop(struct stream *s);
bool stream_source_settled(struct stream *s);
/* The run's exit status (and the source's summary). failed: the output failed. */
int stream_source_status(struct stream *s, int status, bool failed);
uint64_t stream_source_backlog(const struct stream *s, uint64_t own);
void stream_source_fill_signals(const struct stream *s, struct signals *sig);
void stream_source_fill_snapshot(const struct stream *s, struct metrics_snapshot *m);
void stream_source_free(struct stream *s);
