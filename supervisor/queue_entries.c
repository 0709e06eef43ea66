/* SPDX-License-Identifier: MIT */
/*
 * The entries a queue consumer has taken, from delivery to settling: an
 * entry is acknowledged (XACK) only once its task succeeded and its output
 * was written; a failed one is handed back for another try (its idle time set
 * past the lease, so any consumer's XAUTOCLAIM takes it at once) until it was
 * delivered max_deliveries times, then moved to STREAM:dead and acknowledged
 * in one MULTI/EXEC. While held, entries' leases are renewed (XCLAIM JUSTID).
 * A command lost with the connection is sent again after the reconnect.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/log.h"
#include "supervisor/queue_internal.h"

/* Hand-back: idle past any consumer's lease (lease + a day), not so far that
 * Redis would clamp it (it subtracts it from the time in ms). */
#define HAND_BACK_EXTRA_MS (24ull * 3600 * 1000)
#define RETRY_DELAY (200 * USEC_PER_MSEC)

int qentry_add(struct qsource *q, const char *id, const char *task, size_t task_len, struct qentry **ret) {
        if (q->n == q->cap) {
                size_t cap = q->cap ? q->cap * 2 : 64;
                struct qentry **a = reallocarray(q->e, cap, sizeof(*a));
                if (!a)
                        return -ENOMEM;
                q->e = a;
                q->cap = cap;
        }
        struct qentry *e = calloc(1, sizeof(*e));
        if (!e || !(e->task = malloc(task_len + 1))) {
                free(e);
                return -ENOMEM;
        }
        memcpy(e->task, task, task_len);    /* a field may hold a NUL: kept whole */
        e->task[task_len] = '\0';
        snprintf(e->id, sizeof(e->id), "%s", id);
        e->q = q;
        e->task_len = task_len;
        e->seq = ++q->next_seq;
        q->e[q->n++] = e;
        *ret = e;
        return 0;
}

/* Linear: a consumer holds a few times workers.max entries at most. */
struct qentry *qentry_find_id(struct qsource *q, const char *id) {
        for (size_t i = 0; i < q->n; i++)
                if (strcmp(q->e[i]->id, id) == 0)
                        return q->e[i];
        return NULL;
}

struct qentry *qentry_find_seq(struct qsource *q, uint64_t seq) {
        for (size_t i = 0; i < q->n; i++)
                if (q->e[i]->seq == seq)
                        return q->e[i];
        return NULL;
}

void qentry_set(struct qsource *q, struct qentry *e, enum qentry_state s) {
        (void) q;
        e->state = s;
        e->sent = false;
}

/* Settled: out of the table. The end may have waited for it. */
static void qentry_remove(struct qsource *q, struct qentry *e) {
        for (size_t i = 0; i < q->n; i++)
                if (q->e[i] == e) {
                        q->e[i] = q->e[--q->n];
                        break;
                }
        free(e->task);
        free(e->out);
        free(e);
        if (q->n == 0 && !q->freeing && (q->stopping || q->ended))
                q->c.progress(q->c.data);
}

void qentry_free_all(struct qsource *q) {
        for (size_t i = 0; i < q->n; i++) {
                free(q->e[i]->task);
                free(q->e[i]->out);
                free(q->e[i]);
        }
        free(q->e);
        q->e = NULL;
        q->n = q->cap = 0;
}

static int on_entry_retry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        qentry_flush(userdata);
        return 0;
}

/* An entry's command was refused (a server still loading its data after a
 * restart answers LOADING): it goes again shortly, rather than leaving the
 * entry pending until its lease expires. Logged once until one succeeds. */
static void retry_later(struct qsource *q, struct qentry *e, const char *what, const char *why) {
        e->sent = false;
        if (!q->settle_warned)
                log_warning("%s: entry %s: %s failed: %s; trying again", q->url.stream, e->id, what, why);
        q->settle_warned = true;
        int r = q->retry_timer ? sd_event_source_set_time_relative(q->retry_timer, RETRY_DELAY) :
                sd_event_add_time_relative(q->event, &q->retry_timer, CLOCK_MONOTONIC, RETRY_DELAY, 0,
                                           on_entry_retry_timer, q);
        if (r >= 0)
                r = sd_event_source_set_enabled(q->retry_timer, SD_EVENT_ONESHOT);
        if (r < 0)
                log_warning_errno(r, "Failed to arm the retry timer, the entry stays pending until its lease "
                                  "expires: %m");
}

/* An entry's reply, or NULL when there is nothing to do with it: the source
 * is being freed, or the connection went (the command is sent again after
 * the reconnect). */
static const redisReply *entry_reply(struct qentry *e, void *reply) {
        if (e->q->freeing)
                return NULL;
        if (!reply)
                e->sent = false;
        return reply;
}

/* The reply to an entry's command: settled, or (connection lost) to be sent
 * again after the reconnect; refused: sent again shortly. */
static void on_settled(redisAsyncContext *ac, void *reply, void *privdata) {
        struct qentry *e = privdata;
        struct qsource *q = e->q;
        const redisReply *r = entry_reply(e, reply);
        (void) ac;
        if (!r)
                return;
        bool transaction = e->state == QENTRY_DEAD || (e->state == QENTRY_ACK && q->results_key);
        if (r->type == REDIS_REPLY_ERROR || (transaction && r->type != REDIS_REPLY_ARRAY)) {
                retry_later(q, e, e->state == QENTRY_ACK ? "XACK" : e->state == QENTRY_DEAD ?
                            "moving it to the dead stream" : "handing it back",
                            r->type == REDIS_REPLY_ERROR ? r->str : "transaction aborted");
                return;
        }
        q->settle_warned = false;
        if (e->state == QENTRY_ACK)
                q->acked++;
        else if (e->state == QENTRY_DEAD) {
                q->dead++;
                if (e->reason)
                        log_warning("%s: entry %s cannot run (%s), moved to %s", q->url.stream, e->id, e->reason,
                                    q->dead_key);
                else
                        log_warning("%s: entry %s failed (exit %d) on its last delivery, moved to %s",
                                    q->url.stream, e->id, e->exit, q->dead_key);
        } else if (e->state == QENTRY_BACK) {
                q->handed_back++;
                q->claim_due = true;   /* perhaps for us: another try here */
        }
        qentry_remove(q, e);
}

/* XPENDING's answer for a failed entry: [[id, consumer, idle, deliveries]]. */
static void on_checked(redisAsyncContext *ac, void *reply, void *privdata) {
        struct qentry *e = privdata;
        struct qsource *q = e->q;
        const redisReply *r = entry_reply(e, reply);
        (void) ac;
        if (!r)
                return;
        if (r->type == REDIS_REPLY_ERROR) {
                retry_later(q, e, "XPENDING", r->str);
                return;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
                /* Not pending any more: someone else took and settled it. */
                qentry_remove(q, e);
                return;
        }
        const redisReply *p = r->element[0];
        long long deliveries = p->type == REDIS_REPLY_ARRAY && p->elements >= 4 &&
                               p->element[3]->type == REDIS_REPLY_INTEGER ? p->element[3]->integer : 1;
        qentry_set(q, e, deliveries >= (long long) q->max_deliveries ? QENTRY_DEAD : QENTRY_BACK);
        qentry_flush(q);
}

/* XADD STREAM:results * id ID task T exit E runtime R stdout S, when asked for. */
static int send_result(struct qsource *q, struct qentry *e) {
        char exit[16], runtime[32];
        snprintf(exit, sizeof(exit), "%d", e->exit);
        snprintf(runtime, sizeof(runtime), "%.6f", e->runtime);
        const char *argv[] = { "XADD", q->results_key, "*", "id", e->id, "task", e->task, "exit", exit,
                               "runtime", runtime, "stdout", e->out ? e->out : "" };
        size_t len[ELEMENTSOF(argv)];
        /* The task and its stdout are counted, not terminated: they may hold NULs. */
        for (size_t i = 0; i < ELEMENTSOF(argv); i++)
                len[i] = i == 6 ? e->task_len : i == 12 ? e->out_len : strlen(argv[i]);
        return redis_link_command(q->link, NULL, NULL, (int) ELEMENTSOF(argv), argv, len);
}

/* A transaction that settles an entry opens with MULTI ... */
static int send_multi(struct qsource *q) {
        const char *multi[] = { "MULTI" };
        return qsource_command(q, NULL, NULL, 1, multi);
}

/* ... and ends with its acknowledgement and EXEC, whose reply settles e; r
 * is what the commands before gave (a failure sends nothing more). */
static int send_ack_exec(struct qsource *q, struct qentry *e, int r) {
        const char *ack[] = { "XACK", q->url.stream, q->url.group, e->id };
        const char *exec[] = { "EXEC" };
        if (r >= 0)
                r = qsource_command(q, NULL, NULL, ELEMENTSOF(ack), ack);
        if (r >= 0)
                r = qsource_command(q, on_settled, e, 1, exec);
        return r;
}

/* XACK, with its results entry in the same MULTI/EXEC when there is a
 * results stream: both or neither. */
static int send_ack(struct qsource *q, struct qentry *e) {
        if (!q->results_key) {
                const char *argv[] = { "XACK", q->url.stream, q->url.group, e->id };
                return qsource_command(q, on_settled, e, ELEMENTSOF(argv), argv);
        }
        int r = send_multi(q);
        if (r >= 0)
                r = send_result(q, e);
        return send_ack_exec(q, e, r);
}

static int send_check(struct qsource *q, struct qentry *e) {
        const char *argv[] = { "XPENDING", q->url.stream, q->url.group, e->id, e->id, "1" };
        return qsource_command(q, on_checked, e, ELEMENTSOF(argv), argv);
}

/* To the dead stream (and the results) and acknowledged, all or nothing. */
static int send_dead(struct qsource *q, struct qentry *e) {
        char exit[16];
        snprintf(exit, sizeof(exit), "%d", e->exit);
        const char *add[] = { "XADD", q->dead_key, "*", "task", e->task, "exit", exit, "consumer", q->consumer,
                              "id", e->id, "reason", e->reason };
        size_t n_add = e->reason ? ELEMENTSOF(add) : ELEMENTSOF(add) - 2, add_len[ELEMENTSOF(add)];
        for (size_t i = 0; i < n_add; i++)
                add_len[i] = i == 4 ? e->task_len : strlen(add[i]);
        int r = send_multi(q);
        if (r >= 0)
                r = redis_link_command(q->link, NULL, NULL, (int) n_add, add, add_len);
        if (r >= 0 && q->results_key)
                r = send_result(q, e);
        return send_ack_exec(q, e, r);
}

static int send_back(struct qsource *q, struct qentry *e) {
        char idle[24];
        snprintf(idle, sizeof(idle), "%llu",
                 (unsigned long long) (q->lease / USEC_PER_MSEC + HAND_BACK_EXTRA_MS));
        const char *argv[] = { "XCLAIM", q->url.stream, q->url.group, q->consumer, "0", e->id, "IDLE", idle,
                               "JUSTID" };
        return qsource_command(q, on_settled, e, ELEMENTSOF(argv), argv);
}

void qentry_flush(struct qsource *q) {
        static int (*const send[_QENTRY_STATE_MAX])(struct qsource *, struct qentry *) = {
                [QENTRY_ACK] = send_ack,
                [QENTRY_CHECK] = send_check,
                [QENTRY_DEAD] = send_dead,
                [QENTRY_BACK] = send_back,
        };
        if (q->freeing || !redis_link_up(q->link))
                return;    /* the reconnect flushes */
        for (size_t i = 0; i < q->n; i++) {
                struct qentry *e = q->e[i];
                if (e->sent || !send[e->state])
                        continue;
                if (send[e->state](q, e) < 0)
                        return;
                e->sent = true;
        }
}

struct written {
        struct qsource *q;
        uint64_t seq;
        unsigned lines;
        struct task_report report;
};

/* The task's output is out (delivered) or never will be: settle its entries. */
static void on_written(void *data, bool delivered) {
        struct written *w = data;
        struct qsource *q = w->q;
        for (size_t i = 0; i < q->n && !q->freeing; i++) {
                struct qentry *e = q->e[i];
                if (e->seq < w->seq || e->seq >= w->seq + w->lines || e->state != QENTRY_WRITING)
                        continue;
                e->exit = w->report.exit;
                e->runtime = w->report.runtime;
                /* Output that never went out, or a stop: not the entry's fault. */
                qentry_set(q, e, !delivered || (!w->report.ok && q->stopping) ? QENTRY_BACK :
                                 w->report.ok ? QENTRY_ACK : QENTRY_CHECK);
        }
        free(w);
        qentry_flush(q);
}

/* The start of a task's stdout, for the results stream: read from the
 * spool before it goes to the sink. */
void qentry_capture(void *src, const struct spool *out) {
        struct qsource *q = src;
        q->captured.len = 0;
        if (!q->results_key)
                return;
        size_t n = spool_len(out) < QUEUE_RESULT_STDOUT_MAX ? (size_t) spool_len(out) : QUEUE_RESULT_STDOUT_MAX;
        if (n == 0 || strbuf_reserve(&q->captured, n) < 0)
                return;
        if (out->fd < 0)
                memcpy(q->captured.data, out->mem.data, n);
        else {
                ssize_t k = pread(out->fd, q->captured.data, n, 0);
                n = k > 0 ? (size_t) k : 0;
        }
        q->captured.len = n;
}

/* e's stdout for the results stream: the first QUEUE_RESULT_STDOUT_MAX
 * bytes of p (none when out of memory: the entry is settled all the same). */
static void keep_out(struct qentry *e, const char *p, size_t len) {
        size_t n = len < QUEUE_RESULT_STDOUT_MAX ? len : QUEUE_RESULT_STDOUT_MAX;
        free(e->out);
        e->out = n ? malloc(n) : NULL;
        e->out_len = e->out ? n : 0;
        if (e->out)
                memcpy(e->out, p, n);
}

/* Where the line of p that starts at off ends, past its newline. */
static size_t line_end(const char *p, size_t off, size_t len) {
        const char *nl = memchr(p + off, '\n', len - off);
        return nl ? (size_t) (nl - p) + 1 : len;
}

/* Stream mode: each answer is kept by its entry as it comes (a worker's
 * answers come in reads of up to thousands of lines: one pass over the
 * entries per read, not a search per line). */
void qentry_capture_lines(void *src, uint64_t seq, const char *p, size_t len) {
        struct qsource *q = src;
        if (!q->results_key || len == 0)
                return;
        size_t n = 0, *at;
        for (size_t off = 0; off < len; n++)
                off = line_end(p, off, len);
        if (!(at = malloc((n + 1) * sizeof(*at)))) {
                log_warning_errno(ENOMEM, "Failed to keep the answers of lines %llu-%llu for the results "
                                  "stream, their entries have no stdout: %m", (unsigned long long) seq,
                                  (unsigned long long) (seq + n - 1));
                return;
        }
        at[0] = 0;
        for (size_t i = 1; i <= n; i++)
                at[i] = line_end(p, at[i - 1], len);
        for (size_t i = 0; i < q->n; i++) {
                struct qentry *e = q->e[i];
                if (e->seq >= seq && e->seq - seq < n && e->state == QENTRY_HELD)
                        keep_out(e, p + at[e->seq - seq], at[e->seq - seq + 1] - at[e->seq - seq]);
        }
        free(at);
}

/* One pass over the entries, not a search per line: the stream reports
 * spans of thousands of lines. */
void qentry_done(void *src, uint64_t seq, unsigned lines, const struct task_report *r) {
        struct qsource *q = src;
        struct written *w = malloc(sizeof(*w));
        for (size_t i = 0; i < q->n; i++) {
                struct qentry *e = q->e[i];
                if (e->seq < seq || e->seq >= seq + lines || e->state != QENTRY_HELD)
                        continue;
                qentry_set(q, e, QENTRY_WRITING);
                /* Nothing captured: a stream's answer is kept already. */
                if (q->captured.len > 0)
                        keep_out(e, q->captured.data, q->captured.len);
        }
        q->captured.len = 0;
        if (!w) {
                log_warning_errno(ENOMEM, "Failed to follow task %llu: %m; its entry stays pending until its lease "
                                  "expires", (unsigned long long) seq);
                return;
        }
        *w = (struct written) { .q = q, .seq = seq, .lines = lines, .report = *r };
        q->c.after_output(q->c.data, on_written, w);
}

/* A task line that can never run (too long for execve()): not retried by
 * any consumer, so dead at once rather than handed back. */
void qentry_not_run(void *src, uint64_t seq, const char *why) {
        struct qsource *q = src;
        struct qentry *e = qentry_find_seq(q, seq);
        if (!e)
                return;
        e->exit = 1;             /* as a task that failed */
        e->reason = why;
        qentry_set(q, e, QENTRY_DEAD);
        qentry_flush(q);
}

/* Every lease/3: the entries still held here are ours, their idle time reset. */
static int on_renew(sd_event_source *s, uint64_t usec, void *userdata) {
        struct qsource *q = userdata;
        (void) usec;
        size_t n = 0;
        for (size_t i = 0; i < q->n; i++)
                n += q->e[i]->state != QENTRY_BACK && q->e[i]->state != QENTRY_DEAD;
        if (n > 0 && redis_link_up(q->link)) {
                const char **argv = calloc(n + 6, sizeof(char *));
                if (argv) {
                        size_t k = 0;
                        argv[k++] = "XCLAIM";
                        argv[k++] = q->url.stream;
                        argv[k++] = q->url.group;
                        argv[k++] = q->consumer;
                        argv[k++] = "0";
                        for (size_t i = 0; i < q->n; i++)
                                if (q->e[i]->state != QENTRY_BACK && q->e[i]->state != QENTRY_DEAD)
                                        argv[k++] = q->e[i]->id;
                        argv[k++] = "JUSTID";
                        (void) qsource_command(q, NULL, NULL, k, argv);
                        free(argv);
                } else
                        log_warning_errno(ENOMEM, "Failed to renew the leases, ignoring: %m");
        }
        (void) sd_event_source_set_time_relative(s, q->lease / 3);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        return 0;
}

static int on_info_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct qsource *q = userdata;
        (void) usec;
        qsource_read_info(q);
        (void) sd_event_source_set_time_relative(s, q->sample_interval);
        return 0;
}

int qsource_start_timers(struct qsource *q) {
        sd_event *e = q->event;
        int r = sd_event_add_time_relative(e, &q->renew_timer, CLOCK_MONOTONIC, q->lease / 3, 0, on_renew, q);
        if (r >= 0)
                r = sd_event_source_set_enabled(q->renew_timer, SD_EVENT_ON);
        if (r >= 0)
                r = sd_event_add_time_relative(e, &q->info_timer, CLOCK_MONOTONIC, 0, 0, on_info_timer, q);
        if (r >= 0)
                r = sd_event_source_set_enabled(q->info_timer, SD_EVENT_ON);
        return r;
}
