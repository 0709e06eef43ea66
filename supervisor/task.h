/* SPDX-License-Identifier: MIT */
/*
 * The pure building blocks of per-task batch mode, kept apart from the
 * process handling so they are unit-tested without forking: a growable byte
 * buffer, the argv of one task (`{}` substitution, no shell), the command line
 * as the joblog shows it, the line splitter of the task input, where live
 * output may be cut (tasks.output: line-buffer), the buffer that puts outputs
 * back in input order, and the progress bar's text.
 * Nothing here logs or makes a system call.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The task input's longest line unless the reader is given another: one
 * argument of execve() (MAX_ARG_STRLEN with 4 KiB pages). */
#define TASK_LINE_MAX (128u * 1024u)

struct strbuf {
        char *data;
        size_t len, cap;
};

/* Makes room for n more bytes. Returns 0 or -ENOMEM (the buffer is unchanged). */
int strbuf_reserve(struct strbuf *b, size_t n);
int strbuf_append(struct strbuf *b, const char *s, size_t n);
/* Frees the data and zeroes the buffer. Accepts a zeroed buffer. */
void strbuf_done(struct strbuf *b);

/* argv of one task. Reused from task to task: the strings live in one buffer
 * that only grows, so building an argv does not allocate once warm. */
struct task_argv {
        char **argv;             /* NULL-terminated, points into buf */
        size_t n_slots;
        struct strbuf buf;
};

/* True when some argument of command contains `{}`. */
bool task_command_has_placeholder(char *const *command);

/* How many `{}` arg contains. */
size_t task_count_placeholders(const char *arg);

/*
 * Builds the argv of the task `lines` (len bytes, no NUL needed): one line,
 * or with tasks.batch several joined by '\n' (a line never holds one). Every
 * argument of command that contains `{}` stands once per line, each `{}` in
 * it replaced by that line (GNU parallel -N's context replace: "x{}y" over
 * a, b gives "xay" "xby"); when no argument has one, the lines are appended
 * as the last arguments. The result is in a->argv, valid until the next call
 * or task_argv_done(). Returns 0 or -ENOMEM.
 */
int task_argv_build(struct task_argv *a, char *const *command, const char *lines, size_t len);
void task_argv_done(struct task_argv *a);

/*
 * Appends argv as one line a shell would read back into the same argv
 * (arguments with anything but [A-Za-z0-9_./=:,+@%-] are single-quoted), as
 * GNU parallel's joblog shows it; one with a newline is written $'...' (as
 * bash reads it) so that the line stays one line. Returns 0 or -ENOMEM.
 */
int task_command_line(struct strbuf *b, char *const *argv);

/*
 * The task input, split into lines. The caller reads into the space it gets
 * from line_reader_space() and commits what it read; lines come out of
 * line_reader_next(). Only the unconsumed part is kept, so memory stays
 * bounded by the longest line however long the input is.
 */
struct line_reader {
        char *buf;
        size_t cap, start, end;
        bool eof;
        size_t max;              /* the longest line; 0: TASK_LINE_MAX */
        bool skipping;           /* dropping a line longer than max */
        size_t skipped;          /* bytes of it dropped so far */
};

/* Room for at least `min` bytes at the end of the data (compacting or growing).
 * Returns 0 or -ENOMEM. */
int line_reader_space(struct line_reader *r, size_t min, char **ret_ptr, size_t *ret_len);
/* n bytes were read into the space; 0 means end of input. */
void line_reader_commit(struct line_reader *r, size_t n);
/*
 * The next line without its '\n', NUL-terminated in place, valid until the
 * next call that changes the reader; after end of input a last line without
 * '\n' comes out too. Returns 1 with a line, 0 when more input is needed (or
 * none is left after eof). A line longer than max is dropped as it is read
 * (memory stays bounded) and comes out, once its end is read, as -E2BIG with
 * its length in *ret_len (*ret_line untouched).
 */
int line_reader_next(struct line_reader *r, char **ret_line, size_t *ret_len);
void line_reader_done(struct line_reader *r);

/* tasks.output: line-buffer holds at most this much of a line that has no
 * newline yet; past it the part goes out, so a task that never writes a
 * newline cannot grow corral's memory. */
#define TASK_LINE_BUFFER_MAX (64u * 1024u)

/*
 * How much of a task's pending output (len bytes) may be written now in
 * line-buffer mode: up to and including its last newline; all of it when the
 * task has ended (final) or when what follows the last newline is at least
 * cap bytes. Returns 0 when nothing may go yet. Cannot fail.
 */
size_t task_output_cut(const char *data, size_t len, size_t cap, bool final);

/*
 * Outputs of tasks put back in input order (keep_order). Each task has an
 * ordinal, 0, 1, 2, ... in input order; an item (its output) is put once its
 * task ended for good, and comes out once every earlier one came out. Memory
 * is bounded by the spread of ordinals in flight (the dispatcher keeps it
 * bounded).
 */
struct order_buffer {
        struct order_entry {
                void *item;      /* owned; may be NULL */
                size_t len;
                bool ready;
        } *ring;
        size_t cap;              /* a power of two; 0 until the first put */
        uint64_t next;           /* the ordinal to come out next */
        void (*free_item)(void *item);   /* NULL: free() */
};

/* Takes ownership of item (may be NULL). ord must be >= o->next and not put
 * before. Returns 0 or -ENOMEM/-EINVAL (item is then freed). */
int order_buffer_put(struct order_buffer *o, uint64_t ord, void *item, size_t len);
/* The next item in order, if it is ready: the caller owns *ret_item.
 * Returns true with an item, false when the next one is not there yet. */
bool order_buffer_pop(struct order_buffer *o, void **ret_item, size_t *ret_len);
/* Frees the items still held. */
void order_buffer_done(struct order_buffer *o);

/* The progress bar's one line (no "\r", no newline), fitted into width
 * columns. total 0: unknown (stdin), then done and rate only. rate in tasks
 * per second; < 0 when not known yet. */
void task_bar_format(char *buf, size_t size, unsigned width, uint64_t done, uint64_t total,
                     uint64_t failed, unsigned running, double rate);
