/* SPDX-License-Identifier: MIT */
/*
 * Stream mode (`corral run --stream --tasks FILE|-`): the pool's long-lived
 * workers read lines on stdin and write exactly one result line per input
 * line on stdout. The stream feeds each line to the worker with the fewest
 * lines outstanding, collects the results, and writes them to corral's stdout,
 * in input order with keep_order. A worker that dies hands its outstanding
 * lines to the others (at-least-once); a line that ended retries + 1 workers
 * is given up; a worker over tasks.timeout on a line, or one that answers
 * nothing it was asked, is replaced.
 *
 * The pool (supervisor/pool.c) starts, restarts and stops the workers; the
 * stream sees their lives through struct pool_hooks. When the input is done
 * (or a stop has waited long enough) the stream stops the pool with its exit
 * status: 0 every line answered, 1 lines given up or left undone.
 *
 * Lines travel in spans, runs of consecutive lines cut from large input
 * chunks, so the per-line work is a memchr: no allocation, no syscall.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "conf/config.h"
#include "metrics/corral_metrics.h"
#include "policy/signals.h"
#include "supervisor/batch.h"
#include "supervisor/pool.h"

struct stream;

/*
 * A stream over config->tasks feeding the workers of `pool` (whose hooks it
 * installs); both the config and the pool must outlive it. Opens the input.
 * Problems are logged; returns 0, -EINVAL for an input that cannot be
 * opened, or another negative errno. Lines flow once workers start.
 */
int stream_new(sd_event *e, const struct corral_config *config, struct pool *pool, struct stream **ret);

/* Detaches from the pool, writes the results already in order, frees.
 * Accepts NULL; returns NULL. */
struct stream *stream_free(struct stream *s);

/* A new configuration (retries, timeout, keep_order stays as started). */
void stream_reconfigure(struct stream *s, const struct corral_config *config);

/* TERM/INT: no more input; lines already sent may finish within
 * stop_timeout, then the pool stops (exit 1 if lines were left undone). A
 * second call stops the pool at once. */
void stream_stop(struct stream *s);

/* True once stream_stop() was called or the stream has finished. */
bool stream_stopping(const struct stream *s);

/* tasks.backlog (lines waiting for a worker), tasks.busy (share of workers
 * with a line outstanding), tasks.rate (results per second since the previous
 * call). Cannot fail. */
void stream_fill_signals(struct stream *s, struct signals *sig);

/* The task fields of a metrics snapshot: tasks_ok/failed/pending, utilization. */
void stream_fill_snapshot(const struct stream *s, struct metrics_snapshot *m);

/* Called once when a stop begins. */
/* Draws the progress bar (stream_bar.c) per mode: on a terminal only,
 * counting lines answered. Problems are logged; the stream goes without. */
void stream_set_bar(struct stream *s, enum batch_bar mode);
void stream_set_on_stopping(struct stream *s, void (*cb)(void *userdata), void *userdata);

/*
 * Pure: the length of the whole lines ('\n'-terminated) at the start of p[0,
 * len): at most max_lines of them, and no more once max_bytes are reached
 * (the line that crosses it is included). *ret_lines gets their number.
 * Returns 0 when p holds no whole line.
 */
size_t stream_take_lines(const char *p, size_t len, size_t max_lines, size_t max_bytes, size_t *ret_lines);

/*
 * Pure: the number of lines per span after a span of `lines` lines took
 * `busy` microseconds of a worker's time: spans grow while a worker answers a
 * whole span within a millisecond (so fast workers get big writes) and shrink
 * when one takes more than 10 ms (so slow lines spread over the workers).
 * The result is in [1, max].
 */
size_t stream_span_lines_next(size_t current, size_t lines, uint64_t busy, size_t max);
