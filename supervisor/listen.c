/* SPDX-License-Identifier: MIT */
/*
 * Binding `listen:` (see listen.h). TCP addresses go through getaddrinfo(),
 * so a name such as localhost works; the first address it gives is bound.
 * SO_REUSEADDR lets corral restart at once while connections of its last
 * run are in TIME_WAIT. A unix socket left behind by a corral that was
 * killed is replaced; one that answers belongs to a live server and is an
 * error, as a TCP port in use is.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "common/hostport.h"
#include "supervisor/listen.h"

__attribute__((format(printf, 3, 4)))
static int fail(struct listen_error *e, int r, const char *format, ...) {
        va_list ap;
        va_start(ap, format);
        vsnprintf(e->message, sizeof(e->message), format, ap);
        va_end(ap);
        return r;
}

static int listen_backlog(const struct corral_config *c) {
        return c->listen_backlog > 0 ? (int) c->listen_backlog : SOMAXCONN;
}

/* A socket at path that nobody accepts on (ECONNREFUSED) is stale: 0 once
 * it is gone, or there is nothing there; -EADDRINUSE when a server answers
 * or the path is not a socket. */
static int unix_clear_stale(const struct sockaddr_un *sa) {
        struct stat st;
        if (lstat(sa->sun_path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode))
                return -EADDRINUSE;
        _cleanup_(closep) int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (const struct sockaddr *) sa, sizeof(*sa)) == 0)
                return -EADDRINUSE;
        if (errno != ECONNREFUSED)
                return -EADDRINUSE;
        return unlink(sa->sun_path) < 0 && errno != ENOENT ? -errno : 0;
}

static int bind_unix(const char *path, int backlog, struct listen_socket *ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        int r = unix_clear_stale(&sa);
        if (r < 0)
                return r;
        _cleanup_(closep) int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (const struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        if (!(ret->unlink_path = strdup(path))) {
                (void) unlink(path);
                return -ENOMEM;
        }
        if (listen(fd, backlog) < 0)
                return -errno;
        ret->family = AF_UNIX;
        ret->fd = TAKE_FD(fd);
        return 0;
}

/* *ret_gai: getaddrinfo()'s error when the name did not resolve (then -EADDRNOTAVAIL). */
static int bind_inet(const char *address, int backlog, struct listen_socket *ret, int *ret_gai) {
        _cleanup_free_ char *host = NULL;
        char port[8];
        uint16_t port_number;
        int r = hostport_parse(address, &host, &port_number);
        if (r < 0)
                return r;
        snprintf(port, sizeof(port), "%u", port_number);

        struct addrinfo hints = {
                .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
                .ai_family = AF_UNSPEC,
                .ai_socktype = SOCK_STREAM,
        }, *ai = NULL;
        r = getaddrinfo(host, port, &hints, &ai);
        if (r != 0 && r != EAI_SYSTEM && r != EAI_MEMORY)
                *ret_gai = r;
        if (r != 0)
                return r == EAI_SYSTEM ? -errno : r == EAI_MEMORY ? -ENOMEM : -EADDRNOTAVAIL;

        _cleanup_(closep) int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        int one = 1;
        r = 0;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0)
                r = -errno;
        ret->family = ai->ai_family;
        freeaddrinfo(ai);
        if (r < 0)
                return r;
        ret->fd = TAKE_FD(fd);
        return 0;
}

static int bind_one(const struct corral_config *c, const struct listen_config *lc, size_t index,
                    struct listen_socket *ret, struct listen_error *error) {
        const char *unix_path = NULL;
        char name[32];
        int r, gai = 0;

        if (strncmp(lc->address, LISTEN_UNIX_PREFIX, strlen(LISTEN_UNIX_PREFIX)) == 0)
                unix_path = lc->address + strlen(LISTEN_UNIX_PREFIX);
        r = unix_path ? bind_unix(unix_path, listen_backlog(c), ret)
                      : bind_inet(lc->address, listen_backlog(c), ret, &gai);
        if (r < 0)
                return fail(error, r, "%s:%u:%u: cannot listen on %s: %s", c->path ? c->path : "listen", lc->line,
                            lc->column, lc->address, gai ? gai_strerror(gai) : strerror(-r));
        snprintf(name, sizeof(name), "listen%zu", index);
        if (!(ret->name = strdup(name)) || !(ret->address = strdup(lc->address)))
                return fail(error, -ENOMEM, "cannot listen on %s: %s", lc->address, strerror(ENOMEM));
        return 0;
}

/* corral's own socket activation: the fds 3.. systemd passed, with their
 * names. The variables are removed from corral's environment, so that
 * workers see only the ones corral sets for them. 0 with none. */
static int take_activated(struct listen_set *s, struct listen_error *error) {
        char **names = NULL;
        int n = sd_listen_fds_with_names(true, &names);
        if (n <= 0) {
                strv_free(names);
                return n < 0 ? fail(error, n, "cannot take the sockets of LISTEN_FDS: %s", strerror(-n)) : 0;
        }
        if (n > LISTEN_MAX) {
                strv_free(names);
                return fail(error, -EMFILE, "LISTEN_FDS: %d sockets, at most %d", n, LISTEN_MAX);
        }
        s->sockets = calloc((size_t) n, sizeof(struct listen_socket));
        if (!s->sockets) {
                strv_free(names);
                return fail(error, -ENOMEM, "cannot take the sockets of LISTEN_FDS: %s", strerror(ENOMEM));
        }
        s->activated = true;
        for (int i = 0; i < n; i++) {
                struct listen_socket *ls = &s->sockets[s->n++];
                char address[32];
                int family = 0;
                socklen_t len = sizeof(family);
                ls->fd = SD_LISTEN_FDS_START + i;
                /* Only sockets have a backlog to read; anything else is passed on as it is. */
                if (getsockopt(ls->fd, SOL_SOCKET, SO_DOMAIN, &family, &len) == 0)
                        ls->family = family;
                snprintf(address, sizeof(address), "fd %d", ls->fd);
                ls->name = names && names[i] ? strdup(names[i]) : strdup("unknown");
                ls->address = strdup(address);
                if (!ls->name || !ls->address) {
                        strv_free(names);
                        return fail(error, -ENOMEM, "cannot take the sockets of LISTEN_FDS: %s", strerror(ENOMEM));
                }
        }
        strv_free(names);
        return 0;
}

/* LISTEN_FDS, LISTEN_FDNAMES and the fds in order, for every spawn. */
static int build_env(struct listen_set *s) {
        size_t len = strlen("LISTEN_FDNAMES=") + 1;
        for (size_t i = 0; i < s->n; i++)
                len += strlen(s->sockets[i].name) + 1;
        s->names_env = malloc(len);
        s->fds = calloc(s->n, sizeof(int));
        if (!s->names_env || !s->fds || asprintf(&s->fds_env, "LISTEN_FDS=%zu", s->n) < 0)
                return -ENOMEM;
        char *p = stpcpy(s->names_env, "LISTEN_FDNAMES=");
        for (size_t i = 0; i < s->n; i++) {
                p = stpcpy(p, s->sockets[i].name);
                if (i + 1 < s->n)
                        p = stpcpy(p, ":");
                s->fds[i] = s->sockets[i].fd;
        }
        return 0;
}

int listen_set_open(const struct corral_config *c, struct listen_set **ret, struct listen_error *error) {
        _cleanup_(listen_set_freep) struct listen_set *s = calloc(1, sizeof(*s));
        if (!s)
                return fail(error, -ENOMEM, "cannot listen: %s", strerror(ENOMEM));
        int r = take_activated(s, error);
        if (r < 0)
                return r;
        if (!s->activated && c->n_listen > LISTEN_MAX)
                return fail(error, -EMFILE, "%s:%u:%u: listen: %zu addresses, at most %d", c->path ? c->path : "listen",
                            c->listen[LISTEN_MAX].line, c->listen[LISTEN_MAX].column, c->n_listen, LISTEN_MAX);
        if (!s->activated && c->n_listen > 0) {
                s->sockets = calloc(c->n_listen, sizeof(struct listen_socket));
                if (!s->sockets)
                        return fail(error, -ENOMEM, "cannot listen: %s", strerror(ENOMEM));
                for (size_t i = 0; i < c->n_listen; i++) {
                        s->sockets[s->n] = (struct listen_socket) { .fd = -EBADF };
                        r = bind_one(c, &c->listen[i], i, &s->sockets[s->n], error);
                        s->n++;   /* counted either way: freed below on failure */
                        if (r < 0)
                                return r;
                }
        }
        if (s->n == 0) {
                *ret = NULL;
                return 0;
        }
        r = build_env(s);
        if (r < 0)
                return fail(error, r, "cannot listen: %s", strerror(-r));
        *ret = TAKE_PTR(s);
        return 0;
}

struct listen_set *listen_set_free(struct listen_set *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n; i++) {
                struct listen_socket *ls = &s->sockets[i];
                safe_close(ls->fd);
                if (ls->unlink_path)
                        (void) unlink(ls->unlink_path);
                free(ls->unlink_path);
                free(ls->name);
                free(ls->address);
        }
        free(s->sockets);
        free(s->fds_env);
        free(s->names_env);
        free(s->fds);
        free(s);
        return NULL;
}

bool listen_config_changed(const struct corral_config *a, const struct corral_config *b) {
        if (a->n_listen != b->n_listen || a->listen_backlog != b->listen_backlog)
                return true;
        for (size_t i = 0; i < a->n_listen; i++)
                if (strcmp(a->listen[i].address, b->listen[i].address) != 0)
                        return true;
        return false;
}
