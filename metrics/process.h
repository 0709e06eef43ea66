/* SPDX-License-Identifier: MIT */
/*
 * corral's own process_* figures (the standard names every Prometheus client
 * exports), read from /proc/self and getrusage().
 */
#pragma once

#include "metrics/corral_metrics.h"

/*
 * Reads CPU time, resident memory, start time, open and maximum fds of the
 * calling process into *ret (valid = true). Costs a few small /proc reads and
 * one directory listing. Returns 0 or a negative errno; *ret is written only on
 * success.
 */
int metrics_process_read(struct metrics_process *ret);
