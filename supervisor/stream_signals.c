/* SPDX-License-Identifier: MIT */
/*
 * What stream mode tells the controller (stream_signals.h): the tasks.*
 * signals the policy sizes the pool by, and the task fields of a metrics
 * snapshot. Read from the stream's counts; nothing here changes the stream
 * but the rate's interval.
 */
#include <string.h>

#include "supervisor/stream_signals.h"
#include "supervisor/stream_source.h"
#include "supervisor/stream_types.h"

/* Whole lines read but not yet cut into spans, up to `max`: a count over at
 * most a chunk (256 KiB), once a sample. */
static uint64_t stream_lines_waiting(const struct stream *s, uint64_t max) {
        uint64_t n = 0;
        if (!s->chunk)
                return 0;
        for (const char *p = s->chunk->data + s->cut, *end = s->chunk->data + s->chunk->len; n < max && p < end; n++) {
                p = memchr(p, '\n', (size_t) (end - p));
                if (!p)
                        break;
                p++;
        }
        return n;
}

static uint64_t stream_backlog(const struct stream *s) {
        uint64_t n = 0;
        for (size_t i = 0; i < s->n_retry; i++)
                n += s->retry[i]->n_lines - s->retry[i]->n_done;
        /* Lines waiting in corral while every worker holds what its pace
         * allows (input not read yet is not counted: it may never come). */
        return n + (s->stalled ? stream_lines_waiting(s, SPAN_LINES_MAX) : 0);
}

static void stream_busy(const struct stream *s, unsigned *ret_busy, unsigned *ret_running, uint64_t *ret_lines) {
        unsigned busy = 0, running = 0;
        uint64_t lines = 0;
        for (unsigned i = 0; i < s->n_workers; i++) {
                const struct sworker *sw = s->workers[i];
                if (!sw || !sw->w)
                        continue;
                running++;
                busy += sw->lines > 0;
                lines += sw->lines;
        }
        *ret_busy = busy;
        *ret_running = running;
        *ret_lines = lines;
}

void stream_fill_signals(struct stream *s, struct signals *sig) {
        usec_t now = stream_now(s);
        double elapsed = (double) (now - s->interval_start) / (double) USEC_PER_SEC;
        unsigned busy, running;
        uint64_t lines;

        stream_busy(s, &busy, &running, &lines);
        signals_set(sig, SIGNAL_TASKS_BACKLOG, (double) stream_source_backlog(s, stream_backlog(s)));
        stream_source_fill_signals(s, sig);
        if (running > 0)
                signals_set(sig, SIGNAL_TASKS_BUSY, 100.0 * busy / (double) running);
        if (elapsed > 0)
                signals_set(sig, SIGNAL_TASKS_RATE, (double) s->interval_done / elapsed);
        /* tasks.latency as the batch's: the workers' mean time per line, in
         * an interval that answered some (the seeker's bound on a size). */
        double line_usec = 0;
        unsigned timed = 0;
        for (unsigned i = 0; s->interval_done > 0 && i < s->n_workers; i++)
                if (s->workers[i] && s->workers[i]->w && stream_pace_line_usec(&s->workers[i]->pace) > 0) {
                        line_usec += stream_pace_line_usec(&s->workers[i]->pace);
                        timed++;
                }
        if (timed > 0)
                signals_set(sig, SIGNAL_TASKS_LATENCY, line_usec / timed / (double) USEC_PER_SEC);
        s->interval_start = now;
        s->interval_done = 0;
}

void stream_fill_snapshot(const struct stream *s, struct metrics_snapshot *m) {
        unsigned busy, running;
        uint64_t lines;

        stream_busy(s, &busy, &running, &lines);
        m->tasks_ok = s->ok;
        m->tasks_failed = s->given_up;
        m->tasks_pending = stream_source_backlog(s, stream_backlog(s)) + lines;
        m->utilization = running ? (double) busy / (double) running : 0;
        stream_source_fill_snapshot(s, m);
}
