/* SPDX-License-Identifier: MIT */
/*
 * How many task lines one invocation of a per-task command can carry: the
 * kernel refuses an execve() whose argv and environment together exceed the
 * stack's share (sysconf(_SC_ARG_MAX), as xargs reckons it), or any single
 * argument or variable longer than MAX_ARG_STRLEN (32 pages, NUL included).
 * A task line travels in the arguments (once per `{}` argument, or appended)
 * and in $CORRAL_TASK (the lines joined by '\n'), so both limits are met by
 * cutting the invocation before the line that would break one.
 * Pure arithmetic apart from arg_limits_system(); nothing here logs.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct arg_limits {
        size_t string_max;       /* longest argument or variable, its NUL included */
        size_t total_max;        /* argv and envp: strings, NULs and pointers */
};

/* This machine's limits (page size, stack limit), with xargs' 2048 bytes of
 * headroom taken off the total. Cannot fail. */
void arg_limits_system(struct arg_limits *ret);

/* Bytes n strings of v take in an execve(): each with its NUL and pointer. */
size_t arg_strv_bytes(char *const *v, size_t n);

/* What an invocation of a given command costs, as a function of its lines. */
struct arg_budget {
        struct arg_limits limits;
        size_t fixed;            /* bytes whatever the lines: environment, fixed arguments */
        size_t per_line;         /* bytes each line adds besides its own */
        size_t per_byte;         /* copies of each line's bytes (arguments and $CORRAL_TASK) */
        size_t widest_base;      /* the longest `{}` argument without its `{}`s */
        size_t widest_copies;    /* how many `{}` it has; 1 when lines are appended */
        size_t task_prefix;      /* "CORRAL_TASK=" */
};

/*
 * The budget of command (its `{}`s replaced per line, or the lines appended)
 * started with env_bytes of environment besides the per-task variables (see
 * arg_strv_bytes), task_var the prefix of the variable that carries the
 * joined lines ("CORRAL_TASK="), and n_small other per-task variables of at
 * most small_max bytes each. Cannot fail.
 */
void arg_budget_init(struct arg_budget *ret, const struct arg_limits *limits, char *const *command,
                     size_t env_bytes, const char *task_var, size_t n_small, size_t small_max);

/* Whether an invocation of n lines of bytes in total (0, 0: none yet) can
 * take one more line of len bytes. Cannot fail. */
bool arg_budget_fits(const struct arg_budget *b, size_t n, size_t bytes, size_t len);

/* The longest line that fits in an invocation on its own (0: none does,
 * the command and environment fill the limit by themselves). */
size_t arg_budget_line_max(const struct arg_budget *b);
