/* SPDX-License-Identifier: MIT */
/*
 * The work queue task source: tasks are entries of a Redis stream read
 * through a consumer group, so that any number of corrals share one queue.
 * Reading follows what the consumer can take (XREADGROUP COUNT); entries whose
 * consumer went silent past tasks.lease are claimed (XAUTOCLAIM). What
 * happens to an entry once its task ended for good lives in queue_entries.c.
 * Nothing here blocks the loop: every command is asynchronous, and a lost
 * server is reconnected to while the running tasks go on.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/exit_status.h"
#include "supervisor/log.h"
#include "supervisor/queue_internal.h"
#include "supervisor/queue_source.h"

#define POLL_MIN (10 * USEC_PER_MSEC)
#define POLL_MAX (500 * USEC_PER_MSEC)
/* How often a busy consumer looks for entries to claim; an idle one looks at
 * every poll. Short against the lease, so an entry handed back on TERM is
 * taken at once, not after the lease. */
#define CLAIM_EVERY_MAX (1 * USEC_PER_SEC)

static usec_t claim_every(const struct qsource *q) {
        usec_t quarter = q->lease / 4;
        return quarter < CLAIM_EVERY_MAX ? quarter : CLAIM_EVERY_MAX;
}

/* An entry's "task" field, or NULL. */
static const redisReply *entry_task(const redisReply *entry) {
        if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 || entry->element[1]->type != REDIS_REPLY_ARRAY)
                return NULL;
        const redisReply *f = entry->element[1];
        for (size_t i = 0; i + 1 < f->elements; i += 2)
                if (f->element[i]->type == REDIS_REPLY_STRING && strcmp(f->element[i]->str, "task") == 0 &&
                    f->element[i + 1]->type == REDIS_REPLY_STRING)
                        return f->element[i + 1];
        return NULL;
}

/* An entry that is not given to the consumer: it has no line number. */
static void unnumber(struct qsource *q, struct qentry *e) {
        e->seq = 0;
        q->next_seq--;
}

/* Takes one delivered entry: into the table, its line to the consumer. */
static int take_entry(struct qsource *q, const redisReply *entry) {
        if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 1 || entry->element[0]->type != REDIS_REPLY_STRING)
                return 0;
        const char *id = entry->element[0]->str;
        if (entry->element[0]->len >= QUEUE_ID_MAX || qentry_find_id(q, id))
                return 0;    /* already ours: a claim overtook our own renewal */
        const redisReply *task = entry_task(entry);
        struct qentry *e;
        if (entry->elements >= 2 && entry->element[1]->type == REDIS_REPLY_NIL) {
                /* Pending here but deleted from the stream (XDEL): nothing to run. */
                int r = qentry_add(q, id, "", 0, &e);
                if (r < 0)
                        return r;
                unnumber(q, e);
                qentry_set(q, e, QENTRY_ACK);
                return 0;
        }
        int r = qentry_add(q, id, task ? task->str : "", task ? task->len : 0, &e);
        if (r < 0)
                return r;
        if (!task) {
                log_warning("%s: entry %s has no field 'task', moving it to %s", q->url.stream, id, q->dead_key);
                unnumber(q, e);      /* runs no task: no gap in the consumer's line numbers */
                e->exit = -1;
                e->reason = "no field 'task'";
                qentry_set(q, e, QENTRY_DEAD);
                return 0;
        }
        if (q->stopping || q->ended) {
                /* A read that crossed the stop (or the end): give it back. */
                unnumber(q, e);
                qentry_set(q, e, QENTRY_BACK);
                return 0;
        }
        const char *why = NULL;
        r = q->c.line(q->c.data, e->seq, task->str, task->len, &why);
        if (r == -EINVAL) {
                /* This consumer can never run it (a newline in a stream's line): no
                 * other consumer of the same kind could either. */
                unnumber(q, e);
                e->exit = 1;
                e->reason = why;
                qentry_set(q, e, QENTRY_DEAD);
                return 0;
        }
        return r;
}

/* Entries of an XREADGROUP stream record or an XAUTOCLAIM reply. */
static int take_entries(struct qsource *q, const redisReply *entries, size_t *ret_taken) {
        if (!entries || entries->type != REDIS_REPLY_ARRAY)
                return 0;
        for (size_t i = 0; i < entries->elements; i++) {
                int r = take_entry(q, entries->element[i]);
                if (r < 0)
                        return r;
        }
        *ret_taken += entries->elements;
        return 0;
}

static int on_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        struct qsource *q = userdata;
        (void) s;
        (void) usec;
        q->polling = false;
        q->c.progress(q->c.data);
        return 0;
}

/* Nothing came: look again after a while, doubling while nothing comes. */
static void poll_later(struct qsource *q) {
        q->poll_delay = q->poll_delay ? q->poll_delay * 2 : POLL_MIN;
        if (q->poll_delay > POLL_MAX)
                q->poll_delay = POLL_MAX;
        int r = q->poll_timer ? sd_event_source_set_time_relative(q->poll_timer, q->poll_delay) :
                sd_event_add_time_relative(q->event, &q->poll_timer, CLOCK_MONOTONIC, q->poll_delay, 0, on_poll, q);
        if (r >= 0)
                r = sd_event_source_set_enabled(q->poll_timer, SD_EVENT_ONESHOT);
        if (r < 0) {
                log_error_errno(r, "Failed to arm the work queue's poll timer: %m");
                q->c.failed(q->c.data, r);
                return;
        }
        q->polling = true;
}

static void on_claimed(redisAsyncContext *ac, void *reply, void *privdata) {
        struct qsource *q = privdata;
        redisReply *r = reply;
        (void) ac;
        if (!r || q->freeing)
                return;
        if (r->type == REDIS_REPLY_ERROR) {
                if (!q->claim_warned)
                        log_warning("%s: XAUTOCLAIM failed: %s (Redis 6.2 or later claims entries of lost "
                                    "consumers), ignoring", q->url.stream, r->str);
                q->claim_warned = true;
                return;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != REDIS_REPLY_STRING)
                return;
        /* A cursor through the pending list; "0-0": the scan went round. */
        snprintf(q->claim_cursor, sizeof(q->claim_cursor), "%s", r->element[0]->str);
        size_t taken = 0;
        int e = take_entries(q, r->element[1], &taken);
        if (e < 0)
                return q->c.failed(q->c.data, e);
        if (taken > 0)
                log_info("claimed %zu entr%s of %s idle past the lease", taken, taken == 1 ? "y" : "ies",
                         q->url.stream);
        q->reclaimed += taken;
        q->got += taken;
}

/* The last id of an XREADGROUP reply's entries, where the next page of
 * this consumer's own pending entries starts. */
static bool last_id(const redisReply *r, char *buf, size_t size) {
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0)
                return false;
        const redisReply *s = r->element[0];
        if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 || s->element[1]->type != REDIS_REPLY_ARRAY ||
            s->element[1]->elements == 0)
                return false;
        const redisReply *e = s->element[1]->element[s->element[1]->elements - 1];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 || e->element[0]->type != REDIS_REPLY_STRING)
                return false;
        snprintf(buf, size, "%s", e->element[0]->str);
        return true;
}

static void on_read(redisAsyncContext *ac, void *reply, void *privdata);

/* The entries delivered to this consumer before (a reply lost with the
 * connection, or a consumer of the same name that ended): taken again now
 * rather than after their lease. Page by page, then back to new entries. */
static void on_recovered(redisAsyncContext *ac, void *reply, void *privdata) {
        struct qsource *q = privdata;
        redisReply *r = reply;
        if (r && !q->freeing && r->type != REDIS_REPLY_ERROR &&
            !last_id(r, q->recover_from, sizeof(q->recover_from))) {
                q->recover = false;     /* all seen: new entries now */
                q->fetching = false;
                q->c.progress(q->c.data);
                return;
        }
        on_read(ac, reply, privdata);
}

static void on_read(redisAsyncContext *ac, void *reply, void *privdata) {
        struct qsource *q = privdata;
        redisReply *r = reply;
        (void) ac;
        q->fetching = false;
        if (!r || q->freeing)
                return;      /* lost: the reconnect reads again */
        if (r->type == REDIS_REPLY_ERROR) {
                /* NOGROUP: the stream or group was deleted (or the server
                 * restarted empty): the link creates it again on reconnect. */
                if (!q->read_warned)
                        log_warning("%s: XREADGROUP failed: %s; trying again", q->url.stream, r->str);
                q->read_warned = true;
                qsource_recreate_group(q);
                poll_later(q);
                return;
        }
        q->read_warned = false;
        size_t taken = 0;
        int e = 0;
        if (r->type == REDIS_REPLY_ARRAY)
                for (size_t i = 0; i < r->elements && e >= 0; i++)
                        if (r->element[i]->type == REDIS_REPLY_ARRAY && r->element[i]->elements == 2)
                                e = take_entries(q, r->element[i]->element[1], &taken);
        if (e >= 0 && q->c.flush)
                e = q->c.flush(q->c.data);   /* a shorter --batch invocation goes now */
        if (e < 0)
                return q->c.failed(q->c.data, e);
        q->got += taken;
        if (q->got == 0) {
                if (q->until_empty && q->n == 0)
                        qsource_check_empty(q);
                poll_later(q);
        } else
                q->poll_delay = 0;
        qentry_flush(q);
        q->c.progress(q->c.data);
}

/* Asks for as many entries as the consumer would take: entries to claim
 * first when it is time, then new ones. */
static void qs_fill(void *src) {
        struct qsource *q = src;
        if (q->fetching || q->polling || q->stopping || q->ended || !redis_link_up(q->link))
                return;
        size_t want = q->c.wanted(q->c.data);
        if (want == 0)
                return;
        char count[24], idle[24];
        snprintf(count, sizeof(count), "%zu", want);
        usec_t now = 0;
        (void) sd_event_now(q->event, CLOCK_MONOTONIC, &now);
        q->got = 0;
        if (q->claim_due || now - q->last_claim >= claim_every(q)) {
                snprintf(idle, sizeof(idle), "%llu", (unsigned long long) (q->lease / USEC_PER_MSEC));
                const char *argv[] = { "XAUTOCLAIM", q->url.stream, q->url.group, q->consumer, idle,
                                       q->claim_cursor, "COUNT", count };
                if (qsource_command(q, on_claimed, q, ELEMENTSOF(argv), argv) < 0)
                        return;
                q->claim_due = false;
                q->last_claim = now;
        }
        const char *argv[] = { "XREADGROUP", "GROUP", q->url.group, q->consumer, "COUNT", count,
                               "STREAMS", q->url.stream, q->recover ? q->recover_from : ">" };
        if (qsource_command(q, q->recover ? on_recovered : on_read, q, ELEMENTSOF(argv), argv) >= 0)
                q->fetching = true;
}

/* "CORRAL_TASK_ID=ID" (ids separated by spaces for a --batch invocation). */
static const char *qs_task_id_var(void *src, uint64_t seq, unsigned lines) {
        struct qsource *q = src;
        q->id_var.len = 0;
        if (strbuf_append(&q->id_var, "CORRAL_TASK_ID=", strlen("CORRAL_TASK_ID=")) < 0)
                return NULL;
        for (unsigned i = 0; i < lines; i++) {
                struct qentry *e = qentry_find_seq(q, seq + i);
                if (e && ((i > 0 && strbuf_append(&q->id_var, " ", 1) < 0) ||
                          strbuf_append(&q->id_var, e->id, strlen(e->id)) < 0))
                        return NULL;
        }
        return q->id_var.data;
}

static int on_queue_stop_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct qsource *q = userdata;
        (void) s;
        (void) usec;
        if (q->n > 0)
                log_warning("%zu entr%s of %s not handed back in time; other consumers take them after the lease",
                            q->n, q->n == 1 ? "y" : "ies", q->url.stream);
        q->gave_up = true;
        q->c.progress(q->c.data);
        return 0;
}

/* TERM: what is queued here goes back at once; a running task's entry goes
 * back when the task ends, unless it succeeded. */
static void qs_stop(void *src) {
        struct qsource *q = src;
        q->stopping = true;
        q->poll_timer = sd_event_source_disable_unref(q->poll_timer);
        q->polling = false;
        for (size_t i = 0; i < q->n; i++)
                if (q->e[i]->state == QENTRY_HELD && !q->c.busy(q->c.data, q->e[i]->seq))
                        qentry_set(q, q->e[i], QENTRY_BACK);
        qentry_flush(q);
        usec_t wait = q->stop_timeout + USEC_PER_SEC;
        if (sd_event_add_time_relative(q->event, &q->stop_timer, CLOCK_MONOTONIC, wait, 0, on_queue_stop_timer, q) < 0)
                q->gave_up = true;
}

static bool qs_settled(void *src) {
        struct qsource *q = src;
        if (q->n == 0 || q->gave_up)
                return true;
        if (!redis_link_up(q->link) && q->stopping) {
                log_warning("Redis is unreachable: %zu entr%s of %s stay pending until the lease expires",
                            q->n, q->n == 1 ? "y" : "ies", q->url.stream);
                q->gave_up = true;
                return true;
        }
        return false;
}

/* A queue consumer's result is the queue's: failed attempts went back for
 * another try; only entries given up on (the dead stream) fail the run. */
static int qs_status(void *src, int status, bool output_failed) {
        struct qsource *q = src;
        if (status == EXIT_USAGE || output_failed || q->dead > 0)
                return status == EXIT_USAGE ? status : EXIT_TASKS_FAILED;
        return EXIT_OK;
}

/* Entries, not attempts: a task stopped by TERM did not fail, its entry
 * went back to the queue; and a queue is never resumed, it is read again. */
static bool qs_summarize(void *src, int status) {
        struct qsource *q = src;
        char left[96] = "";
        if (q->n > 0)
                snprintf(left, sizeof(left), ", %zu left pending until their lease expires", q->n);
        log_full(status == EXIT_OK ? LOG_INFO : LOG_WARNING, 0, "%llu done, %llu dead, %llu handed back%s",
                 (unsigned long long) q->acked, (unsigned long long) q->dead, (unsigned long long) q->handed_back,
                 left);
        return true;
}

static void qs_free(void *src) {
        struct qsource *q = src;
        if (!q)
                return;
        q->freeing = true;
        q->link = redis_link_free(q->link);    /* before the entries: callbacks see them */
        qentry_free_all(q);
        sd_event_source_disable_unref(q->poll_timer);
        sd_event_source_disable_unref(q->renew_timer);
        sd_event_source_disable_unref(q->info_timer);
        sd_event_source_disable_unref(q->stop_timer);
        sd_event_source_disable_unref(q->retry_timer);
        strbuf_done(&q->id_var);
        strbuf_done(&q->captured);
        free(q->dead_key);
        free(q->results_key);
        queue_url_done(&q->url);
        sd_event_unref(q->event);
        free(q);
}

static const struct task_source_ops queue_source = {
        .name = "queue",
        .fill = qs_fill,
        .task_id_var = qs_task_id_var,
        .capture = qentry_capture,
        .capture_lines = qentry_capture_lines,
        .done = qentry_done,
        .not_run = qentry_not_run,
        .stop = qs_stop,
        .settled = qs_settled,
        .status = qs_status,
        .summarize = qs_summarize,
        .backlog = qsource_backlog,
        .fill_snapshot = qsource_fill_snapshot,
        .fill_signals = qsource_fill_signals,
        .free = qs_free,
};

static void on_connected(void *userdata) {
        struct qsource *q = userdata;
        q->claim_due = true;
        q->recover = true;       /* a read's reply may have been lost with the connection */
        snprintf(q->recover_from, sizeof(q->recover_from), "0");
        qentry_flush(q);
        q->c.progress(q->c.data);
}

static const struct redis_link_ops link_ops = { .connected = on_connected };

/* The checks that can fail for the user's reasons, while an error can still
 * be a clean exit 2: blocking, before the loop runs. *ret_addr: the address
 * that answered, for the loop's connection. */
static int check_server(const struct queue_url *u, char *ret_addr, size_t size) {
        redisContext *c;
        char error[768];
        int r = redis_open_checked(u, &c, error, sizeof(error));
        if (r >= 0) {
                r = redis_create_group(c, u, error, sizeof(error));
                redis_peer_address(c, u->host, ret_addr, size);
                redisFree(c);
        }
        if (r == -EINVAL)
                log_error("%s", error);
        return r;
}

int queue_source_open(sd_event *ev, const struct corral_config *config, const struct task_consumer *consumer,
                      struct task_source *ret) {
        const struct tasks_config *t = &config->tasks;
        char error[768];
        struct qsource *q = calloc(1, sizeof(*q));
        if (!q)
                return log_error_errno(ENOMEM, "Failed to set up the work queue: %m");
        *ret = (struct task_source) { .ops = &queue_source, .src = q };
        *q = (struct qsource) { .event = sd_event_ref(ev), .c = *consumer,
                                .stop_timeout = config->workers.stop_timeout,
                                .sample_interval = config->sample_interval, .lease = t->lease, .max_deliveries = t->max_deliveries,
                                .until_empty = t->until == TASK_UNTIL_EMPTY, .lag = -1, .pending = -1 };
        snprintf(q->claim_cursor, sizeof(q->claim_cursor), "0-0");
        q->recover = true;       /* ?consumer=NAME: what a previous NAME left pending */
        snprintf(q->recover_from, sizeof(q->recover_from), "0");
        int r = queue_url_parse(t->from, &q->url, error, sizeof(error));
        if (r < 0)
                return r == -EINVAL ? (log_error("%s", error), r) : log_error_errno(r, "%s: %m", t->from);
        if (q->url.consumer)
                snprintf(q->consumer, sizeof(q->consumer), "%s", q->url.consumer);
        else {
                char host[256] = "localhost";
                (void) gethostname(host, sizeof(host) - 1);
                snprintf(q->consumer, sizeof(q->consumer), "%s-%d", host, (int) getpid());
        }
        if (asprintf(&q->dead_key, "%s:dead", q->url.stream) < 0) {
                q->dead_key = NULL;
                return log_error_errno(ENOMEM, "Failed to set up the work queue: %m");
        }
        if (t->results && queue_url_is(t->results)) {
                struct queue_url results;
                r = queue_url_parse(t->results, &results, error, sizeof(error));
                if (r < 0)
                        return r == -EINVAL ? (log_error("%s", error), r) : log_error_errno(r, "%s: %m", t->results);
                q->results_key = TAKE_PTR(results.stream);
                queue_url_done(&results);
        }
        char addr[NI_MAXHOST];
        r = check_server(&q->url, addr, sizeof(addr));
        if (r < 0)
                return r == -EINVAL ? r : log_error_errno(r, "Failed to set up the work queue: %m");
        r = redis_link_new(q->event, &q->url, addr, &link_ops, q, &q->link);
        if (r >= 0)
                r = qsource_start_timers(q);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the work queue: %m");
        log_info("taking tasks from %s, group %s, as consumer %s", q->url.stream, q->url.group, q->consumer);
        return 0;
}
