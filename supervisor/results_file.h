/* SPDX-License-Identifier: MIT */
/*
 * --results FILE (tasks.results: PATH): one JSON object per task (per-task
 * mode) or per line (stream mode) on a line of its own, written with one
 * write() each as results come in, so that a program can read the file back
 * (and read it while corral runs). See corral(1) for the fields.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* stdout and stderr are kept up to this much each; past it "..._truncated". */
#define RESULTS_OUTPUT_MAX (64u * 1024u)

/* What a tasks.results value names. One place to tell them apart, so that
 * another kind (a queue's results stream) is one more case here. */
enum results_kind {
        RESULTS_NONE,            /* NULL or empty */
        RESULTS_FILE,            /* a path */
        RESULTS_REDIS,           /* redis://...: a queue's results stream, not a file */
};
enum results_kind results_kind(const char *value);

struct results_file;

/* One task's (or line's) result. Strings need not be NUL-terminated nor
 * valid UTF-8 (bytes that are not become U+FFFD). */
struct result_record {
        uint64_t seq;
        const char *task;        /* the task line(s); NULL: not known */
        size_t task_len;
        bool exited;             /* false: killed by signal, or never ran (exit null) */
        int exit;                /* exit status, -1 when timed out (as the joblog) */
        int signal;              /* 0: none */
        double duration;         /* seconds */
        const char *out, *err;   /* NULL: not captured (null) */
        size_t out_len, err_len; /* at most RESULTS_OUTPUT_MAX are written */
        bool out_truncated, err_truncated;   /* there was more than given */
        const char *error;       /* NULL, or why it did not run */
};

/*
 * Opens path for results: created, or emptied unless append (--resume). A
 * symbolic link is refused (-ELOOP), as for the joblog. Returns 0, or a
 * negative errno (the caller names path in its message).
 */
int results_file_open(const char *path, bool append, struct results_file **ret);

/* results_file_open() for a run: a failure is logged once, naming path (a
 * symbolic link refused, or why it cannot be written). Returns as
 * results_file_open(). */
int results_file_open_logged(const char *path, bool append, struct results_file **ret);

/* tasks.results for a run whose tasks come from `from`: nothing when it is
 * unset or a queue's results stream that the queue's source writes (with a
 * redis:// tasks.from), an error when it names a queue's results stream
 * without a queue, else the file opened as results_file_open_logged() does.
 * Logged; returns 0 (*ret untouched when there is no file), -EINVAL (a user
 * error), or the open's negative errno. */
int results_file_open_config(const char *results, const char *from, bool append, struct results_file **ret);

/* Writes one record as one line with one write(). Returns 0 or a negative
 * errno (-ENOMEM, or the write's). */
int results_file_write(struct results_file *f, const struct result_record *r);

/* Closes the file; accepts NULL, returns NULL. */
struct results_file *results_file_free(struct results_file *f);
