/* SPDX-License-Identifier: MIT */
/*
 * The sampler's files (see sampler_cgroup.h): our cgroup v2 directory and its
 * ancestors' cpu.max and cpu.stat, the affinity mask, and the small read
 * helpers the sampler shares, all of them rooted at "/" or at a directory of
 * captured files (sampler_new_at()).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/procfs_parse.h"
#include "supervisor/sampler_cgroup.h"

/* Opens path (absolute) under root, or as is when root is NULL. */
int sampler_open_under(const char *root, const char *path) {
        char full[PATH_MAX];

        if (!root)
                return open(path, O_RDONLY | O_CLOEXEC);
        if ((size_t) snprintf(full, sizeof(full), "%s%s", root, path) >= sizeof(full)) {
                errno = ENAMETOOLONG;
                return -1;
        }
        return open(full, O_RDONLY | O_CLOEXEC);
}

/* Reads a small kernel file from offset 0 into buf, NUL-terminated. */
int sampler_pread_text(int fd, char *buf, size_t size) {
        ssize_t n = pread(fd, buf, size - 1, 0);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return 0;
}

/* Reads a whole file (mountinfo can be long) into a malloc'ed string. */
static int read_file_alloc(const char *root, const char *path, char **ret) {
        _cleanup_(closep) int fd = sampler_open_under(root, path);
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, len = 0;

        if (fd < 0)
                return -errno;
        for (;;) {
                ssize_t n;
                if (size - len < 4096) {
                        char *b = realloc(buf, size + 16384);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                        size += 16384;
                }
                n = read(fd, buf + len, size - len - 1);
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

void cgroup_view_close(struct cgroup_view *v) {
        for (size_t i = 0; i < v->n_levels; i++) {
                v->levels[i].max_fd = safe_close(v->levels[i].max_fd);
                v->levels[i].stat_fd = safe_close(v->levels[i].stat_fd);
        }
        v->n_levels = 0;
        v->pressure_fd = safe_close(v->pressure_fd);
}

/*
 * Finds our cgroup v2 directory (the cgroup2 mount joined with the "0::" path)
 * and opens cpu.max and cpu.stat of it and each ancestor that has them: a
 * quota set on a parent slice limits us as much as our own. Without cgroup v2
 * (or without the cpu controller, as on the hybrid CI machines) the view stays
 * empty, which is not an error.
 */
void cgroup_view_open(struct cgroup_view *v, const char *root) {
        _cleanup_free_ char *mountinfo = NULL, *self = NULL;
        char dir[PATH_MAX], mnt[PATH_MAX];
        const char *path;
        size_t len, mlen;

        *v = (struct cgroup_view) { .pressure_fd = -EBADF };
        if (read_file_alloc(root, "/proc/self/mountinfo", &mountinfo) < 0 ||
            mountinfo_find_cgroup2(mountinfo, mnt, sizeof(mnt)) < 0 ||
            read_file_alloc(root, "/proc/self/cgroup", &self) < 0 ||
            cgroup_parse_self(self, &path, &len) < 0)
                return;
        /* Under a root, the mount point is a directory of the capture too. */
        if ((size_t) snprintf(dir, sizeof(dir), "%s%s", root ? root : "", mnt) >= sizeof(dir))
                return;
        mlen = strlen(dir);
        if (mlen + len + 32 >= sizeof(dir))
                return;
        /* "/" joins as nothing: the root cgroup has no cpu.max or own pressure. */
        while (len > 0 && path[len - 1] == '/')
                len--;
        memcpy(dir + mlen, path, len);
        dir[mlen + len] = '\0';

        if (len > 0) {
                char file[PATH_MAX];
                snprintf(file, sizeof(file), "%s/cpu.pressure", dir);
                v->pressure_fd = open(file, O_RDONLY | O_CLOEXEC);
                if (v->pressure_fd < 0)
                        v->pressure_fd = -EBADF;
        }
        while (len > 0 && v->n_levels < CGROUP_LEVELS_MAX) {
                char file[PATH_MAX];
                int fd;

                snprintf(file, sizeof(file), "%s/cpu.max", dir);
                fd = open(file, O_RDONLY | O_CLOEXEC);
                if (fd >= 0) {
                        struct cgroup_level *l = &v->levels[v->n_levels++];
                        snprintf(file, sizeof(file), "%s/cpu.stat", dir);
                        *l = (struct cgroup_level) { .max_fd = fd, .stat_fd = open(file, O_RDONLY | O_CLOEXEC) };
                        if (l->stat_fd < 0)
                                l->stat_fd = -EBADF;
                }
                /* Up one level, stopping at the mount point. */
                while (len > 0 && dir[mlen + len - 1] != '/')
                        len--;
                if (len > 0)
                        len--;
                dir[mlen + len] = '\0';
        }
}

/*
 * The tightest quota of the view, as quota/period of the level that sets it;
 * returns that level's index, or -1 when no level has a quota.
 */
int cgroup_view_quota(const struct cgroup_view *v, uint64_t *ret_quota, uint64_t *ret_period) {
        int best = -1;
        uint64_t bq = 0, bp = 1;

        for (size_t i = 0; i < v->n_levels; i++) {
                char buf[128];
                uint64_t q, p;

                if (sampler_pread_text(v->levels[i].max_fd, buf, sizeof(buf)) < 0 ||
                    cgroup_parse_cpu_max(buf, &q, &p) < 0 || q == CGROUP_QUOTA_MAX)
                        continue;
                /* q/p < bq/bp, without division; both fit easily in 128 bits. */
                if (best < 0 || (unsigned __int128) q * bp < (unsigned __int128) bq * p) {
                        best = (int) i;
                        bq = q;
                        bp = p;
                }
        }
        if (best >= 0) {
                *ret_quota = bq;
                *ret_period = bp;
        }
        return best;
}

/* Our affinity mask; under a root (status_fd >= 0), the capture's. */
int sampler_read_affinity(int status_fd, cpu_set_t *ret_set, unsigned *ret_count) {
        cpu_set_t set;
        int n;

        if (status_fd >= 0) {
                char buf[4096];
                int r = sampler_pread_text(status_fd, buf, sizeof(buf));
                if (r < 0)
                        return r;
                r = proc_status_parse_cpus_allowed(buf, &set);
                if (r < 0)
                        return r;
        } else if (sched_getaffinity(0, sizeof(set), &set) < 0)
                return -errno;
        n = CPU_COUNT(&set);
        *ret_set = set;
        *ret_count = n > 0 ? (unsigned) n : 1;
        return 0;
}

int cpu_capacity(unsigned *ret) {
        struct cgroup_view v;
        cpu_set_t set;
        unsigned n;
        uint64_t q = CGROUP_QUOTA_MAX, p = 0;
        int r;

        r = sampler_read_affinity(-EBADF, &set, &n);
        if (r < 0)
                return r;
        cgroup_view_open(&v, NULL);
        (void) cgroup_view_quota(&v, &q, &p);
        cgroup_view_close(&v);
        *ret = cpu_capacity_from(n, q, p);
        return 0;
}

void cgroup_view_start_usage(struct cgroup_view *v) {
        for (size_t i = 0; i < v->n_levels; i++) {
                struct cgroup_level *l = &v->levels[i];
                char buf[1024];
                if (l->stat_fd >= 0 && sampler_pread_text(l->stat_fd, buf, sizeof(buf)) >= 0 &&
                    cgroup_parse_cpu_usage(buf, &l->prev_usage) >= 0)
                        l->have_usage = true;
        }
}

double cgroup_view_busy(struct cgroup_view *v, int level, uint64_t quota, uint64_t period, usec_t elapsed) {
        double busy = -1;

        for (size_t i = 0; i < v->n_levels; i++) {
                struct cgroup_level *l = &v->levels[i];
                char buf[1024];
                uint64_t usage;

                if (l->stat_fd < 0 || sampler_pread_text(l->stat_fd, buf, sizeof(buf)) < 0 ||
                    cgroup_parse_cpu_usage(buf, &usage) < 0) {
                        l->have_usage = false;
                        continue;
                }
                if ((int) i == level && l->have_usage)
                        busy = cgroup_quota_busy(l->prev_usage, usage, elapsed, quota, period);
                l->prev_usage = usage;
                l->have_usage = true;
        }
        return busy;
}
