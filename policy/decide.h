/* SPDX-License-Identifier: MIT */
/*
 * The scaling decision: given the policy (DESIGN.md "Configuration"), the
 * pool's limits, one snapshot of signals, the current size and the time, say
 * what size the pool should have and why. Rules, target sizing, clamping,
 * cooldowns, downscale stabilization, anti-flap and the manual override all
 * live here, in one function that tests drive with synthetic time.
 *
 * One decision, in order:
 *   1. Each rule's "held since" is updated: it starts when the rule's `when`
 *      first holds and resets as soon as it does not (an unavailable signal
 *      makes its comparison false). A rule fires once it has held for its
 *      `for`; a rule that keeps holding keeps firing (the cooldowns pace it).
 *   2. The recommendation: the first firing rule in file order (`scale: +N`,
 *      `-N`, `+P%`, `-P%` of the current size, percent rounded away from zero
 *      and at least one worker); else the manual size, while one is held; else,
 *      with policy.optimize, the throughput seeker's size (policy/optimize.h);
 *      else the target, ceil(size * signal / value), or the current size while
 *      |signal / value - 1| <= tolerance; else nothing (steady).
 *   3. The recommendation is clamped to [min, max] and, when a rule or the
 *      target made it, remembered with its time for the stabilization window.
 *      The first sample after init also remembers the current size, so a pool
 *      just started is not shrunk within stabilization.down of its start.
 *      Recommendations are absolute sizes: after a rule's -1 took 4 to 3, the
 *      3 it asked for holds the next -1 for the window, so a scale-down rule
 *      steps at most once per stabilization.down (use -P% for bigger steps).
 *   4. A current size outside [min, max] moves to the bound at once. Otherwise
 *      a scale-up happens at once unless within cooldown.up of the last
 *      change; a scale-down goes only to the highest recommendation of the
 *      last stabilization.down (HPA downscale stabilization: one quiet sample
 *      never empties the pool), and not within cooldown.down of the last change.
 *      The manual size is the operator's: it skips cooldowns and the window.
 *      So does optimize's, which its own probe windows pace instead (below).
 *
 * Optimize against the limits. The seeker moves at most once per measured
 * window (a warm-up sample and OPTIMIZE_WINDOW samples at least), and its
 * method is to step up and down: cooldowns would hold its probes back,
 * stabilization.down (30s by default) would hold every down-probe for the
 * window and make a search of a few dozen samples take many minutes, and
 * anti-flap would read every probe that returns as a flap. So its moves skip
 * cooldowns and the window, are not kept in the window (a rule's scale-down,
 * the neighbour's rule, must not be held up by the seeker's larger sizes),
 * and are not flaps. They do count as changes for the rules' cooldowns. A
 * firing rule overrides it, as it overrides the target; the seeker is not
 * consulted on that sample, and once the rule stops it measures the size the
 * rule left anew (OPTIMIZE_WARMUP + OPTIMIZE_WINDOW samples before it moves
 * again), so it does not snatch a worker straight back from the neighbour.
 *
 * Anti-flap (uWSGI's busyness penalty, made visible): a scale-up made by a
 * rule or the target within policy_flap_window() of a scale-down made by a
 * rule or the target is a flap. Each flap raises st->penalty by one (up to
 * POLICY_PENALTY_MAX); while the penalty is p, every scale-down rule's `for`
 * and the stabilization window are 2^p times as long. The penalty falls by one
 * after each POLICY_PENALTY_DECAY_WINDOWS flap windows without a flap. A rule
 * with `for: 0s` is not lengthened (0 doubled is 0); the window still is.
 *
 * Pure: no system calls, no clock reads, no globals, no logging. The state is
 * allocated once (policy_state_init: one array of per-rule times); a decision
 * neither allocates nor frees.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"
#include "policy/optimize.h"
#include "policy/settings.h"
#include "policy/signals.h"

enum decision_reason {
        DECISION_NONE,          /* steady: nothing asks for a change, or no sample */
        DECISION_RULE,          /* a rule fired; decision.rule names it */
        DECISION_TARGET,        /* target sizing */
        DECISION_MANUAL,        /* the size set by hand (SIGTTIN/SIGTTOU) */
        DECISION_MIN,           /* clamping to min changed the outcome */
        DECISION_MAX,           /* clamping to max changed the outcome */
        DECISION_COOLDOWN,      /* a change was wanted; the cooldown holds it back */
        DECISION_STABILIZING,   /* a scale-down was wanted; a higher recent recommendation holds it */
        DECISION_OPTIMIZE,      /* the throughput seeker (policy.optimize) */
        _DECISION_REASON_MAX,
};

/* "none", "rule", "target", "manual", "min", "max", "cooldown", "stabilizing",
 * "optimize"; NULL for an invalid value. */
const char *decision_reason_to_string(enum decision_reason r);

#define POLICY_WHY_MAX 192

struct decision {
        unsigned desired;
        enum decision_reason reason;    /* what settled the outcome */
        enum decision_reason source;    /* who asked: RULE, TARGET, MANUAL, OPTIMIZE or NONE */
        const char *rule;               /* the firing rule's name (points into the config), or NULL */
        char why[POLICY_WHY_MAX];       /* one line for the log, e.g.
                                         * "rule saturated: pool.cpu 91%, cpu.busy 43% for 2s" */
};

/* The label of a scale event (corral_scale_events_total{rule}): the rule's
 * name when a rule asked, else the reason ("target", "manual", "min", ...). */
const char *decision_label(const struct decision *d);

/* Anti-flap limits: at most 2^3 = 8 times the written `for`/window. */
#define POLICY_PENALTY_MAX 3u
#define POLICY_PENALTY_DECAY_WINDOWS 4u
/* The flap window when stabilization.down is shorter. */
#define POLICY_FLAP_WINDOW_MIN (30 * USEC_PER_SEC)

/* Entries of the stabilization window. It is a monotonic queue (sizes strictly
 * decreasing from oldest to newest), so it holds one entry per distinct size
 * at most: exact for pools whose min..max spans up to this many sizes. Beyond,
 * the two newest entries merge upward, which only ever keeps the pool larger
 * for longer, never smaller. */
#define POLICY_WINDOW_MAX 64

struct policy_recommendation {
        usec_t time;
        unsigned size;
};

/* Everything a policy remembers between samples. Fields are read-only for
 * callers (for /status and the log); change them only through the functions
 * below. */
struct policy_state {
        size_t n_rules;
        usec_t *held_since;             /* per rule: since when its `when` holds, or USEC_INFINITY */

        struct policy_recommendation window[POLICY_WINDOW_MAX];   /* ring */
        size_t window_first, window_len;
        bool seeded;                    /* the first sample's size is in the window */

        bool changed;                   /* last_change is valid */
        usec_t last_change;             /* the last decided change of size, any cause */
        bool scaled_down;               /* last_down is valid */
        usec_t last_down;               /* the last scale-down made by a rule or the target */

        unsigned penalty;               /* anti-flap level, 0..POLICY_PENALTY_MAX */
        usec_t penalty_since;           /* when it last rose or fell */
        unsigned flaps;                 /* flaps seen since init */

        bool manual;                    /* a manual size is held until a rule fires */
        unsigned manual_size;

        struct optimize_state optimize; /* the throughput seeker's, with policy.optimize */
};

/* Prepares st for a policy of n_rules rules. Returns 0 or -ENOMEM (st is then
 * zeroed, and policy_state_done() on it is harmless). */
int policy_state_init(struct policy_state *st, size_t n_rules);

/* Frees what st owns and zeroes it. Accepts a zeroed st. */
void policy_state_done(struct policy_state *st);

/* After a reload to a policy of n_rules rules: the rules' hold times start
 * over (the conditions may have changed), while the times of the last changes
 * (cooldowns), the stabilization window, the anti-flap penalty and a manual
 * size carry over. The throughput seeker starts over (the bias or the signal
 * may have changed). Returns 0 or -ENOMEM (st is then unchanged). */
int policy_state_reload(struct policy_state *st, size_t n_rules);

/*
 * Decides one sample. cfg is the policy, min and max the pool's resolved bounds, sample the snapshot or NULL when the
 * sampler failed, current the size the pool is heading for (workers starting,
 * running or waiting to restart; not those stopping), now a monotonic time.
 *
 * Returns 0 and fills *ret, or -EINVAL when st was not prepared for cfg's
 * number of rules or min > max (*ret untouched). With sample == NULL there is
 * no decision: desired = current, reason NONE, and every rule's hold starts
 * over (nobody saw it hold). Updates st; does not allocate.
 */
int policy_decide(const struct policy_config *cfg, unsigned min, unsigned max, struct policy_state *st,
                  const struct signals *sample, unsigned current, usec_t now, struct decision *ret);

/* SIGTTIN/SIGTTOU: hold size (the caller clamps it to [min, max]) until a
 * rule fires. Rules holding now must hold for their `for` anew, the
 * stabilization window forgets the policy's older recommendations, and the
 * change counts for the cooldowns. Cannot fail. */
void policy_manual(struct policy_state *st, unsigned size, usec_t now);

/* What /status shows of rule i. */
struct policy_rule_status {
        bool holding;                   /* its `when` held at the last sample */
        usec_t held_for;                /* for how long, up to now (0 when not holding) */
        usec_t hold;                    /* its effective `for`, anti-flap included */
        bool firing;                    /* holding && held_for >= hold */
};

/* Fills *ret for rule i (< st->n_rules; returns -EINVAL otherwise). */
int policy_rule_status(const struct policy_config *cfg, const struct policy_state *st, size_t i, usec_t now,
                       struct policy_rule_status *ret);

/* The effective `for` of a rule: its `for`, times 2^penalty for a scale-down rule. */
usec_t policy_rule_hold(const struct rule_config *rule, const struct policy_state *st);

/* The span within which a scale-up after a scale-down counts as a flap:
 * max(stabilization.down, POLICY_FLAP_WINDOW_MIN). */
usec_t policy_flap_window(const struct policy_config *cfg);

/* The effective stabilization window (stabilization.down times 2^penalty). */
usec_t policy_stabilization_window(const struct policy_config *cfg, const struct policy_state *st);

/* The highest recommendation within the effective stabilization window
 * before now, in *ret; false (and *ret untouched) when there is none. */
bool policy_stabilized_size(const struct policy_config *cfg, const struct policy_state *st, usec_t now,
                            unsigned *ret);
