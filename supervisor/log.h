/* SPDX-License-Identifier: MIT */
/*
 * corral's log: one line per event on stderr. When stderr is the journal
 * (JOURNAL_STREAM names it) each line carries a "<N>" priority prefix that
 * journald understands; on a terminal or a pipe it reads "corral: ...".
 */
#pragma once

#include <syslog.h>

/* Chooses the most verbose level printed (LOG_DEBUG with -v, LOG_WARNING with -q). */
void log_setup(int max_level);

/* Prints one line; "%m" reads `error` (a positive or negative errno) when it is
 * non-zero. Returns -abs(error), so `return log_error_errno(r, ...)` reads well. */
int log_full(int level, int error, const char *format, ...) __attribute__((format(printf, 3, 4)));

#define log_debug(...)          log_full(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...)           log_full(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...)         log_full(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...)        log_full(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...)          log_full(LOG_ERR, 0, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_full(LOG_ERR, (e), __VA_ARGS__)
