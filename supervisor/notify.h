/* SPDX-License-Identifier: MIT */
/*
 * The notify protocol between corral and its workers (sd_notify(3)): each
 * worker gets its own NOTIFY_SOCKET, an abstract AF_UNIX datagram socket,
 * so that a message says which worker it is about by where it arrives; the
 * sender's credentials (SO_PASSCRED) must be the worker's own pid or a
 * process of its process group, so that a worker can only speak for
 * itself. READY=1, STATUS= and WATCHDOG=1 are understood; other keys are
 * ignored, as systemd does. With a watchdog interval, silence that long
 * after a WATCHDOG=1 is reported once.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "common/util.h"

#define NOTIFY_STATUS_MAX 128

/* What one datagram said. */
struct notify_message {
        bool ready;              /* READY=1 */
        bool watchdog;           /* WATCHDOG=1 */
        bool has_status;
        char status[NOTIFY_STATUS_MAX];   /* STATUS=, cut to fit */
};

/* Parses "KEY=VALUE" lines. Pure; cannot fail (unknown keys are ignored). */
void notify_parse(const char *buf, size_t len, struct notify_message *ret);

struct notify_endpoint;

struct notify_handler {
        /* A message from the worker (never from another sender). */
        void (*message)(struct notify_endpoint *e, const struct notify_message *m, void *userdata);
        /* Optional: a message from another process (pid 0: unknown), ignored. */
        void (*refused)(struct notify_endpoint *e, pid_t sender, void *userdata);
        /* No WATCHDOG=1 for the watchdog interval after one. */
        void (*silent)(struct notify_endpoint *e, void *userdata);
        void *userdata;
};

/* A socket on loop `event` whose address is in notify_endpoint_env(). The
 * handler must outlive it. 0 or a negative errno. */
int notify_endpoint_new(sd_event *event, const struct notify_handler *h, struct notify_endpoint **ret);

/* "NOTIFY_SOCKET=@..." for the worker's environment. */
const char *notify_endpoint_env(const struct notify_endpoint *e);

/* From now on messages count only from pid or its process group (0: from
 * nobody); the watchdog is disarmed until the next WATCHDOG=1, and waits
 * `watchdog` (0: none) after it. Cannot fail. */
void notify_endpoint_expect(struct notify_endpoint *e, pid_t pid, usec_t watchdog);

/* Closes and frees. Accepts NULL. */
struct notify_endpoint *notify_endpoint_free(struct notify_endpoint *e);
