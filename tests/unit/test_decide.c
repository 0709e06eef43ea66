/* SPDX-License-Identifier: MIT */
/*
 * The scaling decision over synthetic sample sequences: each case is a small
 * policy and a list of steps {time, signals, current size -> desired size,
 * reason, rule}, with cases just inside and just outside every threshold.
 * Time is an argument: nothing sleeps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/util.h"
#include "conf/conf.h"
#include "policy/condition.h"
#include "policy/decide.h"

/* Monotonic clocks do not start at 0; neither do the cases, so that a 0
 * mistaken for "never" shows. */
#define BASE (1000 * USEC_PER_SEC)
#define F UINT_MAX      /* current: the previous step's desired size (the pool followed) */

struct sig {
        int id1;        /* signal_id + 1; 0 ends the list */
        double value;
};
#define S(name, v) { SIGNAL_##name + 1, (v) }

enum step_kind {
        STEP_SAMPLE,
        STEP_NO_SAMPLE,         /* the sampler failed */
        STEP_MANUAL,            /* SIGTTIN/SIGTTOU: desired is the manual size */
        STEP_RELOAD,            /* policy_state_reload with the same rules */
        STEP_PENALTY,           /* check: desired is the expected anti-flap level */
};

struct step {
        const char *name;
        enum step_kind kind;
        unsigned t_ms;
        unsigned current;
        unsigned desired;
        enum decision_reason reason;
        const char *rule;
        struct sig sigs[5];
};

#define AT(n, t, cur, want, why, r, ...) \
        { .name = n, .kind = STEP_SAMPLE, .t_ms = t, .current = cur, .desired = want, \
          .reason = DECISION_##why, .rule = r, .sigs = { __VA_ARGS__ } }
#define NO_SAMPLE(n, t, cur) \
        { .name = n, .kind = STEP_NO_SAMPLE, .t_ms = t, .current = cur, .desired = cur, .reason = DECISION_NONE }
#define MANUAL(n, t, size) { .name = n, .kind = STEP_MANUAL, .t_ms = t, .desired = size }
#define RELOAD(n, t) { .name = n, .kind = STEP_RELOAD, .t_ms = t }
#define PENALTY(n, t, level) { .name = n, .kind = STEP_PENALTY, .t_ms = t, .desired = level }

struct rule_spec {
        const char *name, *when;
        unsigned for_ms;
        int scale;
        bool percent;
};

struct policy_spec {
        unsigned min, max;
        unsigned stab_ms, up_ms, down_ms;       /* stabilization.down, cooldown.up, cooldown.down */
        enum signal_id target;                  /* 0 (cpu.busy) is never a target here: 0 = none */
        double value, tolerance;
        struct rule_spec rules[4];
};

struct test_case {
        const char *name;
        struct policy_spec policy;
        bool default_policy;    /* config_default_policy(false), with min/max from .policy */
        const char *yaml;       /* or a policy file for conf_load (min and max from the file) */
        struct step steps[20];
};

/* Rules the cases share. */
#define UP(ms)      { "up",   "pool.cpu > 80%", ms, +1, false }
#define DOWN(ms)    { "down", "pool.cpu < 20%", ms, -1, false }
#define TIMING(stab, up, down) .stab_ms = stab, .up_ms = up, .down_ms = down
#define TARGET(sig, v, tol) .target = SIGNAL_##sig, .value = v, .tolerance = tol

static const struct test_case cases[] = {
        /* ---- rules: `for` ---- */
        { "rule for: just under does not fire",
          { 1, 8, TIMING(0, 0, 0), .rules = { UP(2000) } }, .steps = {
                AT("starts holding", 0,    2, 2, NONE, NULL, S(POOL_CPU, 91)),
                AT("held 1s",        1000, F, 2, NONE, NULL, S(POOL_CPU, 91)),
                AT("held 1.999s",    1999, F, 2, NONE, NULL, S(POOL_CPU, 91)),
        } },
        { "rule for: reached exactly fires",
          { 1, 8, TIMING(0, 0, 0), .rules = { UP(2000) } }, .steps = {
                AT("starts holding", 0,    2, 2, NONE, NULL, S(POOL_CPU, 91)),
                AT("held 1s",        1000, F, 2, NONE, NULL, S(POOL_CPU, 91)),
                AT("held 2s",        2000, F, 3, RULE, "up", S(POOL_CPU, 91)),
        } },
        { "rule for: just over fires",
          { 1, 8, TIMING(0, 0, 0), .rules = { UP(2000) } }, .steps = {
                AT("starts holding", 0,    2, 2, NONE, NULL, S(POOL_CPU, 91)),
                AT("held 2.001s",    2001, F, 3, RULE, "up", S(POOL_CPU, 91)),
        } },
        { "rule for: the hold restarts when the condition breaks",
          { 1, 8, TIMING(0, 0, 0), .rules = { UP(2000) } }, .steps = {
                AT("starts holding", 0,    2, 2, NONE, NULL, S(POOL_CPU, 91)),
                AT("breaks",         1500, F, 2, NONE, NULL, S(POOL_CPU, 50)),
                AT("holds again",    2000, F, 2, NONE, NULL, S(POOL_CPU, 91)),
                AT("1.999s anew",    3999, F, 2, NONE, NULL, S(POOL_CPU, 91)),
                AT("2s anew",        4000, F, 3, RULE, "up", S(POOL_CPU, 91)),
        } },
        { "rule for: 0s fires on the first sample",
          { 1, 8, TIMING(0, 0, 0), .rules = { UP(0) } }, .steps = {
                AT("first sample", 0, 2, 3, RULE, "up", S(POOL_CPU, 91)),
        } },
        { "rule threshold: 80% exactly is not above 80%, 80.01% is",
          { 1, 8, TIMING(0, 0, 0), .rules = { UP(0) } }, .steps = {
                AT("at 80%",    0,    2, 2, NONE, NULL, S(POOL_CPU, 80)),
                AT("at 80.01%", 1000, F, 3, RULE, "up", S(POOL_CPU, 80.01)),
        } },
        { "rule keeps firing while it holds, paced by cooldown.up",
          { 1, 8, TIMING(0, 2000, 0), .rules = { UP(0) } }, .steps = {
                AT("fires",           0,    2, 3, RULE, "up", S(POOL_CPU, 91)),
                AT("still holds, 1s", 1000, F, 3, COOLDOWN, "up", S(POOL_CPU, 91)),
                AT("2s later",        2000, F, 4, RULE, "up", S(POOL_CPU, 91)),
        } },
        /* ---- rules: order ---- */
        { "first rule in file order wins when both fire",
          { 1, 8, TIMING(0, 0, 0), .rules = {
                { "first",  "pool.cpu > 80%", 0, +1, false },
                { "second", "cpu.busy > 50%", 0, +3, false } } }, .steps = {
                AT("both hold", 0, 2, 3, RULE, "first", S(POOL_CPU, 91), S(CPU_BUSY, 60)),
        } },
        { "a later rule fires when an earlier one does not hold",
          { 1, 8, TIMING(0, 0, 0), .rules = {
                { "first",  "pool.cpu > 80%", 0, +1, false },
                { "second", "cpu.busy > 50%", 0, +3, false } } }, .steps = {
                AT("only the second", 0, 2, 5, RULE, "second", S(POOL_CPU, 50), S(CPU_BUSY, 60)),
        } },
        { "an earlier rule wins once its for is reached, even over a rule held longer",
          { 1, 20, TIMING(0, 0, 0), .rules = {
                { "first",  "pool.cpu > 80%", 2000, +1, false },
                { "second", "cpu.busy > 50%", 0,    +3, false } } }, .steps = {
                AT("second alone",    0,    2, 5,  RULE, "second", S(POOL_CPU, 50), S(CPU_BUSY, 60)),
                AT("first starts",    1000, F, 8,  RULE, "second", S(POOL_CPU, 91), S(CPU_BUSY, 60)),
                AT("first held 2s",   3000, F, 9,  RULE, "first",  S(POOL_CPU, 91), S(CPU_BUSY, 60)),
        } },
        { "a scale-down rule: for just under and reached",
          { 1, 8, TIMING(0, 0, 0), .rules = { DOWN(5000) } }, .steps = {
                AT("starts holding", 0,    4, 4, NONE, NULL,   S(POOL_CPU, 10)),
                AT("held 4.999s",    4999, F, 4, NONE, NULL,   S(POOL_CPU, 10)),
                AT("held 5s",        5000, F, 3, RULE, "down", S(POOL_CPU, 10)),
        } },
        /* ---- percent steps ---- */
        { "percent: +50% of 1 is +1",
          { 1, 8, TIMING(0, 0, 0), .rules = { { "p", "pool.cpu > 80%", 0, +50, true } } }, .steps = {
                AT("fires", 0, 1, 2, RULE, "p", S(POOL_CPU, 91)),
        } },
        { "percent: +10% of 3 rounds away from zero to +1",
          { 1, 8, TIMING(0, 0, 0), .rules = { { "p", "pool.cpu > 80%", 0, +10, true } } }, .steps = {
                AT("fires", 0, 3, 4, RULE, "p", S(POOL_CPU, 91)),
        } },
        { "percent: -10% of 3 rounds away from zero to -1",
          { 1, 8, TIMING(0, 0, 0), .rules = { { "p", "pool.cpu < 20%", 0, -10, true } } }, .steps = {
                AT("fires", 0, 3, 2, RULE, "p", S(POOL_CPU, 5)),
        } },
        { "percent: +50% of 5 is +3 and -50% of 5 is -3",
          { 1, 16, TIMING(0, 0, 0), .rules = {
                { "grow",   "pool.cpu > 80%", 0, +50, true },
                { "shrink", "pool.cpu < 20%", 0, -50, true } } }, .steps = {
                AT("grow",   0,    5, 8, RULE, "grow",   S(POOL_CPU, 91)),
                AT("shrink", 1000, 5, 2, RULE, "shrink", S(POOL_CPU, 5)),
        } },
        { "percent: +200% of 4 is +8",
          { 1, 16, TIMING(0, 0, 0), .rules = { { "p", "pool.cpu > 80%", 0, +200, true } } }, .steps = {
                AT("fires", 0, 4, 12, RULE, "p", S(POOL_CPU, 91)),
        } },
        { "percent: -100% stops at min",
          { 1, 8, TIMING(0, 0, 0), .rules = { { "p", "pool.cpu < 20%", 0, -100, true } } }, .steps = {
                AT("fires", 0, 4, 1, MIN, "p", S(POOL_CPU, 5)),
        } },
        /* ---- clamping ---- */
        { "clamp: +3 at 7 stops at max 8",
          { 1, 8, TIMING(0, 0, 0), .rules = { { "up", "pool.cpu > 80%", 0, +3, false } } }, .steps = {
                AT("fires", 0, 7, 8, MAX, "up", S(POOL_CPU, 91)),
        } },
        { "clamp: a rule at max changes nothing and says max",
          { 1, 8, TIMING(0, 0, 0), .rules = { UP(0) } }, .steps = {
                AT("fires", 0, 8, 8, MAX, "up", S(POOL_CPU, 91)),
        } },
        { "clamp: -2 at 3 stops at min 2",
          { 2, 8, TIMING(0, 0, 0), .rules = { { "down", "pool.cpu < 20%", 0, -2, false } } }, .steps = {
                AT("fires", 0, 3, 2, MIN, "down", S(POOL_CPU, 5)),
        } },
        { "clamp: a rule at min changes nothing and says min",
          { 2, 8, TIMING(0, 0, 0), .rules = { DOWN(0) } }, .steps = {
                AT("fires", 0, 2, 2, MIN, "down", S(POOL_CPU, 5)),
        } },
        { "clamp: a pool above max (after a reload) goes to max at once, cooldown or not",
          { 1, 8, TIMING(30000, 60000, 60000), .rules = { UP(0) } }, .steps = {
                AT("fires",          0,    6, 7, RULE, "up", S(POOL_CPU, 91)),
                AT("9 above max 8",  1000, 9, 8, MAX, NULL,  S(POOL_CPU, 50)),
        } },
        { "clamp: a pool below min goes to min at once",
          { 2, 8, TIMING(0, 10000, 10000) }, .steps = {
                AT("empty", 0, 0, 2, MIN, NULL, S(POOL_CPU, 50)),
        } },
        /* ---- target ---- */
        { "target: at the tolerance's edge (55 vs 50, 10%) is within: no change",
          { 1, 16, TIMING(0, 0, 0), TARGET(POOL_CPU, 50, 10) }, .steps = {
                AT("above edge", 0,    4, 4, NONE, NULL, S(POOL_CPU, 55)),
                AT("below edge", 1000, 4, 4, NONE, NULL, S(POOL_CPU, 45)),
        } },
        { "target: just above the tolerance scales up proportionally",
          { 1, 16, TIMING(0, 0, 0), TARGET(POOL_CPU, 50, 10) }, .steps = {
                AT("55.1 vs 50", 0, 4, 5, TARGET, NULL, S(POOL_CPU, 55.1)),
        } },
        { "target: just below the tolerance scales down proportionally",
          { 1, 16, TIMING(0, 0, 0), TARGET(POOL_CPU, 50, 10) }, .steps = {
                AT("44.9 vs 50", 0, 10, 9, TARGET, NULL, S(POOL_CPU, 44.9)),
        } },
        { "target: from 1 to the right size in one sample",
          { 1, 16, TIMING(0, 0, 0), TARGET(POOL_CPU, 50, 10) }, .steps = {
                AT("4x the target", 0,    1, 4, TARGET, NULL, S(POOL_CPU, 200)),
                AT("settled",       1000, F, 4, NONE,   NULL, S(POOL_CPU, 50)),
        } },
        { "target: an exact product (4 x 75 / 50 = 6) does not round up to 7",
          { 1, 16, TIMING(0, 0, 0), TARGET(POOL_CPU, 50, 10) }, .steps = {
                AT("6 exactly", 0, 4, 6, TARGET, NULL, S(POOL_CPU, 75)),
        } },
        { "target: tolerance 0 reacts to 1% off",
          { 1, 16, TIMING(0, 0, 0), TARGET(POOL_CPU, 50, 0) }, .steps = {
                AT("50.5 vs 50", 0, 10, 11, TARGET, NULL, S(POOL_CPU, 50.5)),
        } },
        { "target: a non-percent signal (tasks.backlog)",
          { 1, 16, TIMING(0, 0, 0), TARGET(TASKS_BACKLOG, 10, 10) }, .steps = {
                AT("30 waiting at 2", 0, 2, 6, TARGET, NULL, S(TASKS_BACKLOG, 30)),
        } },
        { "target: its signal unavailable means steady",
          { 1, 16, TIMING(0, 0, 0), TARGET(POOL_CPU, 50, 10) }, .steps = {
                AT("no pool.cpu", 0, 4, 4, NONE, NULL, S(CPU_BUSY, 99)),
        } },
        { "target: clamped to max",
          { 1, 8, TIMING(0, 0, 0), TARGET(POOL_CPU, 50, 10) }, .steps = {
                AT("10x the target", 0, 4, 8, MAX, NULL, S(POOL_CPU, 500)),
        } },
        { "target: a firing rule overrides it for that sample",
          { 1, 16, TIMING(0, 0, 0), TARGET(POOL_CPU, 50, 10), .rules = {
                { "neighbour", "psi.cpu > 20%", 0, -1, false } } }, .steps = {
                AT("target says 8, rule -1", 0,    4, 3, RULE,   "neighbour", S(POOL_CPU, 100), S(PSI_CPU, 30)),
                AT("rule stops holding",     1000, F, 6, TARGET, NULL,        S(POOL_CPU, 100), S(PSI_CPU, 10)),
        } },
        /* ---- cooldowns ---- */
        { "cooldown up: 1ms before its end holds a scale-up",
          { 1, 16, TIMING(0, 2000, 10000), TARGET(POOL_CPU, 50, 10) }, .steps = {
                AT("up",        0,    2, 4, TARGET,   NULL, S(POOL_CPU, 100)),
                AT("up again",  1999, F, 4, COOLDOWN, NULL, S(POOL_CPU, 100)),
        } },
        { "cooldown up: at its end a scale-up goes ahead",
          { 1, 16, TIMING(0, 2000, 10000), TARGET(POOL_CPU, 50, 10) }, .steps = {
                AT("up",        0,    2, 4, TARGET, NULL, S(POOL_CPU, 100)),
                AT("up again",  2000, F, 8, TARGET, NULL, S(POOL_CPU, 100)),
        } },
        { "cooldown down: 1ms before its end holds a scale-down",
          { 1, 16, TIMING(0, 2000, 10000), TARGET(POOL_CPU, 50, 10) }, .steps = {
                AT("up",   0,    2, 4, TARGET,   NULL, S(POOL_CPU, 100)),
                AT("down", 9999, F, 4, COOLDOWN, NULL, S(POOL_CPU, 25)),
        } },
        { "cooldown down: at its end a scale-down goes ahead",
          { 1, 16, TIMING(0, 2000, 10000), TARGET(POOL_CPU, 50, 10) }, .steps = {
                AT("up",   0,     2, 4, TARGET, NULL, S(POOL_CPU, 100)),
                AT("down", 10000, F, 2, TARGET, NULL, S(POOL_CPU, 25)),
        } },
        { "cooldown up counts from a scale-down too",
          { 1, 16, TIMING(0, 2000, 0), TARGET(POOL_CPU, 50, 10) }, .steps = {
                AT("down",           0,    4, 2, TARGET,   NULL, S(POOL_CPU, 25)),
                AT("up 1.999s later", 1999, F, 2, COOLDOWN, NULL, S(POOL_CPU, 200)),
                AT("up 2s later",     2000, F, 8, TARGET,   NULL, S(POOL_CPU, 200)),
        } },
        { "cooldowns: the first change is never held",
          { 1, 16, TIMING(0, 60000, 60000), TARGET(POOL_CPU, 50, 10) }, .steps = {
                AT("up at once", 0, 2, 4, TARGET, NULL, S(POOL_CPU, 100)),
        } },
        /* ---- stabilization ---- */
        { "stabilization: a quiet first sample does not shrink a pool just started",
          { 1, 16, TIMING(30000, 0, 0), TARGET(POOL_CPU, 50, 10) }, .steps = {
                AT("quiet",            0,     4, 4, STABILIZING, NULL, S(POOL_CPU, 25)),
                AT("quiet 29.999s",    29999, F, 4, STABILIZING, NULL, S(POOL_CPU, 25)),
                AT("quiet 30s",        30000, F, 2, TARGET,      NULL, S(POOL_CPU, 25)),
        } },
        { "stabilization: one quiet sample among busy ones changes nothing",
          { 1, 16, TIMING(30000, 0, 0), TARGET(POOL_CPU, 50, 10) }, .steps = {
                AT("on target",  0,     4, 4, NONE,        NULL, S(POOL_CPU, 50)),
                AT("quiet",      1000,  F, 4, STABILIZING, NULL, S(POOL_CPU, 12.5)),
                AT("on target",  2000,  F, 4, NONE,        NULL, S(POOL_CPU, 50)),
                AT("quiet 31s",  31000, F, 4, STABILIZING, NULL, S(POOL_CPU, 12.5)),
        } },
        { "stabilization: down to the highest recommendation within the window",
          { 1, 16, TIMING(30000, 0, 0), TARGET(POOL_CPU, 50, 10) }, .steps = {
                AT("on target, 4",      0,     4, 4, NONE,        NULL, S(POOL_CPU, 50)),
                AT("wants 3",           10000, F, 4, STABILIZING, NULL, S(POOL_CPU, 37.5)),
                AT("wants 1, 3 within", 30000, F, 3, TARGET,      NULL, S(POOL_CPU, 12.5)),
                AT("wants 1, 3 aged",   40000, F, 1, TARGET,      NULL, S(POOL_CPU, 12.5)),
        } },
        { "stabilization: scale-up is immediate",
          { 1, 16, TIMING(30000, 0, 0), TARGET(POOL_CPU, 50, 10) }, .steps = {
                AT("on target", 0,    4, 4, NONE,   NULL, S(POOL_CPU, 50)),
                AT("2x",        1000, F, 8, TARGET, NULL, S(POOL_CPU, 100)),
        } },
        { "stabilization: a recent scale-up rule holds a scale-down rule for the window",
          { 1, 8, TIMING(10000, 0, 0), .rules = { UP(0), DOWN(0) } }, .steps = {
                AT("busy: up",          0,     2, 3, RULE,        "up",   S(POOL_CPU, 91)),
                AT("quiet",             1000,  F, 3, STABILIZING, "down", S(POOL_CPU, 10)),
                AT("quiet 9.999s on",   9999,  F, 3, STABILIZING, "down", S(POOL_CPU, 10)),
                AT("quiet 10s on",      10000, F, 2, RULE,        "down", S(POOL_CPU, 10)),
        } },
        { "stabilization: a -1 rule steps once per window, not once per cooldown",
          { 1, 8, TIMING(10000, 0, 1000), .rules = { DOWN(0) } }, .steps = {
                AT("seed 4",           0,     4, 4, NONE,        NULL,   S(POOL_CPU, 50)),
                AT("quiet: 3",         10000, F, 3, RULE,        "down", S(POOL_CPU, 10)),
                AT("3 within window",  15000, F, 3, STABILIZING, "down", S(POOL_CPU, 10)),
                AT("3 aged: 2",        20000, F, 2, RULE,        "down", S(POOL_CPU, 10)),
        } },
        /* ---- unavailable signals, sampler failure ---- */
        { "unavailable: a rule reading an absent signal never fires",
          { 1, 8, TIMING(0, 0, 0), .rules = { { "neighbour", "psi.cpu > 20%", 0, -1, false } } }, .steps = {
                AT("no psi",  0,    4, 4, NONE, NULL, S(POOL_CPU, 50)),
                AT("no psi",  1000, F, 4, NONE, NULL, S(POOL_CPU, 50)),
        } },
        { "unavailable: its comparison is false, so `not` of it holds",
          { 1, 8, TIMING(0, 0, 0), .rules = { { "calm", "not psi.cpu > 20%", 0, +1, false } } }, .steps = {
                AT("no psi", 0, 4, 5, RULE, "calm", S(POOL_CPU, 50)),
        } },
        { "unavailable: a signal gone for one sample restarts the hold",
          { 1, 8, TIMING(0, 0, 0), .rules = { UP(2000) } }, .steps = {
                AT("holds",          0,    2, 2, NONE, NULL, S(POOL_CPU, 91)),
                AT("pool.cpu gone",  1000, F, 2, NONE, NULL, S(CPU_BUSY, 50)),
                AT("holds again",    2000, F, 2, NONE, NULL, S(POOL_CPU, 91)),
                AT("2s after gap",   4000, F, 3, RULE, "up", S(POOL_CPU, 91)),
        } },
        { "sampler failure: no decision, and the hold starts over",
          { 1, 8, TIMING(0, 0, 0), .rules = { UP(2000) } }, .steps = {
                AT("holds",          0,    2, 2, NONE, NULL, S(POOL_CPU, 91)),
                NO_SAMPLE("failed",  1000, 2),
                AT("holds again",    2000, 2, 2, NONE, NULL, S(POOL_CPU, 91)),
                AT("would have fired", 3000, F, 2, NONE, NULL, S(POOL_CPU, 91)),
                AT("2s after gap",   4000, F, 3, RULE, "up", S(POOL_CPU, 91)),
        } },
        { "sampler failure: no decision even outside the bounds",
          { 1, 8, TIMING(0, 0, 0), .rules = { UP(0) } }, .steps = {
                NO_SAMPLE("failed", 0, 10),
        } },
        /* ---- anti-flap ---- */
        { "anti-flap: down then up within the window doubles the next scale-down's for",
          { 1, 8, TIMING(0, 0, 0), .rules = { UP(0), DOWN(2000) } }, .steps = {
                AT("quiet",          0,    4, 4, NONE, NULL,   S(POOL_CPU, 10)),
                AT("down",           2000, F, 3, RULE, "down", S(POOL_CPU, 10)),
                AT("busy: up, flap", 3000, F, 4, RULE, "up",   S(POOL_CPU, 91)),
                PENALTY("level 1",   3000, 1),
                AT("quiet",          4000, F, 4, NONE, NULL,   S(POOL_CPU, 10)),
                AT("held 2s of 4s",  6000, F, 4, NONE, NULL,   S(POOL_CPU, 10)),
                AT("held 3.999s",    7999, F, 4, NONE, NULL,   S(POOL_CPU, 10)),
                AT("held 4s",        8000, F, 3, RULE, "down", S(POOL_CPU, 10)),
        } },
        { "anti-flap: each flap raises the penalty, capped at 3 (8x)",
          { 1, 8, TIMING(0, 0, 0), .rules = { UP(0), DOWN(1000) } }, .steps = {
                AT("quiet",      0,     4, 4, NONE, NULL,   S(POOL_CPU, 10)),
                AT("down 1s",    1000,  F, 3, RULE, "down", S(POOL_CPU, 10)),
                AT("up",         1100,  F, 4, RULE, "up",   S(POOL_CPU, 91)),
                AT("quiet",      1200,  F, 4, NONE, NULL,   S(POOL_CPU, 10)),
                AT("down 2s",    3200,  F, 3, RULE, "down", S(POOL_CPU, 10)),
                AT("up",         3300,  F, 4, RULE, "up",   S(POOL_CPU, 91)),
                PENALTY("level 2", 3300, 2),
                AT("quiet",      3400,  F, 4, NONE, NULL,   S(POOL_CPU, 10)),
                AT("down 4s",    7400,  F, 3, RULE, "down", S(POOL_CPU, 10)),
                AT("up",         7500,  F, 4, RULE, "up",   S(POOL_CPU, 91)),
                AT("quiet",      7600,  F, 4, NONE, NULL,   S(POOL_CPU, 10)),
                AT("down 8s",    15600, F, 3, RULE, "down", S(POOL_CPU, 10)),
                AT("up",         15700, F, 4, RULE, "up",   S(POOL_CPU, 91)),
                PENALTY("level 3", 15700, 3),
                AT("quiet",      15800, F, 4, NONE, NULL,   S(POOL_CPU, 10)),
                AT("down 8s",    23800, F, 3, RULE, "down", S(POOL_CPU, 10)),
                AT("up",         23900, F, 4, RULE, "up",   S(POOL_CPU, 91)),
                PENALTY("still 3", 23900, 3),
        } },
        { "anti-flap: the penalty falls one level per four quiet flap windows",
          { 1, 8, TIMING(0, 0, 0), .rules = { UP(0), DOWN(1000) } }, .steps = {
                AT("quiet",        0,      4, 4, NONE, NULL,   S(POOL_CPU, 10)),
                AT("down",         1000,   F, 3, RULE, "down", S(POOL_CPU, 10)),
                AT("up, flap",     2000,   F, 4, RULE, "up",   S(POOL_CPU, 91)),
                AT("steady",       121999, F, 4, NONE, NULL,   S(POOL_CPU, 50)),
                PENALTY("level 1 at 119.999s", 121999, 1),
                AT("steady",       122000, F, 4, NONE, NULL,   S(POOL_CPU, 50)),
                PENALTY("level 0 at 120s", 122000, 0),
                AT("quiet",        123000, F, 4, NONE, NULL,   S(POOL_CPU, 10)),
                AT("down after 1s again", 124000, F, 3, RULE, "down", S(POOL_CPU, 10)),
        } },
        { "anti-flap: a scale-up at the flap window's end is a flap",
          { 1, 8, TIMING(0, 0, 0), .rules = { UP(0), DOWN(0) } }, .steps = {
                AT("down",     0,     4, 3, RULE, "down", S(POOL_CPU, 10)),
                AT("up at 30s", 30000, F, 4, RULE, "up",  S(POOL_CPU, 91)),
                PENALTY("level 1", 30000, 1),
        } },
        { "anti-flap: a scale-up just after the flap window is no flap",
          { 1, 8, TIMING(0, 0, 0), .rules = { UP(0), DOWN(0) } }, .steps = {
                AT("down",          0,     4, 3, RULE, "down", S(POOL_CPU, 10)),
                AT("up at 30.001s", 30001, F, 4, RULE, "up",   S(POOL_CPU, 91)),
                PENALTY("level 0", 30001, 0),
        } },
        { "anti-flap: the penalty also lengthens the target's stabilization window",
          { 1, 16, TIMING(10000, 0, 0), TARGET(POOL_CPU, 50, 10) }, .steps = {
                AT("on target",       0,     4, 4, NONE,        NULL, S(POOL_CPU, 50)),
                AT("quiet: down",     10000, F, 2, TARGET,      NULL, S(POOL_CPU, 25)),
                AT("busy: up, flap",  11000, F, 4, TARGET,      NULL, S(POOL_CPU, 100)),
                AT("quiet",           12000, F, 4, STABILIZING, NULL, S(POOL_CPU, 25)),
                AT("quiet, 19.999s",  30999, F, 4, STABILIZING, NULL, S(POOL_CPU, 25)),
                AT("quiet, 20s",      31000, F, 2, TARGET,      NULL, S(POOL_CPU, 25)),
        } },
        { "sawtooth: 5s busy / 5s quiet under a target does not flap",
          { 1, 16, TIMING(30000, 2000, 10000), TARGET(POOL_CPU, 50, 10) }, .steps = {
                AT("busy",  0,     4, 4, NONE,        NULL, S(POOL_CPU, 50)),
                AT("quiet", 5000,  F, 4, STABILIZING, NULL, S(POOL_CPU, 25)),
                AT("busy",  10000, F, 4, NONE,        NULL, S(POOL_CPU, 50)),
                AT("quiet", 15000, F, 4, STABILIZING, NULL, S(POOL_CPU, 25)),
                AT("busy",  20000, F, 4, NONE,        NULL, S(POOL_CPU, 50)),
                AT("quiet", 25000, F, 4, STABILIZING, NULL, S(POOL_CPU, 25)),
                AT("busy",  30000, F, 4, NONE,        NULL, S(POOL_CPU, 50)),
                AT("quiet", 35000, F, 4, STABILIZING, NULL, S(POOL_CPU, 25)),
                AT("busy",  40000, F, 4, NONE,        NULL, S(POOL_CPU, 50)),
                AT("quiet", 45000, F, 4, STABILIZING, NULL, S(POOL_CPU, 25)),
                AT("busy",  50000, F, 4, NONE,        NULL, S(POOL_CPU, 50)),
                AT("quiet", 55000, F, 4, STABILIZING, NULL, S(POOL_CPU, 25)),
                PENALTY("no flap", 55000, 0),
        } },
        { "sawtooth: 6s quiet / 1s busy under rules flaps once, then the penalty holds",
          { 1, 4, TIMING(0, 0, 0), .rules = { UP(0), DOWN(5000) } }, .steps = {
                AT("quiet",         0,     4, 4, NONE, NULL,   S(POOL_CPU, 10)),
                AT("quiet 5s",      5000,  F, 3, RULE, "down", S(POOL_CPU, 10)),
                AT("busy: flap",    6000,  F, 4, RULE, "up",   S(POOL_CPU, 91)),
                AT("quiet",         7000,  F, 4, NONE, NULL,   S(POOL_CPU, 10)),
                AT("quiet 5s",      12000, F, 4, NONE, NULL,   S(POOL_CPU, 10)),
                AT("busy at max",   13000, F, 4, MAX,  "up",   S(POOL_CPU, 91)),
                AT("quiet",         14000, F, 4, NONE, NULL,   S(POOL_CPU, 10)),
                AT("quiet 5s",      19000, F, 4, NONE, NULL,   S(POOL_CPU, 10)),
                AT("busy at max",   20000, F, 4, MAX,  "up",   S(POOL_CPU, 91)),
                PENALTY("one flap", 20000, 1),
        } },
        /* ---- manual override ---- */
        { "manual: the size is held against the target until a rule fires",
          { 1, 16, TIMING(0, 2000, 0), TARGET(POOL_CPU, 50, 10), .rules = {
                { "hot", "pool.cpu > 90%", 2000, +1, false } } }, .steps = {
                AT("on target",       0,    4, 4, NONE,   NULL,  S(POOL_CPU, 50)),
                MANUAL("SIGTTIN",     500,  5),
                AT("target says 3",   1000, F, 5, MANUAL, NULL,  S(POOL_CPU, 25)),
                AT("target says 3",   2000, F, 5, MANUAL, NULL,  S(POOL_CPU, 25)),
                AT("hot starts",      3000, F, 5, MANUAL, NULL,  S(POOL_CPU, 95)),
                AT("hot fires",       5000, F, 6, RULE,   "hot", S(POOL_CPU, 95)),
                AT("target again",    8000, F, 3, TARGET, NULL,  S(POOL_CPU, 25)),
        } },
        { "manual: a rule already holding must hold anew for its for",
          { 1, 8, TIMING(0, 0, 0), .rules = { UP(2000) } }, .steps = {
                AT("holds",           0,    2, 2, NONE,   NULL, S(POOL_CPU, 91)),
                MANUAL("SIGTTOU",     1500, 1),
                AT("would have fired", 2000, F, 1, MANUAL, NULL, S(POOL_CPU, 91)),
                AT("1.999s anew",     3499, F, 1, MANUAL, NULL, S(POOL_CPU, 91)),
                AT("2s anew",         3500, F, 2, RULE,   "up", S(POOL_CPU, 91)),
        } },
        { "manual: skips the cooldowns and the window; a size beyond max is clamped",
          { 1, 8, TIMING(30000, 60000, 60000), .rules = { UP(60000) } }, .steps = {
                AT("steady",          0,    4, 4, NONE,   NULL, S(POOL_CPU, 50)),
                MANUAL("SIGTTIN",     100,  6),
                AT("pool catching up", 200, 4, 6, MANUAL, NULL, S(POOL_CPU, 50)),
                MANUAL("SIGTTOU",     300,  2),
                AT("down at once",    400,  6, 2, MANUAL, NULL, S(POOL_CPU, 50)),
                MANUAL("too many",    500,  12),
                AT("clamped",         600,  2, 8, MAX,    NULL, S(POOL_CPU, 50)),
        } },
        /* ---- reload, empty policy ---- */
        { "reload: rule holds start over, cooldowns carry",
          { 1, 8, TIMING(0, 5000, 0), .rules = { UP(2000) } }, .steps = {
                AT("holds",        0,    2, 2, NONE,     NULL, S(POOL_CPU, 91)),
                AT("fires",        2000, F, 3, RULE,     "up", S(POOL_CPU, 91)),
                RELOAD("SIGHUP",   2500),
                AT("holds anew",   3000, F, 3, NONE,     NULL, S(POOL_CPU, 91)),
                AT("2s anew, cooling", 5000, F, 3, COOLDOWN, "up", S(POOL_CPU, 91)),
                AT("cooled",       7000, F, 4, RULE,     "up", S(POOL_CPU, 91)),
        } },
        { "no rules and no target: always steady",
          { 1, 8, TIMING(0, 0, 0) }, .steps = {
                AT("busy",  0,    3, 3, NONE, NULL, S(POOL_CPU, 100)),
                AT("quiet", 1000, F, 3, NONE, NULL, S(POOL_CPU, 0)),
        } },
        /* ---- the built-in default policy (DESIGN.md), max resolved to 4 ---- */
        { "default: busy workers on a machine with room get a worker after 2s",
          { 1, 4 }, .default_policy = true, .steps = {
                AT("busy",    0,    1, 1, NONE, NULL,        S(POOL_CPU, 95), S(CPU_BUSY, 50), S(PSI_CPU, 1)),
                AT("busy 1s", 1000, F, 1, NONE, NULL,        S(POOL_CPU, 95), S(CPU_BUSY, 50), S(PSI_CPU, 1)),
                AT("busy 2s", 2000, F, 2, RULE, "saturated", S(POOL_CPU, 95), S(CPU_BUSY, 50), S(PSI_CPU, 1)),
                AT("cooling", 3000, F, 2, COOLDOWN, "saturated", S(POOL_CPU, 95), S(CPU_BUSY, 50), S(PSI_CPU, 1)),
                AT("again",   4000, F, 3, RULE, "saturated", S(POOL_CPU, 95), S(CPU_BUSY, 50), S(PSI_CPU, 1)),
        } },
        { "default: a full machine (cpu.busy 85%) gets no more workers",
          { 1, 4 }, .default_policy = true, .steps = {
                AT("busy",    0,    2, 2, NONE, NULL, S(POOL_CPU, 95), S(CPU_BUSY, 85), S(PSI_CPU, 5)),
                AT("busy 5s", 5000, F, 2, NONE, NULL, S(POOL_CPU, 95), S(CPU_BUSY, 85), S(PSI_CPU, 5)),
        } },
        { "default: a neighbour under pressure gets a worker back after 5s",
          { 1, 4 }, .default_policy = true, .steps = {
                AT("normal",         0,     3, 3, NONE, NULL,        S(POOL_CPU, 50), S(CPU_BUSY, 60), S(PSI_CPU, 1)),
                AT("pressure",       60000, F, 3, NONE, NULL,        S(POOL_CPU, 50), S(CPU_BUSY, 97), S(PSI_CPU, 30)),
                AT("pressure 4.999s", 64999, F, 3, NONE, NULL,       S(POOL_CPU, 50), S(CPU_BUSY, 97), S(PSI_CPU, 30)),
                AT("pressure 5s",    65000, F, 2, RULE, "neighbour", S(POOL_CPU, 50), S(CPU_BUSY, 97), S(PSI_CPU, 30)),
        } },
        { "default: without PSI the neighbour rule never fires",
          { 1, 4 }, .default_policy = true, .steps = {
                AT("normal",      0,     3, 3, NONE, NULL, S(POOL_CPU, 50), S(CPU_BUSY, 60)),
                AT("full",        60000, F, 3, NONE, NULL, S(POOL_CPU, 50), S(CPU_BUSY, 99)),
                AT("full 10s",    70000, F, 3, NONE, NULL, S(POOL_CPU, 50), S(CPU_BUSY, 99)),
        } },
        { "default: idle workers are given back one per 30s, down to min",
          { 1, 4 }, .default_policy = true, .steps = {
                AT("idle",        0,     3, 3, NONE,        NULL,   S(POOL_CPU, 10), S(CPU_BUSY, 10), S(PSI_CPU, 0)),
                AT("idle 29.999s", 29999, F, 3, NONE,       NULL,   S(POOL_CPU, 10), S(CPU_BUSY, 10), S(PSI_CPU, 0)),
                AT("idle 30s",    30000, F, 2, RULE,        "idle", S(POOL_CPU, 10), S(CPU_BUSY, 10), S(PSI_CPU, 0)),
                AT("idle 40s",    40000, F, 2, STABILIZING, "idle", S(POOL_CPU, 10), S(CPU_BUSY, 10), S(PSI_CPU, 0)),
                AT("idle 60s",    60000, F, 1, RULE,        "idle", S(POOL_CPU, 10), S(CPU_BUSY, 10), S(PSI_CPU, 0)),
                AT("idle at min", 90000, F, 1, MIN,         "idle", S(POOL_CPU, 10), S(CPU_BUSY, 10), S(PSI_CPU, 0)),
        } },
        { "default: saturated at max stays at max",
          { 1, 4 }, .default_policy = true, .steps = {
                AT("busy",    0,    4, 4, NONE, NULL,        S(POOL_CPU, 95), S(CPU_BUSY, 50)),
                AT("busy 2s", 2000, F, 4, MAX,  "saturated", S(POOL_CPU, 95), S(CPU_BUSY, 50)),
        } },
        { "default: a normal load keeps the pool as it is",
          { 1, 4 }, .default_policy = true, .steps = {
                AT("normal",     0,     2, 2, NONE, NULL, S(POOL_CPU, 50), S(CPU_BUSY, 50), S(PSI_CPU, 2)),
                AT("normal 60s", 60000, F, 2, NONE, NULL, S(POOL_CPU, 50), S(CPU_BUSY, 50), S(PSI_CPU, 2)),
        } },
        /* ---- from a policy file ---- */
        { "yaml: a loaded +25% rule and a target work together",
          .yaml = "command: [\"true\"]\n"
                  "workers: {min: 2, max: 10}\n"
                  "policy:\n"
                  "  target: {signal: pool.cpu, value: 60%, tolerance: 5%}\n"
                  "  stabilization: {down: 0s}\n"
                  "  cooldown: {up: 0s, down: 0s}\n"
                  "  rules:\n"
                  "    - {name: backlog, when: tasks.backlog > 100, for: 1s, scale: +25%}\n",
          .steps = {
                AT("target alone",   0,    4, 6,  TARGET, NULL,      S(POOL_CPU, 90), S(TASKS_BACKLOG, 200)),
                AT("backlog 1s",     1000, F, 8,  RULE,   "backlog", S(POOL_CPU, 60), S(TASKS_BACKLOG, 200)),
                AT("backlog gone",   2000, F, 2,  MIN,    NULL,      S(POOL_CPU, 6),  S(TASKS_BACKLOG, 0)),
        } },
};

static void add_rule(struct policy_config *p, const struct rule_spec *spec) {
        struct rule_config *rule = &p->rules[p->n_rules++];
        char error[128] = "";

        rule->name = strdup(spec->name);
        rule->when_text = strdup(spec->when);
        assert_non_null(rule->name);
        assert_non_null(rule->when_text);
        if (condition_parse(spec->when, &rule->when, NULL, error, sizeof(error)) < 0)
                fail_msg("rule %s: %s", spec->name, error);
        rule->hold = spec->for_ms * USEC_PER_MSEC;
        rule->scale = spec->scale;
        rule->scale_percent = spec->percent;
}

/* The case's policy as the loader would produce it, with min and max resolved. */
static void build_config(const struct test_case *tc, struct corral_config *c, unsigned *ret_min, unsigned *ret_max) {
        const struct policy_spec *spec = &tc->policy;
        struct policy_config *p = &c->policy;

        config_init(c);
        if (tc->yaml) {
                char path[] = "/tmp/corral-test-decide-XXXXXX";
                struct conf_diagnostics diag = {};
                int fd = mkstemp(path);
                assert_true(fd >= 0);
                FILE *f = fdopen(fd, "w");
                assert_non_null(f);
                fputs(tc->yaml, f);
                fclose(f);
                config_done(c);
                int r = conf_load(path, c, &diag);
                unlink(path);
                for (size_t i = 0; i < diag.n_items; i++)
                        print_error("%s\n", diag.items[i].message);
                conf_diagnostics_done(&diag);
                assert_int_equal(r, 0);
                *ret_min = c->workers.min;
                *ret_max = c->workers.max;
                return;
        }
        *ret_min = spec->min;
        *ret_max = spec->max;
        if (tc->default_policy) {
                assert_int_equal(config_default_policy(c, false), 0);
                return;
        }
        p->stabilization_down = spec->stab_ms * USEC_PER_MSEC;
        p->cooldown_up = spec->up_ms * USEC_PER_MSEC;
        p->cooldown_down = spec->down_ms * USEC_PER_MSEC;
        if (spec->target != 0) {
                p->has_target = true;
                p->target_signal = spec->target;
                p->target_value = spec->value;
                p->target_tolerance = spec->tolerance;
        }
        p->rules = calloc(ELEMENTSOF(spec->rules), sizeof(struct rule_config));
        assert_non_null(p->rules);
        for (size_t i = 0; i < ELEMENTSOF(spec->rules) && spec->rules[i].name; i++)
                add_rule(p, &spec->rules[i]);
}

static const char *reason_name(enum decision_reason r) {
        const char *s = decision_reason_to_string(r);
        return s ? s : "(invalid)";
}

/* Runs one case; returns the number of steps that went wrong, each printed
 * with the case and step names. */
static unsigned run_case(const struct test_case *tc) {
        struct corral_config c;
        struct policy_state st;
        unsigned min, max, previous = 0, failures = 0;

        assert_non_null(tc->steps[0].name);     /* a case without steps proves nothing */
        build_config(tc, &c, &min, &max);
        assert_int_equal(policy_state_init(&st, c.policy.n_rules), 0);

        for (const struct step *step = tc->steps; step->name; step++) {
                usec_t now = BASE + step->t_ms * USEC_PER_MSEC;
                struct signals s = {};
                struct decision d;

                switch (step->kind) {
                case STEP_MANUAL:
                        policy_manual(&st, step->desired, now);
                        previous = step->desired;       /* the pool follows the operator */
                        continue;
                case STEP_RELOAD:
                        assert_int_equal(policy_state_reload(&st, c.policy.n_rules), 0);
                        continue;
                case STEP_PENALTY:
                        if (st.penalty != step->desired) {
                                print_error("case '%s', step '%s': penalty %u, expected %u\n", tc->name, step->name,
                                            st.penalty, step->desired);
                                failures++;
                        }
                        continue;
                default:
                        break;
                }

                unsigned current = step->current == F ? previous : step->current;
                for (const struct sig *g = step->sigs; g < step->sigs + ELEMENTSOF(step->sigs) && g->id1; g++)
                        signals_set(&s, (enum signal_id) (g->id1 - 1), g->value);
                int r = policy_decide(&c.policy, min, max, &st, step->kind == STEP_NO_SAMPLE ? NULL : &s, current,
                                      now, &d);
                assert_int_equal(r, 0);

                bool ok = d.desired == step->desired && d.reason == step->reason &&
                          (step->rule ? d.rule && strcmp(d.rule, step->rule) == 0 : !d.rule) &&
                          d.why[0] != '\0';
                /* The log line names the rule that asked. */
                if (ok && d.rule) {
                        char want[64];
                        snprintf(want, sizeof(want), "rule %s:", d.rule);
                        ok = strstr(d.why, want) != NULL;
                }
                if (!ok) {
                        print_error("case '%s', step '%s' (t=%ums, current %u): expected %u (%s, rule %s), "
                                    "got %u (%s, rule %s): %s\n",
                                    tc->name, step->name, step->t_ms, current, step->desired,
                                    reason_name(step->reason), step->rule ? step->rule : "-", d.desired,
                                    reason_name(d.reason), d.rule ? d.rule : "-", d.why);
                        failures++;
                }
                previous = d.desired;
        }

        policy_state_done(&st);
        config_done(&c);
        return failures;
}

static void test_cases(void **state) {
        unsigned failures = 0;
        (void) state;

        assert_true(ELEMENTSOF(cases) >= 40);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                failures += run_case(&cases[i]);
        print_message("%zu cases, %u failed steps\n", ELEMENTSOF(cases), failures);
        assert_int_equal(failures, 0);
}

/* What /status reads: each rule's hold, its effective `for`, the penalty. */
static void test_rule_status(void **state) {
        struct corral_config c;
        struct policy_state st;
        struct policy_rule_status rs;
        struct signals s = {};
        struct decision d;
        unsigned min, max;
        static const struct test_case tc = {
                "status", { 1, 8, TIMING(0, 0, 0), .rules = { UP(2000), DOWN(5000) } },
        };
        (void) state;

        build_config(&tc, &c, &min, &max);
        assert_int_equal(policy_state_init(&st, c.policy.n_rules), 0);

        signals_set(&s, SIGNAL_POOL_CPU, 91);
        assert_int_equal(policy_decide(&c.policy, min, max, &st, &s, 2, BASE, &d), 0);
        assert_int_equal(policy_decide(&c.policy, min, max, &st, &s, 2, BASE + 1500 * USEC_PER_MSEC, &d), 0);
        assert_int_equal(policy_rule_status(&c.policy, &st, 0, BASE + 1700 * USEC_PER_MSEC, &rs), 0);
        assert_true(rs.holding);
        assert_false(rs.firing);
        assert_int_equal(rs.held_for, 1700 * USEC_PER_MSEC);
        assert_int_equal(rs.hold, 2 * USEC_PER_SEC);
        assert_int_equal(policy_rule_status(&c.policy, &st, 1, BASE, &rs), 0);
        assert_false(rs.holding);
        assert_int_equal(rs.held_for, 0);
        assert_int_equal(policy_rule_status(&c.policy, &st, 2, BASE, &rs), -EINVAL);

        /* a steady decision says which rule is on its way */
        assert_non_null(strstr(d.why, "rule up held 1.5s of 2s"));

        /* the penalty shows in a scale-down rule's effective for, not a scale-up rule's */
        st.penalty = 2;
        assert_int_equal(policy_rule_status(&c.policy, &st, 1, BASE, &rs), 0);
        assert_int_equal(rs.hold, 20 * USEC_PER_SEC);
        assert_int_equal(policy_rule_status(&c.policy, &st, 0, BASE, &rs), 0);
        assert_int_equal(rs.hold, 2 * USEC_PER_SEC);
        assert_int_equal(policy_flap_window(&c.policy), 30 * USEC_PER_SEC);

        /* a state for another number of rules is refused, as are min > max */
        assert_int_equal(policy_decide(&c.policy, 3, 2, &st, &s, 2, BASE, &d), -EINVAL);
        assert_int_equal(policy_state_reload(&st, 1), 0);
        assert_int_equal(policy_decide(&c.policy, min, max, &st, &s, 2, BASE, &d), -EINVAL);

        policy_state_done(&st);
        policy_state_done(&st);         /* harmless twice */
        config_done(&c);
}

static void test_labels(void **state) {
        struct decision d = { .reason = DECISION_TARGET };
        (void) state;

        for (enum decision_reason r = 0; r < _DECISION_REASON_MAX; r++)
                assert_non_null(decision_reason_to_string(r));
        assert_null(decision_reason_to_string(_DECISION_REASON_MAX));
        assert_string_equal(decision_label(&d), "target");
        d.rule = "saturated";
        d.reason = DECISION_MAX;
        assert_string_equal(decision_label(&d), "saturated");
}

/* The stabilization window against a brute-force maximum over every
 * recommendation kept in full: equal while the sizes fit the queue, and never
 * lower (never a smaller pool) when they do not. */
static void test_window_property(void **state) {
        static struct policy_recommendation all[4096];
        struct policy_config p = { .stabilization_down = 10 * USEC_PER_SEC, .target_signal = SIGNAL_POOL_CPU,
                                   .has_target = true, .target_value = 50, .target_tolerance = 0 };
        unsigned seed = 12345;
        (void) state;

        for (unsigned span = 8; span <= 200; span += 192) {     /* 8 sizes fit; 200 do not */
                struct policy_state st;
                size_t n = 0;
                assert_int_equal(policy_state_init(&st, 0), 0);
                all[n++] = (struct policy_recommendation) { BASE, 100 };        /* the first sample's seed */
                for (usec_t t = BASE; n < ELEMENTSOF(all); t += 250 * USEC_PER_MSEC) {
                        seed = seed * 1103515245u + 12345u;
                        unsigned current = 100;
                        unsigned want = 1 + (seed >> 8) % span;
                        struct signals s = {};
                        struct decision d;
                        /* a pool.cpu that makes the target ask exactly for want */
                        signals_set(&s, SIGNAL_POOL_CPU, 50.0 * want / current);
                        assert_int_equal(policy_decide(&p, 1, 1000, &st, &s, current, t, &d), 0);
                        all[n++] = (struct policy_recommendation) { t, want };

                        unsigned expect = 0, got = 0;
                        for (size_t i = 0; i < n; i++)
                                if (t - all[i].time < p.stabilization_down && all[i].size > expect)
                                        expect = all[i].size;
                        assert_true(policy_stabilized_size(&p, &st, t, &got));
                        if (span <= POLICY_WINDOW_MAX)
                                assert_int_equal(got, expect);
                        else
                                assert_true(got >= expect);
                }
                policy_state_done(&st);
        }
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cases),
                cmocka_unit_test(test_rule_status),
                cmocka_unit_test(test_labels),
                cmocka_unit_test(test_window_property),
        };
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
