/* SPDX-License-Identifier: MIT */
/*
 * Stream mode: input chunks cut into spans of lines, spans queued per worker
 * and written to its stdin with writev(), results read back in big reads and
 * matched to the spans by counting newlines, and written out in order.
 *
 * A worker answers its lines in the order it got them, so its outstanding
 * spans form a FIFO and a result line belongs to the oldest unanswered line.
 * When a worker dies, what it did not answer goes back into a retry queue as
 * the same span (resumed at its first unanswered line), so the output order
 * and the "exactly one result per line" both hold across failures. The line
 * charged with a death is the oldest unanswered one: the line the worker was
 * busy with.
 *
 * With keep_order the spans also sit in a ring in input order; results of the
 * oldest span go straight to the output buffer, later spans' results wait in
 * their own buffer until every earlier span is done. Memory is bounded by the
 * ring (spans in flight) and the per-worker queues, however long the input.
 *
 * Every callback of the pool (a worker started or ended) only records and
 * "kicks": the dispatch runs from a defer source, never inside the pool's own
 * bookkeeping.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <math.h>
#include "common/exit_status.h"
#include "conf/queue_url.h"
#include "conf/units.h"

#include "supervisor/log.h"
#include "supervisor/progress_bar.h"
#include "supervisor/stream_internal.h"

/* A line given up as it was read (longer than STREAM_LINE_MAX) never was in
 * a span: with keep_order it gets one of its own, already done, behind the
 * spans in flight, so that its placeholder waits for their results. */
static void stream_give_up_unread(struct stream *s, uint64_t seq) {
        if (s->keep_order && s->ring_len > 0) {
                struct span *span = malloc(sizeof(*span));
                if (span)
                        *span = (struct span) { .seq = seq, .n_lines = 1, .n_done = 1, .done = true };
                if (!span || stream_ring_push(s, span) < 0) {
                        free(span);
                        log_error("Failed to keep line %" PRIu64 "'s placeholder in order: out of memory", seq);
                } else
                        s->n_spans++;
        }
        stream_note_given_up(s, seq);
}

/* The pool stops once the results are written, or writing failed, or a stop
 * gave up on them. */
static void stream_try_end(struct stream *s) {
        if (!s->finished || s->ended)
                return;
        if (!sink_idle(s->sink) && sink_error(s->sink) == 0 && !s->output_abandoned)
                return;
        if (!stream_source_settled(s))
                return;    /* a queue's acks and hand-backs are on their way */
        s->ended = true;
        stream_check_output(s);
        bool failed = s->out_failed || s->output_abandoned;
        pool_stop(s->pool, stream_source_status(s, s->end_status || failed ? EXIT_TASKS_FAILED : EXIT_OK, failed));
}

/* stop_timeout after a stop: results nobody took by then are given up. */
static void stream_abandon_output(struct stream *s) {
        if (sink_idle(s->sink) || s->output_abandoned)
                return;
        log_warning("stream: %" PRIu64 " bytes of results not taken by the reader, dropping them",
                    sink_pending(s->sink));
        s->output_abandoned = true;
        sink_drop(s->sink);
}

/* The sink wrote, drained or failed: read results again, dispatch, maybe end. */
static void stream_on_sink(void *userdata) {
        struct stream *s = userdata;
        stream_check_output(s);
        if (s->out_paused && !sink_full(s->sink)) {
                s->out_paused = false;
                for (unsigned i = 0; i < s->n_workers; i++)
                        if (s->workers[i] && s->workers[i]->out_src)
                                (void) sd_event_source_set_enabled(s->workers[i]->out_src, SD_EVENT_ON);
        }
        if (s->finished)
                stream_try_end(s);
        else
                stream_kick(s);
}

/* "1 line", "2 lines": the noun for a count in the log. */
static const char *line_noun(uint64_t n) {
        return n == 1 ? "line" : "lines";
}

static void stream_finish(struct stream *s) {
        int status;

        if (s->finished)
                return;
        s->finished = true;
        /* The stop timer stays: it also bounds the wait for the reader. */
        s->timeout_timer = sd_event_source_disable_unref(s->timeout_timer);
        s->pace_timer = sd_event_source_disable_unref(s->pace_timer);
        s->in_src = sd_event_source_disable_unref(s->in_src);
        if (s->keep_order)
                stream_emit_in_order(s);
        stream_flush(s);
        progress_bar_finish(s->bar);
        if (s->stopping)
                stream_source_give_back(s);

        bool unread = s->stopping && !s->eof;
        status = s->given_up || s->undone || unread || s->input_failed || s->out_failed ? 1 : 0;
        if (s->given_up) {
                char seqs[128] = "";
                size_t n = 0;
                for (uint64_t i = 0; i < s->given_up && i < FIRST_GIVEN_UP_MAX; i++)
                        n += (size_t) snprintf(seqs + n, sizeof(seqs) - n, "%s%" PRIu64, i ? ", " : "",
                                               s->first_given_up[i]);
                log_error("stream: %" PRIu64 " %s answered, %" PRIu64 " given up (%s %s%s)", s->ok, line_noun(s->ok),
                          s->given_up, s->given_up == 1 ? "line" : "lines", seqs,
                          s->given_up > FIRST_GIVEN_UP_MAX ? ", ..." : "");
        } else
                log_info("stream: %" PRIu64 " %s answered%s", s->ok, line_noun(s->ok),
                         unread || s->undone ? ", stopped with lines left undone" : "");
        if (s->undone)
                log_warning("stream: %" PRIu64 " %s sent to workers %s left without a result", s->undone,
                            line_noun(s->undone), s->undone == 1 ? "was" : "were");
        s->end_status = status;
        stream_try_end(s);
}

static void stream_maybe_finish(struct stream *s) {
        if (!s->finished && stream_nothing_to_send(s) && s->n_spans == 0)
                stream_finish(s);
}

static bool sworker_usable(const struct sworker *sw) {
        return sw->w && pool_worker_running(sw->w) && !sw->killed && !sw->closed_in && sw->in_fd >= 0;
}

/* The usable worker with the fewest lines outstanding that has room for
 * more: under its pace (stream_pace.h), its recycle budget and the bytes a
 * worker may hold. */
static struct sworker *stream_pick(struct stream *s) {
        struct sworker *best = NULL;
        for (unsigned i = 0; i < s->n_workers; i++) {
                struct sworker *sw = s->workers[i];
                if (!sw || !sworker_usable(sw) || sw->draining || sworker_budget(sw) == 0 ||
                    sworker_room(sw) == 0 || sw->bytes >= WORKER_BYTES_MAX || sworker_reserve(sw) < 0)
                        continue;
                if (!best || sw->lines < best->lines)
                        best = sw;
        }
        return best;
}

static void sworker_assign(struct sworker *sw, struct span *span, usec_t now) {
        sworker_pace_busy(sw, now);
        if (sw->q_len == 0) {
                sw->progress = now;
                span->head_since = now;
        }
        *sworker_at(sw, sw->q_len++) = span;
        sw->lines += span->n_lines - span->n_done;
        sw->bytes += span->len - span->from;
}

static int on_pace_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        (void) src;
        (void) usec;
        stream_dispatch(userdata);
        return 0;
}

/* The next look at a silent worker (stream_pace_watch()) brings the dispatch back. */
static void stream_pace_arm(struct stream *s, usec_t at) {
        if (at == USEC_INFINITY) {
                if (s->pace_timer)
                        (void) sd_event_source_set_enabled(s->pace_timer, SD_EVENT_OFF);
                return;
        }
        if (!s->pace_timer) {
                int r = sd_event_add_time(s->event, &s->pace_timer, CLOCK_MONOTONIC, at, USEC_PER_MSEC,
                                          on_pace_timer, s);
                if (r < 0)
                        log_error_errno(r, "Failed to arm the stream's pacing timer, ignoring: %m");
                return;
        }
        (void) sd_event_source_set_time(s->pace_timer, at);
        (void) sd_event_source_set_enabled(s->pace_timer, SD_EVENT_ONESHOT);
}

void stream_dispatch(struct stream *s) {
        usec_t now = stream_now(s);
        bool want_input = false;

        if (s->finished)
                return;
        if (s->out_failed && !s->stopping) {
                stream_stop(s);   /* comes back here once, stopping */
                return;
        }
        s->stalled = false;
        if (s->out.len > 0)
                stream_flush(s);   /* a placeholder written outside a read of results */
        stream_pace_update(s, now);
        /* Backpressure: while corral's stdout is full, no new lines go out. */
        if (!s->stopping && !sink_full(s->sink))
                for (;;) {
                        struct sworker *sw = stream_pick(s);
                        if (!sw) {
                                s->stalled = s->n_retry > 0 || stream_input_has_line(s);
                                /* Every worker holds what its pace allows: read on
                                 * until a line waits, so that tasks.backlog shows
                                 * the input waiting in the pipe (one read at most:
                                 * a chunk, cut once workers have room). */
                                want_input = !s->stalled && !s->eof && stream_may_cut(s);
                                break;
                        }
                        struct span *span = stream_next_span(s, sw);
                        if (!span) {
                                want_input = !s->eof && stream_may_cut(s);
                                break;
                        }
                        sworker_assign(sw, span, now);
                }
        for (unsigned i = 0; i < s->n_workers; i++) {
                struct sworker *sw = s->workers[i];
                if (sw && sw->w && !sw->killed && sw->in_fd >= 0 && !sw->blocked)
                        sworker_write(sw);
        }
        bool waiting;
        stream_pace_arm(s, stream_pace_watch(s, now, &waiting));
        if (waiting)
                stream_kick(s);   /* a worker may hold more now */
        stream_source_fill(s);
        if (s->in_src)
                (void) sd_event_source_set_enabled(s->in_src, want_input ? SD_EVENT_ON : SD_EVENT_OFF);
        /* A recycled worker that answered all it had is replaced, unless the
         * input is over: then its stdin has just closed and it ends anyway. */
        for (unsigned i = 0; !stream_nothing_to_send(s) && i < s->n_workers; i++) {
                struct sworker *sw = s->workers[i];
                if (sw && sw->w && sw->draining && !sw->killed && sw->lines == 0)
                        pool_worker_recycle_ready(sw->w);
        }
        stream_maybe_finish(s);
}

static int on_stream_kick(sd_event_source *src, void *userdata) {
        struct stream *s = userdata;
        (void) src;
        if (s->finished)
                stream_try_end(s);   /* a task source settled */
        else
                stream_dispatch(s);
        return 0;
}

static int on_timeout_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        struct stream *s = userdata;
        usec_t timeout = s->config->tasks.timeout, now = stream_now(s), next = now + timeout;
        char t[32];
        (void) usec;   /* the scheduled time: progress may be later than it, now is not */

        for (unsigned i = 0; timeout > 0 && i < s->n_workers; i++) {
                struct sworker *sw = s->workers[i];
                if (!sw || !sw->w || sw->killed || sw->lines == 0)
                        continue;
                sworker_clock(sw, now);
                if (now - sw->progress >= timeout) {
                        struct span *head = sworker_head(sw);
                        log_warning("worker %u has had line %" PRIu64 " for over %s, replacing it", sw->id,
                                    head->seq + head->n_done, format_duration(timeout, t));
                        sworker_kill(sw, true);
                } else if (sw->progress + timeout < next)
                        next = sw->progress + timeout;
        }
        if (timeout == 0)
                next = now + USEC_PER_SEC;   /* turned off by a reload: look again later */
        (void) sd_event_source_set_time(src, next);
        (void) sd_event_source_set_enabled(src, SD_EVENT_ON);
        return 0;
}

static int on_stream_stop_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        struct stream *s = userdata;
        char t[32];
        (void) src;
        (void) usec;
        if (!s->finished)
                log_warning("stream: lines still outstanding after %s, stopping the workers",
                            format_duration(s->config->workers.stop_timeout, t));
        stream_finish(s);
        stream_abandon_output(s);
        stream_try_end(s);
        return 0;
}

void stream_stop(struct stream *s) {
        s->stops++;
        if (s->finished || s->stops > 2) {
                stream_abandon_output(s);
                s->ended = true;
                pool_stop(s->pool, EXIT_TASKS_FAILED);
                return;
        }
        if (s->stopping) {
                stream_finish(s);
                return;
        }
        s->stopping = true;
        stream_source_stop(s);   /* first: the lines of spans given up below go back */
        s->in_src = sd_event_source_disable_unref(s->in_src);
        while (s->n_retry > 0)
                span_abandon(s, s->retry[--s->n_retry]);
        if (s->on_stopping)
                s->on_stopping(s->on_stopping_userdata);

        size_t outstanding = 0;
        for (unsigned i = 0; i < s->n_workers; i++)
                if (s->workers[i])
                        outstanding += s->workers[i]->lines;
        log_info("stream: no more input; waiting for %zu outstanding %s", outstanding, line_noun(outstanding));
        int r = sd_event_add_time_relative(s->event, &s->stop_timer, CLOCK_MONOTONIC, s->config->workers.stop_timeout,
                                           TIMER_ACCURACY_USEC, on_stream_stop_timer, s);
        if (r < 0) {
                log_error_errno(r, "Failed to arm the stop timer, stopping at once: %m");
                stream_finish(s);
                return;
        }
        stream_dispatch(s);   /* closes the stdins that have nothing more to send */
}

bool stream_stopping(const struct stream *s) {
        return s->stopping || s->finished;
}

void stream_reconfigure(struct stream *s, const struct corral_config *config) {
        s->config = config;
}

void stream_set_on_stopping(struct stream *s, void (*cb)(void *userdata), void *userdata) {
        s->on_stopping = cb;
        s->on_stopping_userdata = userdata;
}

int stream_new(sd_event *e, const struct corral_config *config, struct pool *pool, struct stream **ret) {
        struct stream *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        *s = (struct stream) {
                .event = sd_event_ref(e),
                .config = config,
                .pool = pool,
                .keep_order = config->tasks.keep_order,
                .in_fd = -EBADF,
                .next_seq = 1,
                .span_lines = 1,
                .dispatch = stream_dispatch,
                .give_up = stream_give_up_unread,
                .hooks = { .open_stdio = stream_hook_open_stdio, .started = stream_hook_started, .ended = stream_hook_ended,
                           .recycle = stream_hook_recycle },
        };
        s->hooks.userdata = s;
        s->interval_start = stream_now(s);

        r = sink_new(e, STDOUT_FILENO, &s->sink);
        if (r >= 0)
                r = stream_open_results(s);
        if (r >= 0)
                r = queue_url_is(config->tasks.from) ? stream_source_open(s) : stream_open_input(s);
        if (r >= 0)
                r = sd_event_add_defer(e, &s->kick, on_stream_kick, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->kick, SD_EVENT_OFF);
        if (r >= 0 && config->tasks.timeout > 0)
                r = sd_event_add_time_relative(e, &s->timeout_timer, CLOCK_MONOTONIC, config->tasks.timeout,
                                               TIMER_ACCURACY_USEC, on_timeout_timer, s);
        if (r < 0) {
                stream_free(s);
                return r;
        }
        sink_set_callback(s->sink, stream_on_sink, s);
        pool_set_hooks(pool, &s->hooks);
        *ret = s;
        return 0;
}

struct stream *stream_free(struct stream *s) {
        if (!s)
                return NULL;
        if (s->pool)
                pool_unset_hooks(s->pool, &s->hooks);
        if (s->keep_order)
                stream_emit_in_order(s);
        stream_flush(s);
        /* Spans: with keep_order all are in the ring; otherwise in queues and retry. */
        for (unsigned i = 0; !s->keep_order && i < s->n_workers; i++)
                for (struct sworker *sw = s->workers[i]; sw && sw->q_len > 0;) {
                        struct span *span = sworker_pop(sw);
                        chunk_unref(span->chunk);
                        free(span);
                }
        for (size_t i = 0; !s->keep_order && i < s->n_retry; i++) {
                chunk_unref(s->retry[i]->chunk);
                free(s->retry[i]);
        }
        if (s->keep_order)
                for (size_t i = 0; i < s->ring_len; i++) {
                        struct span *span = s->ring[(s->ring_head + i) & (s->ring_cap - 1)];
                        chunk_unref(span->chunk);
                        strbuf_done(&span->out);
                        free(span);
                }
        for (unsigned i = 0; i < s->n_workers; i++)
                if (s->workers[i]) {
                        sworker_close(s->workers[i]);
                        strbuf_done(&s->workers[i]->rbuf);
                        free(s->workers[i]->q);
                        free(s->workers[i]);
                }
        free(s->workers);
        free(s->ring);
        free(s->retry);
        chunk_unref(s->chunk);
        strbuf_done(&s->out);
        sink_free(s->sink);
        stream_source_free(s);   /* after the sink: its marks call the source */
        sd_event_source_disable_unref(s->in_src);
        sd_event_source_disable_unref(s->kick);
        sd_event_source_disable_unref(s->timeout_timer);
        sd_event_source_disable_unref(s->stop_timer);
        sd_event_source_disable_unref(s->pace_timer);
        safe_close(s->in_fd);
        results_file_free(s->results);
        progress_bar_free(s->bar);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}
