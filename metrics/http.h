/* SPDX-License-Identifier: MIT */
/*
 * The metrics endpoint: GET (and HEAD) /metrics, /healthz and /status, served
 * by libmicrohttpd from its own thread. That thread only ever reads the last
 * published pages (immutable strings swapped under a mutex); the loop thread
 * renders and publishes them once per sample.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct metrics_http;

/*
 * Parses "HOST:PORT" ("127.0.0.1:9311", "[::1]:9311", "localhost:0") into a
 * socket address. Numeric hosts never touch the network; a name is resolved
 * with getaddrinfo(). Returns 0, or -EINVAL for a malformed address or port,
 * -EADDRNOTAVAIL for a host that does not resolve.
 */
int metrics_listen_parse(const char *listen, struct sockaddr_storage *ret_addr, socklen_t *ret_len);

/*
 * Binds listen (see metrics_listen_parse(); port 0 picks a free port) and starts
 * serving from a libmicrohttpd thread, with at most
 * metrics_http_connection_limit(RLIMIT_NOFILE, reserved_fds) connections at
 * once: reserved_fds are the fds the caller needs besides (its workers'). Does not touch the signal mask: the new
 * thread inherits the caller's, so block the loop's signals before. Until the
 * first metrics_http_publish(), every page answers 503. *ret_port is the port
 * actually bound (may be NULL). Returns 0 or a negative errno; -EADDRINUSE
 * for a busy port, so the caller can print "cannot listen on %s: %m".
 */
int metrics_http_start(const char *listen, uint64_t reserved_fds, struct metrics_http **ret, uint16_t *ret_port);

/*
 * As metrics_http_start(), on a socket that is already bound and listening
 * (socket activation). Takes the fd, also on failure.
 */
int metrics_http_start_fd(int fd, uint64_t reserved_fds, struct metrics_http **ret);

/*
 * How many connections the server holds at once with an fd table of `nofile`
 * of which `reserved` are the caller's: half of what is left after them and
 * corral's own fds, at least 4 (a scraper gets in), at most 16384. Pure.
 */
unsigned metrics_http_connection_limit(uint64_t nofile, uint64_t reserved);

/*
 * Replaces the pages served from now on: the Prometheus text, the /status JSON
 * and the /healthz verdict with its one-line reason. Copies the strings, so
 * the caller keeps its own. Requests already answering finish with the old
 * pages. Call from one thread at a time. Returns 0 or -ENOMEM (the old pages
 * then stay).
 */
int metrics_http_publish(struct metrics_http *h, const char *metrics_text, const char *status_json,
                         bool healthy, const char *health_reason);

/*
 * Rendering on demand: instead of rendering every sample, the loop may say that
 * it has a newer sample than the published pages. A request then signals the
 * eventfd of metrics_http_render_fd() and waits (up to half a second) for the
 * loop to render and publish; without one, nothing is rendered. When a wait
 * ends without new pages (the loop is busy), requests get the last pages at
 * once until the next publish. Cannot fail.
 */
void metrics_http_mark_stale(struct metrics_http *h);

/* The connection limit the server was started with. */
unsigned metrics_http_max_connections(const struct metrics_http *h);

/* The eventfd the loop watches for render requests (readable: read it, render, publish). */
int metrics_http_render_fd(const struct metrics_http *h);

/* Stops the thread (waiting for it), closes the socket and frees. Accepts NULL; returns NULL. */
struct metrics_http *metrics_http_stop(struct metrics_http *h);

static inline void metrics_http_stopp(struct metrics_http **h) {
        metrics_http_stop(*h);
}
