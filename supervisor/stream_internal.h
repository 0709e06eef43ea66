/* SPDX-License-Identifier: MIT */
/*
 * The inside of stream mode, for stream.c. The files that make it up, from
 * the top down (each calls only the ones below it; what a lower one sees
 * goes up through the callbacks in struct stream or a return value):
 *   stream.c         dispatch, failures, the stop, timers, the API
 *   stream_worker.c  one worker's pipes: lines written, results read and matched
 *   stream_order.c   results in input order and out to stdout, spans ending
 *   stream_input.c   input read in chunks and cut into spans of lines
 *   stream_results.c --results FILE
 *   stream_source.c  lines from a work queue instead of the input
 *   stream_pace.c    how many lines each worker may hold now, by its answer time
 *   stream_lines.c   the pure arithmetic of lines, span sizes and pacing
 *   stream_types.h   the data they share
 * Nothing outside these files includes this header.
 */
#pragma once

#include "supervisor/stream.h"
#include "supervisor/stream_input.h"
#include "supervisor/stream_order.h"
#include "supervisor/stream_pace.h"
#include "supervisor/stream_results.h"
#include "supervisor/stream_source.h"
#include "supervisor/stream_types.h"
#include "supervisor/stream_worker.h"

/* Picks workers for the lines waiting and writes to them; finishes the
 * stream once everything is answered. The other files call it through
 * s->dispatch. */
void stream_dispatch(struct stream *s);
