/* SPDX-License-Identifier: MIT */
/*
 * One read of a small file (a /proc or /sys file of a line or two), into a
 * caller's buffer: what the machine's limits and a worker's current system
 * call are read with. Does not log.
 */
#pragma once

#include <sys/types.h>

/* Reads up to size - 1 bytes of path with one read() and NUL-terminates them
 * (size > 0); the rest of a longer file is left unread. Returns how many
 * bytes were read (0: empty), or a negative errno (the open's or read's). */
ssize_t read_small_file(const char *path, char *buf, size_t size);
