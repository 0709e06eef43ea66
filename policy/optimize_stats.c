/* SPDX-License-Identifier: MIT */
/*
 * The seeker's measurements (policy/optimize_stats.h): one size's running
 * mean and variance, and the tests that compare two sizes, a size with a
 * bound, or a settled size with its past.
 */
#include <math.h>
#include <stddef.h>

#include "policy/optimize_stats.h"

/* cpu: the sample's CPU the pool may use (usable_cpu()), core: its pool.cpu;
 * NAN if unknown. */
void optimize_stats_add(struct optimize_stats *x, double v, double cpu, double core) {
        double d = v - x->mean;

        /* Welford: stable for the long settled windows, no array of samples. */
        x->n++;
        x->mean += d / x->n;
        x->m2 += d * (v - x->mean);
        if (isfinite(cpu)) {
                x->cpu_sum += cpu;
                x->cpu_n++;
        }
        if (isfinite(core)) {
                x->core_sum += core;
                x->core_n++;
        }
}

/* Adds b's samples to a (Chan et al.'s pairwise update). */
void optimize_stats_merge(struct optimize_stats *a, const struct optimize_stats *b) {
        unsigned n = a->n + b->n;
        if (b->n == 0)
                return;
        double d = b->mean - a->mean;
        a->mean += d * b->n / n;
        a->m2 += b->m2 + d * d * a->n * b->n / n;
        a->n = n;
        a->cpu_sum += b->cpu_sum;
        a->cpu_n += b->cpu_n;
        a->core_sum += b->core_sum;
        a->core_n += b->core_n;
}

/* The variance of the mean: s^2 / n (0 until two samples). */
static double stats_var_mean(const struct optimize_stats *x) {
        return x->n >= 2 ? x->m2 / (x->n - 1) / x->n : 0.0;
}

bool optimize_stats_cpu_busy(const struct optimize_stats *x) {
        return x->cpu_n > 0 && x->cpu_sum / x->cpu_n > OPTIMIZE_CPU_BUSY_MAX;
}

/* Each worker keeps a core busy: they are not waiting on one another (a
 * lock, a disk), so fewer workers would only leave cores idle. */
bool optimize_stats_full_cores(const struct optimize_stats *x) {
        return x->core_n > 0 && x->core_sum / x->core_n >= OPTIMIZE_FULL_CORE;
}

/* The one-sided 99% quantile of Student's t with df degrees of freedom: a
 * window of three samples knows its spread poorly, and is asked for a much
 * larger difference than one of twenty. */
static double t_quantile(double df) {
        static const struct { double df, t; } table[] = {
                { 1, 31.821 }, { 2, 6.965 }, { 3, 4.541 }, { 4, 3.747 }, { 5, 3.365 }, { 6, 3.143 },
                { 8, 2.896 }, { 10, 2.764 }, { 15, 2.602 }, { 20, 2.528 }, { 30, 2.457 }, { 60, 2.390 },
        };
        if (!(df > table[0].df))
                return table[0].t;
        for (size_t i = 1; i < sizeof(table) / sizeof(table[0]); i++)
                if (df <= table[i].df) {
                        /* linear between the rows: close enough for a threshold */
                        double f = (df - table[i - 1].df) / (table[i].df - table[i - 1].df);
                        return table[i - 1].t + f * (table[i].t - table[i - 1].t);
                }
        return 2.326;
}

/* Is a - k * b beyond the t quantile of its standard error (Welch's test)?
 * +1 above, -1 below, 0 unclear. The error has a floor of 0.5% of the means:
 * a synthetic or nearly constant rate would otherwise make a difference of a
 * rounding error "significant". */
int optimize_significant(const struct optimize_stats *a, const struct optimize_stats *b, double k) {
        double va = stats_var_mean(a), vb = k * k * stats_var_mean(b);
        double d = a->mean - k * b->mean;
        double se = sqrt(va + vb);
        double floor = 0.005 * (fabs(a->mean) + fabs(b->mean)) / 2.0;
        double df = a->n + b->n - 2.0;

        /* Welch-Satterthwaite; with no spread at all the floor decides. */
        if (a->n >= 2 && b->n >= 2 && va + vb > 0)
                df = (va + vb) * (va + vb) / (va * va / (a->n - 1) + vb * vb / (b->n - 1));
        if (se < floor)
                se = floor;
        double t = t_quantile(df);
        if (d > t * se)
                return +1;
        if (d < -t * se)
                return -1;
        return 0;
}

/* Is a's mean above value beyond the t quantile of its standard error? +1
 * above, -1 below, 0 unclear; the same floor as optimize_significant(). For a
 * measured size against a bound on another size that was not measured. */
int optimize_beyond(const struct optimize_stats *a, double value) {
        double se = sqrt(stats_var_mean(a));
        double floor = 0.005 * (fabs(a->mean) + fabs(value)) / 2.0;
        double t = t_quantile(a->n - 1.0);

        if (se < floor)
                se = floor;
        return a->mean - value > t * se ? +1 : a->mean - value < -t * se ? -1 : 0;
}

/* Has the settled size's rate moved (+1 up, -1 down, 0 no)? Under "no",
 * both are samples of one rate, so the spread is the reference's: many
 * samples, where a window's own five would make its spread a guess, and a
 * guess too small now and then is a false shift. */
int optimize_shifted(const struct optimize_stats *window, const struct optimize_stats *ref) {
        double s2 = ref->n >= 2 ? ref->m2 / (ref->n - 1) : window->n >= 2 ? window->m2 / (window->n - 1) : 0.0;
        double d = window->mean - ref->mean;
        double se = window->n && ref->n ? sqrt(s2 / window->n + s2 / ref->n) : 0.0;
        double floor = 0.005 * (fabs(window->mean) + fabs(ref->mean)) / 2.0;

        if (se < floor)
                se = floor;
        return d > OPTIMIZE_Z * se ? +1 : d < -OPTIMIZE_Z * se ? -1 : 0;
}
