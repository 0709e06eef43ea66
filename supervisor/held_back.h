/* SPDX-License-Identifier: MIT */
/*
 * Why the pool is not growing, for the log at the default verbosity. The
 * controller logs each change of size with its reason; this says, once per
 * situation rather than every sample, when the pool would grow but something
 * holds it back:
 *     not growing: the machine is busy (cpu.busy 100% >= 80%), rule saturated
 *     not growing: rule saturated: pool.cpu 99%, cpu.busy 40% for 2s; wants 3, at max 2
 *     not growing, holding at the minimum: rule neighbour: cpu.busy 100%, psi.cpu 35% for 5s; wants 0, at min 1
 * A rule "would grow" when it scales up and the first comparison of its `when`
 * (the demand) holds while a later one (a guard) does not: see
 * condition_blocker().
 *
 * When nothing holds the pool back and no scale-up rule's demand holds, it
 * says instead, once per run, what growing waits for, when that has lasted
 * two samples:
 *     not growing yet: rule saturated waits for pool.cpu > 80% (pool.cpu 66%)
 * Once per run, not once per situation: a pool below its demand is the
 * ordinary state of a long-running pool, and the line is there to explain
 * the first minutes (why does it stay at 1?), not to double the log of a
 * pool that scales now and then. A reload does not repeat it either, as it
 * does not repeat a "not growing" line.
 */
#pragma once

#include <stdbool.h>

#include "conf/config.h"
#include "policy/decide.h"

struct held_back {
        char logged[96];        /* the situation last logged ("" for none) */
        unsigned clear;         /* samples since it was last seen */
        unsigned awaited_samples; /* samples in a row with a demand awaited */
        bool told_awaited;      /* "not growing yet: ..." was logged: never again */
};

/* After a decision d that kept the size, with the pool's max: logs the
 * situation when it is new. s is the sample decided on, NULL when there was
 * none. */
void held_back_note(struct held_back *h, const struct policy_config *cfg, const struct signals *s,
                    const struct decision *d, unsigned max);

/* After a change of size: the next hold is news again (what growing waits
 * for is not: it was said once for the run). */
void held_back_reset(struct held_back *h);
