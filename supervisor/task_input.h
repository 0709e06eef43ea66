/* SPDX-License-Identifier: MIT */
/*
 * Per-task batch mode: its input, from a file, stdin or a task source (task_input.c).
 */
#pragma once

#include "supervisor/batch_types.h"

int batch_open_input(struct batch *b);
void batch_fill_queue(struct batch *b);
/* Whether input line seq belongs to this run's shard (--shard K/N). */
bool batch_in_shard(const struct tasks_config *t, uint64_t seq);
/* Adds one line to the invocation being gathered (queued at tasks.batch
 * lines); batch_push_gathered() queues a shorter one. 0 or -ENOMEM. */
int batch_gather(struct batch *b, uint64_t seq, const char *line, size_t len);
int batch_push_gathered(struct batch *b);
/* The input cannot go on: the batch stops with exit 2. */
void batch_input_failed(struct batch *b, int r);
/* The source's side of the task's life and of the end (struct task_source_ops). */
const char *batch_input_task_id_var(struct batch *b, const struct pending *t);
void batch_input_capture(struct batch *b, const struct spool *out);
void batch_input_done(struct batch *b, const struct pending *t, const struct task_report *r);
void batch_input_stop(struct batch *b);
bool batch_input_settled(struct batch *b);
int batch_input_status(struct batch *b, int status);
bool batch_input_summarize(struct batch *b, int status);
bool batch_input_backlog(const struct batch *b, uint64_t *ret);
void batch_input_fill_snapshot(const struct batch *b, struct metrics_snapshot *s);
void batch_input_fill_signals(const struct batch *b, struct signals *s);
void batch_input_free(struct batch *b);
