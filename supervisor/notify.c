/* SPDX-License-Identifier: MIT */
/*
 * One notify socket per worker (see notify.h). The address comes from the
 * kernel's autobind (a unique name in the abstract namespace), so nothing
 * is left in the file system and no two endpoints collide, even across
 * corrals. An abstract socket can be found and written to by any process of
 * the network namespace: the sender's credentials, which the kernel fills in
 * (SO_PASSCRED), decide whose message it is. Descriptors passed along
 * (FDSTORE=1 with SCM_RIGHTS) are closed at once: corral keeps none.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "supervisor/notify.h"

/* A datagram is a few short lines; longer ones are cut (STATUS= included). */
#define NOTIFY_DATAGRAM_MAX 4096

struct notify_endpoint {
        int fd;
        sd_event *event;
        sd_event_source *io;
        sd_event_source *watchdog_timer;
        const struct notify_handler *handler;
        pid_t pid;               /* whose messages count; 0: nobody's */
        usec_t watchdog;         /* 0: no watchdog */
        char env[sizeof("NOTIFY_SOCKET=@") + sizeof(((struct sockaddr_un *) 0)->sun_path)];
};

static bool key_is(const char *line, size_t len, const char *key, const char **ret_value) {
        size_t k = strlen(key);
        if (len < k || memcmp(line, key, k) != 0)
                return false;
        *ret_value = line + k;
        return true;
}

void notify_parse(const char *buf, size_t len, struct notify_message *ret) {
        *ret = (struct notify_message) {};
        for (const char *p = buf, *end = buf + len; p < end;) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t n = (size_t) ((nl ? nl : end) - p);
                const char *v;
                if (key_is(p, n, "READY=", &v))
                        ret->ready = ret->ready || (n - 6 == 1 && v[0] == '1');
                else if (key_is(p, n, "WATCHDOG=", &v))
                        ret->watchdog = ret->watchdog || (n - 9 == 1 && v[0] == '1');
                else if (key_is(p, n, "STATUS=", &v)) {
                        size_t vn = n - 7 < sizeof(ret->status) - 1 ? n - 7 : sizeof(ret->status) - 1;
                        memcpy(ret->status, v, vn);
                        ret->status[vn] = '\0';
                        /* A status is one line of /status: no control characters. */
                        for (size_t i = 0; i < vn; i++)
                                if ((unsigned char) ret->status[i] < 0x20 || ret->status[i] == 0x7f)
                                        ret->status[i] = ' ';
                        ret->has_status = true;
                }
                p += n + 1;
        }
}

/* Whether a message from `sender` is the worker's: its own, or from a
 * process of its group (a server's master and its workers). */
static bool sender_allowed(const struct notify_endpoint *e, pid_t sender) {
        if (e->pid <= 0 || sender <= 0)
                return false;
        return sender == e->pid || getpgid(sender) == e->pid;
}

static int arm_watchdog(struct notify_endpoint *e) {
        usec_t now;
        int r = sd_event_now(e->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        if (!e->watchdog_timer)
                return -ENOENT;   /* created by the caller */
        r = sd_event_source_set_time(e->watchdog_timer, now + e->watchdog);
        if (r >= 0)
                r = sd_event_source_set_enabled(e->watchdog_timer, SD_EVENT_ONESHOT);
        return r;
}

static int on_watchdog(sd_event_source *s, uint64_t usec, void *userdata) {
        struct notify_endpoint *e = userdata;
        (void) s;
        (void) usec;
        if (e->pid > 0 && e->handler->silent)
                e->handler->silent(e, e->handler->userdata);
        return 0;
}

static void ping(struct notify_endpoint *e) {
        if (e->watchdog == 0)
                return;
        if (!e->watchdog_timer &&
            sd_event_add_time(e->event, &e->watchdog_timer, CLOCK_MONOTONIC, USEC_INFINITY, TIMER_ACCURACY_USEC,
                              on_watchdog, e) < 0)
                return;   /* without a timer there is no watchdog: the worker runs on */
        (void) arm_watchdog(e);
}

/* Receives one datagram, closing any fds it carried. Returns its length
 * and the sender's pid (0 without credentials), or a negative errno. */
static ssize_t receive(int fd, char *buf, size_t size, pid_t *ret_sender) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 16)];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = size };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control) };

        ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
        if (n < 0)
                return -errno;
        *ret_sender = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET)
                        continue;
                if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
                        struct ucred cred;
                        memcpy(&cred, CMSG_DATA(c), sizeof(cred));
                        *ret_sender = cred.pid;
                } else if (c->cmsg_type == SCM_RIGHTS) {
                        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        for (size_t i = 0; i < k; i++) {
                                int passed;
                                memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                                safe_close(passed);
                        }
                }
        }
        return (size_t) n < size ? n : (ssize_t) size;
}

static int on_datagram(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct notify_endpoint *e = userdata;
        char buf[NOTIFY_DATAGRAM_MAX];
        pid_t sender = 0;
        (void) s;
        (void) revents;

        /* A few per wake-up: one source must not starve the loop. */
        for (int i = 0; i < 16; i++) {
                ssize_t n = receive(fd, buf, sizeof(buf), &sender);
                if (n < 0)
                        break;
                if (!sender_allowed(e, sender)) {
                        if (e->handler->refused)
                                e->handler->refused(e, sender, e->handler->userdata);
                        continue;
                }
                struct notify_message m;
                notify_parse(buf, (size_t) n, &m);
                if (m.watchdog)
                        ping(e);
                e->handler->message(e, &m, e->handler->userdata);
        }
        return 0;
}

static int bind_autobind(int fd, char *env, size_t size) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        socklen_t len = sizeof(sa_family_t);
        int one = 1;

        if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
                return -errno;
        /* Only the family: the kernel picks a unique abstract name. */
        if (bind(fd, (struct sockaddr *) &sa, len) < 0)
                return -errno;
        len = sizeof(sa);
        if (getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
                return -errno;
        size_t name_len = len - offsetof(struct sockaddr_un, sun_path);
        if (name_len < 2 || sa.sun_path[0] != '\0')
                return -EADDRNOTAVAIL;
        int n = snprintf(env, size, "NOTIFY_SOCKET=@%.*s", (int) name_len - 1, sa.sun_path + 1);
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

int notify_endpoint_new(sd_event *event, const struct notify_handler *h, struct notify_endpoint **ret) {
        struct notify_endpoint *e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->event = sd_event_ref(event);
        e->handler = h;
        e->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int r = e->fd < 0 ? -errno : bind_autobind(e->fd, e->env, sizeof(e->env));
        if (r >= 0)
                r = sd_event_add_io(event, &e->io, e->fd, EPOLLIN, on_datagram, e);
        if (r < 0) {
                notify_endpoint_free(e);
                return r;
        }
        *ret = e;
        return 0;
}

const char *notify_endpoint_env(const struct notify_endpoint *e) {
        return e->env;
}

void notify_endpoint_expect(struct notify_endpoint *e, pid_t pid, usec_t watchdog) {
        e->pid = pid;
        e->watchdog = watchdog;
        if (e->watchdog_timer)
                (void) sd_event_source_set_enabled(e->watchdog_timer, SD_EVENT_OFF);
}

struct notify_endpoint *notify_endpoint_free(struct notify_endpoint *e) {
        if (!e)
                return NULL;
        sd_event_source_disable_unref(e->io);
        sd_event_source_disable_unref(e->watchdog_timer);
        safe_close(e->fd);
        sd_event_unref(e->event);
        free(e);
        return NULL;
}
