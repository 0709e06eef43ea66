/* SPDX-License-Identifier: MIT */
/* The monotonic clock in microseconds (see clock.h). */
#include <time.h>

#include "common/clock.h"

usec_t now_usec(void) {
        struct timespec ts;

        /* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer. */
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}
