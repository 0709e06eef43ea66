/* SPDX-License-Identifier: MIT */
/*
 * The argument limits of execve() and what a per-task invocation costs
 * against them (see arg_limits.h). Linux's rules (fs/exec.c): each string at
 * most MAX_ARG_STRLEN = 32 pages with its NUL; the strings, plus one pointer
 * each, at most a quarter of the stack limit, capped at 3/4 of _STK_LIM
 * (6 MiB) and never under 128 KiB. The program's path is copied there too.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/arg_limits.h"
#include "supervisor/task.h"

#define ARG_STACK_CAP (6u * 1024u * 1024u)
#define ARG_FLOOR (128u * 1024u)
/* xargs leaves 2048 bytes (POSIX's headroom); the program's path, which the
 * kernel copies to the same stack, is not known here: allow PATH_MAX. */
#define ARG_HEADROOM (2048u + PATH_MAX)

void arg_limits_system(struct arg_limits *ret) {
        long page = sysconf(_SC_PAGESIZE), max = sysconf(_SC_ARG_MAX);
        size_t total = max > 0 ? (size_t) max : ARG_FLOOR;

        if (total > ARG_STACK_CAP)
                total = ARG_STACK_CAP;
        if (total < ARG_FLOOR)
                total = ARG_FLOOR;
        *ret = (struct arg_limits) {
                .string_max = 32u * (size_t) (page > 0 ? page : 4096),
                .total_max = total - ARG_HEADROOM,
        };
}

size_t arg_strv_bytes(char *const *v, size_t n) {
        size_t bytes = 0;
        for (size_t i = 0; i < n && v[i]; i++)
                bytes += strlen(v[i]) + 1 + sizeof(char *);
        return bytes;
}

void arg_budget_init(struct arg_budget *ret, const struct arg_limits *limits, char *const *command,
                     size_t env_bytes, const char *task_var, size_t n_small, size_t small_max) {
        struct arg_budget b = {
                .limits = *limits,
                /* the per-task variables, the joined lines' own bytes aside,
                 * and the NULLs that end argv and envp */
                .fixed = env_bytes + n_small * (small_max + 1 + sizeof(char *)) + strlen(task_var) +
                         sizeof(char *) + 2 * sizeof(char *),
                .per_line = 1,   /* in $CORRAL_TASK: the '\n' after it, or the NUL */
                .per_byte = 1,
                .task_prefix = strlen(task_var),
        };
        bool placeholder = false;

        for (char *const *a = command; *a; a++) {
                size_t copies = task_count_placeholders(*a), len = strlen(*a);
                if (copies == 0) {
                        b.fixed += len + 1 + sizeof(char *);
                        continue;
                }
                placeholder = true;
                size_t base = len - 2 * copies;
                b.per_line += base + 1 + sizeof(char *);
                b.per_byte += copies;
                if (base > b.widest_base)
                        b.widest_base = base;
                if (copies > b.widest_copies)
                        b.widest_copies = copies;
        }
        if (!placeholder) {
                /* each line is an argument of its own at the end */
                b.per_line += 1 + sizeof(char *);
                b.per_byte += 1;
                b.widest_copies = 1;
        }
        *ret = b;
}

/* a + b * c, saturating at SIZE_MAX: a line's length comes from the input. */
static size_t add_mul(size_t a, size_t b, size_t c) {
        size_t p, s;
        if (__builtin_mul_overflow(b, c, &p) || __builtin_add_overflow(a, p, &s))
                return SIZE_MAX;
        return s;
}

bool arg_budget_fits(const struct arg_budget *b, size_t n, size_t bytes, size_t len) {
        size_t all = add_mul(bytes, 1, len), lines = add_mul(n, 1, 1);

        /* $CORRAL_TASK: prefix, the lines, a '\n' between each and the NUL */
        if (add_mul(all, 1, lines) > b->limits.string_max - b->task_prefix)
                return false;
        /* the widest argument a line goes into, with its NUL */
        if (add_mul(b->widest_base + 1, b->widest_copies, len) > b->limits.string_max)
                return false;
        return add_mul(add_mul(b->fixed, lines, b->per_line), all, b->per_byte) <= b->limits.total_max;
}

size_t arg_budget_line_max(const struct arg_budget *b) {
        size_t lo = 0, hi = b->limits.string_max;

        /* fits() is monotonic in len: search it rather than repeat its sums */
        if (!arg_budget_fits(b, 0, 0, 0))
                return 0;
        while (lo < hi) {
                size_t mid = lo + (hi - lo + 1) / 2;
                if (arg_budget_fits(b, 0, 0, mid))
                        lo = mid;
                else
                        hi = mid - 1;
        }
        return lo;
}
