/* SPDX-License-Identifier: MIT */
/*
 * corral's side of hiredis: the blocking checks before the loop runs (connect,
 * AUTH, "is the key a stream", the consumer group), and an asynchronous
 * connection on the sd-event loop that reconnects with backoff on its own.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <systemd/sd-event.h>

#include "conf/queue_url.h"

/* Seconds a blocking connect or command may take before corral gives up. */
#define REDIS_SETUP_TIMEOUT_SEC 5

/*
 * Connects to u (blocking, bounded by REDIS_SETUP_TIMEOUT_SEC), sends AUTH
 * when u has a password and checks that u->stream is a stream or does not
 * exist. Returns 0 with the context in *ret (owned: redisFree); or -EINVAL
 * with the reason in error (refused connection, wrong password, a key of
 * another type), or -ENOMEM.
 */
int redis_open_checked(const struct queue_url *u, redisContext **ret, char *error, size_t error_size);

/* The numeric address c is connected to (host if it cannot be read): what
 * the loop's connection connects to first, since hiredis resolves a name
 * with the blocking getaddrinfo() at every connect. */
void redis_peer_address(const redisContext *c, const char *host, char *buf, size_t size);

/* Creates u's consumer group at the start of the stream (and the stream)
 * unless it exists. 0, or -EINVAL with the reason in error. */
int redis_create_group(redisContext *c, const struct queue_url *u, char *error, size_t error_size);

/* "HOST:PORT" (brackets around an IPv6 address) for messages. */
void redis_describe(const struct queue_url *u, char *buf, size_t size);

struct redis_link;

struct redis_link_ops {
        /* The connection is up (first time or again): resend what was lost. */
        void (*connected)(void *userdata);
};

/*
 * An asynchronous connection to u on loop e. Every (re)connect starts with
 * AUTH (when u has a password) and the consumer group's creation, so a
 * restarted, empty server works again. A lost connection is logged once and
 * retried with backoff (100ms doubling to 5s). It connects first to addr
 * (numeric, from redis_peer_address()); each reconnect looks u's host up
 * again off the loop (supervisor/name_lookup.h) and tries its addresses in
 * order, so a server that moved is found; a lookup that fails is logged once
 * an outage and retried with the backoff. u must outlive the link.
 */
int redis_link_new(sd_event *e, const struct queue_url *u, const char *addr, const struct redis_link_ops *ops,
                   void *userdata, struct redis_link **ret);

/* Frees the link; pending commands' callbacks run with a NULL reply. Accepts
 * NULL; returns NULL. Not from inside a hiredis callback. */
struct redis_link *redis_link_free(struct redis_link *l);

/* Whether commands can be sent now. */
bool redis_link_up(const struct redis_link *l);

/*
 * Sends a command (argv form, copied). fn runs once with the reply, or with a
 * NULL reply if the connection is lost first. Returns 0, or -ENOTCONN (the
 * link is down: fn will not run) or -ENOMEM.
 */
int redis_link_command(struct redis_link *l, redisCallbackFn *fn, void *privdata, int argc, const char **argv,
                       const size_t *argvlen);
