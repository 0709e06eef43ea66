/* SPDX-License-Identifier: MIT */
/*
 * Stream mode over a task source other than a file or stdin (a work queue,
 * task_source.h): each line the source gives is put into the input chunk
 * as if it had been read, so the spans, workers and output work as for a
 * file. The source hears back per line once its answer (or its placeholder,
 * tasks.failed_line) is queued on the output, and acts once it is written:
 * a queue acknowledges an answered entry only then, and counts a given-up
 * line as a failed delivery.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "conf/queue_url.h"
#include "supervisor/log.h"
#include "supervisor/queue_source.h"
#include "supervisor/stream_source.h"
#include "supervisor/stream_types.h"

/* Lines a stream holds from the source (given, not yet done), whatever its
 * pace: enough to hide a round trip to a server, few enough to leave the
 * rest to other consumers. */
#define HOLD_MIN 32u
#define HOLD_MAX 4096u

/* Lines that ended without an answer: given up, or left by a stop. */
struct failed_range {
        uint64_t seq, n;
};

struct stream_source {
        struct task_source src;
        uint64_t given;          /* lines given by the source: the last seq */
        uint64_t done;           /* ... of them reported done */
        struct failed_range *failed;
        size_t n_failed, cap_failed;
};

static int on_line(void *data, uint64_t seq, const char *line, size_t len, const char **why) {
        struct stream *s = data;
        struct stream_source *ss = s->source;
        if (memchr(line, '\n', len)) {
                *why = "a newline in a stream's line";
                return -EINVAL;
        }
        if (len >= STREAM_LINE_MAX) {
                *why = "line too long";
                return -EINVAL;
        }
        if (seq != ss->given + 1)
                return -EPROTO;   /* the lines would no longer match their answers */
        if (!s->chunk || s->chunk->cap - s->chunk->len < len + 1) {
                int r = stream_chunk_renew(s, stream_uncut(s) + len + 1);
                if (r < 0)
                        return r;
        }
        struct chunk *c = s->chunk;
        memcpy(c->data + c->len, line, len);
        c->data[c->len + len] = '\n';
        c->len += len + 1;
        ss->given = seq;
        return 0;
}

static int on_flush(void *data) {
        stream_kick(data);
        return 0;
}

static void on_ended(void *data) {
        struct stream *s = data;
        s->eof = true;
        stream_kick(s);
}

static void on_progress(void *data) {
        stream_kick(data);   /* a dispatch, or once finished the end */
}

static void on_failed(void *data, int error) {
        struct stream *s = data;
        (void) error;   /* logged by the source */
        s->input_failed = true;
        s->eof = true;
        stream_kick(s);
}

static size_t on_wanted(void *data) {
        const struct stream *s = data;
        const struct stream_source *ss = s->source;
        unsigned running = 0;
        if (s->stopping || s->eof)
                return 0;
        for (unsigned i = 0; i < s->n_workers; i++)
                running += s->workers[i] && s->workers[i]->w;
        uint64_t limit = 2 * (uint64_t) (running ? running : 1) * (s->span_lines ? s->span_lines : 1);
        limit = limit < HOLD_MIN ? HOLD_MIN : limit > HOLD_MAX ? HOLD_MAX : limit;
        uint64_t held = ss->given - ss->done;
        return held < limit ? (size_t) (limit - held) : 0;
}

/* Cut into a span: with a worker, or waiting for one after its worker went. */
static bool on_busy(void *data, uint64_t seq) {
        const struct stream *s = data;
        return seq < s->next_seq;
}

static void on_after_output(void *data, task_output_fn fn, void *fn_data) {
        struct stream *s = data;
        (void) sink_mark(s->sink, fn, fn_data);    /* on failure it ran, with false */
}

int stream_source_open(struct stream *s) {
        struct stream_source *ss = calloc(1, sizeof(*ss));
        if (!ss)
                return log_error_errno(ENOMEM, "Failed to set up the stream's input: %m");
        s->source = ss;
        s->in_poll = true;       /* nothing to read: lines come from the source */
        struct task_consumer c = {
                .data = s, .line = on_line, .flush = on_flush, .ended = on_ended, .progress = on_progress,
                .failed = on_failed, .wanted = on_wanted, .busy = on_busy, .after_output = on_after_output,
        };
        return queue_source_open(s->event, s->config, &c, &ss->src);
}

static void note_failed(struct stream *s, uint64_t seq, uint64_t n) {
        struct stream_source *ss = s->source;
        if (ss->n_failed == ss->cap_failed) {
                size_t cap = ss->cap_failed ? 2 * ss->cap_failed : 16;
                struct failed_range *a = reallocarray(ss->failed, cap, sizeof(*a));
                if (!a) {
                        /* Reported as answered: its placeholder is acknowledged. */
                        log_error("Failed to keep line %" PRIu64 " as given up: out of memory", seq);
                        return;
                }
                ss->failed = a;
                ss->cap_failed = cap;
        }
        ss->failed[ss->n_failed++] = (struct failed_range) { seq, n };
}

void stream_source_line_failed(struct stream *s, uint64_t seq, uint64_t n) {
        if (s->source && n > 0)
                note_failed(s, seq, n);
}

/* Whether line seq ended without an answer (a few ranges at most: given-up
 * lines are rare, a stop abandons a span once). */
static bool unanswered(struct stream_source *ss, uint64_t seq) {
        for (size_t i = 0; i < ss->n_failed; i++)
                if (seq >= ss->failed[i].seq && seq < ss->failed[i].seq + ss->failed[i].n)
                        return true;
        return false;
}

/* The ranges that start in the settled span [from, to). */
static void forget_failed(struct stream_source *ss, uint64_t from, uint64_t to) {
        for (size_t i = 0; i < ss->n_failed;)
                if (ss->failed[i].seq >= from && ss->failed[i].seq < to)
                        ss->failed[i] = ss->failed[--ss->n_failed];
                else
                        i++;
}

static void report_range(struct stream *s, uint64_t seq, uint64_t n, bool ok) {
        struct stream_source *ss = s->source;
        struct task_report r = { .ok = ok, .exit = ok ? 0 : 1 };
        while (n > 0) {
                unsigned k = n > UINT32_MAX ? UINT32_MAX : (unsigned) n;
                ss->src.ops->done(ss->src.src, seq, k, &r);
                ss->done += k;
                seq += k;
                n -= k;
        }
}

void stream_source_span_done(struct stream *s, const struct span *span) {
        struct stream_source *ss = s->source;
        if (!ss || span->n_lines == 0)
                return;
        uint64_t run = span->seq, end = span->seq + span->n_lines;
        bool run_ok = !unanswered(ss, run);
        for (uint64_t seq = run + 1; seq <= end; seq++) {
                bool ok = seq < end && !unanswered(ss, seq);
                if (seq < end && ok == run_ok)
                        continue;
                report_range(s, run, seq - run, run_ok);
                run = seq;
                run_ok = ok;
        }
        forget_failed(ss, span->seq, end);
}

/* The source keeps what it records of each answer (a results stream's
 * stdout) with its line until the line is done: nothing is kept here, and
 * a source that records none keeps nothing at all. */
void stream_source_answer(struct stream *s, const struct span *span, const char *p, size_t len) {
        const struct stream_source *ss = s->source;
        if (ss && ss->src.ops->capture_lines)
                ss->src.ops->capture_lines(ss->src.src, span->seq + span->n_done, p, len);
}

/* The stop gave up on the lines workers still hold: back to the source now,
 * not when their lease expires. */
void stream_source_give_back(struct stream *s) {
        if (!s->source)
                return;
        for (unsigned i = 0; i < s->n_workers; i++) {
                const struct sworker *sw = s->workers[i];
                for (unsigned k = 0; sw && k < sw->q_len; k++) {
                        const struct span *span = *sworker_at(sw, k);
                        if (span->n_done < span->n_lines)
                                report_range(s, span->seq + span->n_done, span->n_lines - span->n_done, false);
                }
        }
}

void stream_source_fill(struct stream *s) {
        if (s->source && !s->stopping && !s->eof)
                s->source->src.ops->fill(s->source->src.src);
}

void stream_source_stop(struct stream *s) {
        if (s->source)
                s->source->src.ops->stop(s->source->src.src);
}

bool stream_source_settled(struct stream *s) {
        return !s->source || s->source->src.ops->settled(s->source->src.src);
}

int stream_source_status(struct stream *s, int status, bool failed) {
        if (!s->source)
                return status;
        const struct task_source *src = &s->source->src;
        status = src->ops->status(src->src, status, failed || s->input_failed);
        (void) src->ops->summarize(src->src, status);
        return status;
}

uint64_t stream_source_backlog(const struct stream *s, uint64_t own) {
        uint64_t waiting;
        if (s->source && s->source->src.ops->backlog(s->source->src.src, &waiting))
                return own + waiting;
        return own;
}

void stream_source_fill_signals(const struct stream *s, struct signals *sig) {
        if (s->source)
                s->source->src.ops->fill_signals(s->source->src.src, sig);
}

void stream_source_fill_snapshot(const struct stream *s, struct metrics_snapshot *m) {
        if (s->source)
                s->source->src.ops->fill_snapshot(s->source->src.src, m);
}

void stream_source_free(struct stream *s) {
        struct stream_source *ss = s->source;
        if (!ss)
                return;
        if (ss->src.ops)
                ss->src.ops->free(ss->src.src);
        free(ss->failed);
        free(ss);
        s->source = NULL;
}
