/* SPDX-License-Identifier: MIT */
/*
 * The one clock corral's supervisor reads: CLOCK_MONOTONIC in microseconds,
 * the same clock sd-event's timers use. policy/ never reads it: it gets the
 * time as an argument.
 */
#pragma once

#include "common/util.h"

/* Now on CLOCK_MONOTONIC, in microseconds. Cannot fail. */
usec_t now_usec(void);
