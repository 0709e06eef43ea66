/* SPDX-License-Identifier: MIT */
/*
 * Stream mode's results in order and out: with keep_order the spans sit in a
 * ring in input order; the results of the oldest span go straight to the
 * output buffer, later spans' results wait in their own buffer until every
 * earlier span is done. A line given up gets its placeholder in its place.
 * The spans in flight and their bytes are counted here as spans end.
 */
#include <inttypes.h>
#include <string.h>

#include "common/lowest.h"
#include "supervisor/log.h"
#include "supervisor/progress_bar.h"
#include "supervisor/stream_order.h"
#include "supervisor/stream_results.h"
#include "supervisor/stream_source.h"

void stream_check_output(struct stream *s) {
        int r = sink_error(s->sink);
        if (r < 0 && !s->out_failed) {
                /* Nobody reads the results (EPIPE), a full disk: the stream
                 * stops, see stream_dispatch(); what is left is dropped. */
                log_error_errno(r, "Failed to write results, stopping: %m");
                s->out_failed = true;
        }
}

/* keep_order: the span in flight that holds line seq, or NULL. The ring is
 * in input order, so a binary search finds it. */
static struct span *stream_span_of(const struct stream *s, uint64_t seq) {
        size_t lo = 0, hi = s->ring_len;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const struct span *span = s->ring[(s->ring_head + mid) & (s->ring_cap - 1)];
                if (seq < span->seq)
                        hi = mid;
                else if (seq >= span->seq + span->n_lines)
                        lo = mid + 1;
                else
                        return (struct span *) span;
        }
        return NULL;
}

/* Where the result of line seq goes now: corral's output, or (keep_order)
 * the buffer of its span until the spans before it are done. Every line in
 * flight is in a span of the ring, a line given up as it was read too (it
 * gets one of its own, see stream.c). */
static struct strbuf *stream_result_buffer(struct stream *s, uint64_t seq) {
        if (!s->keep_order || s->ring_len == 0)
                return &s->out;
        struct span *span = stream_span_of(s, seq);
        return !span || stream_span_is_head(s, span) ? &s->out : &span->out;
}

void stream_deliver(struct stream *s, struct span *span, const char *p, size_t len) {
        struct strbuf *b = stream_span_is_head(s, span) ? &s->out : &span->out;
        if (strbuf_append(b, p, len) < 0)
                log_error("Failed to keep a result: out of memory");
        stream_source_answer(s, span, p, len);
}

void stream_note_given_up(struct stream *s, uint64_t seq) {
        const char *text = s->config->tasks.failed_line ? s->config->tasks.failed_line : "";
        struct strbuf *b = stream_result_buffer(s, seq);

        size_t kept = s->given_up < FIRST_GIVEN_UP_MAX ? (size_t) s->given_up : FIRST_GIVEN_UP_MAX;
        lowest_keep(s->first_given_up, &kept, FIRST_GIVEN_UP_MAX, seq);
        s->given_up++;
        stream_write_given_up(s, seq);
        stream_source_line_failed(s, seq, 1);
        /* Its placeholder (tasks.failed_line) keeps output line N the answer
         * to input line N. */
        if (strbuf_append(b, text, strlen(text)) < 0 || strbuf_append(b, "\n", 1) < 0)
                log_error("Failed to write the placeholder of line %" PRIu64 ": out of memory", seq);
}

/* Queues the results in order so far on corral's stdout (never blocks). */
void stream_flush(struct stream *s) {
        if (s->out.len > 0) {
                progress_bar_step_aside(s->bar, true);
                (void) sink_write_buf(s->sink, &s->out);
        }
        stream_check_output(s);
}

/* A span's results are queued: with a task source (a work queue) they go
 * to the sink first, for the source acts once they are written. */
static void span_settled(struct stream *s, const struct span *span) {
        if (!s->source)
                return;
        stream_flush(s);
        stream_source_span_done(s, span);
}

void stream_emit_in_order(struct stream *s) {
        while (s->ring_len > 0) {
                struct span *span = s->ring[s->ring_head];
                if (span->out.len > 0) {
                        if (strbuf_append(&s->out, span->out.data, span->out.len) < 0)
                                log_error("Failed to keep results in order: out of memory");
                        strbuf_done(&span->out);
                }
                if (!span->done)
                        break;
                s->ring_head = (s->ring_head + 1) & (s->ring_cap - 1);
                s->ring_len--;
                s->n_spans--;
                s->bytes_in_flight -= span->len;
                span_settled(s, span);
                free(span);
        }
}

void span_complete(struct stream *s, struct span *span) {
        span->done = true;
        chunk_unref(span->chunk);
        span->chunk = NULL;
        if (s->keep_order)
                stream_emit_in_order(s);
        else {
                s->n_spans--;
                s->bytes_in_flight -= span->len;
                span_settled(s, span);
                free(span);
        }
}

/* A line left without a result: the stop gave up on it. */
void span_abandon(struct stream *s, struct span *span) {
        s->undone += span->n_lines - span->n_done;
        stream_source_line_failed(s, span->seq + span->n_done, span->n_lines - span->n_done);
        span_complete(s, span);
}
