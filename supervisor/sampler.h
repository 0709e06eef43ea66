/* SPDX-License-Identifier: MIT */
/*
 * The sampler: reads what the controller sees (per-core CPU through libproc2,
 * the usable capacity from the affinity mask and the cgroup v2 quota, load,
 * memory, PSI, the workers' own CPU) and turns it into one `struct sample`
 * per call. It keeps the previous counters between calls, so each sample
 * covers the time since the previous one; the first call after
 * sampler_new() covers the time since sampler_new().
 *
 * Library-like: it does not log; errors are negative errno.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "common/util.h"
#include "policy/signals.h"
#include "supervisor/procfs_parse.h"

struct sampler;

struct sample {
        /* Every policy signal; tasks.* are left unavailable (the task layer
         * fills them). A signal without data this time (no PSI, no delta yet,
         * no worker measured yet) is unavailable, never 0. */
        struct signals signals;

        unsigned capacity;              /* usable CPUs, >= 1 (cpu_capacity(), sampler_cgroup.h) */
        unsigned affinity_cpus;         /* CPUs in our affinity mask */
        double quota_cpus;              /* tightest cgroup cpu.max in CPUs, 0: no quota */

        /* The two sources of psi.cpu (which is the larger), < 0 when absent:
         * the machine's /proc/pressure/cpu and our cgroup's cpu.pressure
         * (absent in the root cgroup, where it equals the machine's). */
        double psi_cpu_system;
        double psi_cpu_cgroup;

        usec_t elapsed;                 /* since the previous sample */
        unsigned pool_measured;         /* pids with a CPU figure this sample */

        /* The usable cores measured this time, ascending by CPU id (the real
         * id, for corral_core_busy_ratio{core}). Owned by the sampler: valid
         * until the next sampler_sample() or sampler_free(). */
        const struct core_busy *cores;
        size_t n_cores;
};

/* Creates a sampler and takes the first reading of every counter. Returns 0,
 * -ENOMEM, or the error of libproc2 or of reading /proc/stat. Missing optional
 * sources (PSI, cgroup files) are not errors: their signals stay unavailable. */
int sampler_new(struct sampler **ret);

/*
 * For tests: a sampler that reads the machine from the files under root,
 * a directory laid out like / ("ROOT/proc/stat", "ROOT/proc/PID/stat",
 * "ROOT/sys/fs/cgroup/...") holding captures, instead of from the kernel.
 * Besides what sampler_new() reads, it needs ROOT/proc/{stat,meminfo,
 * loadavg,uptime,self/status}: the capture's uptime is the clock and its
 * Cpus_allowed_list the affinity. Files stay open and are re-read at each
 * sample, so a test moves to the next instant by rewriting them in place.
 * Returns as sampler_new(), or the error of opening one of those files.
 */
int sampler_new_at(const char *root, struct sampler **ret);

/* Frees the sampler and closes its files. Accepts NULL; returns NULL. */
struct sampler *sampler_free(struct sampler *s);

static inline void sampler_freep(struct sampler **s) {
        sampler_free(*s);
}

/*
 * Samples the machine and the given worker pids (pool.size is n_pids;
 * pool.cpu is their mean CPU, % of one core, including reaped children).
 * Pass every running worker each time: a pid seen for the first time gives
 * its delta from the next call on; a pid no longer passed is forgotten.
 * n_pids may be 0 (pids may then be NULL). Writes *ret on success; returns
 * 0, -ENOMEM, or the error of reading /proc/stat (the CPU signals are the
 * ones the controller cannot do without). The sampler does no allocation per
 * call once it has seen the largest pool.
 */
int sampler_sample(struct sampler *s, const pid_t *pids, size_t n_pids, struct sample *ret);

/* One worker as of the last sample: its CPU (% of one core over the last
 * interval, or since its start during it; < 0 while unknown) and resident
 * memory in bytes. -ESRCH for a pid not followed. */
int sampler_worker(const struct sampler *s, pid_t pid, double *ret_cpu, uint64_t *ret_rss);

/* Usable CPUs as of the last sample (or sampler_new()), >= 1. */
unsigned sampler_capacity(const struct sampler *s);

