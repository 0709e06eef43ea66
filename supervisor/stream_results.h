/* SPDX-License-Identifier: MIT */
/*
 * --results FILE in stream mode (stream_results.c): a record per input line.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "supervisor/stream_types.h"

/* Opens config->tasks.results, if any. Returns 0 or -EINVAL (logged). */
int stream_open_results(struct stream *s);
/* The records of the answers p (len bytes of whole result lines) to span's
 * lines from its n_done on. */
void stream_write_results(struct stream *s, const struct span *span, const char *p, size_t len, usec_t now);
void stream_write_given_up(struct stream *s, uint64_t seq);
