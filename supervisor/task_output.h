/* SPDX-License-Identifier: MIT */
/*
 * Per-task batch mode: what tasks write, collected, passed on, put in order (task_output.c).
 */
#pragma once

#include "supervisor/batch_types.h"

void task_result_free(void *item);
/* Queues an ended task's output (taking it), then its joblog line. */
void batch_deliver(struct batch *b, struct spool *out, struct joblog_pending *line);
void batch_emit(struct batch *b, const char *data, size_t len);
void batch_emit_in_order(struct batch *b);
void batch_emit_rest(struct batch *b);
void batch_order_head_goes_live(struct batch *b);
void slot_pass_on(struct slot *s, bool final);
void slot_read_stderr(struct slot *s, bool final);
void slot_read(struct slot *s, bool until_empty);
