/* SPDX-License-Identifier: MIT */
/* workers.recycle: per-worker limits with jitter, pure arithmetic. */
#include <math.h>

#include "supervisor/recycle.h"

static const char *const reason_names[_RECYCLE_MAX] = {
        [RECYCLE_TASKS] = "tasks",
        [RECYCLE_RSS]   = "rss",
        [RECYCLE_AGE]   = "age",
};

const char *recycle_reason_name(enum recycle_reason r) {
        if (r < 0 || r >= _RECYCLE_MAX)
                return "unknown";
        return reason_names[r];
}

uint64_t recycle_jitter(uint64_t limit, double jitter_percent, double u) {
        if (limit == 0)
                return 0;
        double j = fmin(fmax(jitter_percent, 0), 100) / 100;
        double v = round((double) limit * (1 + j * (2 * u - 1)));
        /* A limit of 0 would mean "never": the lowest draw is 1. */
        if (v < 1)
                return 1;
        /* limit * 2 may not fit back into 64 bits. */
        if (v >= 18446744073709551616.0)
                return UINT64_MAX;
        return (uint64_t) v;
}

double recycle_random(uint64_t *state) {
        if (*state == 0)
                *state = 0x9e3779b97f4a7c15u;
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        /* The top 53 bits of the product make a double in [0, 1). */
        return (double) ((*state * 0x2545f4914f6cdd1du) >> 11) / 9007199254740992.0;
}

void recycle_draw(const struct workers_config *wc, uint64_t *rng, struct recycle_limits *ret) {
        double j = wc->recycle_jitter;
        *ret = (struct recycle_limits) {
                .tasks = recycle_jitter(wc->recycle_tasks, j, recycle_random(rng)),
                .rss = recycle_jitter(wc->recycle_rss, j, recycle_random(rng)),
                .age = recycle_jitter(wc->recycle_age, j, recycle_random(rng)),
        };
}
