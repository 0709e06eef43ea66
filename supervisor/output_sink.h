/* SPDX-License-Identifier: MIT */
/*
 * corral's own stdout (the results of batch and stream mode) as a queue that
 * never blocks the event loop. Bytes, whole spilled files and marks are queued
 * in order and written as the reader takes them: a pipe or terminal through a
 * non-blocking descriptor of its own (a reopen of /proc/self/fd/1, so that
 * the flags of a descriptor shared with the shell stay as they are), a
 * regular file directly (it never waits for a reader). A mark runs its
 * callback once everything queued before it is written: that is how the
 * joblog learns that a task's output is out.
 *
 * Producers ask sink_full() and hold back (stop reading task output, start
 * no task) while it says so; the callback set with sink_set_callback() says
 * when to look again. A write that fails (EPIPE, ENOSPC, EBADF) ends the sink:
 * what is queued is dropped, marks run with delivered = false.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "supervisor/task.h"

/* Queued bytes (memory and files) above which producers hold back. */
#define SINK_HIGH (1024u * 1024u)

struct sink;

/* A sink writing to fd (not owned; opened for writing on the first write).
 * Returns 0 or -ENOMEM. */
int sink_new(sd_event *e, int fd, struct sink **ret);

/* Drops what is queued (marks run with delivered = false), restores fd's
 * flags if they were changed. Accepts NULL; returns NULL. */
struct sink *sink_free(struct sink *s);

/* cb runs from the event loop after the sink wrote and is no longer full,
 * when it became empty, and when it failed. */
void sink_set_callback(struct sink *s, void (*cb)(void *userdata), void *userdata);

/* Queues n bytes (copied). Returns 0, -ENOMEM, or the sink's error. */
int sink_write(struct sink *s, const void *p, size_t n);
/* Queues the data of b, taking it (b is zeroed). Same returns. */
int sink_write_buf(struct sink *s, struct strbuf *b);
/* Queues the first len bytes of file fd, taking fd. Same returns (fd is
 * closed on failure too). */
int sink_write_file(struct sink *s, int fd, uint64_t len);

/* fn(data, delivered) runs once everything queued before it is written
 * (delivered true), or when that cannot happen any more (false): a failed
 * write, sink_drop(), sink_free(). It runs exactly once, possibly at once.
 * Returns 0 or -ENOMEM (fn has then run, with false). */
typedef void (*sink_mark_fn)(void *data, bool delivered);
int sink_mark(struct sink *s, sink_mark_fn fn, void *data);

/* Gives up on everything queued. */
void sink_drop(struct sink *s);

/* Bytes queued (memory and files) and not yet written. */
uint64_t sink_pending(const struct sink *s);
bool sink_full(const struct sink *s);
/* Nothing queued: no bytes and no marks. */
bool sink_idle(const struct sink *s);
/* 0, or the negative errno of the write that failed. */
int sink_error(const struct sink *s);
