/* SPDX-License-Identifier: MIT */
/*
 * One stream worker's side: its pipes (opened for the pool), its queue of
 * spans written with writev(), its results read in big reads and matched to
 * the oldest outstanding lines by counting newlines, a death charged to the
 * line it was busy with, and the pool's hooks that tell the stream of its life.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include "conf/units.h"

#include "supervisor/log.h"
#include "supervisor/stream_input.h"
#include "supervisor/stream_order.h"
#include "supervisor/stream_pace.h"
#include "supervisor/stream_results.h"
#include "supervisor/stream_worker.h"

void sworker_close(struct sworker *sw) {
        sw->blocked = false;
        sw->in_src = sd_event_source_disable_unref(sw->in_src);
        sw->out_src = sd_event_source_disable_unref(sw->out_src);
        sw->in_fd = safe_close(sw->in_fd);
        sw->out_fd = safe_close(sw->out_fd);
        sw->peek_fd = safe_close(sw->peek_fd);
        sw->rbuf.len = 0;
}

/* Whether the worker has taken its oldest line out of its stdin pipe: what
 * we wrote, less what still sits in the pipe, covers that line. Before its
 * first answer that line is the first thing it was sent. */
static bool sworker_took_head(const struct sworker *sw) {
        const struct span *head = sworker_head(sw);
        int unread = 0;
        size_t one;
        if (!head || ioctl(sw->peek_fd, FIONREAD, &unread) < 0)
                return true;   /* cannot tell: the clock runs */
        size_t line = stream_take_lines(head->in + head->from, head->len - head->from, 1, SIZE_MAX, &one);
        return sw->written >= (uint64_t) unread + line;
}

/*
 * tasks.timeout bounds the work on a line, not the worker's start-up (a
 * model server may load for a minute before it reads its first line). Until
 * a worker has answered once, its clock is held while its first line still
 * sits unread in its stdin pipe; it starts once the worker is seen to have
 * taken it, at a check (so a hang is caught between one and two timeouts
 * after the read), or at its first answer.
 * Our own read end of the pipe tells, even after the write end is closed at
 * the end of the input; without one (its dup failed) the clock runs from when
 * the line was sent, as it used to.
 */
void sworker_clock(struct sworker *sw, usec_t now) {
        if (sw->clock_runs || sw->lines == 0)
                return;
        if (sw->answered > 0 || sw->peek_fd < 0) {
                sw->clock_runs = true;   /* from its last answer; or cannot tell: as it used to */
                return;
        }
        /* From when it is seen taken: it may have read it just now. */
        sw->clock_runs = sworker_took_head(sw);
        sw->progress = now;
}

int sworker_reserve(struct sworker *sw) {
        if (sw->q_len < sw->q_cap)
                return 0;
        unsigned cap = sw->q_cap ? 2 * sw->q_cap : 16;
        struct span **a = calloc(cap, sizeof(*a));
        if (!a)
                return -ENOMEM;
        for (unsigned i = 0; i < sw->q_len; i++)
                a[i] = *sworker_at(sw, i);
        free(sw->q);
        sw->q = a;
        sw->q_cap = cap;
        sw->q_head = 0;
        return 0;
}

struct span *sworker_pop(struct sworker *sw) {
        struct span *span = *sworker_at(sw, 0);
        sw->q_head = (sw->q_head + 1) & (sw->q_cap - 1);
        sw->q_len--;
        if (sw->q_sent > 0)
                sw->q_sent--;
        else
                sw->sent_off = 0;   /* answered before we finished sending it: its loss */
        sw->lines -= span->n_lines - span->n_done;
        sw->bytes -= span->len - span->from;
        return span;
}

void sworker_kill(struct sworker *sw, bool charge) {
        sw->killed = true;
        sw->charge = charge;
        /* Whatever it writes from now on answers nothing. */
        sw->out_src = sd_event_source_disable_unref(sw->out_src);
        sw->in_src = sd_event_source_disable_unref(sw->in_src);
        pool_worker_stop(sw->w);
}

static void sworker_close_input(struct sworker *sw) {
        if (sw->closed_in)
                return;
        sw->closed_in = true;
        sw->in_src = sd_event_source_disable_unref(sw->in_src);
        sw->in_fd = safe_close(sw->in_fd);
}

static int sworker_on_stdin(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct sworker *sw = userdata;
        (void) src;
        (void) fd;
        (void) revents;
        sw->blocked = false;
        sworker_write(sw);
        sw->stream->dispatch(sw->stream);
        return 0;
}

/* Writes as much of the queued spans as the pipe takes, many spans per writev. */
void sworker_write(struct sworker *sw) {
        while (sw->in_fd >= 0 && sw->q_sent < sw->q_len) {
                struct iovec iov[IOV_BATCH];
                int n = 0;
                for (unsigned i = sw->q_sent; i < sw->q_len && n < IOV_BATCH; i++) {
                        struct span *span = *sworker_at(sw, i);
                        size_t off = span->from + (i == sw->q_sent ? sw->sent_off : 0);
                        iov[n++] = (struct iovec) { .iov_base = (char *) span->in + off, .iov_len = span->len - off };
                }
                ssize_t k = writev(sw->in_fd, iov, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN) {
                        if (!sw->in_src) {
                                int r = sd_event_add_io(sw->stream->event, &sw->in_src, sw->in_fd, EPOLLOUT,
                                                        sworker_on_stdin, sw);
                                if (r < 0)
                                        log_error_errno(r, "Failed to watch worker %u's stdin: %m", sw->id);
                        }
                        (void) sd_event_source_set_enabled(sw->in_src, SD_EVENT_ON);
                        sw->blocked = true;
                        return;
                }
                if (k < 0) {
                        /* EPIPE: it closed its stdin or died; its exit says the rest. */
                        sworker_close_input(sw);
                        return;
                }
                sw->written += (uint64_t) k;
                for (size_t left = (size_t) k; left > 0;) {
                        struct span *span = *sworker_at(sw, sw->q_sent);
                        size_t rest = span->len - span->from - sw->sent_off;
                        if (left < rest) {
                                sw->sent_off += left;
                                break;
                        }
                        left -= rest;
                        sw->q_sent++;
                        sw->sent_off = 0;
                }
        }
        if (sw->in_src)
                (void) sd_event_source_set_enabled(sw->in_src, SD_EVENT_OFF);
        /* All sent and nothing more will come: its stdin ends, it may finish. */
        if (sw->q_sent == sw->q_len && stream_nothing_to_send(sw->stream))
                sworker_close_input(sw);
}

/* A worker that answered its workers.recycle.tasks lines is recycled. */
static void sworker_check_tasks(struct sworker *sw) {
        char why[96];
        if (!sw->w || sw->killed || sw->w->recycle.tasks == 0 || sw->answered < sw->w->recycle.tasks)
                return;
        snprintf(why, sizeof(why), "%" PRIu64 " lines answered, its limit %" PRIu64, sw->answered,
                 sw->w->recycle.tasks);
        pool_worker_recycle(sw->w, RECYCLE_TASKS, why);
}

/* Matches whole result lines to the oldest outstanding lines. Returns false
 * on a protocol error (a result with nothing outstanding): the worker is
 * being replaced. */
static bool sworker_route(struct sworker *sw, const char *p, size_t len) {
        struct stream *s = sw->stream;
        usec_t now = stream_now(s);

        while (len > 0) {
                struct span *span = sworker_head(sw);
                if (!span) {
                        log_error("worker %u wrote a result with no line pending (protocol error), replacing it",
                                  sw->id);
                        sworker_kill(sw, false);
                        return false;
                }
                size_t m, take = stream_take_lines(p, len, span->n_lines - span->n_done, SIZE_MAX, &m);
                stream_deliver(s, span, p, take);
                stream_write_results(s, span, p, take, now);
                span->n_done += m;
                sw->lines -= m;
                sw->answered += m;
                s->ok += m;
                s->interval_done += m;
                sw->progress = now;
                p += take;
                len -= take;
                if (span->n_done < span->n_lines)
                        continue;
                sworker_pop(sw);
                s->span_lines = stream_span_lines_next(s->span_lines, span->n_lines, now - span->head_since,
                                                       SPAN_LINES_MAX);
                span_complete(s, span);
                if ((span = sworker_head(sw)))
                        span->head_since = now;
        }
        sworker_check_tasks(sw);
        return true;
}

/* The worker's oldest outstanding line gets no result: its answer was
 * longer than STREAM_LINE_MAX. Returns false on a protocol error (nothing
 * outstanding): the worker is being replaced. */
static bool sworker_skip_result(struct sworker *sw) {
        struct stream *s = sw->stream;
        struct span *span = sworker_head(sw);
        if (!span) {
                log_error("worker %u wrote a result with no line pending (protocol error), replacing it", sw->id);
                sworker_kill(sw, false);
                return false;
        }
        uint64_t seq = span->seq + span->n_done;
        log_error("line %" PRIu64 " given up: its result is longer than %u bytes", seq, STREAM_LINE_MAX);
        stream_note_given_up(s, seq);
        span->n_done++;
        sw->lines--;
        sw->answered++;
        sw->progress = stream_now(s);
        if (span->n_done == span->n_lines) {
                sworker_pop(sw);
                span_complete(s, span);
                if ((span = sworker_head(sw)))
                        span->head_since = sw->progress;
        }
        return true;
}

/* Handles n new bytes at the end of rbuf: whole lines are routed (only the
 * new bytes are searched for a newline, so a long line costs linear time),
 * a partial line longer than STREAM_LINE_MAX is dropped as it comes.
 * Returns false when the worker is being replaced. */
static bool sworker_take(struct sworker *sw, size_t n) {
        struct strbuf *b = &sw->rbuf;
        if (sw->skipping) {
                char *nl = memchr(b->data + b->len - n, '\n', n);
                if (!nl) {
                        b->len -= n;   /* more of the over-long result */
                        return true;
                }
                size_t rest = (size_t) (b->data + b->len - (nl + 1));
                memmove(b->data + b->len - n, nl + 1, rest);
                b->len = b->len - n + rest;
                n = rest;
                sw->skipping = false;
                if (!sworker_skip_result(sw))
                        return false;
        }
        const char *nl = n ? memrchr(b->data + b->len - n, '\n', n) : NULL;
        if (nl) {
                size_t whole = (size_t) (nl - b->data) + 1;
                if (!sworker_route(sw, b->data, whole))
                        return false;
                memmove(b->data, b->data + whole, b->len - whole);
                b->len -= whole;
        } else if (b->len > STREAM_LINE_MAX) {
                sw->skipping = true;
                strbuf_done(b);   /* give the memory back: the next read reserves anew */
        }
        return true;
}

/* Reads results: once per wakeup, or until the pipe is empty (`drain`, for a
 * worker that has exited: what it wrote before it died counts). */
static void sworker_read(struct sworker *sw, bool drain) {
        while (sw->out_fd >= 0) {
                if (strbuf_reserve(&sw->rbuf, RESULT_READ) < 0) {
                        log_error("Failed to read results: out of memory");
                        return;
                }
                ssize_t n = read(sw->out_fd, sw->rbuf.data + sw->rbuf.len, sw->rbuf.cap - sw->rbuf.len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        if (n == 0 || errno != EAGAIN) {
                                /* EOF: it closed its stdout; its exit will follow. */
                                sw->out_src = sd_event_source_disable_unref(sw->out_src);
                                sw->out_fd = safe_close(sw->out_fd);
                        }
                        return;
                }
                sw->rbuf.len += (size_t) n;
                if (!sworker_take(sw, (size_t) n))
                        return;
                if (!drain)
                        return;
        }
}

static int sworker_on_stdout(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct sworker *sw = userdata;
        struct stream *s = sw->stream;
        (void) fd;
        (void) revents;
        /* Backpressure: nobody reads our results fast enough; the worker waits
         * on its pipe until the sink drains (stream_on_sink() reads on). */
        if (sink_full(s->sink)) {
                (void) sd_event_source_set_enabled(src, SD_EVENT_OFF);
                s->out_paused = true;
                return 0;
        }
        sworker_read(sw, false);
        stream_flush(s);
        s->dispatch(s);
        return 0;
}

/* The worker died on its oldest unanswered line: after retries + 1 deaths
 * that line is given up (skipped, without a result). */
static void span_charge(struct stream *s, struct span *span) {
        uint64_t seq = span->seq + span->n_done;
        if (span->suspect != seq) {
                span->suspect = seq;
                span->suspect_kills = 0;
        }
        if (++span->suspect_kills <= s->config->tasks.retries)
                return;

        size_t skip, off = stream_take_lines(span->in, span->len, span->n_done, SIZE_MAX, &skip);
        size_t one, len = stream_take_lines(span->in + off, span->len - off, 1, SIZE_MAX, &one);
        int shown = (int) (len > 0 ? len - 1 : 0);
        log_error("line %" PRIu64 " (\"%.*s%s\") given up: it ended %u worker%s", seq, shown > 60 ? 60 : shown,
                  span->in + off, shown > 60 ? "..." : "", span->suspect_kills, span->suspect_kills == 1 ? "" : "s");
        stream_note_given_up(s, seq);
        /* No result for it: skipping it keeps the order of the others. */
        span->n_done++;
}

/* The worker's unanswered lines go back for another worker (or, while
 * stopping, are left undone). */
static void sworker_requeue(struct sworker *sw, bool charge) {
        struct stream *s = sw->stream;
        bool first = true;

        while (sw->q_len > 0) {
                struct span *span = sworker_pop(sw);
                if (first && charge)
                        span_charge(s, span);
                first = false;
                if (span->n_done == span->n_lines) {
                        span_complete(s, span);
                        continue;
                }
                size_t skip;
                span->from = stream_take_lines(span->in, span->len, span->n_done, SIZE_MAX, &skip);
                if (s->stopping || stream_requeue(s, span) < 0)
                        span_abandon(s, span);
        }
        sw->lines = sw->bytes = 0;
        sw->q_sent = 0;
        sw->sent_off = 0;
}

static int sworker_get(struct stream *s, unsigned id, struct sworker **ret) {
        if (id >= s->n_workers) {
                struct sworker **a = reallocarray(s->workers, id + 1, sizeof(*a));
                if (!a)
                        return -ENOMEM;
                for (unsigned i = s->n_workers; i <= id; i++)
                        a[i] = NULL;
                s->workers = a;
                s->n_workers = id + 1;
        }
        if (!s->workers[id]) {
                struct sworker *sw = calloc(1, sizeof(*sw));
                if (!sw)
                        return -ENOMEM;
                *sw = (struct sworker) { .stream = s, .id = id, .in_fd = -EBADF, .out_fd = -EBADF,
                                         .peek_fd = -EBADF };
                s->workers[id] = sw;
        }
        *ret = s->workers[id];
        return 0;
}

int stream_hook_open_stdio(struct pool *p, struct worker *w, int ret_stdio[2], void *userdata) {
        struct stream *s = userdata;
        struct sworker *sw;
        int in[2], out[2];
        (void) p;

        int r = sworker_get(s, w->id, &sw);
        if (r < 0)
                return r;
        sworker_close(sw);
        if (pipe2(in, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(out, O_CLOEXEC) < 0) {
                r = -errno;
                safe_close(in[0]);
                safe_close(in[1]);
                return r;
        }
        /* Big pipes: fewer, larger reads and writes on both sides. Best effort. */
        (void) fcntl(in[1], F_SETPIPE_SZ, PIPE_SIZE);
        (void) fcntl(out[0], F_SETPIPE_SZ, PIPE_SIZE);
        /* Only our ends are non-blocking: the worker's are its own business. */
        (void) fcntl(in[1], F_SETFL, O_NONBLOCK);
        (void) fcntl(out[0], F_SETFL, O_NONBLOCK);
        sw->in_fd = in[1];
        sw->out_fd = out[0];
        /* Holding a read end costs the EPIPE of a worker that closes its
         * stdin and lives on; its exit or the timeout still ends it. */
        sw->peek_fd = fcntl(in[0], F_DUPFD_CLOEXEC, 3);
        ret_stdio[0] = in[0];
        ret_stdio[1] = out[1];
        return 0;
}

void stream_hook_started(struct pool *p, struct worker *w, int error, void *userdata) {
        struct stream *s = userdata;
        struct sworker *sw = w->id < s->n_workers ? s->workers[w->id] : NULL;
        (void) p;

        if (!sw)
                return;
        if (error < 0) {
                sworker_close(sw);
                return;
        }
        sw->w = w;
        sw->killed = sw->charge = sw->closed_in = sw->draining = sw->clock_runs = false;
        sw->answered = sw->written = 0;
        int r = sd_event_add_io(s->event, &sw->out_src, sw->out_fd, EPOLLIN, sworker_on_stdout, sw);
        if (r < 0) {
                log_error_errno(r, "Failed to watch worker %u's output, replacing it: %m", w->id);
                sworker_kill(sw, false);
        }
        stream_kick(s);
}

bool stream_hook_ended(struct pool *p, struct worker *w, bool asked_to_stop, void *userdata) {
        struct stream *s = userdata;
        struct sworker *sw = w->id < s->n_workers ? s->workers[w->id] : NULL;
        (void) p;

        if (!sw || sw->w != w)
                return false;
        if (!sw->killed) {
                sworker_read(sw, true);
                /* A last answer without its newline still answers. */
                if (sw->rbuf.len > 0 && sw->lines > 0 && strbuf_append(&sw->rbuf, "\n", 1) >= 0)
                        (void) sworker_route(sw, sw->rbuf.data, sw->rbuf.len);
        }
        bool outstanding = sw->lines > 0;
        bool charge = sw->killed ? sw->charge : !asked_to_stop;
        if (outstanding)
                sworker_requeue(sw, charge);
        bool expected = !outstanding && sw->closed_in && !sw->killed;
        sworker_close(sw);
        sw->w = NULL;
        if (s->keep_order)
                stream_emit_in_order(s);
        stream_kick(s);
        return expected || s->finished;
}

void stream_hook_recycle(struct pool *p, struct worker *w, void *userdata) {
        struct stream *s = userdata;
        struct sworker *sw = w->id < s->n_workers ? s->workers[w->id] : NULL;
        (void) p;

        if (!sw || sw->w != w)
                return;
        /* Its lines are answered first: it gets no more, and goes once it holds none. */
        sw->draining = true;
        stream_kick(s);
}
