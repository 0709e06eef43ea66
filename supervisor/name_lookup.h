/* SPDX-License-Identifier: MIT */
/*
 * A host name looked up without blocking the event loop: getaddrinfo() runs
 * on a thread of its own, which wakes the loop through an eventfd; the answer
 * is handed over on the loop. (libsystemd's sd-resolve does the same, but
 * libsystemd 252 neither exports nor installs it.)
 */
#pragma once

#include <stdbool.h>
#include <netdb.h>
#include <systemd/sd-event.h>

struct name_lookup;

/* error: 0, or an EAI_* code (gai_strerror()). ai (error 0: at least one
 * address) is valid during the call; the lookup may be freed from within. */
typedef void (*name_lookup_fn)(struct name_lookup *l, int error, const struct addrinfo *ai, void *userdata);

/* Whether host is a numeric IPv4 or IPv6 address: nothing to look up. */
bool name_is_numeric(const char *host);

/*
 * Starts looking up host's stream-socket addresses; fn runs once, on loop e.
 * Returns 0 with the lookup in *ret (owned: name_lookup_free), or a negative
 * errno (fn will not run).
 */
int name_lookup_start(sd_event *e, const char *host, name_lookup_fn fn, void *userdata, struct name_lookup **ret);

/* Forgets a lookup: fn will not run (a lookup still running ends on its own
 * thread and frees itself). Accepts NULL; returns NULL. */
struct name_lookup *name_lookup_free(struct name_lookup *l);
