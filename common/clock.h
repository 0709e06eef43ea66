/* SPDX-License-Identifier: MIT */
/*
 * The clock corral's supervisor reads: CLOCK_MONOTONIC in microseconds, the
 * same clock sd-event's timers use. policy/ never reads it: it gets the time
 * as an argument. The sampler also reads the time since boot, on which the
 * kernel gives processes' start times.
 */
#pragma once

#include "common/util.h"

/* Now on CLOCK_MONOTONIC, in microseconds. Cannot fail. */
usec_t now_usec(void);

/* Now on CLOCK_BOOTTIME (monotonic, counting suspend), in microseconds. */
usec_t boot_usec(void);
