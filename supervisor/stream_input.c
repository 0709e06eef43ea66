/* SPDX-License-Identifier: MIT */
/*
 * Stream mode's input: read in large chunks (a pipe when epoll says it is
 * readable), cut into spans of consecutive lines that point into the chunk
 * (no copy per line), and the queue of spans handed back by workers that
 * went away.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "supervisor/log.h"
#include "supervisor/stream_input.h"
#include "supervisor/stream_pace.h"

/* Reads once into the current chunk (a new one when it is nearly full; the
 * part of a line not cut yet moves along). Returns > 0, 0 at end of input,
 * -EAGAIN, or another negative errno. */
static int stream_read_input(struct stream *s) {
        struct chunk *c = s->chunk;

        if (c && !s->skipping_input && c->len - s->cut > STREAM_LINE_MAX &&
            !memchr(c->data + s->cut, '\n', c->len - s->cut)) {
                /* A line longer than the limit: given up, and the rest of it
                 * is dropped as it is read. */
                log_error("line %" PRIu64 " given up: longer than %u bytes", s->next_seq, STREAM_LINE_MAX);
                s->give_up(s, s->next_seq++);
                s->skipping_input = true;
                c->len = s->cut;
        }
        /* A new chunk also when a long line was dropped from a grown one,
         * so that its memory goes back rather than staying with the reads. */
        if (!c || c->cap - c->len < CHUNK_MIN_READ || (c->cap > CHUNK_SIZE && c->len == s->cut)) {
                /* A long line: room for twice what it has, so that it grows. */
                int r = stream_chunk_renew(s, 2 * stream_uncut(s));
                if (r < 0)
                        return r;
                c = s->chunk;
        }
        /* At most a chunk per read: a long line is checked against
         * STREAM_LINE_MAX as it grows, not after it filled the memory. */
        size_t room = c->cap - c->len;
        ssize_t n = read(s->in_fd, c->data + c->len, room < CHUNK_SIZE ? room : CHUNK_SIZE);
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
        if (s->skipping_input) {
                char *p = c->data + c->len, *nl = memchr(p, '\n', (size_t) n);
                if (!nl)
                        return -EAGAIN;   /* all of it belongs to the over-long line */
                size_t rest = (size_t) (p + n - (nl + 1));
                memmove(p, nl + 1, rest);
                n = (ssize_t) rest;
                s->skipping_input = false;
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

static int stream_on_input(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct stream *s = userdata;
        (void) src;
        (void) fd;
        (void) revents;
        int r = stream_read_input(s);
        if (r < 0 && r != -EAGAIN)
                stream_input_failed(s, r);
        s->dispatch(s);
        return 0;
}

int stream_ring_push(struct stream *s, struct span *span) {
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

bool stream_may_cut(const struct stream *s) {
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
                        if (s->keep_order && stream_ring_push(s, span) < 0) {
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
                if (r <= 0 && !stream_input_has_line(s))
                        return NULL;
        }
}

struct span *stream_next_span(struct stream *s, const struct sworker *sw) {
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
        /* No more than its pace allows: slow lines wait here for whoever frees up first. */
        size_t room = sworker_room(sw);
        if (room < lines)
                lines = room;
        return stream_cut(s, lines);
}

int stream_requeue(struct stream *s, struct span *span) {
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

int stream_open_input(struct stream *s) {
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
        int r = sd_event_add_io(s->event, &s->in_src, s->in_fd, EPOLLIN, stream_on_input, s);
        if (r == -EPERM)
                return 0;   /* /dev/null and the like: epoll cannot watch them, reads never block */
        if (r < 0)
                return log_error_errno(r, "Failed to watch %s: %m", from);
        s->in_poll = true;
        return sd_event_source_set_enabled(s->in_src, SD_EVENT_OFF);
}
