/* SPDX-License-Identifier: MIT */
/*
 * Per-task batch mode: what became of the tasks: --results records, the failed Seqs (batch_results.c).
 */
#pragma once

#include "supervisor/batch_types.h"

/* --results: opens tasks.results; writes the record of a task that ended
 * for good (not retried), or of a line that never ran (why says why). */
int batch_open_results(struct batch *b);
void batch_write_result(struct slot *s, int exitval, int sig, double runtime);
void batch_write_not_run(struct batch *b, uint64_t seq, const char *why);
void slot_keep_stderr(struct slot *s, const char *data, size_t len);
/* Keeps the lowest failed Seqs, sorted, for the summary, and the start of the
 * lowest one's line (line NULL: not known, as for the later lines of an
 * invocation). */
void batch_note_failed(struct batch *b, uint64_t seq, const char *line, size_t len);
/* The run's last log line: tasks ok and failed, the first failed Seqs, the
 * first with its line. */
void batch_log_summary(const struct batch *b, int status);
