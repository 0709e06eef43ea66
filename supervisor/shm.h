/* SPDX-License-Identifier: MIT */
/*
 * Shared read-only segments (DESIGN.md `shared:`, "What a worker sees"): each
 * one is loaded once, from a file or a command's stdout, into a memfd that is
 * sealed before any worker sees it, and handed to every worker as an
 * inherited fd. A struct shm_set is one generation of all the segments; it is
 * reference-counted so that, after a reload, the old generation stays alive
 * for as long as a worker started with it is running.
 *
 * The module neither logs nor prints: a failure comes back as a negative
 * errno plus one ready-to-print line in a struct shm_error, which names the
 * segment and the cause.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common/util.h"
#include "conf/config.h"
#include "supervisor/shm_error.h"

/* What a segment was loaded from, to tell on reload whether it changed. */
struct shm_source {
        char *path;              /* NULL for a command: a command has always changed */
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime;
};

/* One sealed segment. Read-only for callers; owned by the sets that hold it. */
struct shm_segment {
        unsigned n_ref;
        char *name;              /* as configured, e.g. "refdata" */
        int fd;                  /* read-only, sealed, close-on-exec in corral; >= 3 */
        uint64_t size;           /* bytes of data: CORRAL_SHM_<NAME>_SIZE */
        bool huge;               /* backed by huge pages (the fd's size is rounded up to one) */
        usec_t load_usec;        /* how long loading took (metrics: load seconds) */
        uint64_t generation;     /* the set generation that loaded it */
        struct shm_source source;
};

/* One generation of every configured segment, and what a worker needs of it. */
struct shm_set {
        unsigned n_ref;
        uint64_t generation;     /* 1 for the first set, +1 for each reload that changed something */
        struct shm_segment **segments;
        size_t n_segments;
        int *fds;                /* every segment's fd, for spawn_request.keep_fds */
        char **env;              /* "CORRAL_SHM_<NAME>=<fd>", "CORRAL_SHM_<NAME>_SIZE=<bytes>", ... NULL */
};

/*
 * Loads the segment sc describes into a new sealed memfd: a file with
 * sendfile (no copy through user space), a command (argv, no shell; stdin
 * /dev/null, stderr corral's) through a pipe. Refused: a missing or
 * unreadable file, an empty result, a command that exits non-zero or dies by
 * a signal, more than max (sc->max_size, or half of MemAvailable when 0;
 * a command is killed as soon as it passes it), `huge` where the system has
 * no huge pages to give. Blocks until the data is in (the command has ended).
 * A command runs on the child lifecycle (child.h) like a worker: it sees fds
 * 0-2 only, and its process group goes with it when it ends or is stopped.
 *
 * On success returns 0 and *ret is a segment with one reference (release
 * with shm_segment_unref), stamped with generation. On failure returns a
 * negative errno and err holds the message; *ret is untouched.
 */
int shm_segment_load(const struct shared_config *sc, uint64_t generation, struct shm_segment **ret,
                     struct shm_error *err);

struct shm_segment *shm_segment_ref(struct shm_segment *s);
/* Drops a reference; the last one closes the fd. Accepts NULL, returns NULL. */
struct shm_segment *shm_segment_unref(struct shm_segment *s);

/* Whether reloading with sc would load something new: a command always has,
 * a file has when its path, inode, size or mtime differ (or it is gone: the
 * reload then reports why), and any segment has when `huge` changed. */
bool shm_segment_changed(const struct shm_segment *s, const struct shared_config *sc);

/*
 * Loads every segment of the configuration into a new set of generation 1.
 * All or nothing: on failure returns a negative errno, err names the segment
 * that failed, and *ret is untouched. With n == 0 the set is empty (no fds,
 * no env) — still a valid set. The caller releases it with shm_set_unref.
 */
int shm_set_load(const struct shared_config *configs, size_t n, struct shm_set **ret, struct shm_error *err);

/*
 * For a reload: builds the set for the new configuration from old. Segments
 * whose source did not change (shm_segment_changed) are shared with old, the
 * others are loaded anew; segments no longer configured are left out.
 * Returns 0 and *ret = a new reference to old itself when nothing changed
 * (same names, nothing to load: workers need not be replaced), or 1 and *ret
 * = a new set of generation old->generation + 1. On failure returns a
 * negative errno, err names the segment, *ret is untouched and old is as
 * it was: keep running with it.
 */
int shm_set_reload(struct shm_set *old, const struct shared_config *configs, size_t n, struct shm_set **ret,
                   struct shm_error *err);

struct shm_set *shm_set_ref(struct shm_set *set);
/* Drops a reference; the last one releases the segments (a segment's memory
 * is freed once no set holds it and no worker has it open or mapped).
 * Accepts NULL, returns NULL. */
struct shm_set *shm_set_unref(struct shm_set *set);

static inline void shm_set_unrefp(struct shm_set **set) {
        shm_set_unref(*set);
}

/* Half of MemAvailable from /proc/meminfo: the default max_size. A negative
 * errno if it cannot be read. */
int shm_default_max_size(uint64_t *ret);
