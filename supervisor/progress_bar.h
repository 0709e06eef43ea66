/* SPDX-License-Identifier: MIT */
/*
 * A progress bar that is not the per-task batch's own (which lives in struct
 * batch): stream mode's, over lines answered. Drawn on a terminal only,
 * every BAR_INTERVAL, with the batch's text (task_bar_format).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "supervisor/batch.h"

struct progress_counts {
        uint64_t done, failed, total;    /* total 0: unknown */
        unsigned running;
        bool output_pending;             /* stdout has output queued: not over it */
};

struct progress_bar;

/* Fills *ret with the counts to draw now. */
typedef void (*progress_count_fn)(void *userdata, struct progress_counts *ret);

/*
 * A bar for mode (auto: stderr is a terminal; always: also /dev/tty when
 * stderr is redirected; never), redrawn from e's loop. *ret is NULL when
 * there is no terminal to draw on. Returns 0 or a negative errno.
 */
int progress_bar_new(sd_event *e, enum batch_bar mode, progress_count_fn counts, void *userdata,
                     struct progress_bar **ret);
/* Wipes the bar before output that would land on it (output_on_stdout: the
 * output goes to stdout, which matters only when that is the bar's terminal);
 * the next tick draws it again. Accepts NULL. */
void progress_bar_step_aside(struct progress_bar *bar, bool output_on_stdout);
/* The last drawing, ended with a newline; no more ticks. Accepts NULL. */
void progress_bar_finish(struct progress_bar *bar);
/* Accepts NULL, returns NULL. */
struct progress_bar *progress_bar_free(struct progress_bar *bar);
/* Lines in a regular file from its current offset: a bar's total (0 for
 * anything else). */
uint64_t progress_count_lines(int fd);
