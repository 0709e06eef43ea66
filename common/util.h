/* SPDX-License-Identifier: MIT */
/*
 * The small kit every corral module shares: time units, array sizes, and the
 * cleanup attributes that make ownership visible (after systemd's alloc-util.h
 * and fd-util.h). Kept deliberately tiny; nothing here touches the system
 * except close().
 */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <unistd.h>

typedef uint64_t usec_t;

#define USEC_PER_MSEC ((usec_t) 1000ULL)
#define USEC_PER_SEC  ((usec_t) 1000000ULL)
#define USEC_INFINITY ((usec_t) UINT64_MAX)

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

#define _cleanup_(f) __attribute__((cleanup(f)))

/* Hands the pointer over to the caller: the cleanup attribute then frees NULL. */
#define TAKE_PTR(p)                        \
        ({                                 \
                __typeof__(p) _p_ = (p);   \
                (p) = NULL;                \
                _p_;                       \
        })

#define TAKE_FD(fd)                        \
        ({                                 \
                int _fd_ = (fd);           \
                (fd) = -EBADF;             \
                _fd_;                      \
        })

static inline void freep(void *p) {
        free(*(void **) p);
}

/* Closes fd if it is open; returns -EBADF so that `fd = safe_close(fd);` reads naturally. */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline void closep(int *fd) {
        safe_close(*fd);
}

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}

/* A NULL-terminated array of strings (an argv or an environment). */
static inline void strv_free(char **v) {
        if (!v)
                return;
        for (char **s = v; *s; s++)
                free(*s);
        free(v);
}

static inline void strv_freep(char ***v) {
        strv_free(*v);
}

static inline size_t strv_length(char *const *v) {
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

#define _cleanup_free_ _cleanup_(freep)

/* sd-event coalesces timers with an accuracy of 0 ("default") up to 250 ms;
 * corral's timers (samples, backoff, stop timeouts) want to fire on time. */
#define TIMER_ACCURACY_USEC ((usec_t) 1000ULL)
