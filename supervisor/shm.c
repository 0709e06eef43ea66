/* SPDX-License-Identifier: MIT */
/*
 * Shared segments loaded into sealed memfds, and the reference-counted sets
 * that let an old generation live on while its workers run (see shm.h). The
 * copy itself is shm_sink.c's; a command source is shm_command.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "supervisor/shm.h"
#include "supervisor/shm_command.h"
#include "supervisor/shm_sink.h"

#define SHM_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

int shm_default_max_size(uint64_t *ret) {
        uint64_t avail;
        int r = shm_mem_available(&avail);
        if (r < 0)
                return r;
        *ret = avail / 2;
        return 0;
}

/* ------------------------------------------------------------------------ */
/* the two sources */

static int load_file(const struct shared_config *sc, struct shm_sink *k, struct shm_source *ret_source,
                     struct shm_error *err) {
        _cleanup_(closep) int in = open(sc->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat before, after;

        if (in < 0)
                return shm_fail(err, -errno, sc->name, "cannot open %s: %s", sc->path, strerror(errno));
        if (fstat(in, &before) < 0)
                return shm_fail(err, -errno, sc->name, "cannot stat %s: %s", sc->path, strerror(errno));
        if (S_ISDIR(before.st_mode))
                return shm_fail(err, -EISDIR, sc->name, "%s is a directory", sc->path);
        if (S_ISREG(before.st_mode) && (uint64_t) before.st_size > k->limit)
                return shm_fail(err, -EFBIG, sc->name, "%s is %" PRIu64 " bytes, more than max_size (%" PRIu64 ")",
                            sc->path, (uint64_t) before.st_size, k->limit);
        if (S_ISREG(before.st_mode))
                k->expect = (uint64_t) before.st_size;
        if (k->mode != COPY_HUGE)
                k->mode = S_ISREG(before.st_mode) ? COPY_SENDFILE : S_ISFIFO(before.st_mode) ? COPY_SPLICE : COPY_READ_WRITE;

        int r = shm_sink_fill(k, in, sc->path, err);
        if (r == -EFBIG)
                return shm_fail(err, r, sc->name, "%s has more than max_size (%" PRIu64 " bytes)", sc->path, k->limit);
        if (r < 0)
                return r;
        if (k->size == 0)
                return shm_fail(err, -ENODATA, sc->name, "%s is empty", sc->path);

        /* A file rewritten in place while we copied could give workers a mix
         * of old and new: refuse it (a reload tries again on the next HUP). */
        if (fstat(in, &after) < 0)
                return shm_fail(err, -errno, sc->name, "cannot stat %s: %s", sc->path, strerror(errno));
        if (S_ISREG(before.st_mode) &&
            (after.st_size != before.st_size || (uint64_t) after.st_size != k->size ||
             after.st_mtim.tv_sec != before.st_mtim.tv_sec || after.st_mtim.tv_nsec != before.st_mtim.tv_nsec))
                return shm_fail(err, -EAGAIN, sc->name, "%s changed while it was being loaded", sc->path);

        *ret_source = (struct shm_source) {
                .dev = before.st_dev, .ino = before.st_ino, .size = before.st_size, .mtime = before.st_mtim,
        };
        return 0;
}


/* ------------------------------------------------------------------------ */
/* segments */

/* Workers get an O_RDONLY fd: beyond the seals, not even a writable mapping
 * can be attempted through it. Also keeps the fd off 0-2, which a worker's
 * stdio would take over, should corral have been started with one closed. */
static int reopen_read_only(int fd) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        int ro = open(path, O_RDONLY | O_CLOEXEC);
        if (ro < 0)
                ro = fcntl(fd, F_DUPFD_CLOEXEC, 3);  /* no /proc: the sealed fd is safe too */
        if (ro < 0)
                return -errno;
        if (ro < 3) {
                int moved = fcntl(ro, F_DUPFD_CLOEXEC, 3);
                safe_close(ro);
                if (moved < 0)
                        return -errno;
                ro = moved;
        }
        return ro;
}

int shm_segment_load(const struct shared_config *sc, uint64_t generation, struct shm_segment **ret,
                     struct shm_error *err) {
        struct shm_source source = {};
        struct shm_sink k = { .name = sc->name, .fd = -EBADF, .limit = sc->max_size };
        usec_t start = now_usec();
        int r;

        if (k.limit == 0) {
                r = shm_default_max_size(&k.limit);
                if (r < 0)
                        return shm_fail(err, r, sc->name, "cannot read MemAvailable from /proc/meminfo: %s", strerror(-r));
        }
        if (sc->huge) {
                r = shm_huge_check(sc, &k.page, err);
                if (r < 0)
                        return r;
                k.mode = COPY_HUGE;
        }

        _cleanup_(closep) int fd = shm_memfd_new(sc, err);
        if (fd < 0)
                return fd;
        k.fd = fd;

        r = sc->path ? load_file(sc, &k, &source, err) : shm_load_command(sc, &k, err);
        shm_sink_unmap(&k);  /* sealing fails with EBUSY while a writable mapping exists */
        if (r < 0)
                return r;
        if (sc->huge && ftruncate(fd, (off_t) round_up(k.size, k.page)) < 0)
                return shm_fail(err, -errno, sc->name, "cannot trim the huge-page memfd: %s", strerror(errno));
        if (fcntl(fd, F_ADD_SEALS, SHM_SEALS) < 0)
                return shm_fail(err, -errno, sc->name, "cannot seal the memfd: %s", strerror(errno));

        r = reopen_read_only(fd);
        if (r < 0)
                return shm_fail(err, r, sc->name, "cannot reopen the memfd read-only: %s", strerror(-r));
        _cleanup_(closep) int ro = r;

        struct shm_segment *s = calloc(1, sizeof(*s));
        if (!s)
                return shm_fail(err, -ENOMEM, sc->name, "out of memory");
        s->name = strdup(sc->name);
        if (sc->path)
                source.path = strdup(sc->path);
        if (!s->name || (sc->path && !source.path)) {
                free(source.path);
                free(s->name);
                free(s);
                return shm_fail(err, -ENOMEM, sc->name, "out of memory");
        }
        s->n_ref = 1;
        s->fd = TAKE_FD(ro);
        s->size = k.size;
        s->huge = sc->huge;
        s->generation = generation;
        s->source = source;
        s->load_usec = now_usec() - start;
        *ret = s;
        return 0;
}

struct shm_segment *shm_segment_ref(struct shm_segment *s) {
        if (s)
                s->n_ref++;
        return s;
}

struct shm_segment *shm_segment_unref(struct shm_segment *s) {
        if (!s || --s->n_ref > 0)
                return NULL;
        safe_close(s->fd);
        free(s->source.path);
        free(s->name);
        free(s);
        return NULL;
}

bool shm_segment_changed(const struct shm_segment *s, const struct shared_config *sc) {
        struct stat st;

        if (!sc->path || !s->source.path || strcmp(sc->path, s->source.path) != 0 || sc->huge != s->huge)
                return true;
        if (stat(sc->path, &st) < 0)
                return true;
        return st.st_dev != s->source.dev || st.st_ino != s->source.ino || st.st_size != s->source.size ||
               st.st_mtim.tv_sec != s->source.mtime.tv_sec || st.st_mtim.tv_nsec != s->source.mtime.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* sets */

static void upper(char *s) {
        for (; *s; s++)
                if (*s >= 'a' && *s <= 'z')
                        *s = (char) (*s - 'a' + 'A');
}

/* Builds fds and env from the segments, once: every worker of the set gets the same. */
static int set_finish(struct shm_set *set) {
        set->fds = calloc(set->n_segments + 1, sizeof(int));
        set->env = calloc(2 * set->n_segments + 1, sizeof(char *));
        if (!set->fds || !set->env)
                return -ENOMEM;
        for (size_t i = 0; i < set->n_segments; i++) {
                const struct shm_segment *s = set->segments[i];
                _cleanup_free_ char *name = strdup(s->name);
                if (!name)
                        return -ENOMEM;
                upper(name);
                set->fds[i] = s->fd;
                if (asprintf(&set->env[2 * i], "CORRAL_SHM_%s=%d", name, s->fd) < 0) {
                        set->env[2 * i] = NULL;
                        return -ENOMEM;
                }
                if (asprintf(&set->env[2 * i + 1], "CORRAL_SHM_%s_SIZE=%" PRIu64, name, s->size) < 0) {
                        set->env[2 * i + 1] = NULL;
                        return -ENOMEM;
                }
        }
        return 0;
}

static struct shm_set *set_new(uint64_t generation, size_t n) {
        struct shm_set *set = calloc(1, sizeof(*set));
        if (!set)
                return NULL;
        set->n_ref = 1;
        set->generation = generation;
        set->segments = calloc(n + 1, sizeof(struct shm_segment *));
        if (!set->segments)
                return shm_set_unref(set);
        return set;
}

struct shm_set *shm_set_ref(struct shm_set *set) {
        if (set)
                set->n_ref++;
        return set;
}

struct shm_set *shm_set_unref(struct shm_set *set) {
        if (!set || --set->n_ref > 0)
                return NULL;
        for (size_t i = 0; i < set->n_segments; i++)
                shm_segment_unref(set->segments[i]);
        free(set->segments);
        free(set->fds);
        strv_free(set->env);
        free(set);
        return NULL;
}

static const struct shm_segment *set_find(const struct shm_set *set, const char *name) {
        for (size_t i = 0; set && i < set->n_segments; i++)
                if (strcmp(set->segments[i]->name, name) == 0)
                        return set->segments[i];
        return NULL;
}

/* The set for configs, sharing what old has unchanged (old may be NULL).
 * *ret_loaded tells whether any segment was loaded anew. */
static int set_build(const struct shm_set *old, uint64_t generation, const struct shared_config *configs,
                     size_t n, struct shm_set **ret, bool *ret_loaded, struct shm_error *err) {
        _cleanup_(shm_set_unrefp) struct shm_set *set = set_new(generation, n);
        bool loaded = false;

        if (!set)
                return shm_fail(err, -ENOMEM, n > 0 ? configs[0].name : "?", "out of memory");
        for (size_t i = 0; i < n; i++) {
                const struct shm_segment *prev = set_find(old, configs[i].name);
                if (prev && !shm_segment_changed(prev, &configs[i])) {
                        set->segments[set->n_segments++] = shm_segment_ref((struct shm_segment *) prev);
                        continue;
                }
                int r = shm_segment_load(&configs[i], generation, &set->segments[set->n_segments], err);
                if (r < 0)
                        return r;
                set->n_segments++;
                loaded = true;
        }
        int r = set_finish(set);
        if (r < 0)
                return shm_fail(err, r, n > 0 ? configs[0].name : "?", "out of memory");
        *ret = TAKE_PTR(set);
        *ret_loaded = loaded;
        return 0;
}

int shm_set_load(const struct shared_config *configs, size_t n, struct shm_set **ret, struct shm_error *err) {
        bool loaded;
        return set_build(NULL, 1, configs, n, ret, &loaded, err);
}

int shm_set_reload(struct shm_set *old, const struct shared_config *configs, size_t n, struct shm_set **ret,
                   struct shm_error *err) {
        struct shm_set *set;
        bool loaded;

        int r = set_build(old, old->generation + 1, configs, n, &set, &loaded, err);
        if (r < 0)
                return r;
        /* Nothing loaded and the same names: the workers have all they need. */
        if (!loaded && set->n_segments == old->n_segments) {
                shm_set_unref(set);
                *ret = shm_set_ref(old);
                return 0;
        }
        *ret = set;
        return 1;
}
