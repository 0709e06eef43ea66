/* SPDX-License-Identifier: MIT */
/*
 * The restart schedule of DESIGN.md "Restarts and the crash loop", pure: how
 * long to wait before replacing a worker that ended, and when quick failures
 * in a row amount to a crash loop. No clock: callers pass uptimes.
 */
#pragma once

#include <stdbool.h>

#include "common/util.h"

struct restart_limits {
        usec_t initial;          /* first delay */
        usec_t max;              /* the delay doubles up to this */
        usec_t reset_after;      /* a worker that ran this long resets the schedule */
        unsigned burst;          /* more quick failures in a row than this: crash loop */
};

struct restart_state {
        usec_t delay;            /* the wait before the next replacement */
        unsigned quick_failures; /* in a row, pool-wide */
};

void restart_state_init(struct restart_state *s, const struct restart_limits *l);

/* Records a worker that ended after `uptime`, failed or not, and returns how
 * long to wait before replacing it. Cannot fail. */
usec_t restart_record_exit(struct restart_state *s, const struct restart_limits *l,
                           usec_t uptime, bool failed);

/* Records a start that failed for want of resources (EMFILE, EAGAIN, ...),
 * or one that failed while other workers keep running: returns how long
 * to wait before trying again, and backs off like a quick exit, but counts
 * no failure toward the crash loop and breaks no row of them. Cannot fail. */
usec_t restart_record_transient(struct restart_state *s, const struct restart_limits *l);

/* True once the quick failures in a row exceed the burst. */
bool restart_is_crash_loop(const struct restart_state *s, const struct restart_limits *l);

