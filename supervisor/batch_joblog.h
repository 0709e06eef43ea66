/* SPDX-License-Identifier: MIT */
/*
 * Per-task batch mode: the joblog, one line per attempt (batch_joblog.c).
 */
#pragma once

#include "supervisor/batch_types.h"

int batch_open_joblog(struct batch *b);
/* An attempt's joblog line, to be written once its output is: NULL without
 * a joblog (or when it cannot be formatted, logged). */
struct joblog_pending *batch_joblog_line(struct batch *b, const struct pending *t, double start, double runtime,
                                         uint64_t received, int exitval, int sig);
/* Writes line once everything queued on stdout before now is written; if
 * that never happens the task is left undone (not in the joblog). Takes line;
 * accepts NULL. */
void batch_joblog_after_output(struct batch *b, struct joblog_pending *line);
void batch_joblog_pending_free(struct joblog_pending *line);
