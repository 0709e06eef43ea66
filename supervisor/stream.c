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
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conf/units.h"
#include "supervisor/log.h"
#include "supervisor/stream.h"
#include "supervisor/task.h"

#define CHUNK_SIZE (256u * 1024u)        /* input read at once */
#define CHUNK_MIN_READ (16u * 1024u)     /* less room than this: start a new chunk */
#define SPAN_BYTES_MAX (64u * 1024u)
#define SPAN_LINES_MAX 16384u
/* Input outstanding per worker. Bytes, not lines or spans: a worker whose
 * stdout is block-buffered (sed, awk, python) answers only once it has
 * filled its buffer, so a worker must be able to hold several of them. */
#define WORKER_BYTES_MAX (256u * 1024u)
#define IOV_BATCH 64
/* Spans queued on a worker beyond which new ones get as big as all it holds:
 * a buffering worker then gets its bytes in a few large spans, not in
 * thousands of one-line ones while the span size is still learning. */
#define WORKER_SPANS_SOFT 16u
#define RESULT_READ (256u * 1024u)
#define OUT_FLUSH (256u * 1024u)
#define PIPE_SIZE (1024 * 1024)          /* the unprivileged maximum by default */
#define RING_MIN 256u
#define SPANS_MAX 65536u                 /* in flight: bounds memory with keep_order */
#define IN_FLIGHT_BYTES_MAX (32u * 1024u * 1024u)
#define FIRST_GIVEN_UP_MAX 5

struct chunk {
        unsigned refs;           /* the reader's and one per span cut from it */
        size_t cap, len;
        char data[];
};

struct span {
        uint64_t seq;            /* of its first line, 1-based */
        size_t n_lines, n_done;  /* answered or given up: lines [0, n_done) */
        struct chunk *chunk;     /* NULL once done */
        const char *in;          /* its lines, each ending in '\n' */
        size_t len;
        size_t from;             /* byte offset of line n_done: what a worker is sent */
        struct strbuf out;       /* keep_order: results held for earlier spans */
        uint64_t suspect;        /* the line that last ended a worker, and how often */
        unsigned suspect_kills;
        usec_t head_since;       /* when it became its worker's oldest span */
        bool done;
};

/* The stream's side of a pool worker, by its id. */
struct sworker {
        struct stream *stream;
        struct worker *w;        /* NULL while the slot has no worker */
        unsigned id;
        int in_fd, out_fd;       /* its stdin's write end, its stdout's read end */
        sd_event_source *in_src, *out_src;
        struct span **q;         /* assigned, oldest first: a ring of q_cap, a power of two */
        unsigned q_cap, q_head, q_len;
        unsigned q_sent;         /* queue entries written whole */
        size_t sent_off;         /* bytes of entry q_sent written */
        size_t lines, bytes;     /* outstanding */
        usec_t progress;         /* its last answer, or when it got work while idle */
        struct strbuf rbuf;      /* result bytes not yet a whole line */
        uint64_t answered;       /* lines, since it started: workers.recycle.tasks */
        bool draining;           /* to be recycled: no new lines, replaced once it holds none */
        bool blocked;            /* its stdin pipe is full: waiting for EPOLLOUT */
        bool killed;             /* replaced by the stream: timeout or protocol error */
        bool charge;             /* ... and its oldest line is to blame (timeout) */
        bool closed_in;
};

struct stream {
        sd_event *event;
        const struct corral_config *config;
        struct pool *pool;
        struct pool_hooks hooks;
        bool keep_order;

        int in_fd;
        bool in_poll;            /* a pipe or socket: read when epoll says so */
        sd_event_source *in_src;
        struct chunk *chunk;     /* being read into and cut */
        size_t cut;              /* bytes of chunk already cut into spans */
        bool eof, input_failed, out_failed;
        uint64_t next_seq;
        size_t span_lines;

        struct span **ring;      /* keep_order: spans in input order */
        size_t ring_cap, ring_head, ring_len;
        size_t n_spans;          /* in flight, either way */
        size_t bytes_in_flight;  /* input bytes of those */

        struct span **retry;     /* spans whose worker went away, oldest first */
        size_t n_retry, retry_cap;

        struct sworker **workers;
        unsigned n_workers;

        struct strbuf out;
        sd_event_source *kick, *timeout_timer, *stop_timer;
        bool stopping, finished, stalled;
        unsigned stops;

        uint64_t ok, given_up, undone;
        uint64_t first_given_up[FIRST_GIVEN_UP_MAX];
        uint64_t interval_done;
        usec_t interval_start;

        void (*on_stopping)(void *userdata);
        void *on_stopping_userdata;
};

static void stream_dispatch(struct stream *s);
static void sworker_write(struct sworker *sw);

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

static usec_t stream_now(struct stream *s) {
        usec_t now = 0;
        (void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        return now;
}

static void chunk_unref(struct chunk *c) {
        if (c && --c->refs == 0)
                free(c);
}

static void stream_kick(struct stream *s) {
        (void) sd_event_source_set_enabled(s->kick, SD_EVENT_ONESHOT);
}

/* Writes the output buffer to stdout, waiting if stdout is a full
 * non-blocking pipe: the results are the point of the run. */
static void stream_flush(struct stream *s) {
        size_t off = 0;
        while (off < s->out.len) {
                ssize_t n = write(STDOUT_FILENO, s->out.data + off, s->out.len - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        (void) poll(&(struct pollfd) { .fd = STDOUT_FILENO, .events = POLLOUT }, 1, -1);
                        continue;
                }
                if (n < 0) {
                        /* Nobody reads the results (EPIPE): the stream stops, see
                         * stream_dispatch(); what is left is dropped. */
                        if (!s->out_failed)
                                log_error_errno(errno, "Failed to write results, stopping: %m");
                        s->out_failed = true;
                        break;
                }
                off += (size_t) n;
        }
        s->out.len = 0;
}

static bool span_is_head(const struct stream *s, const struct span *span) {
        return !s->keep_order || (s->ring_len > 0 && s->ring[s->ring_head] == span);
}

/* Results of the oldest spans in order; a head span still running hands over
 * what it holds, and its next results go straight out. */
static void emit_in_order(struct stream *s) {
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
                free(span);
        }
}

static void span_complete(struct stream *s, struct span *span) {
        span->done = true;
        chunk_unref(span->chunk);
        span->chunk = NULL;
        if (s->keep_order)
                emit_in_order(s);
        else {
                s->n_spans--;
                s->bytes_in_flight -= span->len;
                free(span);
        }
}

/* A line left without a result: the stop gave up on it. */
static void span_abandon(struct stream *s, struct span *span) {
        s->undone += span->n_lines - span->n_done;
        span_complete(s, span);
}

static bool input_done(const struct stream *s) {
        return s->eof || s->stopping;
}

static bool input_has_line(const struct stream *s) {
        return s->chunk && s->cut < s->chunk->len &&
               memchr(s->chunk->data + s->cut, '\n', s->chunk->len - s->cut);
}

/* Input is over and nothing waits: the stream is done once workers answer. */
static bool nothing_to_send(const struct stream *s) {
        return input_done(s) && s->n_retry == 0 && (s->stopping || !input_has_line(s));
}

static void stream_finish(struct stream *s) {
        int status;

        if (s->finished)
                return;
        s->finished = true;
        s->stop_timer = sd_event_source_disable_unref(s->stop_timer);
        s->timeout_timer = sd_event_source_disable_unref(s->timeout_timer);
        s->in_src = sd_event_source_disable_unref(s->in_src);
        if (s->keep_order)
                emit_in_order(s);
        stream_flush(s);

        bool unread = s->stopping && !s->eof;
        status = s->given_up || s->undone || unread || s->input_failed || s->out_failed ? 1 : 0;
        if (s->given_up) {
                char seqs[128] = "";
                size_t n = 0;
                for (uint64_t i = 0; i < s->given_up && i < FIRST_GIVEN_UP_MAX; i++)
                        n += (size_t) snprintf(seqs + n, sizeof(seqs) - n, "%s%" PRIu64, i ? ", " : "",
                                               s->first_given_up[i]);
                log_error("stream: %" PRIu64 " lines answered, %" PRIu64 " given up (line %s%s)", s->ok,
                          s->given_up, seqs, s->given_up > FIRST_GIVEN_UP_MAX ? ", ..." : "");
        } else
                log_info("stream: %" PRIu64 " lines answered%s", s->ok,
                         unread || s->undone ? ", stopped with lines left undone" : "");
        if (s->undone)
                log_warning("stream: %" PRIu64 " lines sent to workers were left without a result", s->undone);
        pool_stop(s->pool, status);
}

static void stream_maybe_finish(struct stream *s) {
        if (!s->finished && nothing_to_send(s) && s->n_spans == 0)
                stream_finish(s);
}

/* ---- workers: pipes, writing lines, reading results ---- */

static void sworker_close(struct sworker *sw) {
        sw->blocked = false;
        sw->in_src = sd_event_source_disable_unref(sw->in_src);
        sw->out_src = sd_event_source_disable_unref(sw->out_src);
        sw->in_fd = safe_close(sw->in_fd);
        sw->out_fd = safe_close(sw->out_fd);
        sw->rbuf.len = 0;
}

static struct span **sworker_at(const struct sworker *sw, unsigned i) {
        return &sw->q[(sw->q_head + i) & (sw->q_cap - 1)];
}

static struct span *sworker_head(const struct sworker *sw) {
        return sw->q_len ? *sworker_at(sw, 0) : NULL;
}

/* Room for one more span in the queue. Returns 0 or -ENOMEM. */
static int sworker_reserve(struct sworker *sw) {
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

static struct span *sworker_pop(struct sworker *sw) {
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

/* Replaces the worker; its lines go to others when it is gone. */
static void sworker_kill(struct sworker *sw, bool charge) {
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

static int on_worker_stdin(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct sworker *sw = userdata;
        (void) src;
        (void) fd;
        (void) revents;
        sw->blocked = false;
        sworker_write(sw);
        stream_dispatch(sw->stream);
        return 0;
}

/* Writes as much of the queued spans as the pipe takes, many spans per writev. */
static void sworker_write(struct sworker *sw) {
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
                                                        on_worker_stdin, sw);
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
        if (sw->q_sent == sw->q_len && nothing_to_send(sw->stream))
                sworker_close_input(sw);
}

/* Lines the worker may still be given under workers.recycle.tasks. */
static uint64_t sworker_budget(const struct sworker *sw) {
        uint64_t limit = sw->w ? sw->w->recycle.tasks : 0, used = sw->answered + sw->lines;
        if (limit == 0)
                return UINT64_MAX;
        return used < limit ? limit - used : 0;
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

static void deliver(struct stream *s, struct span *span, const char *p, size_t len) {
        struct strbuf *b = span_is_head(s, span) ? &s->out : &span->out;
        if (strbuf_append(b, p, len) < 0)
                log_error("Failed to keep a result: out of memory");
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
                deliver(s, span, p, take);
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
                const char *nl = memrchr(sw->rbuf.data, '\n', sw->rbuf.len);
                if (nl) {
                        size_t whole = (size_t) (nl - sw->rbuf.data) + 1;
                        if (!sworker_route(sw, sw->rbuf.data, whole))
                                return;
                        memmove(sw->rbuf.data, sw->rbuf.data + whole, sw->rbuf.len - whole);
                        sw->rbuf.len -= whole;
                }
                if (!drain)
                        return;
        }
}

static int on_worker_stdout(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct sworker *sw = userdata;
        struct stream *s = sw->stream;
        (void) src;
        (void) fd;
        (void) revents;
        sworker_read(sw, false);
        stream_flush(s);
        stream_dispatch(s);
        return 0;
}

/* ---- input ---- */

/* Reads once into the current chunk (a new one when it is nearly full; the
 * part of a line not cut yet moves along). Returns > 0, 0 at end of input,
 * -EAGAIN, or another negative errno. */
static int stream_read_input(struct stream *s) {
        struct chunk *c = s->chunk;

        if (!c || c->cap - c->len < CHUNK_MIN_READ) {
                size_t carry = c ? c->len - s->cut : 0, cap = CHUNK_SIZE;
                while (cap < 2 * carry)
                        cap *= 2;   /* a long line: grow until it fits */
                struct chunk *n = malloc(sizeof(*n) + cap);
                if (!n)
                        return -ENOMEM;
                *n = (struct chunk) { .refs = 1, .cap = cap, .len = carry };
                if (carry)
                        memcpy(n->data, c->data + s->cut, carry);
                chunk_unref(c);
                s->chunk = c = n;
                s->cut = 0;
        }
        ssize_t n = read(s->in_fd, c->data + c->len, c->cap - c->len);
        if (n < 0)
                return errno == EINTR ? -EAGAIN : -errno;
        if (n == 0) {
                s->eof = true;
                /* A last line without its newline is still a line. */
                if (c->len > s->cut && c->data[c->len - 1] != '\n') {
                        if (c->len == c->cap) {
                                s->eof = false;   /* next read makes room and comes back here */
                                return -EAGAIN;
                        }
                        c->data[c->len++] = '\n';
                }
                s->in_src = sd_event_source_disable_unref(s->in_src);
                return 0;
        }
        c->len += (size_t) n;
        return (int) n;
}

static void stream_input_failed(struct stream *s, int r) {
        log_error_errno(r, "Failed to read the stream's input %s: %m", s->config->tasks.from);
        s->input_failed = true;
        s->eof = true;
        s->in_src = sd_event_source_disable_unref(s->in_src);
}

static int on_input(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct stream *s = userdata;
        (void) src;
        (void) fd;
        (void) revents;
        int r = stream_read_input(s);
        if (r < 0 && r != -EAGAIN)
                stream_input_failed(s, r);
        stream_dispatch(s);
        return 0;
}

static int ring_push(struct stream *s, struct span *span) {
        if (s->ring_len == s->ring_cap) {
                size_t cap = s->ring_cap ? 2 * s->ring_cap : RING_MIN;
                struct span **a = calloc(cap, sizeof(*a));
                if (!a)
                        return -ENOMEM;
                for (size_t i = 0; i < s->ring_len; i++)
                        a[i] = s->ring[(s->ring_head + i) & (s->ring_cap - 1)];
                free(s->ring);
                s->ring = a;
                s->ring_cap = cap;
                s->ring_head = 0;
        }
        s->ring[(s->ring_head + s->ring_len++) & (s->ring_cap - 1)] = span;
        return 0;
}

static bool stream_may_cut(const struct stream *s) {
        return s->n_spans < SPANS_MAX && s->bytes_in_flight < IN_FLIGHT_BYTES_MAX;
}

/* The next span of fresh input, or NULL when none can be cut now. */
static struct span *stream_cut(struct stream *s, size_t max_lines) {
        if (!stream_may_cut(s))
                return NULL;
        for (;;) {
                struct chunk *c = s->chunk;
                size_t lines = 0, take = 0;
                if (c)
                        take = stream_take_lines(c->data + s->cut, c->len - s->cut, max_lines, SPAN_BYTES_MAX,
                                                 &lines);
                if (take > 0) {
                        struct span *span = malloc(sizeof(*span));
                        if (!span)
                                return NULL;
                        *span = (struct span) {
                                .seq = s->next_seq, .n_lines = lines, .chunk = c,
                                .in = c->data + s->cut, .len = take,
                        };
                        if (s->keep_order && ring_push(s, span) < 0) {
                                free(span);
                                return NULL;
                        }
                        c->refs++;
                        s->cut += take;
                        s->next_seq += lines;
                        s->n_spans++;
                        s->bytes_in_flight += take;
                        return span;
                }
                /* A pipe is read when epoll says so; a file or /dev/null at once. */
                if (s->eof || s->stopping || s->in_poll)
                        return NULL;
                int r = stream_read_input(s);
                if (r == -EAGAIN)
                        continue;
                if (r < 0)
                        stream_input_failed(s, r);
                if (r <= 0 && !input_has_line(s))
                        return NULL;
        }
}

static struct span *stream_next_span(struct stream *s, const struct sworker *sw) {
        if (s->n_retry > 0) {
                struct span *span = s->retry[0];
                memmove(s->retry, s->retry + 1, --s->n_retry * sizeof(*s->retry));
                return span;
        }
        size_t lines = s->span_lines;
        if (sw->q_len >= WORKER_SPANS_SOFT && sw->lines > lines)
                lines = sw->lines < SPAN_LINES_MAX ? sw->lines : SPAN_LINES_MAX;
        /* No more than it may answer before it is recycled. */
        uint64_t budget = sworker_budget(sw);
        if (budget < lines)
                lines = (size_t) budget;
        return stream_cut(s, lines);
}

static int stream_requeue(struct stream *s, struct span *span) {
        if (s->n_retry == s->retry_cap) {
                size_t cap = s->retry_cap ? 2 * s->retry_cap : 16;
                struct span **a = reallocarray(s->retry, cap, sizeof(*a));
                if (!a)
                        return -ENOMEM;
                s->retry = a;
                s->retry_cap = cap;
        }
        s->retry[s->n_retry++] = span;
        return 0;
}

/* ---- dispatch ---- */

static bool sworker_usable(const struct sworker *sw) {
        return sw->w && sw->w->state == WORKER_RUNNING && !sw->killed && !sw->closed_in && sw->in_fd >= 0;
}

/* The usable worker with the fewest lines outstanding that has room for more. */
static struct sworker *stream_pick(struct stream *s) {
        struct sworker *best = NULL;
        for (unsigned i = 0; i < s->n_workers; i++) {
                struct sworker *sw = s->workers[i];
                if (!sw || !sworker_usable(sw) || sw->draining || sworker_budget(sw) == 0 ||
                    sw->bytes >= WORKER_BYTES_MAX || sworker_reserve(sw) < 0)
                        continue;
                if (!best || sw->lines < best->lines)
                        best = sw;
        }
        return best;
}

static void sworker_assign(struct sworker *sw, struct span *span, usec_t now) {
        if (sw->q_len == 0) {
                sw->progress = now;
                span->head_since = now;
        }
        *sworker_at(sw, sw->q_len++) = span;
        sw->lines += span->n_lines - span->n_done;
        sw->bytes += span->len - span->from;
}

static void stream_dispatch(struct stream *s) {
        usec_t now = stream_now(s);
        bool want_input = false;

        if (s->finished)
                return;
        if (s->out_failed && !s->stopping) {
                stream_stop(s);   /* comes back here once, stopping */
                return;
        }
        s->stalled = false;
        if (!s->stopping)
                for (;;) {
                        struct sworker *sw = stream_pick(s);
                        if (!sw) {
                                s->stalled = s->n_retry > 0 || input_has_line(s);
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
        if (s->in_src)
                (void) sd_event_source_set_enabled(s->in_src, want_input ? SD_EVENT_ON : SD_EVENT_OFF);
        /* A recycled worker that answered all it had is replaced, unless the
         * input is over: then its stdin has just closed and it ends anyway. */
        for (unsigned i = 0; !nothing_to_send(s) && i < s->n_workers; i++) {
                struct sworker *sw = s->workers[i];
                if (sw && sw->w && sw->draining && !sw->killed && sw->lines == 0)
                        pool_worker_recycle_ready(sw->w);
        }
        stream_maybe_finish(s);
}

static int on_kick(sd_event_source *src, void *userdata) {
        (void) src;
        stream_dispatch(userdata);
        return 0;
}

/* ---- failures ---- */

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
        if (s->given_up < FIRST_GIVEN_UP_MAX)
                s->first_given_up[s->given_up] = seq;
        s->given_up++;
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

static int on_timeout_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        struct stream *s = userdata;
        usec_t timeout = s->config->tasks.timeout, now = stream_now(s), next = now + timeout;
        char t[32];
        (void) usec;   /* the scheduled time: progress may be later than it, now is not */

        for (unsigned i = 0; timeout > 0 && i < s->n_workers; i++) {
                struct sworker *sw = s->workers[i];
                if (!sw || !sw->w || sw->killed || sw->lines == 0)
                        continue;
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

/* ---- the pool's hooks ---- */

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
                *sw = (struct sworker) { .stream = s, .id = id, .in_fd = -EBADF, .out_fd = -EBADF };
                s->workers[id] = sw;
        }
        *ret = s->workers[id];
        return 0;
}

static int hook_open_stdio(struct pool *p, struct worker *w, int ret_stdio[2], void *userdata) {
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
        ret_stdio[0] = in[0];
        ret_stdio[1] = out[1];
        return 0;
}

static void hook_started(struct pool *p, struct worker *w, int error, void *userdata) {
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
        sw->killed = sw->charge = sw->closed_in = sw->draining = false;
        sw->answered = 0;
        int r = sd_event_add_io(s->event, &sw->out_src, sw->out_fd, EPOLLIN, on_worker_stdout, sw);
        if (r < 0) {
                log_error_errno(r, "Failed to watch worker %u's output, replacing it: %m", w->id);
                sworker_kill(sw, false);
        }
        stream_kick(s);
}

static bool hook_ended(struct pool *p, struct worker *w, bool asked_to_stop, void *userdata) {
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
                emit_in_order(s);
        stream_kick(s);
        return expected || s->finished;
}

static void hook_recycle(struct pool *p, struct worker *w, void *userdata) {
        struct stream *s = userdata;
        struct sworker *sw = w->id < s->n_workers ? s->workers[w->id] : NULL;
        (void) p;

        if (!sw || sw->w != w)
                return;
        /* Its lines are answered first: it gets no more, and goes once it holds none. */
        sw->draining = true;
        stream_kick(s);
}

/* ---- the public side ---- */

static int on_stop_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        struct stream *s = userdata;
        char t[32];
        (void) src;
        (void) usec;
        log_warning("stream: lines still outstanding after %s, stopping the workers",
                    format_duration(s->config->workers.stop_timeout, t));
        stream_finish(s);
        return 0;
}

void stream_stop(struct stream *s) {
        s->stops++;
        if (s->finished || s->stops > 2) {
                pool_stop(s->pool, 1);
                return;
        }
        if (s->stopping) {
                stream_finish(s);
                return;
        }
        s->stopping = true;
        s->in_src = sd_event_source_disable_unref(s->in_src);
        while (s->n_retry > 0)
                span_abandon(s, s->retry[--s->n_retry]);
        if (s->on_stopping)
                s->on_stopping(s->on_stopping_userdata);

        size_t outstanding = 0;
        for (unsigned i = 0; i < s->n_workers; i++)
                if (s->workers[i])
                        outstanding += s->workers[i]->lines;
        log_info("stream: no more input; waiting for %zu outstanding lines", outstanding);
        int r = sd_event_add_time_relative(s->event, &s->stop_timer, CLOCK_MONOTONIC,
                                           s->config->workers.stop_timeout, TIMER_ACCURACY_USEC, on_stop_timer, s);
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

static uint64_t stream_backlog(const struct stream *s) {
        uint64_t n = 0;
        for (size_t i = 0; i < s->n_retry; i++)
                n += s->retry[i]->n_lines - s->retry[i]->n_done;
        /* Lines waiting in the input while every worker is full: one more span's worth. */
        return n + (s->stalled ? s->span_lines : 0);
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
        signals_set(sig, SIGNAL_TASKS_BACKLOG, (double) stream_backlog(s));
        if (running > 0)
                signals_set(sig, SIGNAL_TASKS_BUSY, 100.0 * busy / (double) running);
        if (elapsed > 0)
                signals_set(sig, SIGNAL_TASKS_RATE, (double) s->interval_done / elapsed);
        s->interval_start = now;
        s->interval_done = 0;
}

void stream_fill_snapshot(const struct stream *s, struct metrics_snapshot *m) {
        unsigned busy, running;
        uint64_t lines;

        stream_busy(s, &busy, &running, &lines);
        m->tasks_ok = s->ok;
        m->tasks_failed = s->given_up;
        m->tasks_pending = stream_backlog(s) + lines;
        m->utilization = running ? (double) busy / (double) running : 0;
}

static int stream_open_input(struct stream *s) {
        const char *from = s->config->tasks.from;
        struct stat st;

        if (strcmp(from, "-") == 0)
                s->in_fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
        else
                s->in_fd = open(from, O_RDONLY | O_CLOEXEC);
        if (s->in_fd < 0)
                return log_error_errno(errno, "cannot open %s: %m", from), -EINVAL;
        if (fstat(s->in_fd, &st) < 0)
                return log_error_errno(errno, "cannot stat %s: %m", from), -EINVAL;
        if (S_ISREG(st.st_mode))
                return 0;
        int r = sd_event_add_io(s->event, &s->in_src, s->in_fd, EPOLLIN, on_input, s);
        if (r == -EPERM)
                return 0;   /* /dev/null and the like: epoll cannot watch them, reads never block */
        if (r < 0)
                return log_error_errno(r, "Failed to watch %s: %m", from);
        s->in_poll = true;
        return sd_event_source_set_enabled(s->in_src, SD_EVENT_OFF);
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
                .hooks = { .open_stdio = hook_open_stdio, .started = hook_started, .ended = hook_ended,
                           .recycle = hook_recycle },
        };
        s->hooks.userdata = s;
        s->interval_start = stream_now(s);

        r = stream_open_input(s);
        if (r >= 0)
                r = sd_event_add_defer(e, &s->kick, on_kick, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->kick, SD_EVENT_OFF);
        if (r >= 0 && config->tasks.timeout > 0)
                r = sd_event_add_time_relative(e, &s->timeout_timer, CLOCK_MONOTONIC, config->tasks.timeout,
                                               TIMER_ACCURACY_USEC, on_timeout_timer, s);
        if (r < 0) {
                stream_free(s);
                return r;
        }
        pool->hooks = &s->hooks;
        *ret = s;
        return 0;
}

struct stream *stream_free(struct stream *s) {
        if (!s)
                return NULL;
        if (s->pool && s->pool->hooks == &s->hooks)
                s->pool->hooks = NULL;
        if (s->keep_order)
                emit_in_order(s);
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
        sd_event_source_disable_unref(s->in_src);
        sd_event_source_disable_unref(s->kick);
        sd_event_source_disable_unref(s->timeout_timer);
        sd_event_source_disable_unref(s->stop_timer);
        safe_close(s->in_fd);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}
