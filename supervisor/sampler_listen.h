/* SPDX-License-Identifier: MIT */
/*
 * The signal listen.backlog: connections that completed the handshake and
 * wait in the accept queues of the `listen:` sockets for a worker to take
 * them, summed. Requests waiting is what a server pool scales on: a worker
 * blocked on a database is busy without using CPU.
 */
#pragma once

#include "supervisor/listen.h"

/* The summed accept queues of the TCP and unix sockets of s, into *ret
 * (other kinds, passed by socket activation, are not counted). 0, or
 * -ENODATA when none of the sockets could be read (the signal is then
 * unavailable, not 0). */
int sampler_listen_backlog(const struct listen_set *s, double *ret);
