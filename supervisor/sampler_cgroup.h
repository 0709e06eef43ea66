/* SPDX-License-Identifier: MIT */
/*
 * The sampler's files, split from sampler.c: the view of our cgroup v2
 * directory and each ancestor with a cpu.max (a quota on a parent slice
 * limits us as much as our own), the affinity mask, and the small read
 * helpers. Every path is under `root`: NULL for the real machine, or a
 * directory of captured files (sampler_new_at()).
 *
 * Library-like: it does not log; errors are negative errno.
 */
#pragma once

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define CGROUP_LEVELS_MAX 16

/* One cgroup from ours up to the top that has a cpu.max. */
struct cgroup_level {
        int max_fd;             /* cpu.max */
        int stat_fd;            /* cpu.stat, -EBADF if absent */
        uint64_t prev_usage;
        bool have_usage;
};

struct cgroup_view {
        struct cgroup_level levels[CGROUP_LEVELS_MAX];
        size_t n_levels;
        int pressure_fd;        /* our cgroup's cpu.pressure; -EBADF in the root */
};

/* open(path, O_RDONLY|O_CLOEXEC) with path (absolute) under root, or as is
 * when root is NULL. Returns the fd, or -1 with errno set. */
int sampler_open_under(const char *root, const char *path);

/* Reads a small kernel file from offset 0 into buf, NUL-terminated (the
 * kernel regenerates it at each read). Returns 0 or a negative errno. */
int sampler_pread_text(int fd, char *buf, size_t size);

/* Our affinity mask and its CPU count (>= 1); with status_fd >= 0 (a
 * captured /proc/self/status) its Cpus_allowed_list instead. 0 or -errno. */
int sampler_read_affinity(int status_fd, cpu_set_t *ret_set, unsigned *ret_count);

/* Opens the view of our cgroup under root. Without cgroup v2 (or without the
 * cpu controller) it stays empty, which is not an error. Cannot fail. */
void cgroup_view_open(struct cgroup_view *v, const char *root);

/* Closes the view's files and empties it. */
void cgroup_view_close(struct cgroup_view *v);

/* The tightest quota of the view, as quota/period of the level that sets it;
 * returns that level's index, or -1 when no level has a quota. */
int cgroup_view_quota(const struct cgroup_view *v, uint64_t *ret_quota, uint64_t *ret_period);

/* Takes the first cpu.stat reading of each level: deltas count from here. */
void cgroup_view_start_usage(struct cgroup_view *v);

/* Reads every level's cpu.stat; returns the CPU use of `level` against its
 * quota since the last reading, in %, or < 0 when not measurable. */
double cgroup_view_busy(struct cgroup_view *v, int level, uint64_t quota, uint64_t period, usec_t elapsed);

/*
 * Usable CPUs of this process: min(CPUs in the affinity mask,
 * ceil(quota / period)) over the cgroup v2 cpu.max of our cgroup and its
 * ancestors. The default workers.max. Returns 0 or a negative errno (only if
 * the affinity mask cannot be read); *ret is >= 1.
 */
int cpu_capacity(unsigned *ret);
