/* SPDX-License-Identifier: MIT */
/*
 * workers.recycle, the pure part: each worker's own limits (tasks, rss, age),
 * drawn within +-jitter% of the configured ones when it starts, so that
 * workers started together are not all replaced at the same moment. No clock
 * and no global random state: callers pass the random numbers.
 */
#pragma once

#include <stdint.h>

#include "common/util.h"
#include "conf/config.h"

enum recycle_reason {            /* same order as metrics' enum metrics_recycle_reason */
        RECYCLE_TASKS,           /* answered workers.recycle.tasks stream lines */
        RECYCLE_RSS,             /* resident memory over workers.recycle.rss at a sample */
        RECYCLE_AGE,             /* ran longer than workers.recycle.age */
        _RECYCLE_MAX,
};

/* One worker's limits; 0 = never. */
struct recycle_limits {
        uint64_t tasks;
        uint64_t rss;            /* bytes */
        usec_t age;
};

const char *recycle_reason_name(enum recycle_reason r);

/* `limit` moved by (2u - 1) * jitter%, u uniform in [0, 1): a value within
 * +-jitter% of it, never below 1. 0 stays 0 (never); a jitter outside 0-100
 * is clamped. Cannot fail. */
uint64_t recycle_jitter(uint64_t limit, double jitter_percent, double u);

/* A worker's limits from the configuration, a recycle_random() draw from
 * `rng` per limit. Cannot fail. */
void recycle_draw(const struct workers_config *wc, uint64_t *rng, struct recycle_limits *ret);

/* A uniform number in [0, 1) from a xorshift64* state, which it advances
 * (a zero state is replaced by a fixed non-zero one). Cannot fail. */
double recycle_random(uint64_t *state);
