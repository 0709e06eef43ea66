/* SPDX-License-Identifier: MIT */
/*
 * The HTTP endpoint on libmicrohttpd: routing of three read-only pages, the
 * listening socket, and the published pages the server thread reads.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <microhttpd.h>

#include "common/hostport.h"
#include "common/util.h"
#include "metrics/http.h"

/*
 * Connections over the limit are not refused by libmicrohttpd: they wait in the
 * kernel backlog. A high limit with a short timeout keeps idle or slow clients
 * from starving a real scraper (PLATFORM.md); but each connection is an fd, and
 * idle clients must never take the fds a worker's restart needs (with `ulimit
 * -n 64` and a limit of 64 they took all, and restarts failed with EMFILE). So
 * the limit is half of what is left of RLIMIT_NOFILE after the caller's
 * reserve (workers' pidfds, /proc files and pipes) and corral's own fds, within
 * these bounds: 1,000 idle clients must not be enough to lock a scraper out on
 * a normal fd table, and a tiny table still lets a scraper in.
 */
#define HTTP_CONNECTION_LIMIT_MIN 4u
#define HTTP_CONNECTION_LIMIT_MAX 16384u
#define HTTP_OWN_FDS 64u              /* corral's own: loop, signalfd, timers, stdio, libraries, reloads */
#define HTTP_CONNECTION_TIMEOUT_SEC 5u

#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CONTENT_TYPE_TEXT "text/plain; charset=utf-8"
#define CONTENT_TYPE_JSON "application/json"

/* One publication. Never modified once published; replaced whole. */
struct pages {
        char *metrics;
        char *status;
        char *health;            /* the reason, with a trailing newline */
        bool healthy;
};

struct metrics_http {
        struct MHD_Daemon *daemon;
        pthread_mutex_t lock;    /* guards what follows (`pages` the pointer, not what it points to) */
        struct pages *pages;     /* NULL until the first publish */
        pthread_cond_t published;     /* signalled by each publish */
        uint64_t generation;     /* of `pages`, bumped by each publish */
        bool stale;              /* the loop has a newer sample than `pages` */
        bool loop_busy;          /* a render request went unanswered: until the next publish, no waiting */
        int render_fd;           /* eventfd: a client wants fresh pages */
        unsigned max_connections;
};

/* How long a request waits for the loop to render fresher pages before it is
 * answered with the ones it has (the loop may be busy, e.g. reloading). Only
 * one request waits per busy spell: libmicrohttpd answers one request at a
 * time, and 12 clients each waiting in turn took 6 s. After a wait in vain the
 * last published pages are served at once until the loop publishes again. */
#define HTTP_RENDER_WAIT_USEC (500 * USEC_PER_MSEC)

static struct pages *pages_free(struct pages *p) {
        if (!p)
                return NULL;
        free(p->metrics);
        free(p->status);
        free(p->health);
        free(p);
        return NULL;
}

static void pages_freep(struct pages **p) {
        pages_free(*p);
}

/* libmicrohttpd's messages go nowhere: a library does not log, and a bad client is not news. */
static void discard_log(void *cls, const char *fmt, va_list ap) {
        (void) cls;
        (void) fmt;
        (void) ap;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             const char *body, size_t len, bool allow) {
        /* MUST_COPY: the body lives under the lock only; the copy is a few kB per scrape. */
        struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *) body, MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return MHD_NO;
        if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_NO ||
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_NO ||
            (allow && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") == MHD_NO)) {
                MHD_destroy_response(resp);
                return MHD_NO;
        }
        enum MHD_Result ret = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text) {
        return reply(c, status, CONTENT_TYPE_TEXT, text, strlen(text), status == MHD_HTTP_METHOD_NOT_ALLOWED);
}

enum page {
        PAGE_METRICS,
        PAGE_HEALTHZ,
        PAGE_STATUS,
        _PAGE_MAX,
        _PAGE_INVALID = -1,
};

static enum page page_from_url(const char *url) {
        static const char *const paths[_PAGE_MAX] = {
                [PAGE_METRICS] = "/metrics",
                [PAGE_HEALTHZ] = "/healthz",
                [PAGE_STATUS]  = "/status",
        };
        for (enum page p = 0; p < _PAGE_MAX; p++)
                if (strcmp(url, paths[p]) == 0)
                        return p;
        return _PAGE_INVALID;
}

/* Answers a known page from the current publication, under the lock. */
static enum MHD_Result serve(struct metrics_http *h, struct MHD_Connection *c, enum page page) {
        enum MHD_Result ret;

        pthread_mutex_lock(&h->lock);
        if (h->stale && h->pages && h->loop_busy)
                (void) eventfd_write(h->render_fd, 1);   /* fresher pages for the next client */
        else if (h->stale && h->pages) {
                /* Pages are rendered on demand: ask the loop, and wait a little. */
                uint64_t seen = h->generation;
                struct timespec deadline;
                clock_gettime(CLOCK_MONOTONIC, &deadline);
                deadline.tv_nsec += (long) (HTTP_RENDER_WAIT_USEC * 1000);
                deadline.tv_sec += deadline.tv_nsec / 1000000000L;
                deadline.tv_nsec %= 1000000000L;
                (void) eventfd_write(h->render_fd, 1);
                while (h->generation == seen)
                        if (pthread_cond_timedwait(&h->published, &h->lock, &deadline) == ETIMEDOUT) {
                                h->loop_busy = true;
                                break;
                        }
        }
        const struct pages *p = h->pages;
        if (!p)
                ret = reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "starting: no sample yet\n");
        else if (page == PAGE_METRICS)
                ret = reply(c, MHD_HTTP_OK, CONTENT_TYPE_METRICS, p->metrics, strlen(p->metrics), false);
        else if (page == PAGE_STATUS)
                ret = reply(c, MHD_HTTP_OK, CONTENT_TYPE_JSON, p->status, strlen(p->status), false);
        else
                ret = reply_text(c, p->healthy ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, p->health);
        pthread_mutex_unlock(&h->lock);
        return ret;
}

/* Runs on libmicrohttpd's thread for each request. libmicrohttpd omits the body for HEAD. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **con_cls) {
        (void) version;
        (void) upload_data;

        enum page page = page_from_url(url);
        if (page == _PAGE_INVALID)
                return reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
                return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
        /* libmicrohttpd closes the connection after a response queued on the first
         * call (the request may not be read whole yet): answer on the second, so
         * that a scraper's connection is kept alive. Errors above may close. */
        if (!*con_cls) {
                *con_cls = cls;          /* any non-NULL mark */
                return MHD_YES;
        }
        /* A GET with a body: answer anyway, ignoring the body. */
        if (*upload_data_size > 0) {
                *upload_data_size = 0;
                return MHD_YES;
        }
        return serve(cls, c, page);
}

int metrics_listen_parse(const char *listen, struct sockaddr_storage *ret_addr, socklen_t *ret_len) {
        _cleanup_free_ char *host = NULL;
        uint16_t port_number;
        char port[8];

        if (!listen)
                return -EINVAL;
        int r = hostport_parse(listen, &host, &port_number);
        if (r < 0)
                return r;
        snprintf(port, sizeof(port), "%u", port_number);

        struct addrinfo hints = {
                .ai_socktype = SOCK_STREAM,
                .ai_flags = AI_NUMERICSERV | AI_PASSIVE,
        };
        struct addrinfo *ai = NULL;
        if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
                return -EADDRNOTAVAIL;
        if (ai->ai_addrlen > sizeof(*ret_addr)) {
                freeaddrinfo(ai);
                return -EAFNOSUPPORT;
        }
        memcpy(ret_addr, ai->ai_addr, ai->ai_addrlen);
        *ret_len = ai->ai_addrlen;
        freeaddrinfo(ai);
        return 0;
}

/* A listening socket of our own, so a busy port reports EADDRINUSE, not a bare failure. */
static int listen_socket(const struct sockaddr_storage *addr, socklen_t len) {
        static const int one = 1;

        _cleanup_(closep) int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* A restarted corral must get its port back while old connections sit in TIME_WAIT. */
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        /* [::]:PORT means IPv6 only; 0.0.0.0:PORT is there for IPv4. */
        if (addr->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
                return -errno;
        if (bind(fd, (const struct sockaddr *) addr, len) < 0)
                return -errno;
        if (listen(fd, SOMAXCONN) < 0)
                return -errno;
        return TAKE_FD(fd);
}

unsigned metrics_http_connection_limit(uint64_t nofile, uint64_t reserved) {
        uint64_t taken = reserved + HTTP_OWN_FDS;
        uint64_t half = nofile > taken ? (nofile - taken) / 2 : 0;
        if (half < HTTP_CONNECTION_LIMIT_MIN)
                return HTTP_CONNECTION_LIMIT_MIN;
        return half > HTTP_CONNECTION_LIMIT_MAX ? HTTP_CONNECTION_LIMIT_MAX : (unsigned) half;
}

/* The connection limit for the current RLIMIT_NOFILE. Cannot fail. */
static unsigned connection_limit(uint64_t reserved) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
                return HTTP_CONNECTION_LIMIT_MAX;
        return metrics_http_connection_limit(rl.rlim_cur, reserved);
}

int metrics_http_start_fd(int fd, uint64_t reserved_fds, struct metrics_http **ret) {
        _cleanup_(closep) int lfd = fd;
        struct sockaddr_storage addr;
        socklen_t len = sizeof(addr);

        if (getsockname(lfd, (struct sockaddr *) &addr, &len) < 0)
                return -errno;
        struct metrics_http *h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        pthread_mutex_init(&h->lock, NULL);
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&h->published, &attr);
        pthread_condattr_destroy(&attr);
        h->render_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (h->render_fd < 0) {
                int r = -errno;
                pthread_cond_destroy(&h->published);
                pthread_mutex_destroy(&h->lock);
                free(h);
                return r;
        }

        h->max_connections = connection_limit(reserved_fds);
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
        if (addr.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        /* The port argument is ignored with LISTEN_SOCKET. The logger must be the first option. */
        h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, h,
                                     MHD_OPTION_EXTERNAL_LOGGER, discard_log, NULL,
                                     MHD_OPTION_LISTEN_SOCKET, lfd,
                                     MHD_OPTION_CONNECTION_LIMIT, h->max_connections,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) HTTP_CONNECTION_TIMEOUT_SEC,
                                     MHD_OPTION_END);
        if (!h->daemon) {
                int r = errno > 0 ? -errno : -EIO;
                safe_close(h->render_fd);
                pthread_cond_destroy(&h->published);
                pthread_mutex_destroy(&h->lock);
                free(h);
                return r;
        }
        TAKE_FD(lfd);            /* the daemon closes it when stopped */
        *ret = h;
        return 0;
}

int metrics_http_start(const char *listen, uint64_t reserved_fds, struct metrics_http **ret, uint16_t *ret_port) {
        struct sockaddr_storage addr;
        socklen_t len;
        struct metrics_http *h;
        int fd, r;

        r = metrics_listen_parse(listen, &addr, &len);
        if (r < 0)
                return r;
        fd = listen_socket(&addr, len);
        if (fd < 0)
                return fd;

        len = sizeof(addr);
        if (getsockname(fd, (struct sockaddr *) &addr, &len) < 0) {
                r = -errno;
                safe_close(fd);
                return r;
        }
        r = metrics_http_start_fd(fd, reserved_fds, &h);
        if (r < 0)
                return r;
        if (ret_port)
                *ret_port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &addr)->sin6_port
                                                             : ((struct sockaddr_in *) &addr)->sin_port);
        *ret = h;
        return 0;
}

int metrics_http_publish(struct metrics_http *h, const char *metrics_text, const char *status_json,
                         bool healthy, const char *health_reason) {
        _cleanup_(pages_freep) struct pages *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        /* Built outside the lock: the server thread waits only for a pointer swap. */
        p->metrics = strdup(metrics_text ? metrics_text : "");
        p->status = strdup(status_json ? status_json : "{}");
        if (asprintf(&p->health, "%s\n", health_reason ? health_reason : (healthy ? "ok" : "unhealthy")) < 0)
                p->health = NULL;
        if (!p->metrics || !p->status || !p->health)
                return -ENOMEM;
        p->healthy = healthy;

        pthread_mutex_lock(&h->lock);
        struct pages *old = h->pages;
        h->pages = TAKE_PTR(p);
        h->generation++;
        h->stale = false;
        h->loop_busy = false;
        pthread_cond_broadcast(&h->published);
        pthread_mutex_unlock(&h->lock);

        pages_free(old);
        return 0;
}

void metrics_http_mark_stale(struct metrics_http *h) {
        pthread_mutex_lock(&h->lock);
        h->stale = true;
        pthread_mutex_unlock(&h->lock);
}

unsigned metrics_http_max_connections(const struct metrics_http *h) {
        return h->max_connections;
}

int metrics_http_render_fd(const struct metrics_http *h) {
        return h->render_fd;
}

struct metrics_http *metrics_http_stop(struct metrics_http *h) {
        if (!h)
                return NULL;
        MHD_stop_daemon(h->daemon);
        safe_close(h->render_fd);
        pthread_cond_destroy(&h->published);
        pthread_mutex_destroy(&h->lock);
        pages_free(h->pages);
        free(h);
        return NULL;
}
