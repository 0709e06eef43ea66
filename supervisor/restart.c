/* SPDX-License-Identifier: MIT */
/* Restart backoff and crash-loop counting: pure bookkeeping. */
#include "supervisor/restart.h"

void restart_state_init(struct restart_state *s, const struct restart_limits *l) {
        *s = (struct restart_state) { .delay = l->initial };
}

static void restart_back_off(struct restart_state *s, const struct restart_limits *l) {
        s->delay = s->delay > l->max / 2 ? l->max : s->delay * 2;
        if (s->delay == 0)
                s->delay = l->initial;
}

usec_t restart_record_transient(struct restart_state *s, const struct restart_limits *l) {
        usec_t wait = s->delay;
        restart_back_off(s, l);
        return wait;
}

usec_t restart_record_exit(struct restart_state *s, const struct restart_limits *l,
                           usec_t uptime, bool failed) {
        if (uptime >= l->reset_after)
                restart_state_init(s, l);

        usec_t wait = s->delay;
        if (uptime < l->reset_after) {
                /* Quick exits back off whether or not they failed, so that a
                 * command that exits 0 at once cannot make corral spin. */
                restart_back_off(s, l);
                /* A success breaks the row of failures. */
                s->quick_failures = failed ? s->quick_failures + 1 : 0;
        }
        return wait;
}

bool restart_is_crash_loop(const struct restart_state *s, const struct restart_limits *l) {
        return s->quick_failures > l->burst;
}
