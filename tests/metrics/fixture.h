/* SPDX-License-Identifier: MIT */
/* A fixed, fully populated snapshot for the metrics tests (unit and end to end). */
#pragma once

#include "metrics/corral_metrics.h"

/* The rule name that must survive escaping: a quote, a backslash. */
#define FIXTURE_TRICKY_RULE "a\"b\\c"

/* Fills *s with static data; healthy unless `crash_loop`. Cannot fail. */
void fixture_snapshot(struct metrics_snapshot *s, bool crash_loop);
