/* SPDX-License-Identifier: MIT */
/*
 * The pure arithmetic of stream mode (stream_lines.c), unit-tested without a
 * worker: how many whole lines a span takes, how span sizes adapt, and the
 * pace model of DESIGN.md "Sizing and stream dispatch": how many lines one
 * worker may hold.
 *
 * The pace: a worker holds what it answers in a short horizon at its own
 * measured rate, at least one line, so slow lines wait in corral
 * (tasks.backlog, which grows the pool) and go to whichever worker frees up
 * first, while a fast filter still gets large writes. A worker that answers
 * only once it has read more (a block-buffered stdout, or one that batches)
 * is seen waiting on its stdin with lines unanswered, and the least it holds
 * doubles until it answers.
 *
 * Times are arguments; stream_pace.c feeds the model from a worker's life.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

/*
 * Pure: the length of the whole lines ('\n'-terminated) at the start of p[0,
 * len): at most max_lines of them, and no more once max_bytes are reached
 * (the line that crosses it is included). *ret_lines gets their number.
 * Returns 0 when p holds no whole line.
 */
size_t stream_take_lines(const char *p, size_t len, size_t max_lines, size_t max_bytes, size_t *ret_lines);

/*
 * Pure: the number of lines per span after a span of `lines` lines took
 * `busy` microseconds of a worker's time: spans grow while a worker answers a
 * whole span within a millisecond (so fast workers get big writes) and shrink
 * when one takes more than 10 ms (so slow lines spread over the workers).
 * The result is in [1, max].
 */
size_t stream_span_lines_next(size_t current, size_t lines, uint64_t busy, size_t max);

#define PACE_HORIZON (20 * USEC_PER_MSEC)        /* the work a worker holds, at its own rate */
#define PACE_DECAY 0.5                           /* weight of the past at each answer */
#define PACE_PROBE_FIRST (2 * USEC_PER_MSEC)     /* silence before the first look at a worker */
#define PACE_PROBE_MAX (200 * USEC_PER_MSEC)     /* the longest gap between two looks */
#define PACE_BLIND_MIN (100 * USEC_PER_MSEC)     /* silence that counts as a stall when we cannot see */
#define PACE_BACKSTOP (2 * USEC_PER_SEC)         /* ... when it seems busy with something else */
#define PACE_STALL_FACTOR 4u                     /* expected answer times of silence before a blind stall */

/* What a look at a silent worker saw (stream_pace.c reads /proc/PID/syscall). */
enum pace_reading {
        PACE_UNKNOWN,            /* could not see, or waiting in poll/epoll/futex: maybe on its stdin */
        PACE_BUSY,               /* running, sleeping, or reading something else: working on a line */
        PACE_WAITING,            /* blocked reading its stdin: it wants more before it answers */
        _PACE_READING_MAX,
};

struct stream_pace {
        int pid;                 /* the worker measured; another pid starts over */
        double busy, lines;      /* decaying sums of answer time (usec) and lines answered */
        size_t floor;            /* lines it needs before it answers: 1, doubled by each stall */
        uint64_t seen;           /* its answered count at the last look */
        usec_t since;            /* when its current silence began (work while idle, an answer, a stall) */
        usec_t probed;           /* silence at the last look in this silence, 0: none yet */
};

/* A fresh measurement of the worker pid. Cannot fail. */
void stream_pace_reset(struct stream_pace *p, int pid);

/* The worker answered `lines` lines, the last at `at`, after being busy
 * since p->since: the mean answer time takes it in; the next silence
 * begins at `at`. Cannot fail. */
void stream_pace_answered(struct stream_pace *p, uint64_t lines, usec_t at);

/* Its mean time per answered line in usec; 0 while nothing was answered. */
double stream_pace_line_usec(const struct stream_pace *p);

/* The most lines it may hold now: PACE_HORIZON at its mean answer time
 * (1 while unknown), at least its floor and 1, at most in_flight when that
 * is not 0 (tasks.in_flight). Cannot fail. */
size_t stream_pace_limit(const struct stream_pace *p, unsigned in_flight);

/* The silence (since p->since) at which to look at the worker next:
 * PACE_PROBE_FIRST, then doubling, at most PACE_PROBE_MAX apart. */
usec_t stream_pace_next_look(const struct stream_pace *p);

/* A look after `silent` usec without an answer while it holds `held` lines,
 * all written to its stdin. Returns true when it stalled: it waits for more
 * input (PACE_WAITING), or has been silent far longer than its answer time
 * says (PACE_BLIND_MIN when unseen, PACE_BACKSTOP when busy, or
 * PACE_STALL_FACTOR expected answer times). A stall doubles its floor above
 * what it holds and begins a new silence at now. Cannot fail. */
bool stream_pace_look(struct stream_pace *p, size_t held, usec_t now, enum pace_reading r);
