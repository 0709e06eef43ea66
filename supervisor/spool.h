/* SPDX-License-Identifier: MIT */
/*
 * A task's collected output (tasks.output: group, and the tasks waiting for
 * their turn with keep_order): in memory up to a cap, then in an unlinked
 * temporary file in $TMPDIR (O_TMPFILE), as GNU parallel buffers in $TMPDIR.
 * However much a task writes, corral's memory for it stays under the cap.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "supervisor/output_sink.h"
#include "supervisor/task.h"

/* Output a task may hold in memory before it goes to a file. */
#define SPOOL_MEMORY_MAX (4u * 1024u * 1024u)

struct spool {
        struct strbuf mem;       /* all of it, while fd < 0 */
        int fd;                  /* -EBADF, or the file that holds all of it */
        uint64_t file_len;
};

#define SPOOL_INIT ((struct spool) { .fd = -EBADF })

/* Appends n bytes; moves everything to a file once memory would pass
 * mem_max. Returns 0, or a negative errno (nothing appended). */
int spool_append(struct spool *o, const char *p, size_t n, size_t mem_max);
/* Moves what is in memory to a file now. Returns 0 or a negative errno. */
int spool_spill(struct spool *o);
uint64_t spool_len(const struct spool *o);
/* Queues all of it on the sink and empties the spool. Returns what the sink
 * returned. */
int spool_to_sink(struct spool *o, struct sink *s);
/* Empties it (memory freed, file closed). */
void spool_done(struct spool *o);
