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

/* Called once when a stop begins. */
void stream_set_on_stopping(struct stream *s, void (*cb)(void *userdata), void *userdata);
