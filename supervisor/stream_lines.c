/* SPDX-License-Identifier: MIT */
/*
 * The pure arithmetic of stream mode, unit-tested without a worker: how many
 * whole lines a span takes from a chunk, and how span sizes adapt to the
 * time a worker takes per span.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/log.h"
#include "supervisor/stream_internal.h"

size_t stream_take_lines(const char *p, size_t len, size_t max_lines, size_t max_bytes, size_t *ret_lines) {
        size_t off = 0, n = 0;
        while (n < max_lines && off < max_bytes && off < len) {
                const char *nl = memchr(p + off, '\n', len - off);
                if (!nl)
                        break;
                off = (size_t) (nl - p) + 1;
                n++;
        }
        *ret_lines = n;
        return off;
}

size_t stream_span_lines_next(size_t current, size_t lines, uint64_t busy, size_t max) {
        size_t next = current;
        if (busy > 10 * USEC_PER_MSEC) {
                /* Aim at ~2 ms per span from the cost per line just seen. */
                double fit = (double) lines * 2000.0 / (double) busy;
                next = fit < 1 ? 1 : fit < (double) current ? (size_t) fit : current;
        } else if (busy < USEC_PER_MSEC && 2 * lines >= current)
                next = current * 2;
        if (next > max)
                next = max;
        return next ? next : 1;
}
