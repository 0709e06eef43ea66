/* SPDX-License-Identifier: MIT */
/* Shared bits of the synthetic tasks (tests/tasks/): fixed CPU work, a sleep, env numbers. */
#pragma once

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* A number from the environment, or dflt when unset or not a number. */
static inline uint64_t env_u64(const char *name, uint64_t dflt) {
        const char *v = getenv(name);
        char *end;
        if (!v || !*v)
                return dflt;
        unsigned long long x = strtoull(v, &end, 10);
        return *end ? dflt : (uint64_t) x;
}

/* Fixed work: iters rounds of xorshift64, data-dependent so that the
 * compiler cannot fold the loop. Returns the state (print it). */
static inline uint64_t burn(uint64_t iters) {
        uint64_t x = 88172645463325252ull;
        for (uint64_t i = 0; i < iters; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
        }
        return x;
}

/* Sleeps ms milliseconds, resuming after signals. */
static inline void sleep_ms(uint64_t ms) {
        struct timespec t = { (time_t) (ms / 1000), (long) (ms % 1000) * 1000000L };
        while (nanosleep(&t, &t) < 0)
                ;
}
