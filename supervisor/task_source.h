/* SPDX-License-Identifier: MIT */
/*
 * Where task lines come from, apart from who runs them: a source (a file or
 * stdin, a work queue) owns its own state and talks to its consumer (the
 * per-task batch, the stream) through two small tables, one each way. A
 * source hands out lines numbered 1, 2, 3... in order and hears back, per
 * line, when it is done for good; the consumer never learns what the
 * source is, and the source never sees the consumer's types.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct metrics_snapshot;
struct signals;
struct spool;

/* How a line (or a --batch invocation of lines) ended for good. */
struct task_report {
        bool ok;
        int exit;                /* exit status; 128+N: killed by signal N; -1: timed out */
        double runtime;          /* seconds, of the last attempt; 0: not measured */
};

/* Called by a source when the output written so far is out (written true)
 * or never will be (false). */
typedef void (*task_output_fn)(void *data, bool written);

/* The consumer's side, as a source calls it; data is the consumer's. */
struct task_consumer {
        void *data;
        /* Takes line seq (len bytes, no newline, may hold NULs); seqs come in
         * order without gaps. Returns 0; -ENOMEM; or -EINVAL when this
         * consumer can never run the line, with *why set (the seq is then
         * not used: the next line gets it again). */
        int (*line)(void *data, uint64_t seq, const char *line, size_t len, const char **why);
        /* The lines given so far may go now (a shorter --batch invocation). */
        int (*flush)(void *data);
        /* No more lines will come. */
        void (*ended)(void *data);
        /* Something changed: more lines may be taken, the end may have come. */
        void (*progress)(void *data);
        /* The source cannot go on (logged): the consumer stops, exit 2. */
        void (*failed)(void *data, int error);
        /* Lines the consumer would take now; 0: none. */
        size_t (*wanted)(void *data);
        /* Whether line seq is being worked on (not merely waiting). */
        bool (*busy)(void *data, uint64_t seq);
        /* fn(fn_data, ...) once what was queued on the output before now is
         * written, or once it never will be. */
        void (*after_output)(void *data, task_output_fn fn, void *fn_data);
};

/*
 * The source's side, as a consumer calls it; src is the source's own state.
 * Only fill is required.
 */
struct task_source_ops {
        const char *name;
        /* Gives lines (consumer->line) until the consumer wants no more or
         * none is at hand; a source that waits calls consumer->progress when
         * more may be there, consumer->ended at the end. */
        void (*fill)(void *src);
        /* "CORRAL_TASK_ID=..." for lines [seq, seq + lines), or NULL. */
        const char *(*task_id_var)(void *src, uint64_t seq, unsigned lines);
        /* Just before done: the task's collected stdout, for a source that
         * records results. */
        void (*capture)(void *src, const struct spool *out);
        /* Instead of capture, for a consumer that has each line's stdout on
         * its own (stream mode's answers), as it comes, before done for
         * those lines: p holds whole lines (len bytes), the stdout of lines
         * seq, seq + 1, ... one line each. A source that records no results
         * keeps nothing. Optional. */
        void (*capture_lines)(void *src, uint64_t seq, const char *p, size_t len);
        /* Lines [seq, seq + lines) are done for good (ok, or failed after
         * their retries); their output is queued on the consumer's output. */
        void (*done)(void *src, uint64_t seq, unsigned lines, const struct task_report *r);
        /* Line seq can never run (why: "line too long"); counted as failed. */
        void (*not_run)(void *src, uint64_t seq, const char *why);
        /* TERM: give no more lines, give back what was taken and is not busy. */
        void (*stop)(void *src);
        /* Whether nothing is outstanding with the source, so the run may end. */
        bool (*settled)(void *src);
        /* The run's exit status, given the consumer's own. */
        int (*status)(void *src, int status, bool output_failed);
        /* Logs the run's summary in the source's terms (true), or leaves it
         * to the consumer (false). status: the run's exit status. */
        bool (*summarize)(void *src, int status);
        /* Lines waiting beyond the consumer (tasks.backlog); false: unknown. */
        bool (*backlog)(const void *src, uint64_t *ret);
        void (*fill_snapshot)(const void *src, struct metrics_snapshot *s);
        /* Signals of its own (queue.lag, queue.pending). */
        void (*fill_signals)(const void *src, struct signals *s);
        void (*free)(void *src);
};

struct task_source {
        const struct task_source_ops *ops;   /* NULL: none opened */
        void *src;
};

static inline bool task_source_is_open(const struct task_source *s) {
        return s->ops != NULL;
}
