/* SPDX-License-Identifier: MIT */
/*
 * --results FILE in stream mode: a record per input line as its answer
 * comes in (or as it is given up): its seq, the line, the answer as stdout.
 * A worker is long-lived, so a line has no exit status of its own: exit is 0
 * for an answered line and null for one given up, and its duration is the
 * time from its group of lines reaching the front of its worker's queue to
 * the answer (lines sent together are answered one after another).
 */
#include <errno.h>

#include "supervisor/log.h"
#include "supervisor/stream_results.h"

int stream_open_results(struct stream *s) {
        /* -EINVAL once logged: stream_new()'s caller says nothing more */
        return results_file_open_config(s->config->tasks.results, s->config->tasks.from, false, &s->results) < 0
                       ? -EINVAL
                       : 0;
}

/* Writing results failed: the stream stops as when stdout fails (exit 1). */
static void stream_results_failed(struct stream *s, uint64_t seq, int r) {
        log_error_errno(r, "Failed to write the result of line %llu to %s: %m; stopping",
                        (unsigned long long) seq, s->config->tasks.results);
        s->results = results_file_free(s->results);
        s->out_failed = true;
}

void stream_write_results(struct stream *s, const struct span *span, const char *p, size_t len, usec_t now) {
        if (!s->results)
                return;
        size_t skipped, one, in_one;
        size_t in = stream_take_lines(span->in, span->len, span->n_done, SIZE_MAX, &skipped);
        double duration = now > span->head_since ? (double) (now - span->head_since) / (double) USEC_PER_SEC : 0;

        for (uint64_t seq = span->seq + span->n_done; len > 0; seq++) {
                size_t take = stream_take_lines(p, len, 1, SIZE_MAX, &one);
                size_t line = stream_take_lines(span->in + in, span->len - in, 1, SIZE_MAX, &in_one);
                if (one == 0 || in_one == 0)
                        return;
                struct result_record rec = {
                        .seq = seq,
                        .task = span->in + in,
                        .task_len = line - 1,    /* without its '\n' */
                        .exited = true,
                        .duration = duration,
                        .out = p,
                        .out_len = take,
                };
                int r = results_file_write(s->results, &rec);
                if (r < 0)
                        return stream_results_failed(s, seq, r);
                p += take;
                len -= take;
                in += line;
        }
}

void stream_write_given_up(struct stream *s, uint64_t seq) {
        if (!s->results)
                return;
        struct result_record rec = { .seq = seq, .error = "given up" };
        int r = results_file_write(s->results, &rec);
        if (r < 0)
                stream_results_failed(s, seq, r);
}
