/* SPDX-License-Identifier: MIT */
/*
 * The inside of the work queue task source, shared by its files:
 *   queue_source.c   the source: reading and claiming entries, stop, the end
 *   queue_entries.c  the entries taken: ack, dead stream, hand-back, lease
 *                    renewal
 *   queue_info.c     the group's lag and pending (signals, metrics,
 *                    --until-empty)
 *   queue_redis.c    hiredis on the loop, and the checks before it runs
 * Nothing outside these files includes this header.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/util.h"
#include "metrics/corral_metrics.h"
#include "policy/signals.h"
#include "supervisor/queue_redis.h"
#include "supervisor/task_source.h"
#include "supervisor/spool.h"

/* "<ms>-<seq>": two 64-bit numbers and a dash. */
#define QUEUE_ID_MAX 48
/* What a results stream entry keeps of a task's stdout. */
#define QUEUE_RESULT_STDOUT_MAX (64u * 1024u)

enum qentry_state {
        QENTRY_HELD,             /* queued here or running */
        QENTRY_WRITING,          /* its task ended; its output is being written */
        QENTRY_ACK,              /* succeeded, output written: XACK */
        QENTRY_CHECK,            /* failed: how often was it delivered? (XPENDING) */
        QENTRY_DEAD,             /* delivered max_deliveries times: to STREAM:dead, XACK */
        QENTRY_BACK,             /* to be taken by another: idle set past the lease */
        _QENTRY_STATE_MAX,
};

struct qentry {
        struct qsource *q;
        char id[QUEUE_ID_MAX];
        uint64_t seq;            /* the consumer's number of its line; 0: none (never given) */
        char *task;              /* owned: for the dead stream */
        size_t task_len;
        enum qentry_state state;
        bool sent;               /* the command of its state is on the wire */
        int exit;                /* of its last attempt (128+N: signal N; -1: timeout) */
        const char *reason;      /* static: why it never ran (the dead entry says), or NULL */
        double runtime;          /* seconds, of its last attempt */
        char *out;               /* owned, for the results stream: the start of its stdout */
        size_t out_len;
};

struct qsource {
        sd_event *event;
        struct task_consumer c;  /* who runs the lines */
        usec_t stop_timeout;     /* workers.stop_timeout: how long a TERM's hand-back may wait */
        usec_t sample_interval;  /* how often lag and pending are read */
        struct queue_url url;
        char consumer[320];
        char *dead_key;          /* STREAM:dead */
        char *results_key;       /* tasks.results' stream, or NULL */
        struct strbuf captured;  /* the stdout of the task that is ending, for results */
        usec_t lease;
        unsigned max_deliveries;
        bool until_empty;
        struct redis_link *link;

        struct qentry **e;       /* the entries taken and not settled; unordered */
        size_t n, cap;
        uint64_t next_seq;

        bool fetching, polling, claim_due;
        size_t got;              /* entries the current fetch brought */
        usec_t last_claim, poll_delay;
        char claim_cursor[QUEUE_ID_MAX];
        bool recover;            /* reading this consumer's own pending entries (from recover_from) */
        char recover_from[QUEUE_ID_MAX];
        sd_event_source *poll_timer, *renew_timer, *info_timer, *stop_timer, *retry_timer;
        struct strbuf id_var;

        int64_t lag, pending;    /* the group's, as last read; -1: unknown */
        bool info_sent, empty_check;
        uint64_t dead, reclaimed, acked, handed_back;
        bool stopping, ended, gave_up, freeing;
        bool claim_warned, read_warned, settle_warned;   /* a failing command is logged once */
};

/* redis_link_command() for a command of NUL-terminated strings. */
static inline int qsource_command(struct qsource *q, redisCallbackFn *fn, void *privdata, size_t argc,
                                  const char **argv) {
        size_t len[argc];
        for (size_t i = 0; i < argc; i++)
                len[i] = strlen(argv[i]);
        return redis_link_command(q->link, fn, privdata, (int) argc, argv, len);
}

/* queue_entries.c */
/* Adds an entry with the next Seq; its task text is copied. 0 or -ENOMEM. */
int qentry_add(struct qsource *q, const char *id, const char *task, size_t task_len, struct qentry **ret);
struct qentry *qentry_find_id(struct qsource *q, const char *id);
struct qentry *qentry_find_seq(struct qsource *q, uint64_t seq);
/* Moves e to state s; its command goes with the next qentry_flush(). */
void qentry_set(struct qsource *q, struct qentry *e, enum qentry_state s);
/* Sends the command of every entry whose state has one and that is not on
 * the wire (after a change, or a reconnect). */
void qentry_flush(struct qsource *q);
void qentry_free_all(struct qsource *q);
/* struct task_source_ops.capture and .done: acts once the task's output is written. */
void qentry_capture(void *src, const struct spool *out);
void qentry_done(void *src, uint64_t seq, unsigned lines, const struct task_report *r);
/* struct task_source_ops.capture_lines: with a results stream, each entry
 * keeps the start of its answer line until done. */
void qentry_capture_lines(void *src, uint64_t seq, const char *p, size_t len);
/* struct task_source_ops.not_run: its entry goes to the dead stream at once. */
void qentry_not_run(void *src, uint64_t seq, const char *why);
/* The lease renewal timer and the info timer. 0 or a negative errno. */
int qsource_start_timers(struct qsource *q);

/* queue_info.c */
/* Reads the group's lag and pending; with --until-empty ends the input when
 * both are 0 (nothing undelivered, nothing being worked on anywhere). */
void qsource_check_empty(struct qsource *q);
void qsource_read_info(struct qsource *q);
/* XGROUP CREATE ... MKSTREAM again (the stream or group was deleted). */
void qsource_recreate_group(struct qsource *q);
bool qsource_backlog(const void *src, uint64_t *ret);
void qsource_fill_snapshot(const void *src, struct metrics_snapshot *s);
void qsource_fill_signals(const void *src, struct signals *s);
