/* SPDX-License-Identifier: MIT */
/*
 * What the log says of a pool that keeps its size (held_back.c), on synthetic
 * samples: a "not growing" line when something holds the pool back, and once
 * per run "not growing yet: rule R waits for ..." when nothing does and no rule
 * wants to grow. The lines are read back from the file that stands in for
 * stderr while held_back_note() runs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/util.h"
#include "conf/conf.h"
#include "policy/condition.h"
#include "supervisor/held_back.h"
#include "supervisor/log.h"

#define AWAITED_LINE "corral: not growing yet: rule saturated waits for pool.cpu > 80% (pool.cpu 66%)\n"

struct note_result {
        char logged[512];       /* what held_back_note() logged, "" for nothing */
};

/* One held_back_note() with stderr sent to a memory file, only for the call:
 * cmocka's own messages keep the real stderr. */
static struct note_result note(struct held_back *h, const struct policy_config *cfg, const struct signals *s,
                               const struct decision *d, unsigned max) {
        struct note_result ret = {};
        int file = memfd_create("held-back-log", MFD_CLOEXEC), saved = dup(STDERR_FILENO);
        assert_true(file >= 0 && saved >= 0);
        assert_int_equal(dup2(file, STDERR_FILENO), STDERR_FILENO);

        held_back_note(h, cfg, s, d, max);

        assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
        ssize_t n = pread(file, ret.logged, sizeof(ret.logged) - 1, 0);
        assert_true(n >= 0);
        ret.logged[n] = '\0';
        close(file);
        close(saved);
        return ret;
}

/* The built-in pool policy: saturated (+1: pool.cpu > 80% and cpu.busy < 80%),
 * neighbour (-1), idle (-1). */
static void default_policy(struct corral_config *c) {
        *c = (struct corral_config) {};
        policy_config_init(&c->policy);
        assert_int_equal(config_default_policy(c, false), 0);
}

/* A policy of the given rules, in order, each scaling by its `scale`. */
static void policy_of(struct policy_config *p, const char *const *when, const int *scale, size_t n) {
        static const char *const names[] = { "first", "second", "third" };
        assert_true(n <= ELEMENTSOF(names));
        policy_config_init(p);
        p->rules = calloc(n, sizeof(struct rule_config));
        assert_non_null(p->rules);
        for (size_t i = 0; i < n; i++) {
                struct rule_config *rule = &p->rules[p->n_rules++];
                rule->name = strdup(names[i]);
                rule->scale = scale[i];
                assert_int_equal(condition_parse(when[i], &rule->when, NULL, NULL, 0), 0);
        }
}

static struct signals sample(double pool_cpu, double cpu_busy) {
        struct signals s = {};
        if (pool_cpu >= 0)
                signals_set(&s, SIGNAL_POOL_CPU, pool_cpu);
        signals_set(&s, SIGNAL_CPU_BUSY, cpu_busy);
        signals_set(&s, SIGNAL_POOL_SIZE, 1);
        return s;
}

/* What policy_decide() says of a pool that nothing asks to change. */
static const struct decision steady_at_1 = { .desired = 1, .reason = DECISION_NONE, .source = DECISION_NONE,
                                             .why = "steady" };

static void test_awaited_once(void **state) {
        struct corral_config c;
        struct held_back h = {};
        struct signals busy_machine = sample(66, 100);
        (void) state;
        default_policy(&c);

        /* Said at the second sample in a row that waits. */
        struct note_result r = note(&h, &c.policy, &busy_machine, &steady_at_1, 2);
        assert_string_equal(r.logged, "");
        r = note(&h, &c.policy, &busy_machine, &steady_at_1, 2);
        assert_string_equal(r.logged, AWAITED_LINE);

        /* Not on the next samples, nor after a change of size (a resize resets the holds). */
        r = note(&h, &c.policy, &busy_machine, &steady_at_1, 2);
        assert_string_equal(r.logged, "");
        held_back_reset(&h);
        struct signals idle = sample(3, 10);
        for (int i = 0; i < 3; i++) {
                r = note(&h, &c.policy, &idle, &steady_at_1, 2);
                assert_string_equal(r.logged, "");
        }
        config_done(&c);
}

/* Samples at which the pool is not waiting on a demand, or cannot say what
 * for: nothing, and each starts the two samples in a row over. */
static void test_awaited_not_yet(void **state) {
        struct corral_config c;
        struct held_back h = {};
        struct signals demand_holds = sample(95, 50), no_pool_cpu = sample(-1, 100),
                       busy_machine = sample(66, 100), guard_fails = sample(95, 100);
        struct decision at_max = steady_at_1, manual = steady_at_1;
        (void) state;
        default_policy(&c);
        at_max.desired = 2;
        manual.source = manual.reason = DECISION_MANUAL;   /* a size set by hand is kept */

        const struct {
                const char *name;
                const struct signals *s;
                const struct decision *d;
                const char *logged;
        } quiet[] = {
                { "demand holds: saturated is on its way", &demand_holds, &steady_at_1, "" },
                { "pool.cpu n/a",                          &no_pool_cpu,  &steady_at_1, "" },
                { "no sample",                             NULL,          &steady_at_1, "" },
                { "at max",                                &busy_machine, &at_max,      "" },
                { "a size set by hand",                    &busy_machine, &manual,      "" },
                /* A guard holding saturated back has its own line, and not this one. */
                { "a guard holds back",                    &guard_fails,  &steady_at_1,
                  "corral: not growing: the machine is busy (cpu.busy 100% >= 80%), rule saturated\n" },
        };
        for (size_t i = 0; i < ELEMENTSOF(quiet); i++) {
                print_message("case: %s\n", quiet[i].name);
                struct note_result r = note(&h, &c.policy, &busy_machine, &steady_at_1, 2);
                assert_string_equal(r.logged, "");
                r = note(&h, &c.policy, quiet[i].s, quiet[i].d, 2);
                assert_string_equal(r.logged, quiet[i].logged);
        }

        /* Then two samples in a row of a pool below its demand. */
        struct note_result r = note(&h, &c.policy, &busy_machine, &steady_at_1, 2);
        assert_string_equal(r.logged, "");
        r = note(&h, &c.policy, &busy_machine, &steady_at_1, 2);
        assert_string_equal(r.logged, AWAITED_LINE);
        config_done(&c);
}

/* Which rule is described: the first scale-up rule whose demand is unmet. */
static void test_awaited_rule(void **state) {
        static const struct {
                const char *name;
                const char *when[3];
                int scale[3];
                size_t n;
                const char *logged;
        } cases[] = {
                { "a scale-down rule first", { "pool.cpu < 20%", "pool.cpu > 80% and cpu.busy < 80%" }, { -1, +1 }, 2,
                  "corral: not growing yet: rule second waits for pool.cpu > 80% (pool.cpu 66%)\n" },
                { "no demand named first",   { "(pool.cpu > 80% or load1 > 4) and cpu.busy < 80%", "pool.cpu > 90%" },
                  { +1, +1 }, 2, "corral: not growing yet: rule second waits for pool.cpu > 90% (pool.cpu 66%)\n" },
                { "a demand without a value first", { "psi.cpu > 10", "pool.cpu > 80% and cpu.busy < 80%" },
                  { +1, +1 }, 2, "corral: not growing yet: rule second waits for pool.cpu > 80% (pool.cpu 66%)\n" },
                { "only no demand named",    { "(pool.cpu > 80% or load1 > 4) and cpu.busy < 80%" }, { +1 }, 1, "" },
                { "a later demand holds",    { "pool.cpu > 80%", "cpu.busy > 90%" }, { +1, +1 }, 2, "" },
                { "a later rule holds",      { "pool.cpu > 80%", "not pool.cpu > 80%" }, { +1, +1 }, 2, "" },
                { "no scale-up rule",        { "pool.cpu < 20%" }, { -1 }, 1, "" },
        };
        struct signals busy_machine = sample(66, 100);
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct policy_config p;
                struct held_back h = {};
                print_message("case: %s\n", cases[i].name);
                policy_of(&p, cases[i].when, cases[i].scale, cases[i].n);
                struct note_result r = note(&h, &p, &busy_machine, &steady_at_1, 2);
                assert_string_equal(r.logged, "");
                r = note(&h, &p, &busy_machine, &steady_at_1, 2);
                assert_string_equal(r.logged, cases[i].logged);
                policy_config_done(&p);
        }
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_awaited_once),
                cmocka_unit_test(test_awaited_not_yet),
                cmocka_unit_test(test_awaited_rule),
        };
        unsetenv("JOURNAL_STREAM");     /* lines read "corral: ...", also under systemd */
        log_setup(LOG_INFO);
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
