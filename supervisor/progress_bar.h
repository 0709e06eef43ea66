/* SPDX-License-Identifier: MIT */
/*
 * The progress bar of the per-task batch and of stream mode, over counts it
 * asks its owner for: one line redrawn on a terminal only, every 200ms,
 * with the batch's text (task_bar_format).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

enum batch_bar {
        BATCH_BAR_AUTO,          /* on when stderr is a terminal */
        BATCH_BAR_ALWAYS,        /* --bar */
        BATCH_BAR_NEVER,         /* -q */
        _BATCH_BAR_MAX,
};

/* The bar the flags ask for: --bar forces it, even with -q, which otherwise
 * hides it (corral.map asks for a quiet run with a bar on a terminal). */
static inline enum batch_bar batch_bar_mode(bool quiet, bool bar) {
        return bar ? BATCH_BAR_ALWAYS : quiet ? BATCH_BAR_NEVER : BATCH_BAR_AUTO;
}

struct progress_counts {
        uint64_t done, failed, total;    /* total 0: unknown */
        uint64_t skipped;                /* of done, skipped (--resume): not in the rate */
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
 * the next tick (or progress_bar_draw()) draws it again. Returns whether it
 * wiped it. Accepts NULL. */
bool progress_bar_step_aside(struct progress_bar *bar, bool output_on_stdout);
/* Draws it now (after output it stepped aside for). Accepts NULL. */
void progress_bar_draw(struct progress_bar *bar);
/* Whether the bar shares its terminal with stdout, or is on stderr. */
bool progress_bar_shares_stdout(const struct progress_bar *bar);
bool progress_bar_on_stderr(const struct progress_bar *bar);
/* The last drawing, ended with a newline; no more ticks. Accepts NULL. */
void progress_bar_finish(struct progress_bar *bar);
/* Accepts NULL, returns NULL. */
struct progress_bar *progress_bar_free(struct progress_bar *bar);
/* Lines in a regular file from its current offset: a bar's total (0 for
 * anything else). */
uint64_t progress_count_lines(int fd);
