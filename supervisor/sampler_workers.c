/* SPDX-License-Identifier: MIT */
/*
 * The workers' side of a sample (sampler.h): each worker's CPU and resident
 * memory, and pool.size and pool.cpu from them.
 *
 * Workers' CPU is read with pread() on /proc/PID/stat descriptors kept open
 * from a pid's first sample on, not with procps_pids_select(): measured on
 * these machines, 0.15 ms for 64 pids against 1.4-1.7 ms, which alone would
 * break the < 1 ms per sample goal. A kept-open descriptor also refers to
 * the process, not the number: after the process is reaped it reads ESRCH,
 * so a reused pid is never mistaken for the old worker.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "supervisor/procfs_parse.h"
#include "supervisor/sampler_cgroup.h"
#include "supervisor/sampler_workers.h"

static int read_pid_stat(int fd, uint64_t *ret_ticks, uint64_t *ret_rss_pages, uint64_t *ret_start) {
        char buf[1024];
        int r = sampler_pread_text(fd, buf, sizeof(buf));
        if (r < 0)
                return r;
        r = proc_stat_parse_ticks(buf, ret_ticks);
        if (r < 0)
                return r;
        if (proc_stat_parse_rss(buf, ret_rss_pages) < 0)
                *ret_rss_pages = 0;
        if (ret_start && proc_stat_parse_start(buf, ret_start) < 0)
                *ret_start = UINT64_MAX;
        return 0;
}

/* The entry of pid, looking at position `hint` first: callers pass their pids
 * in a stable order, so this is O(1) usually and an O(n) scan otherwise, which
 * at the pool sizes corral allows is cheaper than keeping an index. */
static struct pid_entry *pid_find(struct sampler_workers *t, pid_t pid, size_t hint) {
        if (hint < t->n && t->pids[hint].pid == pid)
                return &t->pids[hint];
        for (size_t i = 0; i < t->n; i++)
                if (t->pids[i].pid == pid)
                        return &t->pids[i];
        return NULL;
}

/* Starts following e->pid. Its first figure is its CPU since it started, if
 * it started during this interval (pid_first_cpu_percent()); 1 if it has one. */
static int pid_open(const char *root, struct pid_entry *e, const struct sampler_clock *clock) {
        char path[64];
        uint64_t start;
        int fd, r;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) e->pid);
        fd = sampler_open_under(root, path);
        if (fd < 0)
                return -errno;
        r = read_pid_stat(fd, &e->ticks, &e->rss_pages, &start);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        e->fd = fd;
        e->cpu = pid_first_cpu_percent(e->ticks, start, clock->since_boot, clock->elapsed, clock->clk_tck,
                                       clock->n_cpus);
        return e->cpu >= 0;
}

int sampler_workers_sample(struct sampler_workers *t, const char *root, const pid_t *pids, size_t n,
                           const struct sampler_clock *clock, struct signals *signals, unsigned *ret_measured) {
        unsigned gen = ++t->generation;
        double sum = 0;
        unsigned measured = 0;
        size_t w = 0;

        for (size_t i = 0; i < n; i++) {
                struct pid_entry *e = pid_find(t, pids[i], i);
                uint64_t ticks;
                int r;

                if (e && e->seen == gen)
                        continue;       /* passed twice: count once */
                if (e && read_pid_stat(e->fd, &ticks, &e->rss_pages, NULL) >= 0) {
                        double pct = pid_cpu_percent(e->ticks, ticks, clock->elapsed, clock->clk_tck, clock->n_cpus);
                        if (pct >= 0) {
                                sum += pct;
                                measured++;
                        }
                        e->cpu = pct;
                        e->ticks = ticks;
                        e->seen = gen;
                        continue;
                }
                if (e) {
                        /* The process we knew is gone (ESRCH): this pid is a new one. */
                        e->fd = safe_close(e->fd);
                } else {
                        if (t->n == t->n_alloc) {
                                size_t m = t->n_alloc ? t->n_alloc * 2 : 64;
                                struct pid_entry *a = reallocarray(t->pids, m, sizeof(*a));
                                if (!a)
                                        return -ENOMEM;
                                t->pids = a;
                                t->n_alloc = m;
                        }
                        e = &t->pids[t->n++];
                }
                *e = (struct pid_entry) { .pid = pids[i], .fd = -EBADF, .cpu = -1 };
                r = pid_open(root, e, clock);
                /* A pid that is already gone is simply not followed. */
                if (r < 0)
                        continue;
                e->seen = gen;
                if (r > 0) {
                        sum += e->cpu;
                        measured++;
                }
        }

        /* Forget the pids not passed this time, keeping the order for the hints. */
        for (size_t i = 0; i < t->n; i++) {
                if (t->pids[i].seen != gen) {
                        safe_close(t->pids[i].fd);
                        continue;
                }
                t->pids[w++] = t->pids[i];
        }
        t->n = w;

        signals_set(signals, SIGNAL_POOL_SIZE, (double) n);
        *ret_measured = measured;
        if (measured > 0)
                signals_set(signals, SIGNAL_POOL_CPU, sum / measured);
        return 0;
}

int sampler_workers_get(const struct sampler_workers *t, pid_t pid, double *ret_cpu, uint64_t *ret_rss) {
        for (size_t i = 0; i < t->n; i++)
                if (t->pids[i].pid == pid) {
                        *ret_cpu = t->pids[i].cpu;
                        *ret_rss = t->pids[i].rss_pages * (uint64_t) sysconf(_SC_PAGESIZE);
                        return 0;
                }
        return -ESRCH;
}

void sampler_workers_done(struct sampler_workers *t) {
        for (size_t i = 0; i < t->n; i++)
                safe_close(t->pids[i].fd);
        free(t->pids);
        *t = (struct sampler_workers) {};
}
