/* SPDX-License-Identifier: MIT */
/*
 * The pure arithmetic of stream mode, unit-tested without a worker: how many
 * whole lines a span takes from a chunk, how span sizes adapt to the
 * time a worker takes per span, and how many lines a worker may hold
 * (supervisor/stream_pace.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <math.h>

#include "supervisor/log.h"
#include "supervisor/stream_lines.h"

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

void stream_pace_reset(struct stream_pace *p, int pid) {
        *p = (struct stream_pace) { .pid = pid, .floor = 1 };
}

void stream_pace_answered(struct stream_pace *p, uint64_t lines, usec_t at) {
        if (lines == 0)
                return;
        /* Sums weighted by lines: a burst of 1000 lines counts as 1000 lines,
         * so a fast filter's mean drops within a few answers. */
        p->busy = p->busy * PACE_DECAY + (double) (at > p->since ? at - p->since : 0);
        p->lines = p->lines * PACE_DECAY + (double) lines;
        p->since = at;
        p->probed = 0;
}

double stream_pace_line_usec(const struct stream_pace *p) {
        return p->lines > 0 ? p->busy / p->lines : 0;
}

size_t stream_pace_limit(const struct stream_pace *p, unsigned in_flight) {
        size_t n = 1;
        if (p->lines > 0) {
                double fit = p->busy > 0 ? (double) PACE_HORIZON * p->lines / p->busy : (double) SIZE_MAX;
                n = fit >= (double) (SIZE_MAX / 2) ? SIZE_MAX / 2 : fit < 1 ? 1 : (size_t) ceil(fit);
        }
        if (n < p->floor)
                n = p->floor;
        if (in_flight > 0 && n > in_flight)
                n = in_flight;
        return n;
}

usec_t stream_pace_next_look(const struct stream_pace *p) {
        if (p->probed == 0)
                return PACE_PROBE_FIRST;
        return p->probed + (p->probed < PACE_PROBE_MAX ? p->probed : PACE_PROBE_MAX);
}

bool stream_pace_look(struct stream_pace *p, size_t held, usec_t now, enum pace_reading r) {
        usec_t silent = now > p->since ? now - p->since : 0;
        double expect = stream_pace_line_usec(p) * (double) (held ? held : 1) * PACE_STALL_FACTOR;
        bool stalled;

        switch (r) {
        case PACE_WAITING:
                stalled = true;
                break;
        case PACE_BUSY:
                stalled = (double) silent >= fmax((double) PACE_BACKSTOP, expect);
                break;
        default:
                stalled = (double) silent >= fmax((double) PACE_BLIND_MIN, expect);
                break;
        }
        p->probed = silent > 0 ? silent : 1;
        if (!stalled)
                return false;
        size_t base = held > p->floor ? held : p->floor;
        p->floor = base < SIZE_MAX / 4 ? 2 * base : base;
        p->since = now;
        p->probed = 0;
        return true;
}
