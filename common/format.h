/* SPDX-License-Identifier: MIT */
/*
 * Durations and sizes as a person reads them, for log lines, error messages
 * and /status. Pure; below conf/ and policy/, which both print durations.
 */
#pragma once

#include <stdint.h>

#include "common/util.h"

/* Room for any result of format_duration() or format_size(), NUL included. */
#define FORMAT_MAX 32

/* Writes a duration the way the user would write it in a configuration:
 * "0s", "250ms", "1.5s", "2m", "1.25h", "infinity" for USEC_INFINITY; at most
 * 4 significant digits, in the largest unit that is not more than t.
 * Truncated, never rounded up: 1.9999s reads "1.999s", so a value just short
 * of a threshold never reads as the threshold. Returns buf; cannot fail. */
const char *format_duration(usec_t t, char buf[static FORMAT_MAX]);

/* Writes a size in bytes in 1024-based units, to 4 significant digits
 * ("512 MiB", "1.5 GiB", "100 B"). Returns buf; cannot fail. */
const char *format_size(uint64_t bytes, char buf[static FORMAT_MAX]);
