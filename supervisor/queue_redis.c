/* SPDX-License-Identifier: MIT */
/*
 * hiredis on sd-event: the blocking checks before the loop runs, and an
 * asynchronous connection whose socket is an sd-event io source (hiredis
 * calls the add/del read/write hooks below; the loop calls hiredis back when
 * the socket is ready), reconnecting with backoff when the server goes away.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "common/util.h"
#include "supervisor/log.h"
#include "supervisor/name_lookup.h"
#include "supervisor/queue_redis.h"

#define BACKOFF_INITIAL (100 * USEC_PER_MSEC)
#define BACKOFF_MAX (5 * USEC_PER_SEC)
#define ADDRS_MAX 8             /* of a lookup, tried in its order */

void redis_describe(const struct queue_url *u, char *buf, size_t size) {
        bool v6 = strchr(u->host, ':');
        snprintf(buf, size, "%s%s%s:%u", v6 ? "[" : "", u->host, v6 ? "]" : "", u->port);
}

/* hiredis does not open its socket with O_CLOEXEC. */
static void set_cloexec(int fd) {
        if (fd >= 0)
                (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
}

#define fail(...) (snprintf(error, error_size, __VA_ARGS__), -EINVAL)

int redis_open_checked(const struct queue_url *u, redisContext **ret, char *error, size_t error_size) {
        struct timeval tv = { .tv_sec = REDIS_SETUP_TIMEOUT_SEC };
        char where[300];
        redisReply *r;

        redis_describe(u, where, sizeof(where));
        redisContext *c = redisConnectWithTimeout(u->host, (int) u->port, tv);
        if (!c)
                return -ENOMEM;
        if (c->err) {
                int e = fail("cannot connect to Redis at %s: %s", where, c->errstr);
                redisFree(c);
                return e;
        }
        set_cloexec(c->fd);
        (void) redisSetTimeout(c, tv);
        if (u->password) {
                r = u->user ? redisCommand(c, "AUTH %s %s", u->user, u->password) :
                              redisCommand(c, "AUTH %s", u->password);
                if (!r || r->type == REDIS_REPLY_ERROR) {
                        int e = fail("Redis at %s refused the password: %s", where, r ? r->str : c->errstr);
                        freeReplyObject(r);
                        redisFree(c);
                        return e;
                }
                freeReplyObject(r);
        }
        r = redisCommand(c, "TYPE %b", u->stream, strlen(u->stream));
        if (!r || r->type != REDIS_REPLY_STATUS) {
                int e = fail("Redis at %s: cannot read the type of '%s': %s", where, u->stream,
                             r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
                freeReplyObject(r);
                redisFree(c);
                return e;
        }
        if (strcmp(r->str, "stream") != 0 && strcmp(r->str, "none") != 0) {
                int e = fail("Redis at %s: '%s' is a %s, not a stream", where, u->stream, r->str);
                freeReplyObject(r);
                redisFree(c);
                return e;
        }
        freeReplyObject(r);
        *ret = c;
        return 0;
}

int redis_create_group(redisContext *c, const struct queue_url *u, char *error, size_t error_size) {
        redisReply *r = redisCommand(c, "XGROUP CREATE %b %b 0 MKSTREAM", u->stream, strlen(u->stream), u->group,
                                     strlen(u->group));
        if (r && (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "BUSYGROUP", 9) == 0)) {
                freeReplyObject(r);
                return 0;
        }
        int e = fail("cannot create the consumer group '%s' of '%s': %s", u->group, u->stream,
                     r ? r->str : c->errstr);
        freeReplyObject(r);
        return e;
}

struct redis_link {
        sd_event *event;
        const struct queue_url *url;
        const struct redis_link_ops *ops;
        void *userdata;
        redisAsyncContext *ac;   /* NULL while down */
        sd_event_source *io, *retry;
        bool reading, writing, up;
        bool lost_logged;        /* an outage is logged once, and its end */
        bool lookup_logged;      /* ... and a failing lookup of the host once in it */
        usec_t backoff;
        char where[300];
        struct name_lookup *lookup;   /* the host looked up for a reconnect, off the loop */
        /* Numeric addresses of the last lookup: a connect never waits for
         * DNS. next_addr == n_addrs: the next reconnect looks up again. */
        char addrs[ADDRS_MAX][NI_MAXHOST];
        unsigned n_addrs, next_addr;
};

/* ---- the sd-event adapter: hiredis says what it waits for ---- */

static void ev_apply(struct redis_link *l) {
        uint32_t events = (l->reading ? EPOLLIN : 0) | (l->writing ? EPOLLOUT : 0);
        if (!l->io)
                return;
        if (events)
                (void) sd_event_source_set_io_events(l->io, events);
        (void) sd_event_source_set_enabled(l->io, events ? SD_EVENT_ON : SD_EVENT_OFF);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct redis_link *l = userdata;
        (void) s;
        (void) fd;
        /* Reading may end the connection (and free the context): look again. */
        if (l->ac && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                redisAsyncHandleRead(l->ac);
        if (l->ac && (revents & (EPOLLOUT | EPOLLERR)))
                redisAsyncHandleWrite(l->ac);
        return 0;
}

static void ev_add_read(void *p) {
        struct redis_link *l = p;
        l->reading = true;
        ev_apply(l);
}

static void ev_del_read(void *p) {
        struct redis_link *l = p;
        l->reading = false;
        ev_apply(l);
}

static void ev_add_write(void *p) {
        struct redis_link *l = p;
        l->writing = true;
        ev_apply(l);
}

static void ev_del_write(void *p) {
        struct redis_link *l = p;
        l->writing = false;
        ev_apply(l);
}

/* hiredis frees the context after this: forget it. */
static void ev_cleanup(void *p) {
        struct redis_link *l = p;
        l->io = sd_event_source_disable_unref(l->io);
        l->reading = l->writing = false;
        l->ac = NULL;
        l->up = false;
}

/* ---- connecting, losing, reconnecting ---- */

static int link_connect(struct redis_link *l);
static void link_reconnect(struct redis_link *l);

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        struct redis_link *l = userdata;
        (void) s;
        (void) usec;
        if (!l->ac && !l->lookup)
                link_reconnect(l);
        return 0;
}

/* The next address of the last lookup is tried at once; once none is left,
 * the next try (a new lookup) waits the backoff. */
static void link_retry_later(struct redis_link *l) {
        usec_t delay = 0;
        if (l->next_addr >= l->n_addrs) {
                l->backoff = !l->backoff ? BACKOFF_INITIAL : l->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : l->backoff * 2;
                delay = l->backoff;
        }
        if (l->retry) {
                (void) sd_event_source_set_time_relative(l->retry, delay);
                (void) sd_event_source_set_enabled(l->retry, SD_EVENT_ONESHOT);
        } else
                (void) sd_event_add_time_relative(l->event, &l->retry, CLOCK_MONOTONIC, delay, 0, on_retry, l);
}

static void link_lost(struct redis_link *l, const char *why) {
        l->up = false;
        if (!l->lost_logged)
                log_warning("Lost the connection to Redis at %s (%s), reconnecting; running tasks go on", l->where,
                            why && *why ? why : "closed");
        l->lost_logged = true;
        link_retry_later(l);
}

static void link_lookup_failed(struct redis_link *l, const char *why) {
        if (!l->lookup_logged)
                log_warning("Failed to look up %s for Redis at %s (%s), retrying", l->url->host, l->where, why);
        l->lookup_logged = true;
        link_retry_later(l);
}

static void on_lookup(struct name_lookup *lookup, int error, const struct addrinfo *ai, void *userdata) {
        struct redis_link *l = userdata;
        (void) lookup;

        l->n_addrs = l->next_addr = 0;
        for (; !error && ai && l->n_addrs < ADDRS_MAX; ai = ai->ai_next) {
                char *a = l->addrs[l->n_addrs];
                if (getnameinfo(ai->ai_addr, ai->ai_addrlen, a, NI_MAXHOST, NULL, 0, NI_NUMERICHOST) != 0)
                        continue;
                bool seen = false;   /* one per socket type and protocol: once is enough */
                for (unsigned i = 0; i < l->n_addrs && !seen; i++)
                        seen = strcmp(l->addrs[i], a) == 0;
                l->n_addrs += !seen;
        }
        l->lookup = name_lookup_free(l->lookup);   /* ai is gone from here on */
        if (l->n_addrs == 0)
                link_lookup_failed(l, error ? gai_strerror(error) : "no address");
        else if (link_connect(l) < 0)
                link_retry_later(l);
}

/* Each reconnect looks the host up again, so that a server that moved (a
 * restarted container, a DNS failover) is found at its new address; a
 * numeric host needs no lookup. */
static void link_reconnect(struct redis_link *l) {
        if (l->next_addr >= l->n_addrs && name_is_numeric(l->url->host)) {
                snprintf(l->addrs[0], sizeof(l->addrs[0]), "%s", l->url->host);
                l->n_addrs = 1;
                l->next_addr = 0;
        }
        if (l->next_addr < l->n_addrs) {
                if (link_connect(l) < 0)
                        link_retry_later(l);
                return;
        }
        int r = name_lookup_start(l->event, l->url->host, on_lookup, l, &l->lookup);
        if (r < 0)
                link_lookup_failed(l, strerror(-r));
}

static void on_connect(const redisAsyncContext *ac, int status) {
        struct redis_link *l = ac->data;
        if (status != REDIS_OK) {
                link_lost(l, ac->errstr);   /* hiredis frees the context next */
                return;
        }
        l->up = true;
        l->backoff = 0;
        l->next_addr = l->n_addrs;   /* once lost, look the host up again */
        l->lookup_logged = false;
        if (l->lost_logged)
                log_notice("Connected to Redis at %s again", l->where);
        l->lost_logged = false;
        if (l->ops->connected)
                l->ops->connected(l->userdata);
}

/* Only for a connection that was up; redis_link_free() unhooks it first. */
static void on_disconnect(const redisAsyncContext *ac, int status) {
        (void) status;
        link_lost(ac->data, ac->errstr);
}

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata) {
        redisReply *r = reply;
        struct redis_link *l = ac->data;
        (void) privdata;
        if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
                log_warning("Redis at %s: %s", l->where, r->str);
}

static int link_connect(struct redis_link *l) {
        const struct queue_url *u = l->url;
        redisAsyncContext *ac = redisAsyncConnect(l->addrs[l->next_addr++], (int) u->port);
        int r;

        if (!ac)
                return -ENOMEM;
        if (ac->err) {
                link_lost(l, ac->errstr);
                redisAsyncFree(ac);
                return 0;
        }
        set_cloexec(ac->c.fd);
        ac->data = l;
        l->ac = ac;
        r = sd_event_add_io(l->event, &l->io, ac->c.fd, 0, on_io, l);
        if (r < 0) {
                l->ac = NULL;
                redisAsyncFree(ac);
                return r;
        }
        (void) sd_event_source_set_enabled(l->io, SD_EVENT_OFF);
        ac->ev.data = l;
        ac->ev.addRead = ev_add_read;
        ac->ev.delRead = ev_del_read;
        ac->ev.addWrite = ev_add_write;
        ac->ev.delWrite = ev_del_write;
        ac->ev.cleanup = ev_cleanup;
        (void) redisAsyncSetConnectCallback(ac, on_connect);
        (void) redisAsyncSetDisconnectCallback(ac, on_disconnect);
        /* Ahead of everything, on every connection. */
        if (u->password) {
                if (u->user)
                        (void) redisAsyncCommand(ac, on_setup_reply, NULL, "AUTH %s %s", u->user, u->password);
                else
                        (void) redisAsyncCommand(ac, on_setup_reply, NULL, "AUTH %s", u->password);
        }
        (void) redisAsyncCommand(ac, on_setup_reply, NULL, "XGROUP CREATE %b %b 0 MKSTREAM", u->stream,
                                 strlen(u->stream), u->group, strlen(u->group));
        return 0;
}

void redis_peer_address(const redisContext *c, const char *host, char *buf, size_t size) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof(sa);
        if (getpeername(c->fd, (struct sockaddr *) &sa, &len) < 0 ||
            getnameinfo((struct sockaddr *) &sa, len, buf, (socklen_t) size, NULL, 0, NI_NUMERICHOST) != 0)
                snprintf(buf, size, "%s", host);
}

int redis_link_new(sd_event *e, const struct queue_url *u, const char *addr, const struct redis_link_ops *ops,
                   void *userdata, struct redis_link **ret) {
        struct redis_link *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        *l = (struct redis_link) { .event = sd_event_ref(e), .url = u, .ops = ops, .userdata = userdata };
        redis_describe(u, l->where, sizeof(l->where));
        snprintf(l->addrs[0], sizeof(l->addrs[0]), "%s", addr);
        l->n_addrs = 1;
        int r = link_connect(l);
        if (r < 0) {
                redis_link_free(l);
                return r;
        }
        *ret = l;
        return 0;
}

struct redis_link *redis_link_free(struct redis_link *l) {
        if (!l)
                return NULL;
        static const struct redis_link_ops none = {};
        l->ops = &none;
        if (l->ac) {
                redisAsyncContext *ac = l->ac;
                ac->onDisconnect = NULL;
                redisAsyncFree(ac);    /* calls ev_cleanup */
        }
        name_lookup_free(l->lookup);
        sd_event_source_disable_unref(l->io);
        sd_event_source_disable_unref(l->retry);
        sd_event_unref(l->event);
        free(l);
        return NULL;
}

bool redis_link_up(const struct redis_link *l) {
        return l->up && l->ac && !(l->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING));
}

int redis_link_command(struct redis_link *l, redisCallbackFn *fn, void *privdata, int argc, const char **argv,
                       const size_t *argvlen) {
        if (!redis_link_up(l))
                return -ENOTCONN;
        if (redisAsyncCommandArgv(l->ac, fn, privdata, argc, argv, argvlen) != REDIS_OK)
                return l->ac && l->ac->err == REDIS_ERR_OOM ? -ENOMEM : -ENOTCONN;
        return 0;
}

#undef fail   /* not into the next file of a unity build */
