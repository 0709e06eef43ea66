/* SPDX-License-Identifier: MIT */
/*
 * The throughput seeker (policy/optimize.h) on synthetic throughput curves:
 * each case is a curve f(pool size), deterministic noise from a fixed seed,
 * and the bounds the search must meet. A simulated pool follows the advice
 * sample by sample, the rate of a sample being f of the size during its
 * interval (the mean of the old and the new size's rate for the interval
 * that straddles a change). Some cases go through policy_decide with the
 * built-in batch policy, which also shows how the seeker meets the rules,
 * cooldowns and the stabilization window. Time is an argument: nothing sleeps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/util.h"
#include "conf/conf.h"
#include "policy/decide.h"
#include "policy/optimize.h"

#define BASE (1000 * USEC_PER_SEC)
#define SAMPLES_MAX 1200

enum curve_kind {
        CURVE_TENT,     /* concave: R per worker up to k, then 10% of the peak less per extra worker */
        CURVE_LINEAR,   /* R per worker, no peak below max */
        CURVE_FLAT,     /* R whatever the size (one worker is enough) */
};

struct curve {
        enum curve_kind kind;
        unsigned k;
        double r;
};

#define TENT(k_, r_) { CURVE_TENT, k_, r_ }
#define LINEAR(r_)   { CURVE_LINEAR, 0, r_ }
#define FLAT(r_)     { CURVE_FLAT, 0, r_ }

static double curve_rate(const struct curve *c, unsigned n) {
        if (n == 0)
                return 0;
        switch (c->kind) {
        case CURVE_TENT:
                if (n <= c->k)
                        return c->r * n;
                return c->r * c->k * fmax(1.0 - 0.1 * (n - c->k), 0.1);
        case CURVE_LINEAR:
                return c->r * n;
        default:
                return c->r;
        }
}

/* One segment of a run: the curve, and where the search must end up. */
struct segment {
        struct curve curve;
        unsigned lo, hi;        /* the settled size must be within [lo, hi] */
        unsigned settle_by;     /* ... within this many samples of the segment's start */
};

struct opt_case {
        const char *name;
        unsigned min, max, start;
        unsigned samples;
        double noise;           /* multiplicative, uniform in [-noise, +noise] */
        double cpu_busy;        /* %, every sample */
        double backlog;         /* tasks.backlog, every sample */
        bool decide;            /* through policy_decide with the built-in batch policy */
        unsigned change_at;     /* the sample from which seg[1] applies; 0: seg[0] throughout */
        struct segment seg[2];
        unsigned never_above;   /* 0: no limit; else the size must never exceed it */
        bool never_moves;       /* the size must stay at start */
        double cpu_per_worker;  /* %: if set, cpu.busy is this times the size (capped at 100), not cpu_busy */
        bool timed;             /* tasks.latency is fed: size / rate (every worker busy), so the
                                 * first completions allow an early leap */
};

/* Bounds common to the cases: WINDOW samples per size, WARMUP before each,
 * about log2(max) probes up and as many to come back. */
#define B_SMALL 80      /* peaks up to 8, linear to max, flat */
#define B_LARGE 150     /* peaks beyond, starts far above the peak, noise */
/* After a change of curve: the shift must first show in OPTIMIZE_SHIFT_WINDOWS windows. */
#define B_SHIFT (OPTIMIZE_SHIFT_WINDOWS * OPTIMIZE_WINDOW + B_SMALL)

static const struct opt_case cases[] = {
        /* ---- concave with a peak at k ---- */
        { "tent k=1", 1, 32, 1, 400, 0.02, 50, 100, false, 0, { { TENT(1, 10), 1, 2, B_SMALL } } },
        { "tent k=2", 1, 32, 1, 400, 0.02, 50, 100, false, 0, { { TENT(2, 10), 1, 3, B_SMALL } } },
        { "tent k=4", 1, 32, 1, 400, 0.02, 50, 100, false, 0, { { TENT(4, 10), 3, 5, B_SMALL } } },
        { "tent k=8", 1, 32, 1, 400, 0.02, 50, 100, false, 0, { { TENT(8, 10), 7, 9, B_SMALL } } },
        { "tent k=13", 1, 32, 1, 400, 0.02, 50, 100, false, 0, { { TENT(13, 10), 11, 15, B_LARGE } } },
        { "tent k=4 from a large start", 1, 32, 24, 400, 0.02, 50, 100, false, 0, { { TENT(4, 10), 3, 5, B_LARGE } } },
        { "tent k=13 from a large start", 1, 32, 30, 400, 0.02, 50, 100, false, 0, { { TENT(13, 10), 11, 15, B_LARGE } } },
        /* ---- linear: must reach max ---- */
        { "linear to max 8", 1, 8, 1, 400, 0.02, 50, 100, false, 0, { { LINEAR(10), 8, 8, B_SMALL } } },
        { "linear to max 32", 1, 32, 1, 400, 0.02, 50, 100, false, 0, { { LINEAR(10), 32, 32, B_SMALL } } },
        { "linear to max 64, min 2", 2, 64, 2, 400, 0.02, 50, 100, false, 0, { { LINEAR(10), 64, 64, B_SMALL } } },
        /* ---- flat: bias toward fewer ---- */
        { "flat from 1", 1, 32, 1, 400, 0.02, 50, 100, false, 0, { { FLAT(50), 1, 1, 20 } } },
        { "flat from 8", 1, 32, 8, 400, 0.02, 50, 100, false, 0, { { FLAT(50), 1, 1, B_SMALL } } },
        { "flat from 1, min 3", 3, 32, 3, 400, 0.02, 50, 100, false, 0, { { FLAT(50), 3, 3, 20 } } },
        /* ---- noisy with a known peak ---- */
        { "noisy 10% tent k=6", 1, 32, 1, 600, 0.10, 50, 100, false, 0, { { TENT(6, 10), 5, 7, B_LARGE } } },
        { "noisy 20% tent k=4", 1, 16, 1, 600, 0.20, 50, 100, false, 0, { { TENT(4, 10), 3, 5, B_LARGE } } },
        /* ---- the curve changes midway: re-find the moved peak ---- */
        { "peak 4 -> 10 (tasks wait longer)", 1, 32, 1, 600, 0.02, 50, 100, false, 300,
          { { TENT(4, 10), 3, 5, B_SMALL }, { TENT(10, 5), 9, 11, OPTIMIZE_SHIFT_WINDOWS * OPTIMIZE_WINDOW + B_LARGE } } },
        { "peak 8 -> 2 (tasks contend)", 1, 32, 1, 600, 0.02, 50, 100, false, 300,
          { { TENT(8, 10), 7, 9, B_SMALL }, { TENT(2, 10), 1, 3, B_SHIFT } } },
        /* The rate at the settled size does not move: the periodic look at the
         * neighbours finds it (OPTIMIZE_REPROBE_WINDOWS windows, then a climb). */
        { "peak 4 -> 8, same rate at 4", 1, 32, 1, 700, 0.02, 50, 100, false, 320,
          { { TENT(4, 10), 3, 5, B_SMALL }, { TENT(8, 10), 7, 9,
            (OPTIMIZE_REPROBE_WINDOWS + 1) * (OPTIMIZE_WINDOW + OPTIMIZE_WARMUP) + B_SMALL } } },
        /* ---- the first probe up leaps by the idle CPU ---- */
        { "tasks that wait: linear, 1% CPU each, leaps to max", 1, 16, 2, 200, 0.02, 0, 100, false, 0,
          { { LINEAR(20), 16, 16, 12 } }, 0, false, 1 },
        { "tasks that wait: peak 6, the leap overshoots", 1, 32, 2, 400, 0.02, 0, 100, false, 0,
          { { TENT(6, 20), 5, 7, B_SMALL } }, 0, false, 1 },
        { "half a CPU each: leaps to the CPUs' limit", 1, 32, 1, 400, 0.02, 0, 100, false, 0,
          { { TENT(4, 20), 3, 5, B_SMALL } }, 0, false, 25 },
        /* ---- the first completions give a task's duration: the leap comes at once ---- */
        { "timed, waiting tasks: linear, leaps early to max", 1, 64, 2, 200, 0.02, 0, 1000, false, 0,
          { { LINEAR(20), 64, 64, 20 } }, 0, false, 1, true },
        { "timed, waiting tasks: peak 6, the early leap falls back", 1, 32, 2, 400, 0.02, 0, 1000, false, 0,
          { { TENT(6, 20), 5, 7, B_SMALL } }, 0, false, 1, true },
        { "timed, one resource: flat, the early leap falls back", 1, 32, 2, 400, 0.02, 0, 1000, false, 0,
          { { FLAT(40), 1, 2, B_SMALL } }, 0, false, 1, true },
        { "timed, CPU-bound at 50% each: no early leap past the CPUs", 1, 32, 1, 400, 0.02, 0, 1000, false, 0,
          { { TENT(2, 20), 1, 3, B_SMALL } }, 0, false, 50, true },
        /* ---- cpu.busy over 95% ---- */
        { "cpu busy, flat: never grows", 1, 32, 1, 400, 0.02, 99, 100, false, 0, { { FLAT(50), 1, 1, 20 } }, 1 },
        { "cpu busy, flat from 4: only shrinks", 1, 32, 4, 400, 0.02, 99, 100, false, 0, { { FLAT(50), 1, 1, B_SMALL } }, 4 },
        /* ---- no backlog: nothing to measure ---- */
        { "no backlog: holds", 1, 32, 3, 200, 0.02, 50, 0, false, 0, { { TENT(8, 10), 3, 3, 0 } }, 0, true },
        /* ---- through policy_decide, the built-in batch policy ---- */
        { "decide: tent k=4", 1, 32, 1, 400, 0.02, 50, 100, true, 0, { { TENT(4, 10), 3, 5, B_SMALL } } },
        { "decide: tent k=13", 1, 32, 1, 400, 0.02, 50, 100, true, 0, { { TENT(13, 10), 11, 15, B_LARGE } } },
        { "decide: linear to max 32", 1, 32, 1, 400, 0.02, 50, 100, true, 0, { { LINEAR(10), 32, 32, B_SMALL } } },
        { "decide: flat from 16 shrinks, unheld by stabilization", 1, 32, 16, 400, 0.02, 50, 100, true, 0,
          { { FLAT(50), 1, 1, B_SMALL } } },
        { "decide: peak 8 -> 2", 1, 32, 1, 600, 0.02, 50, 100, true, 300,
          { { TENT(8, 10), 7, 9, B_SMALL }, { TENT(2, 10), 1, 3, B_SHIFT } } },
        { "decide: no backlog", 1, 32, 3, 200, 0.02, 50, 0, true, 0, { { TENT(8, 10), 3, 3, 0 } }, 0, true },
};

/* xorshift32: the same noise on every run and machine. */
static double noise(uint32_t *seed, double amplitude) {
        uint32_t x = *seed;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *seed = x;
        return 1.0 + amplitude * (2.0 * ((double) x / (double) UINT32_MAX) - 1.0);
}

struct trace {
        unsigned size[SAMPLES_MAX];     /* advised after sample i */
        unsigned base[SAMPLES_MAX];
        enum optimize_phase phase[SAMPLES_MAX];
};

struct runner {
        struct corral_config config;
        struct policy_state policy;     /* decide cases */
        struct optimize_state opt;      /* direct cases */
};

/* Runs a case's samples; returns the number of failures (printed). */
static unsigned simulate(const struct opt_case *tc, struct runner *r, struct trace *tr) {
        struct optimize_params p = { SIGNAL_TASKS_RATE, 5, tc->min, tc->max };
        unsigned size = tc->start, during = tc->start, failures = 0;
        uint32_t seed = 0x2545f491u;

        for (unsigned i = 0; i < tc->samples; i++) {
                const struct curve *c = &tc->seg[tc->change_at && i >= tc->change_at ? 1 : 0].curve;
                usec_t now = BASE + i * USEC_PER_SEC;
                /* The interval that straddles a change saw both sizes. */
                double rate = size != during ? (curve_rate(c, during) + curve_rate(c, size)) / 2 : curve_rate(c, size);
                struct signals s = {};
                during = size;

                signals_set(&s, SIGNAL_TASKS_RATE, rate * noise(&seed, tc->noise));
                signals_set(&s, SIGNAL_TASKS_BACKLOG, tc->backlog);
                signals_set(&s, SIGNAL_CPU_BUSY, tc->cpu_per_worker ? fmin(100.0, tc->cpu_per_worker * size)
                                                                    : tc->cpu_busy);
                signals_set(&s, SIGNAL_POOL_SIZE, size);
                if (tc->timed && rate > 0)
                        signals_set(&s, SIGNAL_TASKS_LATENCY, size / rate);
                if (tc->decide) {
                        struct decision d;
                        assert_int_equal(policy_decide(&r->config.policy, tc->min, tc->max, &r->policy, &s, size, now,
                                                       &d), 0);
                        /* Every move is the seeker's, and says why with the rates. */
                        if (d.desired != size && (d.reason != DECISION_OPTIMIZE ||
                                                  strcmp(decision_label(&d), "optimize") != 0 ||
                                                  strncmp(d.why, "optimize: ", 10) != 0)) {
                                print_error("case '%s', sample %u: %u -> %u by %s: %s\n", tc->name, i, size,
                                            d.desired, decision_label(&d), d.why);
                                failures++;
                        }
                        size = d.desired;
                        tr->phase[i] = r->policy.optimize.phase;
                        tr->base[i] = r->policy.optimize.base;
                } else {
                        struct optimize_advice adv;
                        assert_int_equal(optimize_step(&r->opt, &p, &s, size, now, &adv), 0);
                        if (adv.why[0] == '\0' || strncmp(adv.why, "optimize: ", 10) != 0) {
                                print_error("case '%s', sample %u: bad reason '%s'\n", tc->name, i, adv.why);
                                failures++;
                        }
                        size = adv.size;
                        tr->phase[i] = r->opt.phase;
                        tr->base[i] = r->opt.base;
                }
                if (size < tc->min || size > tc->max || size == 0) {
                        print_error("case '%s', sample %u: size %u outside [%u, %u]\n", tc->name, i, size,
                                    tc->min, tc->max);
                        failures++;
                }
                tr->size[i] = size;
        }
        return failures;
}

/* Within a segment: settled (phase SETTLED at a size in [lo, hi]) within
 * settle_by samples; from then on settled only within [lo, hi] and never
 * more than one fine step beyond it. With little noise (under 5%), also never
 * more than one fine step from the size it first settled at. Noisier cases
 * may settle one step short of the peak and later find the peak itself:
 * their probes then go one step beyond the peak, which the band allows. */
static unsigned check_segment(const struct opt_case *tc, const struct trace *tr, unsigned from, unsigned to,
                              const struct segment *seg, unsigned *ret_settled) {
        unsigned at = UINT_MAX;

        for (unsigned i = from; i < to && at == UINT_MAX; i++)
                if (tr->phase[i] == OPTIMIZE_SETTLED && tr->size[i] == tr->base[i] && tr->base[i] >= seg->lo &&
                    tr->base[i] <= seg->hi)
                        at = i;
        if (at == UINT_MAX || at - from > seg->settle_by) {
                print_error("case '%s', samples %u-%u: not settled in [%u, %u] within %u samples (%s %u)\n",
                            tc->name, from, to, seg->lo, seg->hi, seg->settle_by,
                            at == UINT_MAX ? "never; ends at" : "settled after", at == UINT_MAX ? tr->size[to - 1]
                                                                                                : at - from);
                return 1;
        }
        unsigned settled = tr->base[at], step = optimize_fine_step(settled, 5);
        unsigned below = seg->lo - optimize_fine_step(seg->lo, 5), above = seg->hi + optimize_fine_step(seg->hi, 5);
        for (unsigned i = at; i < to; i++) {
                bool wandered = tr->size[i] < below || tr->size[i] > above ||
                                (tc->noise < 0.05 && (tr->size[i] + step < settled || tr->size[i] > settled + step));
                bool elsewhere = tr->phase[i] == OPTIMIZE_SETTLED && (tr->base[i] < seg->lo || tr->base[i] > seg->hi);
                if (wandered || elsewhere) {
                        print_error("case '%s', sample %u: size %u (%s at %u) after settling at %u in [%u, %u]\n",
                                    tc->name, i, tr->size[i], optimize_phase_to_string(tr->phase[i]), tr->base[i],
                                    settled, seg->lo, seg->hi);
                        return 1;
                }
        }
        *ret_settled = at - from;
        return 0;
}

static unsigned run_case(const struct opt_case *tc) {
        static struct trace tr;
        struct runner r = {};
        unsigned failures, worst = 0;

        assert_true(tc->samples <= SAMPLES_MAX);
        if (tc->decide) {
                config_init(&r.config);
                assert_int_equal(config_default_policy(&r.config, true), 0);
                assert_true(r.config.policy.has_optimize);
                assert_int_equal(policy_state_init(&r.policy, r.config.policy.n_rules), 0);
        }
        memset(&tr, 0, sizeof(tr));
        failures = simulate(tc, &r, &tr);

        if (tc->never_moves) {
                for (unsigned i = 0; i < tc->samples; i++)
                        if (tr.size[i] != tc->start || tr.phase[i] != OPTIMIZE_IDLE) {
                                print_error("case '%s', sample %u: size %u, phase %s\n", tc->name, i, tr.size[i],
                                            optimize_phase_to_string(tr.phase[i]));
                                failures++;
                                break;
                        }
        } else {
                unsigned end = tc->change_at ? tc->change_at : tc->samples, n;
                failures += check_segment(tc, &tr, 0, end, &tc->seg[0], &n);
                worst = n;
                if (tc->change_at) {
                        failures += check_segment(tc, &tr, tc->change_at, tc->samples, &tc->seg[1], &n);
                        print_message("%-56s settled after %3u samples, again after %3u\n", tc->name, worst, n);
                } else
                        print_message("%-56s settled after %3u samples\n", tc->name, worst);
        }
        for (unsigned i = 0; tc->never_above && i < tc->samples; i++)
                if (tr.size[i] > tc->never_above) {
                        print_error("case '%s', sample %u: grew to %u (limit %u)\n", tc->name, i, tr.size[i],
                                    tc->never_above);
                        failures++;
                        break;
                }
        if (tc->decide) {
                /* Probing up and down is the seeker's method, not a flap. */
                if (r.policy.penalty != 0 || r.policy.flaps != 0) {
                        print_error("case '%s': anti-flap penalty %u after %u flaps\n", tc->name, r.policy.penalty,
                                    r.policy.flaps);
                        failures++;
                }
                policy_state_done(&r.policy);
                config_done(&r.config);
        }
        return failures;
}

static void test_curves(void **state) {
        unsigned failures = 0;
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                failures += run_case(&cases[i]);
        print_message("%zu cases, %u failures\n", ELEMENTSOF(cases), failures);
        assert_int_equal(failures, 0);
}

/* ---- the failures of issue 23: discrete tasks sampled every 100 ms ----
 *
 * A pool of workers runs tasks of a given duration; a sample every 100 ms
 * reports the completions of its interval as tasks.rate (so each is 0, 10,
 * 20/s...) and their mean duration as tasks.latency (unavailable while none
 * completed), as the batch does. CPU-bound tasks share the CPUs with each
 * other and with background hogs; sleep tasks do not. The seeker must never
 * settle below the starting size (the CPU count) when the starting size is
 * measurably better, whatever the quantisation or the 0/s start. */
struct task_case {
        const char *name;
        bool cpu_bound;         /* false: the task sleeps */
        double seconds;         /* the task's work (CPU or sleep) */
        double jitter;          /* each task's work varies by +-this share */
        unsigned hogs;          /* background CPU hogs beside the pool */
        unsigned start, max;
        unsigned floor;         /* the seeker must never settle below this */
        bool never_below;       /* ... nor ask for fewer, even to probe */
};

#define SIM_CPUS 2
#define SIM_TICK 0.005          /* s: the simulation's step */
#define SIM_WORKERS 64

static const struct task_case task_cases[] = {
        /* the image job: 0.15 s of CPU each, 2 CPUs, samples of 0, 10 or 20/s */
        { "cpu 0.15 s, quiet", true, 0.15, 0.1, 0, 2, 8, 2 },
        { "cpu 0.15 s, one hog", true, 0.15, 0.1, 1, 2, 8, 2 },
        /* nothing finishes in the first second: the start measures 0/s */
        { "cpu 1 s, 0/s start", true, 1.0, 0.05, 0, 2, 8, 2 },
        /* sleep 0.5 with background load: cpu.busy high, no leap, jittery durations */
        { "sleep 0.5 s, background load", false, 0.5, 0.3, 2, 2, 8, 2 },
        { "sleep 1 s, quiet", false, 1.0, 0.05, 0, 2, 8, 4 },
        /* each worker keeps a core busy (pool.cpu ~100%): fewer cannot help, not even probed */
        { "cpu 0.1 s, quiet: no probe below the CPUs", true, 0.1, 0.1, 0, 2, 8, 2, true },
        /* slow lines that wait: the first completions give the duration, the pool leaps at once */
        { "sleep 0.2 s, quiet, max 64", false, 0.2, 0.05, 0, 2, 64, 32 },
};

struct sim {
        double left[SIM_WORKERS];       /* work left of the running task (< 0: idle) */
        double began[SIM_WORKERS];
        double t;
        uint32_t seed;
};

static double task_work(const struct task_case *tc, struct sim *m) {
        return tc->seconds * noise(&m->seed, tc->jitter);
}

/* Advances 100 ms at size; fills the sample's signals. */
static void sim_interval(const struct task_case *tc, struct sim *m, unsigned size, struct signals *s) {
        unsigned done = 0;
        double took = 0;

        for (unsigned i = 0; i < size; i++)
                if (m->left[i] < 0) {
                        m->left[i] = task_work(tc, m);
                        m->began[i] = m->t;
                }
        for (int k = 0; k < (int) (0.1 / SIM_TICK + 0.5); k++) {
                unsigned running = 0;
                for (unsigned i = 0; i < SIM_WORKERS; i++)
                        running += m->left[i] >= 0;
                double share = tc->cpu_bound ? fmin(1.0, (double) SIM_CPUS / (running + tc->hogs)) : 1.0;
                m->t += SIM_TICK;
                for (unsigned i = 0; i < SIM_WORKERS; i++) {
                        if (m->left[i] < 0)
                                continue;
                        m->left[i] -= SIM_TICK * share;
                        if (m->left[i] > 1e-9)
                                continue;
                        done++;
                        took += m->t - m->began[i];
                        /* a worker beyond the size retires after its task */
                        m->left[i] = i < size ? task_work(tc, m) : -1;
                        m->began[i] = m->t;
                }
        }
        unsigned running = 0;
        for (unsigned i = 0; i < SIM_WORKERS; i++)
                running += m->left[i] >= 0;
        double busy = tc->cpu_bound ? fmin(SIM_CPUS, running + tc->hogs) : fmin(SIM_CPUS, tc->hogs + 0.02 * running);
        *s = (struct signals) {};
        signals_set(s, SIGNAL_TASKS_RATE, done / 0.1);
        if (done)
                signals_set(s, SIGNAL_TASKS_LATENCY, took / done);
        signals_set(s, SIGNAL_TASKS_BACKLOG, 1000);
        signals_set(s, SIGNAL_CPU_BUSY, 100.0 * busy / SIM_CPUS);
        double share = tc->cpu_bound ? fmin(1.0, (double) SIM_CPUS / (running + tc->hogs)) : 0.02;
        if (running > 0)
                signals_set(s, SIGNAL_POOL_CPU, 100.0 * share);
}

static unsigned run_task_case(const struct task_case *tc) {
        struct optimize_params p = { SIGNAL_TASKS_RATE, 5, 1, tc->max };
        struct optimize_state st = {};
        struct sim m = { .seed = 0x9e3779b9u };
        unsigned size = tc->start, lowest = UINT_MAX, asked = UINT_MAX, failures = 0;
        struct optimize_advice adv = {};
        char why[OPTIMIZE_WHY_MAX] = "";

        for (unsigned i = 0; i < SIM_WORKERS; i++)
                m.left[i] = -1;
        for (unsigned i = 0; i < 1200; i++) {       /* two minutes */
                struct signals s;
                sim_interval(tc, &m, size, &s);
                assert_int_equal(optimize_step(&st, &p, &s, size, BASE + i * 100 * USEC_PER_MSEC, &adv), 0);
                if (st.phase == OPTIMIZE_SETTLED && st.base < lowest) {
                        lowest = st.base;
                        snprintf(why, sizeof(why), "%s", adv.why);
                }
                size = adv.size;
                if (size < asked)
                        asked = size;
        }
        if (tc->never_below && asked < tc->floor) {
                print_error("case '%s': asked for %u workers (floor %u)\n", tc->name, asked, tc->floor);
                failures++;
        }
        if (lowest < tc->floor || size < tc->floor) {
                print_error("case '%s': settled at %u, ends at %u (floor %u): %s\n", tc->name, lowest, size,
                            tc->floor, why);
                failures++;
        }
        print_message("%-44s settled no lower than %u, asked no less than %u, ends at %u\n", tc->name, lowest,
                      asked, size);
        return failures;
}

static void test_task_series(void **state) {
        unsigned failures = 0;
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(task_cases); i++)
                failures += run_task_case(&task_cases[i]);
        assert_int_equal(failures, 0);
}

/* One sample for the direct tests: a noise-free rate at a backlog. */
static struct signals sample(double rate, double cpu_busy) {
        struct signals s = {};
        signals_set(&s, SIGNAL_TASKS_RATE, rate);
        signals_set(&s, SIGNAL_TASKS_BACKLOG, 100);
        signals_set(&s, SIGNAL_CPU_BUSY, cpu_busy);
        return s;
}

static void test_fine_step(void **state) {
        static const struct { unsigned size; double bias; unsigned step; } t[] = {
                { 0, 5, 1 }, { 1, 5, 1 }, { 10, 5, 1 }, { 11, 5, 2 }, { 13, 5, 2 }, { 20, 5, 2 },
                { 21, 5, 3 }, { 32, 5, 4 }, { 64, 5, 7 }, { 8, 0, 1 }, { 2, 100, 2 }, { 1, 100, 1 },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                unsigned got = optimize_fine_step(t[i].size, t[i].bias);
                if (got != t[i].step)
                        print_error("fine step of %u at %g%%: %u, expected %u\n", t[i].size, t[i].bias, got, t[i].step);
                assert_int_equal(got, t[i].step);
        }
}

static void test_invalid(void **state) {
        struct optimize_state st = {};
        struct optimize_advice adv = { .size = 77 };
        struct signals s = sample(10, 50);
        static const struct optimize_params bad[] = {
                { SIGNAL_TASKS_RATE, 5, 3, 2 },         /* min > max */
                { SIGNAL_TASKS_RATE, 5, 0, 0 },         /* max 0 */
                { _SIGNAL_MAX, 5, 1, 8 },               /* no such signal */
                { SIGNAL_TASKS_RATE, -1, 1, 8 },        /* negative bias */
                { SIGNAL_TASKS_RATE, NAN, 1, 8 },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(optimize_step(&st, &bad[i], &s, 2, BASE, &adv), -EINVAL);
        assert_int_equal(adv.size, 77);
        assert_int_equal(st.phase, OPTIMIZE_IDLE);

        /* the rate unavailable: hold, keep what was measured */
        struct optimize_params p = { SIGNAL_TASKS_RATE, 5, 1, 8 };
        assert_int_equal(optimize_step(&st, &p, &s, 2, BASE, &adv), 0);
        assert_int_equal(st.phase, OPTIMIZE_MEASURE);
        struct signals none = {};
        signals_set(&none, SIGNAL_TASKS_BACKLOG, 5);
        assert_int_equal(optimize_step(&st, &p, &none, 2, BASE + USEC_PER_SEC, &adv), 0);
        assert_int_equal(adv.size, 2);
        assert_non_null(strstr(adv.why, "tasks.rate unavailable"));
        assert_int_equal(st.phase, OPTIMIZE_MEASURE);

        assert_string_equal(optimize_phase_to_string(OPTIMIZE_SETTLED), "settled");
        assert_null(optimize_phase_to_string(_OPTIMIZE_PHASE_MAX));
        assert_string_equal(decision_reason_to_string(DECISION_OPTIMIZE), "optimize");
        struct decision d = { .reason = DECISION_OPTIMIZE };
        assert_string_equal(decision_label(&d), "optimize");
}

/* Feeds samples of a linear curve (10/s per worker) at a cpu.busy, one a
 * second from *i, following the advice; returns the last advice. */
static struct optimize_advice feed(struct optimize_state *st, const struct optimize_params *p, unsigned *size,
                                   unsigned *i, unsigned n, double cpu_busy) {
        struct optimize_advice adv = {};
        for (unsigned j = 0; j < n; j++, (*i)++) {
                struct signals s = sample(10.0 * *size, cpu_busy);
                assert_int_equal(optimize_step(st, p, &s, *size, BASE + *i * USEC_PER_SEC, &adv), 0);
                *size = adv.size;
        }
        return adv;
}

/* The log line names both sizes, their rates and the gain. The first sample
 * after a move is set aside; a search's first probe up leaps by the idle CPU
 * after OPTIMIZE_LEAP_WINDOW samples; a clear difference is judged after
 * OPTIMIZE_WINDOW_MIN samples of the probe; a fine probe waits for a base of
 * OPTIMIZE_WINDOW samples. */
static void test_reasons(void **state) {
        struct optimize_params p = { SIGNAL_TASKS_RATE, 5, 1, 8 };
        struct optimize_state st = {};
        struct optimize_advice adv;
        unsigned size = 2, i = 0;
        (void) state;

        adv = feed(&st, &p, &size, &i, 1, 50);
        assert_string_equal(adv.why, "optimize: 2 workers starting, tasks.rate 20.0/s set aside");
        adv = feed(&st, &p, &size, &i, 1, 50);
        assert_string_equal(adv.why, "optimize: 2 workers 20.0/s; 1 of 2 samples before probing 4");
        /* cpu.busy 50%: the pool could be 95/50 times as large, so 2 leap to 4 */
        adv = feed(&st, &p, &size, &i, 1, 50);
        assert_string_equal(adv.why, "optimize: 2 workers 20.0/s; probing 4");
        assert_int_equal(size, 4);
        adv = feed(&st, &p, &size, &i, OPTIMIZE_WARMUP + OPTIMIZE_WINDOW_MIN - 1, 50);
        assert_int_equal(size, 4);
        adv = feed(&st, &p, &size, &i, 1, 50);
        assert_string_equal(adv.why, "optimize: 4 workers 40.0/s beat 2 workers 20.0/s by 100%; probing 8");
        assert_int_equal(size, 8);
        assert_true(st.rising);

        /* 8 workers bring nothing over 4 (40/s): the step halves, to 6 */
        size = 8;
        for (unsigned j = 0; j < OPTIMIZE_WARMUP + OPTIMIZE_WINDOW_MIN; j++, i++) {
                struct signals s = sample(40, 50);
                assert_int_equal(optimize_step(&st, &p, &s, size, BASE + i * USEC_PER_SEC, &adv), 0);
        }
        assert_string_equal(adv.why, "optimize: 8 workers 40.0/s not 5% better than 4 workers 40.0/s; probing 6");

        /* From a settled-looking start at cpu.busy 99%: no leap, a fine probe
         * down, which waits for OPTIMIZE_WINDOW samples of the base. */
        optimize_reset(&st);
        size = 3;
        adv = feed(&st, &p, &size, &i, OPTIMIZE_WARMUP + OPTIMIZE_WINDOW - 1, 99);
        assert_string_equal(adv.why, "optimize: 3 workers 30.0/s; 4 of 5 samples before probing 2");
        adv = feed(&st, &p, &size, &i, 1, 99);
        assert_string_equal(adv.why, "optimize: 3 workers 30.0/s; probing 2");
}

/* After a move, samples are set aside until one whose interval began a task
 * duration (tasks.latency) after the move: tasks of 0.35 s and samples every
 * 100 ms set four aside. */
static void test_latency_set_aside(void **state) {
        struct optimize_params p = { SIGNAL_TASKS_RATE, 5, 1, 8 };
        struct optimize_state st = {};
        struct optimize_advice adv;
        unsigned size = 2, moved_at = 0;
        (void) state;

        for (unsigned i = 0; i < 40; i++) {
                struct signals s = sample(10.0 * size, 10);
                signals_set(&s, SIGNAL_TASKS_LATENCY, 0.35);
                assert_int_equal(optimize_step(&st, &p, &s, size, BASE + i * 100 * USEC_PER_MSEC, &adv), 0);
                if (moved_at && strstr(adv.why, "set aside") == NULL) {
                        assert_int_equal(i - moved_at, 5);
                        return;
                }
                if (adv.size != size)
                        moved_at = i;
                size = adv.size;
        }
        fail_msg("no sample counted after the move: %s", adv.why);
}

/* cpu.busy over 95%: no probe up from a busy size, unless the last move up
 * won (throughput still rises). */
static void test_cpu_busy(void **state) {
        struct optimize_params p = { SIGNAL_TASKS_RATE, 5, 1, 8 };
        struct optimize_state st = {};
        struct optimize_advice adv;
        unsigned size = 2, i = 0;
        (void) state;

        /* Busy at 2 with no move behind it: probes down, not up. */
        for (; i < OPTIMIZE_WARMUP + OPTIMIZE_WINDOW; i++) {
                struct signals s = sample(10.0 * size, 99);
                assert_int_equal(optimize_step(&st, &p, &s, size, BASE + i * USEC_PER_SEC, &adv), 0);
        }
        assert_int_equal(adv.size, 1);

        /* Not busy at 1, busy at 2 and beyond, and linear: 1 -> 2 wins, and
         * since throughput still rises the probe up from a busy 2 is allowed. */
        optimize_reset(&st);
        size = 1;
        bool rises = false;
        for (i = 0; i < 3 * (OPTIMIZE_WARMUP + OPTIMIZE_WINDOW); i++) {
                struct signals s = sample(10.0 * size, size > 1 ? 99 : 50);
                assert_int_equal(optimize_step(&st, &p, &s, size, BASE + i * USEC_PER_SEC, &adv), 0);
                if (adv.size > size && size > 1)
                        rises |= strstr(adv.why, "throughput still rises") != NULL;
                size = adv.size;
        }
        assert_true(size >= 4);
        assert_true(rises);
}

/* The machine's room (issue 23.2): workers that wait are not held back by a
 * machine that neighbours keep busy; memory that is short forbids growth;
 * never more workers than the backlog can feed. */
static void test_room(void **state) {
        static const struct {
                const char *name;
                double cpu_busy, pool_cpu, backlog, mem, psi_memory;  /* < 0: unavailable */
                unsigned lo, hi;        /* the first move away from 2 lands within */
        } room[] = {
                { "busy machine, CPU-bound workers: down",       99, 80, 100, 50, 0,  1, 1 },
                { "workers at 89.9% of a core: down",            99, 89.9, 100, 50, 0, 1, 1 },
                { "each worker a full core (90%): not down",     99, 90, 100, 50, 0,  2, 2 },
                { "each worker a full core (100%): not down",    99, 100, 100, 50, 0, 2, 2 },
                { "busy machine, waiting workers: leaps up",     99, 2,  100, 50, 0,  16, 16 },
                { "busy machine, unknown pool.cpu: down",        99, -1, 100, 50, 0,  1, 1 },
                { "busy machine, workers at 9%: leaps up",       99, 9,  100, 50, 0,  16, 16 },
                { "busy machine, workers at 10%: starved, down", 99, 10, 100, 50, 0,  1, 1 },
                { "half busy, workers at 5%: as the machine",    60, 5,  100, 50, 0,  16, 16 },
                { "memory short: down, not up",                  10, 2,  100, 9.9, 0, 1, 1 },
                { "memory just enough: up",                      10, 2,  100, 10, 0,  16, 16 },
                { "memory pressure: down, not up",               10, 2,  100, 50, 10.1, 1, 1 },
                { "backlog of 3 feeds 5 at most",                10, 2,  3,  50, 0,  5, 5 },
                { "backlog of 1 feeds 3 at most",                10, 2,  1,  50, -1, 3, 3 },
        };
        (void) state;

        for (size_t c = 0; c < ELEMENTSOF(room); c++) {
                struct optimize_params p = { SIGNAL_TASKS_RATE, 5, 1, 16 };
                struct optimize_state st = {};
                struct optimize_advice adv = {};
                unsigned size = 2;
                for (unsigned i = 0; i < 20 && size == 2; i++) {
                        struct signals s = {};
                        signals_set(&s, SIGNAL_TASKS_RATE, 10.0 * size);
                        signals_set(&s, SIGNAL_TASKS_BACKLOG, room[c].backlog);
                        signals_set(&s, SIGNAL_CPU_BUSY, room[c].cpu_busy);
                        if (room[c].pool_cpu >= 0)
                                signals_set(&s, SIGNAL_POOL_CPU, room[c].pool_cpu);
                        signals_set(&s, SIGNAL_MEM_AVAILABLE, room[c].mem);
                        if (room[c].psi_memory >= 0)
                                signals_set(&s, SIGNAL_PSI_MEMORY, room[c].psi_memory);
                        assert_int_equal(optimize_step(&st, &p, &s, size, BASE + i * USEC_PER_SEC, &adv), 0);
                        size = adv.size;
                }
                if (size < room[c].lo || size > room[c].hi)
                        fail_msg("%s: moved to %u, want %u-%u (%s)", room[c].name, size, room[c].lo, room[c].hi,
                                 adv.why);
        }
}

/* The early leap (issue 23): once the first completions give a task's
 * duration, a pool whose CPU is idle leaps at once, before its base is
 * measured, against the bound base / duration; not when the CPU is busy,
 * memory is short, the step is a fine one, or more tasks completed than the
 * workers could have (several lines an invocation: the duration is not one
 * completion's). Samples every 100 ms, every worker busy. */
static void test_early_leap(void **state) {
        static const struct {
                const char *name;
                double latency, cpu_busy, pool_cpu, backlog, mem;
                double per_task;        /* completions a task counts for (--batch N) */
                unsigned max;
                unsigned size, by;      /* the first move goes to size, within `by` samples; 0: no early leap */
        } t[] = {
                { "waiting tasks of 0.2 s: 2 leap x64 to 128",    0.2, 50, 1, 1000, 50, 1, 200, 128, 3 },
                { "tasks of 1 s: as soon as one completes",       1.0, 50, 1, 1000, 50, 1, 64, 64, 11 },
                { "a backlog of 5 feeds 7",                       0.2, 50, 1, 5, 50, 1, 64, 7, 3 },
                { "max 4: leaps to 4",                            0.2, 50, 1, 1000, 50, 1, 4, 4, 3 },
                { "max 3: a fine step, no early leap",            0.2, 50, 1, 1000, 50, 1, 3, 0, 0 },
                { "the machine's CPU busy, workers at 50%",       0.2, 99, 50, 1000, 50, 1, 64, 0, 0 },
                { "the machine saturated, workers at 1.9%: x50",  0.2, 99, 1.9, 1000, 50, 1, 200, 100, 3 },
                { "the machine saturated, workers at 2% (starved?)", 0.2, 99, 2, 1000, 50, 1, 64, 0, 0 },
                { "half the CPU idle: leaps to 95/50 of 2",       0.2, 50, 50, 1000, 50, 1, 64, 4, 3 },
                { "memory short",                                 0.2, 10, 1, 1000, 5, 1, 64, 0, 0 },
                { "20 lines an invocation: no bound",             0.2, 50, 1, 1000, 50, 20, 64, 0, 0 },
        };
        (void) state;

        for (size_t c = 0; c < ELEMENTSOF(t); c++) {
                struct optimize_params p = { SIGNAL_TASKS_RATE, 5, 1, t[c].max };
                struct optimize_state st = {};
                struct optimize_advice adv = {};
                unsigned size = 2, moved = 0, at = 0;
                bool early = false;
                for (unsigned i = 0; i < 40 && !moved; i++) {
                        double t_now = 0.1 * i;
                        /* two workers in step: both finish at every multiple of the duration */
                        double done = floor(t_now / t[c].latency + 1e-9) - floor((t_now - 0.1) / t[c].latency + 1e-9);
                        struct signals s = {};
                        signals_set(&s, SIGNAL_TASKS_RATE, i > 0 ? done * size * t[c].per_task / 0.1 : 0);
                        if (i > 0 && done > 0)
                                signals_set(&s, SIGNAL_TASKS_LATENCY, t[c].latency);
                        signals_set(&s, SIGNAL_TASKS_BACKLOG, t[c].backlog);
                        signals_set(&s, SIGNAL_CPU_BUSY, t[c].cpu_busy);
                        signals_set(&s, SIGNAL_POOL_CPU, t[c].pool_cpu);
                        signals_set(&s, SIGNAL_MEM_AVAILABLE, t[c].mem);
                        assert_int_equal(optimize_step(&st, &p, &s, size, BASE + i * 100 * USEC_PER_MSEC, &adv), 0);
                        if (adv.size != size) {
                                moved = adv.size;
                                at = i;
                                early = strstr(adv.why, "at most, CPU") != NULL;
                        }
                }
                if (t[c].size ? !early || moved != t[c].size || at > t[c].by : early)
                        fail_msg("%s: moved to %u after %u samples, %s (want %s %u within %u)", t[c].name, moved, at,
                                 early ? "early" : "not early", t[c].size ? "early to" : "no early leap", t[c].size,
                                 t[c].by);
        }
}

/* An early leap's judgement, on tasks of 0.2 s whose workers wait: while a
 * leap's first tasks (once half the workers it added could have finished
 * one) take at most the base's duration / OPTIMIZE_REGROW_SHARE, the pool
 * grows again before the judgement (2 -> 16 -> 66 with a backlog
 * of 100: it adds at most half the backlog); the larger size then wins only
 * by beating the bound on the base clearly; a leap that does not goes back
 * to measure the base, and then probes half as far. */
static void test_early_judged(void **state) {
        static const struct {
                const char *name;
                double per_worker;      /* rate of one worker at each size, by a tent: */
                unsigned peak;          /* ... flat per worker up to peak, then the peak's total */
                unsigned sizes[5];      /* the sizes it moves to, in order (0: no more moves asserted) */
                const char *why[5];     /* a part of each move's reason */
        } t[] = {
                { "linear: 2 -> 16 -> 66 (half the backlog), judged against the bound", 5, 1000, { 16, 66 },
                  { "busy; probing 16", "growing to 66 before judging" } },
                { "peak 13: tasks take 0.25 s at 16, 0.2 at 2 (80%): grows", 5, 13, { 16, 66 },
                  { "busy; probing 16", "tasks took 0.25 s (2 workers: 0.20 s); growing to 66" } },
                { "peak 11: 0.29 s against 0.2 (69%): judged first", 5, 11, { 16, 116 },
                  { "busy; probing 16", "16 workers 55.0/s beat the most 2 workers can do" } },
                { "peak 8: 16 beat the bound, not grown again; leaps by the idle CPU", 5, 8, { 16, 116 },
                  { "busy; probing 16", "16 workers 40.0/s beat the most 2 workers can do (10.0/s at 0.20 s a "
                                           "task) by 300%; probing 116" } },
                { "peak 1: 2 -> 16 falls back to 2, then probes 9", 5, 1, { 16, 2, 9 },
                  { "busy; probing 16", "not clearly above the most 2 workers can do", "probing 9" } },
        };
        (void) state;

        for (size_t c = 0; c < ELEMENTSOF(t); c++) {
                struct optimize_params p = { SIGNAL_TASKS_RATE, 5, 1, 200 };
                struct optimize_state st = {};
                struct optimize_advice adv = {};
                unsigned size = 2, moves = 0;
                for (unsigned i = 1; i < 200 && moves < 5 && t[c].sizes[moves]; i++) {
                        double rate = t[c].per_worker * (size < t[c].peak ? size : t[c].peak);
                        struct signals s = {};
                        signals_set(&s, SIGNAL_TASKS_RATE, rate);
                        signals_set(&s, SIGNAL_TASKS_LATENCY, size / rate);
                        signals_set(&s, SIGNAL_TASKS_BACKLOG, 100);
                        /* The idle CPU allows a leap x8 (95 / 11.875). */
                        signals_set(&s, SIGNAL_CPU_BUSY, 11.875);
                        signals_set(&s, SIGNAL_POOL_CPU, 12);
                        assert_int_equal(optimize_step(&st, &p, &s, size, BASE + i * 100 * USEC_PER_MSEC, &adv), 0);
                        if (adv.size == size)
                                continue;
                        if (adv.size != t[c].sizes[moves] || !strstr(adv.why, t[c].why[moves]))
                                fail_msg("%s: move %u to %u (%s), want %u (%s)", t[c].name, moves, adv.size, adv.why,
                                         t[c].sizes[moves], t[c].why[moves]);
                        size = adv.size;
                        moves++;
                }
                if (moves < 5 && t[c].sizes[moves])
                        fail_msg("%s: %u moves, want %u to %u next", t[c].name, moves, moves, t[c].sizes[moves]);
        }
}

/* A rule overrides the seeker: the neighbour's rule takes a worker back at
 * once (the seeker's sizes are not in the stabilization window), and the
 * seeker measures the size the rule left before it moves again. */
static void test_rule_overrides(void **state) {
        struct corral_config c;
        struct policy_state st;
        struct decision d;
        unsigned size = 1, i = 0;
        (void) state;

        config_init(&c);
        assert_int_equal(config_default_policy(&c, true), 0);
        c.policy.stabilization_down = 300 * USEC_PER_SEC;      /* would hold any window-bound scale-down */
        assert_int_equal(policy_state_init(&st, c.policy.n_rules), 0);

        /* linear: the seeker climbs to 8 and settles there */
        for (; i < 60; i++) {
                struct signals s = sample(10.0 * size, 50);
                assert_int_equal(policy_decide(&c.policy, 1, 8, &st, &s, size, BASE + i * USEC_PER_SEC, &d), 0);
                size = d.desired;
        }
        assert_int_equal(size, 8);
        assert_int_equal(st.optimize.phase, OPTIMIZE_SETTLED);

        /* A neighbour needs the CPU: after 5s the rule takes one back,
         * despite stabilization.down and the seeker's 8. */
        unsigned rule_at = 0;
        for (unsigned j = 0; j < 10 && !rule_at; j++, i++) {
                struct signals s = sample(10.0 * size, 99);
                signals_set(&s, SIGNAL_PSI_CPU, 30);
                assert_int_equal(policy_decide(&c.policy, 1, 8, &st, &s, size, BASE + i * USEC_PER_SEC, &d), 0);
                if (d.desired != size) {
                        assert_int_equal(d.desired, 7);
                        assert_string_equal(decision_label(&d), "neighbour");
                        rule_at = i;
                }
                size = d.desired;
        }
        assert_int_not_equal(rule_at, 0);

        /* The neighbour's pressure is gone, the CPU is not busy: the seeker
         * measures 7 (a warm-up and a window) before it probes again. */
        i++;
        for (unsigned j = 0; j < OPTIMIZE_WARMUP + OPTIMIZE_WINDOW - 1; j++, i++) {
                struct signals s = sample(10.0 * size, 50);
                assert_int_equal(policy_decide(&c.policy, 1, 8, &st, &s, size, BASE + i * USEC_PER_SEC, &d), 0);
                assert_int_equal(d.desired, 7);
                assert_int_equal(d.reason, DECISION_NONE);
                assert_non_null(strstr(d.why, "optimize: "));
        }
        struct signals s = sample(10.0 * size, 50);
        assert_int_equal(policy_decide(&c.policy, 1, 8, &st, &s, size, BASE + i * USEC_PER_SEC, &d), 0);
        assert_int_equal(d.desired, 8);
        assert_int_equal(d.reason, DECISION_OPTIMIZE);
        assert_int_equal(st.penalty, 0);

        /* A reload starts the seeker over. */
        assert_int_equal(policy_state_reload(&st, c.policy.n_rules), 0);
        assert_int_equal(st.optimize.phase, OPTIMIZE_IDLE);

        policy_state_done(&st);
        config_done(&c);
}

/* The seeker's moves skip cooldown.down and the stabilization window (its
 * probe windows pace it): on a flat curve from 16 consecutive scale-downs
 * come closer together than cooldown.down, and within stabilization.down. */
static void test_limits_bypassed(void **state) {
        struct corral_config c;
        struct policy_state st;
        struct decision d;
        unsigned size = 16, downs = 0;
        usec_t last_change = 0, closest = USEC_INFINITY;
        (void) state;

        config_init(&c);
        assert_int_equal(config_default_policy(&c, true), 0);
        assert_true(c.policy.cooldown_down > (OPTIMIZE_WARMUP + OPTIMIZE_WINDOW) * USEC_PER_SEC);
        assert_int_equal(policy_state_init(&st, c.policy.n_rules), 0);
        for (unsigned i = 0; i < 60; i++) {
                usec_t now = BASE + i * USEC_PER_SEC;
                struct signals s = sample(50, 50);
                assert_int_equal(policy_decide(&c.policy, 1, 32, &st, &s, size, now, &d), 0);
                if (d.desired != size) {
                        if (d.desired < size && last_change && now - last_change < closest)
                                closest = now - last_change;
                        downs += d.desired < size;
                        last_change = now;
                }
                size = d.desired;
        }
        assert_int_equal(size, 1);
        assert_true(downs >= 3);
        assert_true(closest < c.policy.cooldown_down);
        assert_true(last_change - BASE < c.policy.stabilization_down + 20 * USEC_PER_SEC);
        policy_state_done(&st);
        config_done(&c);
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_curves),
                cmocka_unit_test(test_task_series),
                cmocka_unit_test(test_fine_step),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_reasons),
                cmocka_unit_test(test_latency_set_aside),
                cmocka_unit_test(test_cpu_busy),
                cmocka_unit_test(test_room),
                cmocka_unit_test(test_early_leap),
                cmocka_unit_test(test_early_judged),
                cmocka_unit_test(test_rule_overrides),
                cmocka_unit_test(test_limits_bypassed),
        };
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
