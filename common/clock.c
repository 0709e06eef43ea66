/* SPDX-License-Identifier: MIT */
/* The monotonic and boot clocks in microseconds (see clock.h). */
#include <time.h>

#include "common/clock.h"

static usec_t clock_usec(clockid_t id) {
        struct timespec ts;

        /* Neither clock can fail on Linux with a valid pointer. */
        (void) clock_gettime(id, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

usec_t now_usec(void) {
        return clock_usec(CLOCK_MONOTONIC);
}

usec_t boot_usec(void) {
        return clock_usec(CLOCK_BOOTTIME);
}
