/* SPDX-License-Identifier: MIT */
/*
 * Reading a listening socket's accept queue (see sampler_listen.h). For a
 * TCP socket in LISTEN state, Linux reports the queue's current length in
 * tcp_info.tcpi_unacked and its limit in tcpi_sacked (tcp_get_info(): the
 * fields mean nothing else for a listener). One getsockopt() per socket,
 * a few microseconds, each sample.
 *
 * Unix sockets are left out: their queue is visible only through
 * NETLINK_SOCK_DIAG (UNIX_DIAG_RQLEN, looked up by inode), a netlink round
 * trip per sample for the rarer kind of server socket; a pool behind a unix
 * socket scales on its other signals.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

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

int sampler_listen_backlog(const struct listen_set *s, double *ret) {
        unsigned sum = 0, measured = 0;
        for (size_t i = 0; s && i < s->n; i++) {
                unsigned queue = 0;
                int family = s->sockets[i].family;
                if ((family != AF_INET && family != AF_INET6) || tcp_accept_queue(s->sockets[i].fd, &queue) < 0)
                        continue;
                sum += queue;
                measured++;
        }
        if (measured == 0)
                return -ENODATA;
        *ret = sum;
        return 0;
}
