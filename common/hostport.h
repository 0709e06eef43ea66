/* SPDX-License-Identifier: MIT */
/*
 * HOST:PORT, the one syntax of every address corral listens on or is given
 * (metrics.listen, --metrics): "127.0.0.1:9311", "localhost:9311",
 * "[::1]:9311". Pure syntax, no lookup: whether the host resolves is the
 * caller's business.
 */
#pragma once

#include <stdint.h>

/*
 * Splits s into its host (without the brackets of an IPv6 address) and
 * port. The host is a name or IPv4 address (letters, digits, '.' and '-'),
 * or an IPv6 address in brackets (hex digits, ':' and '.'): a bare IPv6
 * address would be ambiguous with its port. The port is 1-5 digits, 0-65535.
 * Returns 0 with a new string in *ret_host (when ret_host is not NULL),
 * -EINVAL, or -ENOMEM; writes the out-parameters only on success.
 */
int hostport_parse(const char *s, char **ret_host, uint16_t *ret_port);
