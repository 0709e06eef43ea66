/* SPDX-License-Identifier: MIT */
/*
 * Parsers for the value types shared by the YAML file and the command line:
 * counts, durations ("250ms", "5s", "2m", "1h") and process signal names
 * ("TERM", "SIGTERM"). Pure; each returns 0 or -EINVAL/-ERANGE and writes its
 * out-parameter only on success.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/format.h"   /* format_duration(), format_size(): their users include this header */
#include "common/util.h"

/* A decimal count in [0, max]: digits only, no sign, no spaces. */
int parse_unsigned(const char *s, unsigned max, unsigned *ret);

/* A duration: a non-negative number with a unit of us, ms, s, m or h ("0" needs none). */
int parse_duration(const char *s, usec_t *ret);

/* A signal name with or without "SIG" (case-insensitive), or its number. */
int parse_signal(const char *s, int *ret);

/* "TERM" for SIGTERM; "SIG42" style for a signal without a name. Never NULL. */
const char *signal_to_string(int sig, char buf[static 16]);

/* A percentage: "80%" or a bare number, 0-100 either way; decimals allowed. */
int parse_percent(const char *s, double *ret);

/* A size in bytes: digits with an optional unit B, K/KiB, M/MiB, G/GiB, T/TiB
 * (1024-based) or KB, MB, GB, TB (1000-based): "512MiB", "2GiB", "0". */
int parse_size(const char *s, uint64_t *ret);

/* A shard "K/N": N >= 1, K < N. */
int parse_shard(const char *s, unsigned *ret_index, unsigned *ret_count);

/* A `listen:` address: HOST:PORT (hostport.h; port 1-65535) or unix:PATH
 * (a path that fits a sockaddr_un). 0, -EINVAL (syntax, port 0) or
 * -ENAMETOOLONG (the path). */
int parse_listen_address(const char *s);

/* The signal name closest to a misspelled one ("TREM" -> "TERM"), or NULL. */
const char *signal_suggest(const char *s);
