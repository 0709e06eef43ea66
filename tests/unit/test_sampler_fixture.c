/* SPDX-License-Identifier: MIT */
/*
 * The sampler, placement and the default policy on captured machines
 * (tests/fixtures/sampler/, see its capture script): "core 0 burning, core 1
 * idle" is a pair of files, not a burner process, so these results do not
 * depend on what else the machine runs. Expected figures are worked out from
 * the fixture files in the comments beside them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "conf/conf.h"
#include "policy/decide.h"
#include "supervisor/placement.h"
#include "supervisor/sampler.h"
#include "tests/unit/fixture_tree.h"

#define NA -1.0         /* an expected figure that must be unavailable */

/* The pids of the fixtures: a busy loop pinned to CPU 0, a sleeper. */
#define BUSY 4242
#define SLEEPER 4243

struct expect {
        const char *name, *fixture;
        pid_t pids[2];
        size_t n_pids;
        unsigned capacity, n_cores;
        double quota_cpus, core[2];
        struct { bool set; double v; } signal[_SIGNAL_MAX];   /* unset: must be unavailable */
        double psi_cgroup;
        unsigned pool_measured;
};

/* Every signal unavailable unless a case gives its value (within 0.01). */
#define SIGNALS(...) { __VA_ARGS__ }
#define V(x) { true, (x) }

static const struct expect cases[] = {
        /* cpu0: 41 user + 13 system ticks, no idle; cpu1: 53 ticks, all idle
         * (the capture's --quiet-cpu 1); 0.53 s apart. The busy loop: 26 ticks
         * = 0.26 s of 0.53 s (it shared core 0 with the machine's other work). */
        { "core 0 burning, core 1 idle", "core0-busy", { BUSY, SLEEPER }, 2,
          .capacity = 2, .n_cores = 2, .core = { 100, 0 },
          .signal = SIGNALS([SIGNAL_CPU_BUSY] = V(50), [SIGNAL_CPU_CORE_MAX] = V(100), [SIGNAL_CPU_CORE_MIN] = V(0),
                            [SIGNAL_CPU_IDLE_CORES] = V(1), [SIGNAL_LOAD1] = V(8.60 / 2),
                            [SIGNAL_PSI_CPU] = V(97.14), [SIGNAL_PSI_MEMORY] = V(0), [SIGNAL_PSI_IO] = V(0.54),
                            [SIGNAL_MEM_AVAILABLE] = V(100.0 * 23920896 / 24683748),
                            [SIGNAL_POOL_SIZE] = V(2), [SIGNAL_POOL_CPU] = V((26.0 / 53 * 100 + 0) / 2)),
          .psi_cgroup = NA, .pool_measured = 2 },
        /* Both cores busy (stress-ng --cpu 2 beside the capture): 53 and 52
         * ticks, none idle; the machine's PSI says tasks wait for CPU. */
        { "both cores busy, tasks waiting", "both-busy", { BUSY }, 1,
          .capacity = 2, .n_cores = 2, .core = { 100, 100 },
          .signal = SIGNALS([SIGNAL_CPU_BUSY] = V(100), [SIGNAL_CPU_CORE_MAX] = V(100), [SIGNAL_CPU_CORE_MIN] = V(100),
                            [SIGNAL_CPU_IDLE_CORES] = V(0), [SIGNAL_LOAD1] = V(8.85 / 2),
                            [SIGNAL_PSI_CPU] = V(98.13), [SIGNAL_PSI_MEMORY] = V(0), [SIGNAL_PSI_IO] = V(0.22),
                            [SIGNAL_MEM_AVAILABLE] = V(100.0 * 23880912 / 24683748),
                            [SIGNAL_POOL_SIZE] = V(1), [SIGNAL_POOL_CPU] = V(18.0 / 51 * 100)),
          .psi_cgroup = NA, .pool_measured = 1 },
        /* Under /corral.slice/app.service with cpu.max "100000 100000" (one
         * CPU) and 0.4 s of usage in 0.51 s: the quota is the tighter limit,
         * so cpu.busy is the quota's 78.4%, above the cores' mean of 50%.
         * The cgroup's own cpu.pressure (12.5) is below the machine's. */
        { "a cgroup quota of one CPU", "quota", { BUSY }, 1,
          .capacity = 1, .n_cores = 2, .quota_cpus = 1.0, .core = { 100, 0 },
          .signal = SIGNALS([SIGNAL_CPU_BUSY] = V(400000.0 / 510000 * 100), [SIGNAL_CPU_CORE_MAX] = V(100),
                            [SIGNAL_CPU_CORE_MIN] = V(0), [SIGNAL_CPU_IDLE_CORES] = V(1), [SIGNAL_LOAD1] = V(9.34),
                            [SIGNAL_PSI_CPU] = V(98.13), [SIGNAL_PSI_MEMORY] = V(0), [SIGNAL_PSI_IO] = V(0.05),
                            [SIGNAL_MEM_AVAILABLE] = V(100.0 * 23729844 / 24683748),
                            [SIGNAL_POOL_SIZE] = V(1), [SIGNAL_POOL_CPU] = V(16.0 / 51 * 100)),
          .psi_cgroup = 12.5, .pool_measured = 1 },
};

static bool near(double a, double b) {
        return fabs(a - b) < 0.01;
}

/* The sample at t1 of a fixture, its pids first seen at t0. *ret_s is the
 * sampler (whose cores the sample points to); the caller frees it. */
static void sample_fixture(const char *dir, const struct expect *e, struct sampler **ret_s, struct sample *ret) {
        struct sample first;

        fixture_load(dir, e->fixture, "t0");
        assert_int_equal(sampler_new_at(dir, ret_s), 0);
        /* No time has passed: nothing has a delta yet, and says so. */
        assert_int_equal(sampler_sample(*ret_s, e->pids, e->n_pids, &first), 0);
        assert_int_equal(first.n_cores, 0);
        assert_false(signals_has(&first.signals, SIGNAL_CPU_BUSY));
        assert_false(signals_has(&first.signals, SIGNAL_POOL_CPU));
        assert_int_equal(first.pool_measured, 0);

        fixture_load(dir, e->fixture, "t1");
        assert_int_equal(sampler_sample(*ret_s, e->pids, e->n_pids, ret), 0);
}

/* Checks one case; returns the number of mismatches, each printed. */
static unsigned check_case(const struct expect *e, const struct sample *s) {
        unsigned bad = 0;

#define CHECK(cond, ...) do { if (!(cond)) { print_message("%s: ", e->name); print_message(__VA_ARGS__); bad++; } } while (0)
        CHECK(s->capacity == e->capacity, "capacity %u, expected %u\n", s->capacity, e->capacity);
        CHECK(s->affinity_cpus == 2, "affinity %u CPUs, expected 2\n", s->affinity_cpus);
        CHECK(near(s->quota_cpus, e->quota_cpus), "quota %.2f CPUs, expected %.2f\n", s->quota_cpus, e->quota_cpus);
        CHECK(s->n_cores == e->n_cores, "%zu cores, expected %u\n", s->n_cores, e->n_cores);
        for (size_t i = 0; i < s->n_cores && i < 2; i++)
                CHECK(s->cores[i].id == (int) i && near(s->cores[i].busy, e->core[i]),
                      "core %d %.2f%%, expected core %zu %.2f%%\n", s->cores[i].id, s->cores[i].busy, i, e->core[i]);
        for (enum signal_id k = 0; k < _SIGNAL_MAX; k++) {
                bool has = signals_has(&s->signals, k);
                if (!e->signal[k].set)
                        CHECK(!has, "signal %d is %.2f, expected unavailable\n", (int) k, s->signals.value[k]);
                else
                        CHECK(has && near(s->signals.value[k], e->signal[k].v), "signal %d is %.4f (%s), expected %.4f\n",
                              (int) k, s->signals.value[k], has ? "set" : "unavailable", e->signal[k].v);
        }
        CHECK(e->psi_cgroup == NA ? s->psi_cpu_cgroup < 0 : near(s->psi_cpu_cgroup, e->psi_cgroup),
              "cgroup psi %.2f, expected %.2f\n", s->psi_cpu_cgroup, e->psi_cgroup);
        CHECK(s->pool_measured == e->pool_measured, "%u pids measured, expected %u\n", s->pool_measured, e->pool_measured);
#undef CHECK
        return bad;
}

static void test_fixture_samples(void **state) {
        unsigned bad = 0;
        char dir[PATH_MAX];
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(sampler_freep) struct sampler *s = NULL;
                struct sample out;

                fixture_scratch(dir, sizeof(dir));
                sample_fixture(dir, &cases[i], &s, &out);
                bad += check_case(&cases[i], &out);
                fixture_remove(dir);
        }
        assert_int_equal(bad, 0);
}

/* Per worker: the busy loop's CPU and resident memory (3347 pages at t1). */
static void test_fixture_worker(void **state) {
        _cleanup_(sampler_freep) struct sampler *s = NULL;
        char dir[PATH_MAX];
        struct sample out;
        double cpu;
        uint64_t rss;
        (void) state;

        fixture_scratch(dir, sizeof(dir));
        sample_fixture(dir, &cases[0], &s, &out);
        assert_int_equal(sampler_worker(s, BUSY, &cpu, &rss), 0);
        assert_true(near(cpu, 26.0 / 53 * 100));
        assert_int_equal(rss, 3347 * (uint64_t) sysconf(_SC_PAGESIZE));
        assert_int_equal(sampler_worker(s, SLEEPER, &cpu, &rss), 0);
        assert_true(near(cpu, 0));
        assert_int_equal(sampler_worker(s, 1, &cpu, &rss), -ESRCH);
        fixture_remove(dir);
}

/* A worker started between two samples is measured from its start at the
 * second, not one interval later, once it has run half the interval: the
 * sleeper's stat at t1 (0.53 s after t0) given a start time and 18 ticks. */
static void test_fixture_new_worker(void **state) {
        static const struct {
                const char *name;
                unsigned start;         /* ticks since boot; t0 is 116903, t1 116956 */
                double cpu;             /* NA: not measured yet */
        } table[] = {
                { "started 0.36 s ago: 18 ticks are 50%", 116920, 50 },
                { "started 0.16 s ago: too soon to say", 116940, NA },
                { "started before t0: should have been seen", 116773, NA },
        };
        unsigned bad = 0;
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_(sampler_freep) struct sampler *s = NULL;
                char dir[PATH_MAX], stat[256];
                const pid_t busy = BUSY, both[] = { BUSY, SLEEPER };
                struct sample out;
                double cpu = NA;
                uint64_t rss;

                fixture_scratch(dir, sizeof(dir));
                fixture_load(dir, "core0-busy", "t0");
                assert_int_equal(sampler_new_at(dir, &s), 0);
                assert_int_equal(sampler_sample(s, &busy, 1, &out), 0);
                fixture_load(dir, "core0-busy", "t1");
                snprintf(stat, sizeof(stat), "4243 (sleep) R 846 728 7641 0 -1 4194304 76 0 0 0 18 0 0 0 20 0 1 0 %u "
                         "2990080 421 18446744073709551615 0 0 0 0 0 0 0 0 0 1 0 0 17 1 0 0 0 0 0\n", table[i].start);
                fixture_put(dir, "/proc/4243/stat", stat);
                assert_int_equal(sampler_sample(s, both, 2, &out), 0);
                assert_int_equal(sampler_worker(s, SLEEPER, &cpu, &rss), 0);

                unsigned measured = table[i].cpu == NA ? 1 : 2;
                double pool = table[i].cpu == NA ? 26.0 / 53 * 100 : (26.0 / 53 * 100 + table[i].cpu) / 2;
                if (out.pool_measured != measured || !near(out.signals.value[SIGNAL_POOL_CPU], pool) ||
                    (table[i].cpu == NA ? cpu >= 0 : !near(cpu, table[i].cpu))) {
                        print_message("%s: %u measured, pool.cpu %.2f, the worker %.2f\n", table[i].name,
                                      out.pool_measured, out.signals.value[SIGNAL_POOL_CPU], cpu);
                        bad++;
                }
                fixture_remove(dir);
        }
        assert_int_equal(bad, 0);
}

/* A narrowed affinity (Cpus_allowed_list: 1) leaves one usable core. */
static void test_fixture_affinity(void **state) {
        _cleanup_(sampler_freep) struct sampler *s = NULL;
        char dir[PATH_MAX];
        struct sample out;
        (void) state;

        fixture_scratch(dir, sizeof(dir));
        fixture_load(dir, "core0-busy", "t0");
        fixture_put(dir, "/proc/self/status", "Name:\tcorral\nCpus_allowed_list:\t1\n");
        assert_int_equal(sampler_new_at(dir, &s), 0);
        assert_int_equal(sampler_capacity(s), 1);
        fixture_load(dir, "core0-busy", "t1");
        fixture_put(dir, "/proc/self/status", "Name:\tcorral\nCpus_allowed_list:\t1\n");
        assert_int_equal(sampler_sample(s, NULL, 0, &out), 0);
        assert_int_equal(out.capacity, 1);
        assert_int_equal(out.n_cores, 1);
        assert_int_equal(out.cores[0].id, 1);
        assert_true(near(out.signals.value[SIGNAL_CPU_BUSY], 0));
        assert_true(near(out.signals.value[SIGNAL_CPU_IDLE_CORES], 1));
        fixture_remove(dir);
}

/* A root without the files the sampler needs is an error, not a sampler of
 * the real machine. */
static void test_fixture_incomplete(void **state) {
        struct sampler *s = NULL;
        char dir[PATH_MAX];
        (void) state;

        fixture_scratch(dir, sizeof(dir));
        assert_int_equal(sampler_new_at(dir, &s), -ENOENT);
        assert_null(s);
        fixture_remove(dir);
}

/* ---- placement: the sampled cores in, a CPU out ---- */

static void test_placement(void **state) {
        static const struct core_busy one_busy[] = { { 0, 100 }, { 1, 0 } },
                                      tie[] = { { 0, 100 }, { 1, 100 } },
                                      gaps[] = { { 2, 40 }, { 5, 12.5 }, { 7, 12.4 } };
        cpu_set_t usable;
        const struct {
                const char *name;
                enum placement placement;
                unsigned worker;
                const struct core_busy *cores;
                size_t n;
                int expected;
        } table[] = {
                { "least-loaded: the idle core",              PLACEMENT_LEAST_LOADED, 0, one_busy, 2, 1 },
                { "least-loaded: a tie takes the lowest id",  PLACEMENT_LEAST_LOADED, 0, tie, 2, 0 },
                { "least-loaded: ids are CPU ids, not index", PLACEMENT_LEAST_LOADED, 0, gaps, 3, 7 },
                { "least-loaded: no sample yet, no pinning",  PLACEMENT_LEAST_LOADED, 0, NULL, 0, -1 },
                { "spread: worker 0 on the first usable",     PLACEMENT_SPREAD, 0, NULL, 0, 1 },
                { "spread: worker 1 on the second usable",    PLACEMENT_SPREAD, 1, one_busy, 2, 3 },
                { "spread: worker 2 wraps around",            PLACEMENT_SPREAD, 2, NULL, 0, 1 },
                { "none: never pinned",                       PLACEMENT_NONE, 0, one_busy, 2, -1 },
        };
        unsigned bad = 0;
        (void) state;

        CPU_ZERO(&usable);
        CPU_SET(1, &usable);
        CPU_SET(3, &usable);
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                int cpu = placement_cpu(table[i].placement, table[i].worker, &usable, table[i].cores, table[i].n);
                if (cpu != table[i].expected) {
                        print_message("%s: CPU %d, expected %d\n", table[i].name, cpu, table[i].expected);
                        bad++;
                }
        }
        assert_int_equal(placement_cpu(PLACEMENT_SPREAD, 0, NULL, NULL, 0), -1);
        CPU_ZERO(&usable);
        assert_int_equal(placement_cpu(PLACEMENT_SPREAD, 0, &usable, NULL, 0), -1);
        assert_int_equal(bad, 0);
}

/* Least-loaded on a sampled fixture: core 1 of "core 0 burning". */
static void test_placement_on_fixture(void **state) {
        _cleanup_(sampler_freep) struct sampler *s = NULL;
        char dir[PATH_MAX];
        struct sample out;
        (void) state;

        fixture_scratch(dir, sizeof(dir));
        sample_fixture(dir, &cases[0], &s, &out);
        assert_int_equal(placement_cpu(PLACEMENT_LEAST_LOADED, 0, NULL, out.cores, out.n_cores), 1);
        fixture_remove(dir);
}

/* ---- the default policy on sampled fixtures, the machine staying so ---- */

static void test_default_policy_on_fixtures(void **state) {
        static const struct {
                const char *name, *fixture;
                pid_t pid;
                unsigned current;
                struct { unsigned t_ms, desired; const char *rule; } steps[4];
        } table[] = {
                /* pool.cpu 0% < 20% for 30 s: give one back. */
                { "a sleeping pool shrinks after 30s", "core0-busy", SLEEPER, 2,
                  { { 0, 2, NULL }, { 29999, 2, NULL }, { 30000, 1, "idle" } } },
                /* cpu.busy 100% > 95% and psi.cpu 98% > 20% for 5 s: the rule
                 * fires, and the default 30 s down-stabilization (the highest
                 * size recommended in the last 30 s) holds the size till then. */
                { "a neighbour needing the CPUs takes one back", "both-busy", BUSY, 2,
                  { { 0, 2, NULL }, { 4999, 2, NULL }, { 5000, 2, "neighbour" }, { 30000, 1, "neighbour" } } },
                /* pool.cpu 49%: neither saturated (> 80%) nor idle (< 20%). */
                { "a half-busy worker beside an idle core: no change", "core0-busy", BUSY, 2,
                  { { 0, 2, NULL }, { 30000, 2, NULL }, { 60000, 2, NULL } } },
        };
        unsigned bad = 0;
        char dir[PATH_MAX];
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_(sampler_freep) struct sampler *s = NULL;
                struct expect e = { .fixture = table[i].fixture, .pids = { table[i].pid }, .n_pids = 1 };
                struct corral_config c;
                struct policy_state st;
                struct sample out;

                fixture_scratch(dir, sizeof(dir));
                sample_fixture(dir, &e, &s, &out);
                config_init(&c);
                assert_int_equal(config_default_policy(&c, false), 0);
                assert_int_equal(policy_state_init(&st, c.policy.n_rules), 0);
                for (size_t k = 0; k < ELEMENTSOF(table[i].steps) && (k == 0 || table[i].steps[k].t_ms); k++) {
                        struct decision d;
                        usec_t now = 1000 * USEC_PER_SEC + table[i].steps[k].t_ms * USEC_PER_MSEC;
                        const char *rule = table[i].steps[k].rule;
                        assert_int_equal(policy_decide(&c.policy, 1, 2, &st, &out.signals, table[i].current, now, &d), 0);
                        if (d.desired != table[i].steps[k].desired ||
                            (rule ? !d.rule || strcmp(d.rule, rule) != 0 : d.rule != NULL)) {
                                print_message("%s, at %ums: %u (%s), expected %u (%s)\n", table[i].name,
                                              table[i].steps[k].t_ms, d.desired, d.why, table[i].steps[k].desired,
                                              rule ? rule : "no rule");
                                bad++;
                        }
                }
                policy_state_done(&st);
                config_done(&c);
                fixture_remove(dir);
        }
        assert_int_equal(bad, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fixture_samples),
                cmocka_unit_test(test_fixture_worker),
                cmocka_unit_test(test_fixture_new_worker),
                cmocka_unit_test(test_fixture_affinity),
                cmocka_unit_test(test_fixture_incomplete),
                cmocka_unit_test(test_placement),
                cmocka_unit_test(test_placement_on_fixture),
                cmocka_unit_test(test_default_policy_on_fixtures),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
