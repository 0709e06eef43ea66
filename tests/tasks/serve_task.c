/* SPDX-License-Identifier: MIT */
/*
 * A server worker for the e2e tests of server pools: it takes its listening
 * socket the way sd_listen_fds(3) does (fd 3, LISTEN_FDS, and LISTEN_PID
 * equal to its own pid, else it refuses to start), answers each HTTP request
 * with "pid PID worker ID" and closes the connection, and speaks the notify
 * protocol through NOTIFY_SOCKET with plain sendto(). C, not Python: the
 * tests time readiness, and an interpreter's start-up on a busy machine
 * would blur it.
 *
 * Usage: serve-task [--ready-after MS | --ready-when FILE] [--status TEXT]
 *                   [--watchdog MS] [--hang-when FILE] [--delay MS]
 *   --ready-after: READY=1 that long after start (without it, never);
 *   --ready-when: READY=1 once FILE exists (the test decides when);
 *   --status: STATUS=TEXT at start;
 *   --watchdog: WATCHDOG=1 every MS;
 *   --hang-when: once FILE exists, stop answering and pinging (a hung worker);
 *   --delay: take MS to answer each request (a slow handler).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tasks/task_util.h"

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* One datagram to NOTIFY_SOCKET ('@' = the abstract namespace); quiet when unset. */
static void notify(const char *message) {
        const char *path = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (!path || !*path || strlen(path) >= sizeof(sa.sun_path))
                return;
        memcpy(sa.sun_path, path, strlen(path));
        if (sa.sun_path[0] == '@')
                sa.sun_path[0] = '\0';
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return;
        socklen_t len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(path));
        if (sendto(fd, message, strlen(message), 0, (struct sockaddr *) &sa, len) < 0)
                fprintf(stderr, "serve-task: notify: %m\n");
        close(fd);
}

/* sd_listen_fds(3)'s checks, by hand: the number of sockets, from fd 3. */
static int listen_fds(void) {
        const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
        if (!fds || !pid || atoi(fds) < 1) {
                fprintf(stderr, "serve-task: no LISTEN_FDS\n");
                exit(2);
        }
        if (strtol(pid, NULL, 10) != (long) getpid()) {
                fprintf(stderr, "serve-task: LISTEN_PID %s is not my pid %d\n", pid, (int) getpid());
                exit(2);
        }
        return atoi(fds) < 8 ? atoi(fds) : 8;
}

static void answer(int fd, uint64_t delay_ms) {
        char buf[4096], body[64], head[160];
        /* The request head; its body (none for GET) does not matter. */
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
                return;
        if (delay_ms)
                sleep_ms(delay_ms);
        const char *id = getenv("CORRAL_WORKER_ID");
        int body_len = snprintf(body, sizeof(body), "pid %d worker %s\n", (int) getpid(), id ? id : "-");
        int head_len = snprintf(head, sizeof(head),
                                "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n"
                                "Connection: close\r\n\r\n", body_len);
        (void) !write(fd, head, (size_t) head_len);
        (void) !write(fd, body, (size_t) body_len);
}

/* TERM: says so (for the tests' ordering) and ends once the request in
 * hand is answered, as gunicorn and uvicorn do. */
static volatile sig_atomic_t terminating;

static void on_term(int sig) {
        char line[32];
        int n = snprintf(line, sizeof(line), "term %d\n", (int) getpid());
        (void) sig;
        (void) !write(STDOUT_FILENO, line, (size_t) n);
        terminating = 1;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "ready-after", required_argument, NULL, 'r' },
                { "status",      required_argument, NULL, 's' },
                { "watchdog",    required_argument, NULL, 'w' },
                { "ready-when",  required_argument, NULL, 'R' },
                { "hang-when",   required_argument, NULL, 'h' },
                { "delay",       required_argument, NULL, 'd' },
                {}
        };
        long ready_after = -1, watchdog = 0, delay = 0;
        const char *status = NULL, *ready_when = NULL, *hang_when = NULL;
        int c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'r': ready_after = strtol(optarg, NULL, 10); break;
                case 's': status = optarg; break;
                case 'w': watchdog = strtol(optarg, NULL, 10); break;
                case 'R': ready_when = optarg; break;
                case 'h': hang_when = optarg; break;
                case 'd': delay = strtol(optarg, NULL, 10); break;
                default: return 2;
                }
        setvbuf(stdout, NULL, _IOLBF, 0);
        signal(SIGTERM, on_term);

        int n = listen_fds();
        struct pollfd p[8];
        /* Shared by every worker: without O_NONBLOCK the ones that lose the
         * race for a connection would block in accept() and miss their pings. */
        for (int i = 0; i < n; i++) {
                p[i] = (struct pollfd) { .fd = 3 + i, .events = POLLIN };
                if (fcntl(3 + i, F_SETFL, fcntl(3 + i, F_GETFL) | O_NONBLOCK) < 0)
                        return 1;
        }
        uint64_t start = now_ms(), next_ping = start;
        bool ready = false;
        if (status) {
                char m[256];
                snprintf(m, sizeof(m), "STATUS=%s", status);
                notify(m);
        }
        while (!terminating) {
                uint64_t now = now_ms();
                if (hang_when && access(hang_when, F_OK) == 0)
                        while (!terminating)
                                pause();   /* hung: no answers, no pings */
                if (!ready && ((ready_after >= 0 && now - start >= (uint64_t) ready_after) ||
                               (ready_when && access(ready_when, F_OK) == 0))) {
                        /* Said before it is true for corral: a test reading both
                         * sees this line before anything corral does about it. */
                        printf("ready %d\n", (int) getpid());
                        notify("READY=1");
                        ready = true;
                }
                if (watchdog > 0 && now >= next_ping) {
                        notify("WATCHDOG=1");
                        next_ping = now + (uint64_t) watchdog;
                }
                if (poll(p, (nfds_t) n, 20) <= 0)
                        continue;
                for (int i = 0; i < n; i++) {
                        if (!(p[i].revents & POLLIN))
                                continue;
                        int fd = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC);
                        if (fd >= 0) {
                                answer(fd, (uint64_t) delay);
                                close(fd);
                        } else if (errno != EAGAIN && errno != EINTR) {
                                fprintf(stderr, "serve-task: accept: %m\n");
                                return 1;
                        }
                }
        }
        return 0;
}
