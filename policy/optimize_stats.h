/* SPDX-License-Identifier: MIT */
/*
 * The throughput seeker's measurements (policy/optimize.h): a size's samples
 * as a running mean and variance, and the significance tests its moves rest
 * on. Internal to the seeker; pure, no allocation, none can fail.
 */
#pragma once

#include <stdbool.h>

#include "policy/optimize.h"

/* Adds sample v. cpu: its CPU the pool may use (%), core: its pool.cpu (%);
 * either NAN if unknown. */
void optimize_stats_add(struct optimize_stats *x, double v, double cpu, double core);

/* Adds b's samples to a. */
void optimize_stats_merge(struct optimize_stats *a, const struct optimize_stats *b);

/* The mean usable CPU is over OPTIMIZE_CPU_BUSY_MAX. */
bool optimize_stats_cpu_busy(const struct optimize_stats *x);

/* The mean pool.cpu is at least OPTIMIZE_FULL_CORE: each worker keeps a core busy. */
bool optimize_stats_full_cores(const struct optimize_stats *x);

/* Is a's mean minus k times b's beyond the one-sided 99% quantile of
 * Student's t (Welch's test)? +1 above, -1 below, 0 unclear. */
int optimize_significant(const struct optimize_stats *a, const struct optimize_stats *b, double k);

/* Is a's mean above value (a bound on a size not measured) by more than the
 * same quantile of its standard error? +1 above, -1 below, 0 unclear. */
int optimize_beyond(const struct optimize_stats *a, double value);

/* Has a settled size's rate moved from ref in window (+1 up, -1 down, 0 no)? */
int optimize_shifted(const struct optimize_stats *window, const struct optimize_stats *ref);
