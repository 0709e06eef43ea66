/* SPDX-License-Identifier: MIT */
/*
 * A work queue's address, as tasks.from, tasks.results, --tasks and `corral
 * enqueue` write it: redis://[[USER]:PASSWORD@]HOST[:PORT]/STREAM
 * [?group=NAME&consumer=NAME]. Pure parsing: no lookups, no logging.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define QUEUE_URL_SCHEME "redis://"
#define QUEUE_DEFAULT_PORT 6379u
#define QUEUE_DEFAULT_GROUP "corral"

struct queue_url {
        char *host;              /* a name or address; an IPv6 address without brackets */
        unsigned port;
        char *user;              /* NULL: none (AUTH PASSWORD) */
        char *password;          /* NULL: no AUTH */
        char *stream;
        char *group;             /* QUEUE_DEFAULT_GROUP unless ?group= */
        char *consumer;          /* NULL: HOSTNAME-PID, chosen by the consumer */
};

/* Whether text names a queue (starts with redis://) rather than a file. */
bool queue_url_is(const char *text);

/*
 * Parses text into *ret (owned: queue_url_done). Percent-escapes (%40) are
 * decoded in the user, password, stream and query values. Returns 0; or
 * -EINVAL with a message naming the URL and what is wrong in error (the
 * password is never repeated), or -ENOMEM.
 */
int queue_url_parse(const char *text, struct queue_url *ret, char *error, size_t error_size);

/* text for a log: a queue URL with its password replaced by "***" (written
 * to buf), anything else as it is. Cannot fail. */
const char *queue_url_masked(const char *text, char *buf, size_t size);

/* Frees what u owns and zeroes it. Accepts a zeroed one. */
void queue_url_done(struct queue_url *u);
