/* SPDX-License-Identifier: MIT */
/*
 * Reading a listening socket's accept queue (see sampler_listen.h). For a
 * TCP socket in LISTEN state, Linux reports the queue's current length in
 * tcp_info.tcpi_unacked and its limit in tcpi_sacked (tcp_get_info(): the
 * fields mean nothing else for a listener). One getsockopt() per socket,
 * a few microseconds, each sample.
 *
 * A unix socket's queue is visible only through NETLINK_SOCK_DIAG: the
 * socket looked up by its inode, UNIX_DIAG_RQLEN giving the queue of a
 * listener as udiag_rqueue. One netlink round trip per unix socket and
 * sample.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

#include "supervisor/sampler_listen.h"

/* One socket's queue: 0 with its length, or a negative errno. */
static int tcp_accept_queue(int fd, unsigned *ret) {
        struct tcp_info info;
        socklen_t len = sizeof(info);
        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0)
                return -errno;
        if (info.tcpi_state != TCP_LISTEN)
                return -ENOTCONN;
        *ret = info.tcpi_unacked;
        return 0;
}

/* The reply's UNIX_DIAG_RQLEN: 0 with the queue, or a negative errno. */
static int parse_unix_diag(const char *buf, size_t len, unsigned *ret) {
        const struct nlmsghdr *h = (const struct nlmsghdr *) buf;
        if (!NLMSG_OK(h, len))
                return -EBADMSG;
        if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                return h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error < 0 ? e->error : -EBADMSG;
        }
        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg)))
                return -EBADMSG;
        const struct unix_diag_msg *m = NLMSG_DATA(h);
        int attr_len = (int) h->nlmsg_len - (int) NLMSG_LENGTH(sizeof(*m));
        for (const struct rtattr *a = (const struct rtattr *) (m + 1); RTA_OK(a, attr_len); a = RTA_NEXT(a, attr_len))
                if (a->rta_type == UNIX_DIAG_RQLEN && RTA_PAYLOAD(a) >= sizeof(struct unix_diag_rqlen)) {
                        struct unix_diag_rqlen q;
                        memcpy(&q, RTA_DATA(a), sizeof(q));
                        *ret = q.udiag_rqueue;
                        return 0;
                }
        return -ENODATA;
}

static int unix_accept_queue(int fd, unsigned *ret) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        _cleanup_(closep) int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (nl < 0)
                return -errno;
        struct {
                struct nlmsghdr h;
                struct unix_diag_req req;
        } msg = {
                .h = { .nlmsg_len = sizeof(msg), .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = NLM_F_REQUEST },
                .req = {
                        .sdiag_family = AF_UNIX,
                        .udiag_states = 1u << TCP_LISTEN,
                        .udiag_ino = (__u32) st.st_ino,
                        .udiag_show = UDIAG_SHOW_RQLEN,
                        .udiag_cookie = { ~0u, ~0u },   /* INET_DIAG_NOCOOKIE: by inode alone */
                },
        };
        if (send(nl, &msg, sizeof(msg), 0) < 0)
                return -errno;
        union {
                struct nlmsghdr align;
                char buf[1024];
        } reply;
        ssize_t n = recv(nl, &reply, sizeof(reply), 0);
        if (n < 0)
                return -errno;
        return parse_unix_diag(reply.buf, (size_t) n, ret);
}

int sampler_listen_backlog(const struct listen_set *s, double *ret) {
        unsigned sum = 0, measured = 0;
        for (size_t i = 0; s && i < s->n; i++) {
                unsigned queue = 0;
                int family = s->sockets[i].family, r = -EAFNOSUPPORT;
                if (family == AF_INET || family == AF_INET6)
                        r = tcp_accept_queue(s->sockets[i].fd, &queue);
                else if (family == AF_UNIX)
                        r = unix_accept_queue(s->sockets[i].fd, &queue);
                if (r < 0)
                        continue;
                sum += queue;
                measured++;
        }
        if (measured == 0)
                return -ENODATA;
        *ret = sum;
        return 0;
}
