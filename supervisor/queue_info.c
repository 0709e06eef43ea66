/* SPDX-License-Identifier: MIT */
/*
 * What the consumer group says about the queue as a whole (XINFO GROUPS):
 * lag, the entries not yet delivered to the group, and pending, delivered and
 * not acknowledged. Read on the loop every sample interval for the signals
 * (queue.lag and queue.pending, which feed tasks.backlog) and the metrics,
 * and when --until-empty asks whether the work is over.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/log.h"
#include "supervisor/queue_internal.h"

/* Our group's lag and pending in an XINFO GROUPS reply; -1 where unknown
 * (Redis leaves lag nil when entries were deleted). False: not there. */
static bool parse_group(const struct qsource *q, const redisReply *r, int64_t *ret_lag, int64_t *ret_pending) {
        if (!r || r->type != REDIS_REPLY_ARRAY)
                return false;
        for (size_t i = 0; i < r->elements; i++) {
                const redisReply *g = r->element[i];
                bool ours = false;
                int64_t lag = -1, pending = -1;
                if (g->type != REDIS_REPLY_ARRAY)
                        continue;
                for (size_t k = 0; k + 1 < g->elements; k += 2) {
                        const redisReply *key = g->element[k], *v = g->element[k + 1];
                        if (key->type != REDIS_REPLY_STRING)
                                continue;
                        if (strcmp(key->str, "name") == 0)
                                ours = v->type == REDIS_REPLY_STRING && strcmp(v->str, q->url.group) == 0;
                        else if (strcmp(key->str, "pending") == 0 && v->type == REDIS_REPLY_INTEGER)
                                pending = v->integer;
                        else if (strcmp(key->str, "lag") == 0 && v->type == REDIS_REPLY_INTEGER)
                                lag = v->integer;
                }
                if (ours) {
                        *ret_lag = lag;
                        *ret_pending = pending;
                        return true;
                }
        }
        return false;
}

static void on_info(redisAsyncContext *ac, void *reply, void *privdata) {
        struct qsource *q = privdata;
        (void) ac;
        q->info_sent = false;
        if (q->freeing)
                return;
        int64_t lag, pending;
        if (parse_group(q, reply, &lag, &pending)) {
                q->lag = lag;
                q->pending = pending;
        }
}

void qsource_read_info(struct qsource *q) {
        const char *argv[] = { "XINFO", "GROUPS", q->url.stream };
        if (q->info_sent)
                return;
        if (qsource_command(q, on_info, q, ELEMENTSOF(argv), argv) >= 0)
                q->info_sent = true;
}

/* Sent right after a read that brought nothing: nothing pending anywhere
 * and nothing undelivered means the work is over. A nil lag (entries were
 * deleted) is taken as 0: the read just found nothing new. */
static void on_empty_info(redisAsyncContext *ac, void *reply, void *privdata) {
        struct qsource *q = privdata;
        (void) ac;
        q->empty_check = false;
        if (q->freeing)
                return;
        int64_t lag, pending;
        if (!parse_group(q, reply, &lag, &pending))
                return;
        q->lag = lag;
        q->pending = pending;
        /* A read on the wire may bring entries: the next poll asks again. */
        if (pending != 0 || lag > 0 || q->n > 0 || q->fetching || q->stopping || q->ended)
                return;
        log_info("%s: nothing undelivered or pending in group %s, done", q->url.stream, q->url.group);
        q->ended = true;
        q->polling = false;
        q->poll_timer = sd_event_source_disable_unref(q->poll_timer);
        q->c.ended(q->c.data);
}

void qsource_check_empty(struct qsource *q) {
        const char *argv[] = { "XINFO", "GROUPS", q->url.stream };
        if (q->empty_check)
                return;
        if (qsource_command(q, on_empty_info, q, ELEMENTSOF(argv), argv) >= 0)
                q->empty_check = true;
}

static void on_group_created(redisAsyncContext *ac, void *reply, void *privdata) {
        (void) ac;
        (void) reply;
        (void) privdata;
}

void qsource_recreate_group(struct qsource *q) {
        const char *argv[] = { "XGROUP", "CREATE", q->url.stream, q->url.group, "0", "MKSTREAM" };
        (void) qsource_command(q, on_group_created, q, ELEMENTSOF(argv), argv);
}

bool qsource_backlog(const void *src, uint64_t *ret) {
        const struct qsource *q = src;
        if (q->lag < 0)
                return false;
        *ret = (uint64_t) q->lag;
        return true;
}

void qsource_fill_snapshot(const void *src, struct metrics_snapshot *s) {
        const struct qsource *q = src;
        s->queue = (struct metrics_queue) { .present = true, .lag = q->lag, .pending = q->pending, .dead = q->dead,
                                            .reclaimed = q->reclaimed };
}

void qsource_fill_signals(const void *src, struct signals *s) {
        const struct qsource *q = src;
        if (q->lag >= 0)
                signals_set(s, SIGNAL_QUEUE_LAG, (double) q->lag);
        if (q->pending >= 0)
                signals_set(s, SIGNAL_QUEUE_PENDING, (double) q->pending);
}
