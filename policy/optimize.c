/* SPDX-License-Identifier: MIT */
/*
 * The throughput seeker (see optimize.h for how it searches): one entry
 * point, optimize_step(), a small state machine over the measurements of
 * optimize_stats.h, the early leap on Little's bound, and the choice of the
 * next probe.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "policy/optimize.h"
#include "policy/optimize_stats.h"

/* ---- the CPU (the measurements are policy/optimize_stats.c) ---- */

/* How busy the CPU is for the pool, %: cpu.busy, or the workers' own
 * pool.cpu (mean per worker, % of one core) when lower and under
 * OPTIMIZE_WAITING_CPU (workers mostly waiting). Workers that wait
 * use little of a core whatever the neighbours do: a busy machine does not
 * limit them, and a few % each leaves room for many more. NAN if unknown. */
static double usable_cpu(const struct signals *s) {
        double busy = signals_has(s, SIGNAL_CPU_BUSY) ? s->value[SIGNAL_CPU_BUSY] : NAN;
        double pool = signals_has(s, SIGNAL_POOL_CPU) ? s->value[SIGNAL_POOL_CPU] : NAN;
        if (isfinite(pool) && pool >= 0 && pool < OPTIMIZE_WAITING_CPU && !(busy <= pool))
                return pool;
        return isfinite(busy) ? busy : NAN;
}

/* usable_cpu() for a move made before its base is measured (the early leap
 * and its growing again): with no measurement to fall back on, a saturated
 * machine asks for workers that barely use the CPU, since CPU-bound workers
 * starved by a crowded machine also show little of a core (2 CPUs shared by
 * 15 runnable tasks give each 13%), but rarely that little. NAN: no such move. */
static double early_cpu(const struct signals *s) {
        if (signals_has(s, SIGNAL_CPU_BUSY) && s->value[SIGNAL_CPU_BUSY] > OPTIMIZE_CPU_BUSY_MAX &&
            !(signals_has(s, SIGNAL_POOL_CPU) && s->value[SIGNAL_POOL_CPU] < OPTIMIZE_EARLY_WAITING_CPU))
                return NAN;
        return usable_cpu(s);
}

/* ---- text ---- */

/* "1 worker", "2 workers": the noun for a count in the messages. */
static const char *workers(unsigned n) {
        return n == 1 ? "worker" : "workers";
}

static void say(struct optimize_advice *ret, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void say(struct optimize_advice *ret, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        vsnprintf(ret->why, sizeof(ret->why), format, ap);     /* a truncated log line is fine */
        va_end(ap);
}

/* "41.2/s" for tasks.rate, "63.0%" for a percent signal, else the number. */
static const char *fmt_rate(const struct optimize_params *p, double v, char buf[static 32]) {
        const char *unit = p->signal == SIGNAL_TASKS_RATE ? "/s" : signal_is_percent(p->signal) ? "%" : "";
        snprintf(buf, 32, "%.1f%s", v, unit);
        return buf;
}

/* "by 37%": the larger's gain over the smaller. */
static double gain_percent(double larger, double smaller) {
        return smaller > 0 ? (larger / smaller - 1.0) * 100.0 : 0.0;
}

/* ---- the search ---- */

static unsigned lower_bound(const struct optimize_params *p) {
        return p->min > 1 ? p->min : 1;  /* no throughput to measure at 0 workers */
}

static unsigned distance(unsigned a, unsigned b) {
        return a > b ? a - b : b - a;
}

/* Starts a search from base, whose measurement is *stats (NULL: measure it first). */
static void search_begin(struct optimize_state *st, const struct optimize_params *p, unsigned base,
                         const struct optimize_stats *stats, usec_t now) {
        st->phase = OPTIMIZE_MEASURE;
        st->base = base;
        st->base_stats = stats ? *stats : (struct optimize_stats) {};
        st->probe_stats = (struct optimize_stats) {};
        st->dir = +1;
        st->step = optimize_fine_step(base, p->bias);
        st->up_lost = st->down_lost = false;
        st->rising = false;
        st->cautious = false;
        st->leap = true;
        st->leapt = false;
        st->bound = 0;
        st->seen_tasks = st->seen_seconds = st->seen_latency = 0;
        st->since = now;
        st->searches++;
}

/* The step of a leap up from base at a usable CPU of busy %: as far as the
 * idle CPU allows: a pool using a quarter of the CPUs (or workers using a
 * quarter of a core each) could be four times as large before the CPU
 * limits it. 0 when busy is unknown. */
static unsigned leap_step_at(unsigned base, double busy, double most) {
        if (!isfinite(busy))
                return 0;
        double factor = busy > 0 ? OPTIMIZE_CPU_BUSY_MAX / busy : most;
        if (factor > most)
                factor = most;
        return factor > 1.0 ? (unsigned) ceil(base * (factor - 1.0) - 1e-9) : 0;
}

static unsigned leap_step(const struct optimize_state *st) {
        const struct optimize_stats *b = &st->base_stats;
        return b->cpu_n ? leap_step_at(st->base, b->cpu_sum / b->cpu_n, OPTIMIZE_LEAP_MAX) : 0;
}

/* The size step workers above base, or fewer where the backlog cannot feed
 * them or max forbids. */
static unsigned up_from(unsigned base, unsigned step, double backlog, const struct optimize_params *p) {
        unsigned feed = backlog < (double) (p->max - base) ? base + (unsigned) backlog : p->max;
        return step >= feed - base ? feed : base + step;
}

/* Chooses the next probe from base: true with st->probe set, false when
 * neither side is left to try (settled). */
static bool pick_probe(struct optimize_state *st, const struct optimize_params *p) {
        unsigned lo = lower_bound(p), fine = optimize_fine_step(st->base, p->bias);
        bool up_ok = st->base < p->max && !st->up_lost && (!optimize_stats_cpu_busy(&st->base_stats) || st->rising) &&
                     !st->no_room && st->backlog >= 1;
        bool down_ok = st->base > lo && !st->down_lost && !optimize_stats_full_cores(&st->base_stats);

        if (st->dir > 0 && !up_ok) {
                st->dir = -1;
                st->step = fine;
        } else if (st->dir < 0 && !down_ok) {
                st->dir = +1;
                st->step = fine;
        }
        if (st->dir > 0 ? !up_ok : !down_ok)
                return false;
        if (st->step < fine)
                st->step = fine;
        st->leapt = st->dir > 0 && st->leap && leap_step(st) > st->step;
        if (st->leapt)
                st->step = leap_step(st);
        if (st->dir > 0)
                st->probe = up_from(st->base, st->step, st->backlog, p);     /* never more than it can feed */
        else
                st->probe = st->step >= st->base - lo ? lo : st->base - st->step;
        return true;
}

static void enter_settled(struct optimize_state *st, usec_t now) {
        st->phase = OPTIMIZE_SETTLED;
        st->ref = st->base_stats;
        st->watch = st->shifted = (struct optimize_stats) {};
        st->shifts = 0;
        st->windows = 0;
        st->since = now;
}

/* Samples of the base before the chosen probe. A fine probe's difference is
 * near the bias: it needs a precise base. A leap's gain, if any, is large:
 * the base is only its yardstick. */
static unsigned base_samples_needed(const struct optimize_state *st, const struct optimize_params *p) {
        unsigned d = distance(st->probe, st->base);
        if (d <= optimize_fine_step(st->base, p->bias))
                return OPTIMIZE_WINDOW;
        return st->leap && st->probe > st->base ? OPTIMIZE_LEAP_WINDOW : OPTIMIZE_WINDOW_MIN;
}

/* After a sample of the base or a winning probe's window: the next probe, or
 * more samples of the base first, or settled. */
static unsigned next_move(struct optimize_state *st, const struct optimize_params *p, usec_t now,
                          struct optimize_advice *ret) {
        size_t len = 0;
        while (len < sizeof(ret->why) && ret->why[len])
                len++;
        char *tail = ret->why + len;
        size_t room = sizeof(ret->why) - len;
        const char *sep = len ? "; " : "optimize: ";
        char a[32];

        if (pick_probe(st, p)) {
                unsigned need = base_samples_needed(st, p);
                if (st->base_stats.n < need) {
                        st->phase = OPTIMIZE_MEASURE;
                        snprintf(tail, room, "%s%u of %u samples before probing %u", sep, st->base_stats.n, need,
                                 st->probe);
                        return st->base;
                }
                st->phase = OPTIMIZE_PROBE;
                st->leap = false;
                st->probe_stats = (struct optimize_stats) {};
                st->since = now;
                snprintf(tail, room, "%sprobing %u", sep, st->probe);
                if (st->probe > st->base && optimize_stats_cpu_busy(&st->base_stats))
                        snprintf(tail, room, "%sprobing %u (cpu.busy over %.0f%%, but throughput still rises)", sep,
                                 st->probe, OPTIMIZE_CPU_BUSY_MAX);
                return st->probe;
        }
        enter_settled(st, now);
        snprintf(tail, room, "%ssettled at %u %s, %s%s", sep, st->base, workers(st->base),
                 fmt_rate(p, st->base_stats.mean, a),
                 st->base < p->max && !st->up_lost && optimize_stats_cpu_busy(&st->base_stats)
                         ? " (cpu.busy high, not growing)" : "");
        return st->base;
}

/* A probe's window is complete: who won? False while that is unclear (the
 * probe is measured longer); else true with the size to head for in *size. */
static bool judge(struct optimize_state *st, const struct optimize_params *p, usec_t now,
                  struct optimize_advice *ret, unsigned *size) {
        bool up = st->probe > st->base;
        const struct optimize_stats *large = up ? &st->probe_stats : &st->base_stats;
        const struct optimize_stats *small = up ? &st->base_stats : &st->probe_stats;
        unsigned nl = up ? st->probe : st->base, ns = up ? st->base : st->probe;
        int v = optimize_significant(large, small, 1.0 + p->bias / 100.0);
        char a[32], b[32];

        if (v == 0 && st->probe_stats.n < OPTIMIZE_WINDOW_MAX)
                return false;

        /* The larger size wins only by beating the bias clearly, the
         * smaller only when the larger clearly does not: an unclear outcome
         * at the window's end keeps the base, so that the search never
         * moves (least of all down) on a doubt. */
        bool probe_wins = v != 0 && (v > 0) == up;
        fmt_rate(p, large->mean, a);
        fmt_rate(p, small->mean, b);
        if (v > 0)
                say(ret, "optimize: %u %s %s beat %u %s %s by %.0f%%", nl, workers(nl), a, ns, workers(ns), b,
                    gain_percent(large->mean, small->mean));
        else if (v < 0)
                say(ret, "optimize: %u %s %s not %g%% better than %u %s %s", nl, workers(nl), a, p->bias, ns,
                    workers(ns), b);
        else
                say(ret, "optimize: %u %s %s against %u %s %s unclear after %u samples; keeping %u", nl,
                    workers(nl), a, ns, workers(ns), b, st->probe_stats.n, st->base);

        unsigned dist = distance(st->probe, st->base);
        if (probe_wins) {
                /* The probe won: it is the new base, already measured. Its
                 * neighbour on the side we came from just lost to it. */
                st->base = st->probe;
                st->base_stats = st->probe_stats;
                st->up_lost = !up && dist <= optimize_fine_step(st->base, p->bias);
                st->down_lost = up && dist <= optimize_fine_step(st->base, p->bias);
                st->rising = up;
                /* Accelerate while it keeps winning; a look at the neighbours
                 * of a settled size waits for a second win (the first may be
                 * noise, and one step off the peak is all it may cost). A
                 * leap that won may leap again by the CPU still idle. */
                st->step = st->cautious ? dist : dist * 2;
                st->leap = up && st->leapt;
                st->cautious = false;
        } else {
                /* The probe lost: look closer, or mark that side. The probe
                 * that lost does not make base's measurement stale enough to
                 * measure it again: a shift is caught once settled. */
                if (up)
                        st->rising = false;
                st->leapt = false;
                if (dist <= optimize_fine_step(st->base, p->bias)) {
                        if (up)
                                st->up_lost = true;
                        else
                                st->down_lost = true;
                } else
                        st->step = dist / 2;
        }
        *size = next_move(st, p, now, ret);
        return true;
}

/* An early leap's window: did the probe beat the most the unmeasured base
 * can do (st->bound) by the bias, clearly? Then it is the new base, and
 * leaps again if the CPU allows. If it clearly did not, or nothing is clear
 * after OPTIMIZE_WINDOW samples, the base is measured after all and the
 * leap counts as lost (the next probe goes half as far). False while
 * unclear, else true with the size to head for in *size. */
static bool judge_bound(struct optimize_state *st, const struct optimize_params *p, usec_t now,
                        struct optimize_advice *ret, unsigned *size) {
        double most = st->bound * (1.0 + p->bias / 100.0);
        int v = optimize_beyond(&st->probe_stats, most);
        unsigned dist = st->probe - st->base;
        char a[32], b[32];

        if (v == 0 && st->probe_stats.n < OPTIMIZE_WINDOW)
                return false;
        fmt_rate(p, st->probe_stats.mean, a);
        fmt_rate(p, st->bound, b);
        if (v > 0) {
                say(ret, "optimize: %u %s %s beat the most %u %s can do (%s at %.2f s a task) by %.0f%%", st->probe,
                    workers(st->probe), a, st->base, workers(st->base), b, st->base / st->bound,
                    gain_percent(st->probe_stats.mean, st->bound));
                st->base = st->probe;
                st->base_stats = st->probe_stats;
                st->rising = true;
                st->leap = true;
                st->step = dist * 2;
        } else {
                say(ret, "optimize: %u %s %s not clearly above the most %u %s can do (%s); measuring %u", st->probe,
                    workers(st->probe), a, st->base, workers(st->base), b, st->base);
                st->step = dist / 2;
                st->base_stats = (struct optimize_stats) {};
        }
        st->leapt = false;
        st->bound = 0;
        *size = next_move(st, p, now, ret);
        return true;
}

/*
 * An early leap's first completions: once half of the workers it added could
 * have finished a task (over what the base's own last tasks add), and those
 * tasks took at most 1 / OPTIMIZE_REGROW_SHARE times the base's duration
 * (each worker finishes nearly a base worker's share: the pool scales), the
 * CPU left idle allows another leap and the backlog holds twice the workers
 * it would add, the pool grows again before the judgement, which then
 * compares the larger size with the same bound. The completions count from
 * the first interval after the change, before the set-aside samples are
 * over: this is a move, not a judgement. A backlog of slow tasks reaches its
 * size in a few samples, and the search goes down from there if a smaller
 * size does as well. True with the new probe in ret.
 */
static bool regrow(struct optimize_state *st, const struct optimize_params *p, const struct signals *s,
                   usec_t now, struct optimize_advice *ret) {
        double cpu = early_cpu(s);
        unsigned fine = optimize_fine_step(st->probe, p->bias), step = leap_step_at(st->probe, cpu, OPTIMIZE_LEAP_MAX);

        if (st->phase != OPTIMIZE_PROBE || !(st->bound > 0) || st->probe_stats.n > 1 ||
            st->seen_tasks < st->base + (st->probe - st->base) / 2.0 || !(st->seen_latency > 0))
                return false;
        double took = st->seen_latency / st->seen_tasks, base_took = st->base / st->bound;
        if (!(took * OPTIMIZE_REGROW_SHARE <= base_took) || !(cpu <= OPTIMIZE_CPU_BUSY_MAX) || st->no_room ||
            step <= fine)
                return false;
        unsigned next = up_from(st->probe, step, st->backlog / 2, p);
        if (next - st->probe <= fine)
                return false;
        say(ret, "optimize: %u %s' first %.0f tasks took %.2f s (%u %s: %.2f s); growing to %u before judging",
            st->probe, workers(st->probe), st->seen_tasks, took, st->base, workers(st->base), base_took, next);
        st->probe = next;
        st->step = next - st->base;
        st->probe_stats = (struct optimize_stats) {};
        st->since = now;
        ret->size = next;
        return true;
}

/*
 * The first completions give a task's duration: n workers, each running one
 * task at a time, finish at most n / duration tasks a second, whatever their
 * samples would say. When the CPU left idle allows a leap (see leap_step_at),
 * the search takes it at once against that bound, instead of after
 * OPTIMIZE_LEAP_WINDOW pooled samples of the base: slow tasks give a small
 * pool a sample a second, and a backlog of them waited seconds at the
 * starting size. True with the probe in ret.
 */
static bool early_leap(struct optimize_state *st, const struct optimize_params *p, const struct signals *s,
                       usec_t now, struct optimize_advice *ret) {
        double cpu = early_cpu(s);
        unsigned fine = optimize_fine_step(st->base, p->bias), step = leap_step_at(st->base, cpu, OPTIMIZE_EARLY_LEAP_MAX);
        char a[32];

        if (st->phase != OPTIMIZE_MEASURE || !st->leap || st->dir < 0 || st->base_stats.n > 0 || !(st->latency > 0) ||
            !(cpu <= OPTIMIZE_CPU_BUSY_MAX) || st->base >= p->max || st->no_room || !(st->backlog >= 1) ||
            step <= fine)
                return false;
        /* Little's law: n workers finish at most n per task duration, plus
         * the n they were running. More completions than that, and a
         * completion is not one task's duration (several lines an
         * invocation): no bound. */
        if (st->seen_tasks > st->base * (st->seen_seconds / st->latency + 1.0))
                return false;
        st->probe = up_from(st->base, step, st->backlog, p);
        if (st->probe - st->base <= fine)
                return false;
        st->phase = OPTIMIZE_PROBE;
        st->bound = st->base / st->latency;
        st->leap = false;
        st->leapt = true;
        st->step = st->probe - st->base;
        st->probe_stats = (struct optimize_stats) {};
        st->since = now;
        say(ret, "optimize: %u %s at %.2f s a task finish %s at most, CPU %.0f%% busy; probing %u", st->base,
            workers(st->base), st->latency, fmt_rate(p, st->bound, a), cpu, st->probe);
        ret->size = st->probe;
        return true;
}

/* Settled: one more sample of the settled size. */
static unsigned watch(struct optimize_state *st, const struct optimize_params *p, usec_t now,
                      struct optimize_advice *ret) {
        char a[32], b[32];

        if (st->watch.n < OPTIMIZE_WINDOW) {
                say(ret, "optimize: settled at %u %s, %s (now %s)", st->base, workers(st->base),
                    fmt_rate(p, st->ref.mean, a), fmt_rate(p, st->watch.mean, b));
                return st->base;
        }
        /* A shift: significant, and larger than the bias (smaller changes
         * cannot change which size wins by much). */
        double change = st->ref.mean != 0 ? fabs(st->watch.mean / st->ref.mean - 1.0) * 100.0 : 0.0;
        bool moved = optimize_shifted(&st->watch, &st->ref) != 0 && change > p->bias;
        struct optimize_stats fresh = st->watch;
        st->watch = (struct optimize_stats) {};
        st->windows++;
        if (moved) {
                st->shifts++;
                optimize_stats_merge(&st->shifted, &fresh);
        } else {
                /* One more window of the same: the reference only gets more
                 * precise, which makes the next look at the neighbours sharper. */
                st->shifts = 0;
                st->shifted = (struct optimize_stats) {};
                optimize_stats_merge(&st->ref, &fresh);
        }

        if (st->shifts >= OPTIMIZE_SHIFT_WINDOWS) {
                /* The last window only: the first that shifted may straddle
                 * the change, and a base that mixes two rates is too wide
                 * to tell any probe from it. */
                struct optimize_stats now_stats = fresh;
                say(ret, "optimize: %u %s now %s, was %s: searching again", st->base, workers(st->base),
                    fmt_rate(p, now_stats.mean, a), fmt_rate(p, st->ref.mean, b));
                search_begin(st, p, st->base, &now_stats, now);
                return next_move(st, p, now, ret);
        }
        if (st->windows >= OPTIMIZE_REPROBE_WINDOWS) {
                struct optimize_stats ref = st->ref;
                say(ret, "optimize: settled at %u %s, %s: looking at the neighbours", st->base, workers(st->base),
                    fmt_rate(p, ref.mean, a));
                search_begin(st, p, st->base, &ref, now);
                st->cautious = true;
                st->leap = false;
                return next_move(st, p, now, ret);
        }
        say(ret, "optimize: settled at %u %s, %s (now %s%s)", st->base, workers(st->base), fmt_rate(p, st->ref.mean, a),
            fmt_rate(p, fresh.mean, b), moved ? ", shifted" : "");
        return st->base;
}

/* The size the pool should be at, by the state. */
static unsigned expected(const struct optimize_state *st) {
        return st->phase == OPTIMIZE_PROBE ? st->probe : st->base;
}

/* One valid sample at the expected size: the dispatcher of the phases. */
static unsigned take(struct optimize_state *st, const struct optimize_params *p, double v, double cpu,
                     double core, usec_t now, struct optimize_advice *ret) {
        char a[32], b[32];

        switch (st->phase) {
        case OPTIMIZE_MEASURE:
                optimize_stats_add(&st->base_stats, v, cpu, core);
                say(ret, "optimize: %u %s %s", st->base, workers(st->base), fmt_rate(p, st->base_stats.mean, a));
                return next_move(st, p, now, ret);
        case OPTIMIZE_PROBE:
                optimize_stats_add(&st->probe_stats, v, cpu, core);
                unsigned size;
                if (st->probe_stats.n >= OPTIMIZE_WINDOW_MIN &&
                    (st->bound > 0 ? judge_bound(st, p, now, ret, &size) : judge(st, p, now, ret, &size)))
                        return size;
                say(ret, "optimize: probing %u %s against %u (%s%s), %u samples, %s", st->probe, workers(st->probe),
                    st->base, st->bound > 0 ? "at most " : "",
                    fmt_rate(p, st->bound > 0 ? st->bound : st->base_stats.mean, a), st->probe_stats.n,
                    fmt_rate(p, st->probe_stats.mean, b));
                return st->probe;
        case OPTIMIZE_SETTLED:
                optimize_stats_add(&st->watch, v, cpu, core);
                return watch(st, p, now, ret);
        default:
                return st->base;        /* IDLE is left before a sample is taken */
        }
}

/* Pools a tasks.rate sample over seconds into st->pool: true with the pooled
 * rate, usable CPU and pool.cpu once it spans OPTIMIZE_SAMPLE_TASKS
 * completions. Other signals are not counts: each sample is one. */
static bool pool_sample(struct optimize_state *st, const struct optimize_params *p, const struct signals *s,
                        double seconds, double *v, double *cpu, double *core) {
        *v = s->value[p->signal];
        *cpu = usable_cpu(s);
        *core = signals_has(s, SIGNAL_POOL_CPU) ? s->value[SIGNAL_POOL_CPU] : NAN;
        if (p->signal != SIGNAL_TASKS_RATE || !(seconds > 0))
                return true;
        st->pool.tasks += *v * seconds;
        st->pool.seconds += seconds;
        if (isfinite(*cpu)) {
                st->pool.cpu_sum += *cpu;
                st->pool.cpu_n++;
        }
        if (isfinite(*core)) {
                st->pool.core_sum += *core;
                st->pool.core_n++;
        }
        if (st->pool.tasks < OPTIMIZE_SAMPLE_TASKS - 1e-9)
                return false;
        *v = st->pool.tasks / st->pool.seconds;
        *cpu = st->pool.cpu_n ? st->pool.cpu_sum / st->pool.cpu_n : NAN;
        *core = st->pool.core_n ? st->pool.core_sum / st->pool.core_n : NAN;
        st->pool = (struct optimize_pool) {};
        return true;
}

/* The size changes now: what was pooled or counted was of the old size. */
static void moved(struct optimize_state *st, usec_t now) {
        st->changed = now;
        st->pool = (struct optimize_pool) {};
        st->seen_tasks = st->seen_seconds = st->seen_latency = 0;
}

/* ---- the entry points ---- */

void optimize_reset(struct optimize_state *st) {
        *st = (struct optimize_state) {};
}

unsigned optimize_fine_step(unsigned size, double bias) {
        /* The epsilon keeps 10 workers at 5% a step of 1, not 2 by rounding. */
        double x = ceil((double) size * 2.0 * bias / 100.0 - 1e-9);
        if (!(x > 1.0))
                return 1;
        return x < (double) size ? (unsigned) x : size;     /* never more than the size itself */
}

int optimize_step(struct optimize_state *st, const struct optimize_params *p, const struct signals *s,
                  unsigned current, usec_t now, struct optimize_advice *ret) {
        if (!st || !p || !s || !ret || p->min > p->max || p->max == 0 || !signal_name(p->signal) ||
            !(p->bias >= 0))
                return -EINVAL;

        struct optimize_advice adv = { .size = current };
        usec_t prev = st->last;
        char a[32];

        st->last = now;
        bool completions = signals_has(s, SIGNAL_TASKS_RATE) && s->value[SIGNAL_TASKS_RATE] > 0;
        if (signals_has(s, SIGNAL_TASKS_LATENCY) && s->value[SIGNAL_TASKS_LATENCY] >= 0 &&
            isfinite(s->value[SIGNAL_TASKS_LATENCY])) {
                double v = s->value[SIGNAL_TASKS_LATENCY];
                st->latency = st->latency > 0 ? (st->latency + v) / 2 : v;
                completions = true;
        }

        st->backlog = signals_has(s, SIGNAL_TASKS_BACKLOG) ? s->value[SIGNAL_TASKS_BACKLOG] : 0;
        st->no_room = (signals_has(s, SIGNAL_MEM_AVAILABLE) && s->value[SIGNAL_MEM_AVAILABLE] < OPTIMIZE_MEM_MIN) ||
                      (signals_has(s, SIGNAL_PSI_MEMORY) && s->value[SIGNAL_PSI_MEMORY] > OPTIMIZE_PSI_MEMORY_MAX);
        /* No backlog: the rate is the input's, not the pool's. */
        if (!signals_has(s, SIGNAL_TASKS_BACKLOG) || !(s->value[SIGNAL_TASKS_BACKLOG] > 0)) {
                if (st->phase != OPTIMIZE_IDLE) {
                        struct optimize_state keep = *st;
                        optimize_reset(st);
                        st->searches = keep.searches;
                        st->last = keep.last;
                        st->latency = keep.latency;
                        st->since = now;
                }
                say(&adv, "optimize: no backlog, holding %u %s", current, workers(current));
                *ret = adv;
                return 0;
        }
        if (!signals_has(s, p->signal) || !isfinite(s->value[p->signal])) {
                say(&adv, "optimize: %s unavailable, holding %u %s", signal_name(p->signal), current,
                    workers(current));
                *ret = adv;
                return 0;
        }

        /* Measurements are of the size the state expects; anything else (a
         * rule, the operator or a bound moved the pool) starts over there.
         * This sample straddles that change; the next one counts. */
        bool begun = st->phase == OPTIMIZE_IDLE || current != expected(st);
        if (begun) {
                search_begin(st, p, current, NULL, now);
                /* The pool was at this size before this sample: the next
                 * one's interval is clean, if no task is longer. */
                st->changed = now > 0 ? now - 1 : 0;
                st->completed = false;
                st->pool = (struct optimize_pool) {};
        }
        /* The new size shows once the tasks running at the change have had a
         * task's duration to end (at least the next sample, whose interval
         * begins at the change, is set aside). Until a task completed, that
         * duration is unknown and the rate 0/s says nothing of the size. */
        if (!begun && p->signal == SIGNAL_TASKS_RATE && now > prev && prev >= st->changed) {
                double seconds = (double) (now - prev) / USEC_PER_SEC;
                double n = s->value[SIGNAL_TASKS_RATE] * seconds;
                st->seen_tasks += n;
                st->seen_seconds += seconds;
                if (n > 0 && signals_has(s, SIGNAL_TASKS_LATENCY) && s->value[SIGNAL_TASKS_LATENCY] > 0)
                        st->seen_latency += n * s->value[SIGNAL_TASKS_LATENCY];
        }
        usec_t settle = (usec_t) (st->latency * USEC_PER_SEC);
        bool clean = st->completed && prev >= st->changed + (settle > 0 ? settle : 1);
        st->completed |= completions;
        /* A leap needs the task's duration, not a clean rate of the base. */
        if (!begun && st->completed && (early_leap(st, p, s, now, &adv) || regrow(st, p, s, now, &adv))) {
                moved(st, now);
                *ret = adv;
                return 0;
        }
        if (begun || !clean) {
                say(&adv, "optimize: %u %s starting, %s %s set aside%s", current, workers(current),
                    signal_name(p->signal), fmt_rate(p, s->value[p->signal], a),
                    st->completed ? "" : " (no task completed yet)");
                *ret = adv;
                return 0;
        }

        double v, cpu, core;
        if (!pool_sample(st, p, s, (double) (now - prev) / USEC_PER_SEC, &v, &cpu, &core)) {
                say(&adv, "optimize: %u %s, %.0f of %.0f tasks of a sample", current, workers(current), st->pool.tasks,
                    OPTIMIZE_SAMPLE_TASKS);
                *ret = adv;
                return 0;
        }
        adv.size = take(st, p, v, cpu, core, now, &adv);
        if (adv.size != current)
                moved(st, now);
        *ret = adv;
        return 0;
}

const char *optimize_phase_to_string(enum optimize_phase phase) {
        static const char *const names[_OPTIMIZE_PHASE_MAX] = {
                [OPTIMIZE_IDLE] = "idle",
                [OPTIMIZE_MEASURE] = "measure",
                [OPTIMIZE_PROBE] = "probe",
                [OPTIMIZE_SETTLED] = "settled",
        };
        if ((int) phase < 0 || phase >= _OPTIMIZE_PHASE_MAX)
                return NULL;
        return names[phase];
}
