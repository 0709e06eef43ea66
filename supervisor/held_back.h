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
 */
#pragma once

#include <stdbool.h>

#include "conf/config.h"
#include "policy/decide.h"

struct held_back {
        char logged[96];        /* the situation last logged ("" for none) */
        unsigned clear;         /* samples since it was last seen */
};

/* After a decision d that kept the size: logs the situation when it is new.
 * s is the sample decided on, NULL when there was none. */
void held_back_note(struct held_back *h, const struct policy_config *cfg, const struct signals *s,
                    const struct decision *d);

/* After a change of size: the next hold is news again. */
void held_back_reset(struct held_back *h);
