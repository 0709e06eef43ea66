/* SPDX-License-Identifier: MIT */
/*
 * Filling a segment's memfd (for shm.c and shm_command.c only): the sink
 * that data is copied into, the memfd and its huge pages, and the one way
 * a failure is worded ("shared segment 'NAME': ...").
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "conf/config.h"
#include "supervisor/shm_error.h"

enum copy_mode {
        COPY_SENDFILE,   /* from a file */
        COPY_SPLICE,     /* from a pipe */
        COPY_READ_WRITE, /* from anything else, or where the kernel refused the above */
        COPY_HUGE,       /* read() into a mapping: hugetlbfs takes no write() */
};

/* The memfd being filled. */
struct shm_sink {
        const char *name;        /* for messages */
        int fd;                  /* the writable memfd */
        enum copy_mode mode;
        uint64_t limit;          /* max bytes */
        uint64_t size;           /* bytes in so far */
        uint64_t expect;         /* a file's size, 0 if unknown */
        uint64_t page;           /* huge page size */
        uint8_t *window;         /* COPY_HUGE: mapping of [window_off, window_off + window_len) */
        uint64_t window_off, window_len;
};

static inline uint64_t round_up(uint64_t v, uint64_t to) {
        return (v + to - 1) / to * to;
}

/* Fills err with "shared segment 'NAME': " and the message; returns r. */
__attribute__((format(printf, 4, 5))) int shm_fail(struct shm_error *err, int r, const char *name,
                                                    const char *format, ...);

/* MemAvailable in bytes, from /proc/meminfo through libproc2. */
int shm_mem_available(uint64_t *ret);

/* Hugepagesize in bytes, HugePages_Total and HugePages_Free (counts), from
 * /proc/meminfo through libproc2. */
int shm_huge_pages(uint64_t *ret_page_size, uint64_t *ret_total, uint64_t *ret_free);

int shm_memfd_new(const struct shared_config *sc, struct shm_error *err);
int shm_huge_check(const struct shared_config *sc, uint64_t *ret_page, struct shm_error *err);
void shm_sink_unmap(struct shm_sink *k);
/* One step of the copy: bytes moved, 0 at end of input, -1 with errno;
 * *ret_window_error < 0 (err filled) when a huge-page window failed. */
ssize_t shm_sink_step(struct shm_sink *k, int in, struct shm_error *err, int *ret_window_error);
int shm_sink_fill(struct shm_sink *k, int in, const char *what, struct shm_error *err);

