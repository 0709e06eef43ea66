/* SPDX-License-Identifier: MIT */
/*
 * The data of stream mode, shared by the files that make it up (see
 * stream_internal.h for the map): limits, chunks of input, spans of lines,
 * the stream's side of a worker, the stream itself, and accessors that only
 * read or flip fields. No file's functions are declared here, so every file
 * of the stream can include it and the arrows between them run one way.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "common/util.h"
#include "conf/config.h"
#include "supervisor/output_sink.h"
#include "supervisor/pool_types.h"
#include "supervisor/results_file.h"
#include "supervisor/stream_lines.h"

struct progress_bar;

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
/* The longest input line and the longest result line: a longer one is an
 * error for that line (given up), never memory that grows with it. */
#define STREAM_LINE_MAX (8u * 1024u * 1024u)

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
        int peek_fd;             /* a read end of its stdin: what it has not read yet (FIONREAD) */
        sd_event_source *in_src, *out_src;
        struct span **q;         /* assigned, oldest first: a ring of q_cap, a power of two */
        unsigned q_cap, q_head, q_len;
        unsigned q_sent;         /* queue entries written whole */
        size_t sent_off;         /* bytes of entry q_sent written */
        size_t lines, bytes;     /* outstanding */
        usec_t progress;         /* its last answer, or when it got work while idle */
        struct strbuf rbuf;      /* result bytes not yet a whole line */
        uint64_t answered;       /* lines, since it started: workers.recycle.tasks */
        uint64_t written;        /* bytes written to its stdin, since it started */
        bool clock_runs;         /* tasks.timeout counts: it answered, or read all it was sent */
        bool draining;           /* to be recycled: no new lines, replaced once it holds none */
        bool blocked;            /* its stdin pipe is full: waiting for EPOLLOUT */
        bool killed;             /* replaced by the stream: timeout or protocol error */
        bool charge;             /* ... and its oldest line is to blame (timeout) */
        bool closed_in;
        bool skipping;           /* dropping a result longer than STREAM_LINE_MAX */
        struct stream_pace pace; /* its answer time: how many lines it may hold */
};

struct stream_source;

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
        struct sink *sink;       /* corral's stdout */
        bool out_paused;         /* the sink is full: workers' results are not read */
        bool output_abandoned;   /* the stop gave up on results nobody read */
        bool ended;              /* the pool was told to stop */
        bool skipping_input;     /* dropping an input line longer than STREAM_LINE_MAX */
        int end_status;
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
        sd_event_source *pace_timer;   /* the next look at a silent worker */
        bool stopping, finished, stalled;
        unsigned stops;

        uint64_t ok, given_up, undone;
        uint64_t first_given_up[FIRST_GIVEN_UP_MAX];
        uint64_t interval_done;
        usec_t interval_start;

        void (*on_stopping)(void *userdata);
        void *on_stopping_userdata;

        /* The owner's (stream.c) answers to what the rooms below it see, so
         * that none of them calls up: input read, a stdin drained, results
         * read (run the dispatch now); a line given up as it was read. */
        void (*dispatch)(struct stream *s);
        void (*give_up)(struct stream *s, uint64_t seq);

        struct results_file *results;   /* --results FILE */
        struct progress_bar *bar;       /* NULL: none (not a terminal, -q) */
        uint64_t bar_total;             /* lines of the input file; 0: unknown */
        struct stream_source *source;   /* lines from a work queue; NULL: from in_fd */
};

static inline usec_t stream_now(struct stream *s) {
        usec_t now = 0;
        (void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        return now;
}

static inline void chunk_unref(struct chunk *c) {
        if (c && --c->refs == 0)
                free(c);
}

/* The input's bytes not cut into spans yet: the start of a line. */
static inline size_t stream_uncut(const struct stream *s) {
        return s->chunk ? s->chunk->len - s->cut : 0;
}

/* A new input chunk of at least `size` bytes (CHUNK_SIZE, doubled until it
 * fits), with the lines not cut yet carried over; the old chunk lives on in
 * the spans cut from it. 0 or -ENOMEM (nothing changed). */
static inline int stream_chunk_renew(struct stream *s, size_t size) {
        size_t carry = stream_uncut(s), cap = CHUNK_SIZE;
        while (cap < size)
                cap *= 2;
        struct chunk *n = malloc(sizeof(*n) + cap);
        if (!n)
                return -ENOMEM;
        *n = (struct chunk) { .refs = 1, .cap = cap, .len = carry };
        if (carry)
                memcpy(n->data, s->chunk->data + s->cut, carry);
        chunk_unref(s->chunk);
        s->chunk = n;
        s->cut = 0;
        return 0;
}

static inline void stream_kick(struct stream *s) {
        (void) sd_event_source_set_enabled(s->kick, SD_EVENT_ONESHOT);
}

static inline struct span **sworker_at(const struct sworker *sw, unsigned i) {
        return &sw->q[(sw->q_head + i) & (sw->q_cap - 1)];
}

static inline struct span *sworker_head(const struct sworker *sw) {
        return sw->q_len ? *sworker_at(sw, 0) : NULL;
}

static inline bool stream_input_done(const struct stream *s) {
        return s->eof || s->stopping;
}

static inline bool stream_input_has_line(const struct stream *s) {
        return s->chunk && s->cut < s->chunk->len &&
               memchr(s->chunk->data + s->cut, '\n', s->chunk->len - s->cut);
}

/* Input is over and nothing waits: the stream is done once workers answer. */
static inline bool stream_nothing_to_send(const struct stream *s) {
        return stream_input_done(s) && s->n_retry == 0 && (s->stopping || !stream_input_has_line(s));
}

static inline bool stream_span_is_head(const struct stream *s, const struct span *span) {
        return !s->keep_order || (s->ring_len > 0 && s->ring[s->ring_head] == span);
}
