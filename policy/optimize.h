/* SPDX-License-Identifier: MIT */
/*
 * policy.optimize (DESIGN.md): a throughput-seeking pool size for batches, in
 * the spirit of the .NET thread pool's hill climbing. While the batch has a
 * backlog it measures the configured signal (tasks.rate: higher is better) at
 * the current size, probes a neighbouring size, keeps whichever wins, and
 * settles once neither neighbour wins. Nobody has to guess `-j`: CPU-bound,
 * I/O-bound and contended tasks each find their own peak.
 *
 * How it searches (one sample per call; the pool follows its advice):
 *   - Measuring: a search begins once a task has completed (a start
 *     measured before any task could end is 0/s, not the size's rate, and
 *     the first completions set tasks.latency). After a size change, samples
 *     are set aside until one whose interval began a task duration
 *     (tasks.latency) after the change: before that, tasks of the old size
 *     were still ending or the new ones not yet. Samples of tasks.rate are
 *     pooled until they span OPTIMIZE_SAMPLE_TASKS completions, so that one
 *     sample is a rate, not a count of 0 or 1 task in 100 ms.
 *     Then the mean and variance of the samples describe the size: at least
 *     OPTIMIZE_WINDOW_MIN of them, OPTIMIZE_WINDOW before a fine probe
 *     (whose difference is near the bias, so it needs a precise base), and
 *     OPTIMIZE_LEAP_WINDOW before a leap (below: its gain, if any, is large).
 *   - Comparing a smaller size S with a larger L, after each probe sample:
 *     L wins only when its mean beats (1 + bias) times S's by more than the
 *     one-sided 99% quantile of Student's t (Welch's test against the biased
 *     mean: strict while few samples are in, so a probe can be judged early
 *     when the difference is large). S wins only when L clearly fails to
 *     beat it by the bias (S is not significantly worse). When nothing is
 *     clear after OPTIMIZE_WINDOW_MAX samples, the base stays: the search
 *     never moves on a doubt, so it never settles below a size it measured
 *     as better (the starting size, the CPU count, is kept when in doubt).
 *   - The early leap: once the first completions give a task's duration
 *     (tasks.latency), n workers can finish at most n / duration tasks a
 *     second (Little's law; checked against the completions seen, which
 *     several lines an invocation would exceed). When the idle CPU allows a
 *     leap, it is taken at once, before the base is measured, and the probe
 *     wins only by beating that bound by the bias, significantly (Student's
 *     t on the probe's samples). When half the workers it added could have
 *     finished a task and those tasks took at most the base's duration /
 *     OPTIMIZE_REGROW_SHARE (the pool scales), it grows again (by the idle
 *     CPU, by at most half the backlog) before the judgement. A leap that does not beat the bound after
 *     OPTIMIZE_WINDOW samples goes back to measure the base, and then
 *     probes half as far, as a lost leap does.
 *   - Moving: a search's first probe up leaps as far as the idle CPU allows
 *     (workers using a tenth of the CPUs could be ten times as many; at most
 *     OPTIMIZE_LEAP_MAX times): tasks that wait reach their size in one move,
 *     and a leap that overshoots is halved back like any lost probe; a leap
 *     that wins leaps again from its size. Other
 *     probes start one fine step away (optimize_fine_step: 1 worker for small
 *     pools, a share of the size for large ones, so that a gain of one step
 *     stays measurable above the bias) and double after each win in the same
 *     direction. A lost probe halves the step; a lost probe of one fine step
 *     marks that side; when both sides are marked (or blocked by a bound) the
 *     size is settled.
 *   - The CPU the pool may use is cpu.busy, or the workers' own pool.cpu
 *     when that is lower and under OPTIMIZE_WAITING_CPU: workers that wait (I/O, slow lines) are not held
 *     back by a machine that neighbours keep busy. Above OPTIMIZE_CPU_BUSY_MAX
 *     (the mean over the size's window) it forbids probing up, unless the
 *     last move was up and won: throughput still rises, so the CPU is being
 *     put to use.
 *   - No probe down from a size whose workers each keep a core busy (pool.cpu
 *     at least OPTIMIZE_FULL_CORE): they do not wait on one another, so fewer
 *     would only leave cores idle (a CPU-bound pool at the CPU count).
 *   - Room: no probe up while mem.available is under OPTIMIZE_MEM_MIN or
 *     psi.memory over OPTIMIZE_PSI_MEMORY_MAX, and never more workers than
 *     the backlog can feed (a probe up goes at most tasks.backlog past the
 *     current size). The hard ceiling of the machine (process, file and
 *     pids limits) comes in as max.
 *   - Settled, it keeps measuring the size in windows. When OPTIMIZE_SHIFT_WINDOWS
 *     windows in a row differ from the settled measurement significantly and
 *     by more than the bias (the task mix changed), it searches again. It also
 *     re-probes its neighbours every OPTIMIZE_REPROBE_WINDOWS windows, which
 *     finds a peak that moved while the rate at the settled size did not.
 *     That look compares with everything measured at the settled size, and
 *     steps on without accelerating after its first win, so that noise costs
 *     one step at most.
 *   - No backlog (tasks.backlog 0 or unavailable): nothing to measure, since
 *     the rate is then bounded by the input, not the pool. It holds the size
 *     and forgets its measurements; the search starts over with the backlog.
 *   - A current size other than the one it asked for (a rule, the operator or
 *     a bound moved the pool) starts a new measurement at that size.
 *
 * Pure: no system calls, no clock reads, no globals, no logging, no
 * allocation. The state is a plain struct (struct policy_state holds one).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"
#include "policy/signals.h"

#define OPTIMIZE_WARMUP 1u              /* samples set aside after a size change, at least */
#define OPTIMIZE_LEAP_WINDOW 2u         /* samples of a base before a leap */
#define OPTIMIZE_WINDOW_MIN 3u          /* samples before a size is compared */
#define OPTIMIZE_WINDOW 5u              /* samples of a base before a fine probe; a settled window */
#define OPTIMIZE_WINDOW_MAX 20u         /* a probe measured this long without a clear winner: the base stays */
#define OPTIMIZE_Z 2.5                  /* standard errors a settled size's shift must clear */
#define OPTIMIZE_LEAP_MAX 8u            /* a search's first probe up multiplies the size by at most this */
/* ... and an early leap, whose workers' CPU is measured and whose backlog
 * bounds it, by at most this: workers that only wait (a stream of slow
 * lines) reach the backlog's size in one move, not in two. */
#define OPTIMIZE_EARLY_LEAP_MAX 64u
#define OPTIMIZE_CPU_BUSY_MAX 95.0      /* %: above it, grow only while throughput still rises */
/* pool.cpu %: workers under it mostly wait (see usable CPU). Low, because
 * CPU-bound workers on a crowded machine also get little of a core each:
 * 2 CPUs shared by 12 runnable tasks give each ~17%. */
#define OPTIMIZE_WAITING_CPU 10.0
#define OPTIMIZE_MEM_MIN 10.0           /* mem.available %: below it, no probe up */
#define OPTIMIZE_PSI_MEMORY_MAX 10.0    /* psi.memory %: above it, no probe up */
#define OPTIMIZE_SHIFT_WINDOWS 3u       /* settled windows in a row that moved before a new search */
#define OPTIMIZE_REPROBE_WINDOWS 40u    /* settled windows between two looks at the neighbours */
#define OPTIMIZE_SAMPLE_TASKS 8.0       /* tasks.rate: completions one sample of a size spans, at least */
/* pool.cpu %: workers over it each keep a core busy, so fewer workers would
 * leave cores idle: no probe down (a CPU-bound pool at the CPU count). */
#define OPTIMIZE_FULL_CORE 90.0
/* An early leap grows again before its judgement when its first tasks took
 * at most the base's duration / this (each worker finishes this share of a
 * base worker's rate, or more). */
#define OPTIMIZE_REGROW_SHARE 0.75
/* pool.cpu %: on a saturated machine (cpu.busy over OPTIMIZE_CPU_BUSY_MAX),
 * an early leap asks for workers under it (see optimize.c, early_leap). */
#define OPTIMIZE_EARLY_WAITING_CPU 2.0

#define OPTIMIZE_WHY_MAX 160

enum optimize_phase {
        OPTIMIZE_IDLE,          /* no backlog (or never ran): nothing measured */
        OPTIMIZE_MEASURE,       /* measuring the base size */
        OPTIMIZE_PROBE,         /* measuring a neighbour against the base */
        OPTIMIZE_SETTLED,       /* at the best size found, watching for a shift */
        _OPTIMIZE_PHASE_MAX,
};

/* Mean and variance of one size's samples (Welford), the mean CPU the pool
 * may use (see above) and the workers' own mean pool.cpu. */
struct optimize_stats {
        unsigned n;
        double mean, m2;
        double cpu_sum;
        unsigned cpu_n;
        double core_sum;
        unsigned core_n;
};

/* tasks.rate samples being pooled into one: 100 ms samples of a few tasks a
 * second are each 0 or 10/s, whose spread hides a doubling. */
struct optimize_pool {
        double tasks, seconds;
        double cpu_sum;
        unsigned cpu_n;
        double core_sum;
        unsigned core_n;
};

/* What the controller remembers. Zeroed (optimize_reset) it is IDLE. Fields
 * are read-only for callers (/status). */
struct optimize_state {
        enum optimize_phase phase;
        unsigned base;                  /* the size that won so far */
        unsigned probe;                 /* PROBE: the size measured against base */
        struct optimize_stats base_stats, probe_stats;
        struct optimize_stats ref;      /* SETTLED: base's measurement when it settled, and every
                                         * window since that did not shift */
        struct optimize_stats watch;    /* SETTLED: the window being measured now */
        struct optimize_stats shifted;  /* SETTLED: the windows in a row that shifted */
        unsigned step;                  /* workers between base and the next probe */
        int dir;                        /* +1 probing up, -1 probing down */
        bool up_lost, down_lost;        /* base beat its neighbour one fine step up / down */
        bool rising;                    /* the last move was up and won */
        bool cautious;                  /* a look at a settled size's neighbours: no acceleration yet */
        bool leap;                      /* the next probe up may leap by the idle CPU */
        bool leapt;                     /* PROBE: this probe is a leap (a win leaps again) */
        double bound;                   /* PROBE of an early leap: the most the unmeasured base
                                         * can finish a second (base / task duration); 0: none */
        double seen_tasks, seen_seconds; /* completions and time since the size last changed */
        double seen_latency;            /* ... and the sum of those completions' durations */
        usec_t changed;                 /* when the size last changed (or the search began) */
        bool completed;                 /* a task completed since the search began: the latency is known */
        struct optimize_pool pool;      /* tasks.rate samples not yet making one sample */
        usec_t last;                    /* the previous sample's time */
        double latency;                 /* recent mean task duration, seconds (0: unknown) */
        unsigned shifts;                /* SETTLED: windows in a row that moved */
        unsigned windows;               /* SETTLED: windows since it settled or re-probed */
        usec_t since;                   /* when the phase began */
        unsigned searches;              /* searches begun since reset (a shift or a re-probe begins one) */
        double backlog;                 /* tasks.backlog at the last sample */
        bool no_room;                   /* memory short at the last sample: no probe up */
};

struct optimize_params {
        enum signal_id signal;          /* what to maximise (tasks.rate) */
        double bias;                    /* %: a larger pool must beat a smaller one by this much */
        unsigned min, max;              /* the pool's bounds; it never recommends below 1 */
};

struct optimize_advice {
        unsigned size;                  /* the recommended size, within the bounds */
        char why[OPTIMIZE_WHY_MAX];     /* one line for the log and /status, e.g.
                                         * "optimize: 3 workers 41.2/s beat 2 workers 30.1/s by 37%" */
};

/* Forgets everything: the next sample with a backlog starts a new search. Cannot fail. */
void optimize_reset(struct optimize_state *st);

/*
 * Takes one sample (s) at the current size (the size the pool is heading for)
 * and time now, and advises a size. Returns 0 and fills *ret, or -EINVAL for
 * bad params (min > max, max 0, an invalid signal, a negative bias; st and
 * *ret untouched). Does not allocate.
 */
int optimize_step(struct optimize_state *st, const struct optimize_params *p, const struct signals *s,
                  unsigned current, usec_t now, struct optimize_advice *ret);

/* The smallest move worth measuring at size: max(1, ceil(size * 2 * bias)),
 * so that on a linear curve one step gains at least twice the bias (a step of
 * one worker at 30 workers gains 3%, which a 5% bias would always refuse). */
unsigned optimize_fine_step(unsigned size, double bias);

/* "idle", "measure", "probe", "settled"; NULL for an invalid value. */
const char *optimize_phase_to_string(enum optimize_phase phase);
