/* SPDX-License-Identifier: MIT */
/*
 * The sampler (see sampler.h): the system side of the signals. It reads each
 * source once per call, keeps the previous counters, and hands the arithmetic
 * to procfs_parse.c, which is pure and unit-tested. The cgroup quota view and
 * the file helpers are in sampler_cgroup.c, the workers' own CPU and memory
 * in sampler_workers.c.
 *
 * Choices worth knowing:
 * - Per-CPU ticks come from libproc2's procps_stat_reap() as absolute
 *   counters with STAT_TIC_ID, and the deltas are computed here by CPU id.
 *   libproc2's own STAT_TIC_DELTA_* keep their history by position in
 *   /proc/stat, so when cpu1 of cpu0-3 goes offline, "cpu2" would be
 *   compared with cpu1's old counters (and its first deltas count from
 *   procps_stat_new()). procps_stat_get() is never called: it shares that
 *   history and re-reads only once a second (PLATFORM.md).
 * - Files read every sample stay open and are read with pread() at offset 0
 *   (the kernel regenerates them), which saves an open/close per file.
 * - A test may point the sampler at a directory of captured files instead
 *   (sampler_new_at()), so that "core 0 burning, core 1 idle" is a fixture
 *   rather than a burner process on a machine that others share. libproc2
 *   reads fixed paths (/proc/stat, /proc/meminfo, /proc/loadavg) and cannot
 *   be redirected, so under a root those three are read here with the pure
 *   parsers of procfs_parse.c, as are the two things that do not come from a
 *   file in production: the clock (the capture's /proc/uptime, so that the
 *   deltas are the capture's) and the affinity (its /proc/self/status). All
 *   else already goes through open() and only gains the prefix. The seam is
 *   that narrow on purpose: the production path is the one that runs.
 * - libproc2 opens /proc/stat and /proc/meminfo without O_CLOEXEC and keeps
 *   them open (PLATFORM.md): every worker would inherit them. sampler_new()
 *   finds them in /proc/self/fd and marks them close-on-exec.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <libproc2/meminfo.h>
#include <libproc2/misc.h>
#include <libproc2/stat.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "supervisor/sampler.h"
#include "supervisor/sampler_cgroup.h"
#include "supervisor/sampler_workers.h"

enum { PSI_CPU, PSI_MEMORY, PSI_IO, _PSI_MAX };

/* Under a root only: the files libproc2 and the clock stand for (see above). */
enum { ROOT_STAT, ROOT_MEMINFO, ROOT_LOADAVG, ROOT_UPTIME, ROOT_STATUS, _ROOT_MAX };

struct sampler {
        struct stat_info *stat;         /* NULL under a root */
        struct meminfo_info *meminfo;   /* NULL under a root */

        char *root;                     /* NULL: the kernel's files; else a copy */
        int root_fd[_ROOT_MAX];

        /* Two readings of /proc/stat, swapped each sample. */
        struct cpu_ticks *prev, *cur;
        size_t n_prev, n_alloc;
        struct core_busy *cores;

        cpu_set_t affinity;
        unsigned affinity_cpus;
        unsigned capacity;
        unsigned long clk_tck;

        int psi_fd[_PSI_MAX];
        struct cgroup_view cgroup;

        struct sampler_workers workers;

        usec_t last;
};

static int cmp_cpu_id(const void *a, const void *b) {
        const struct cpu_ticks *x = a, *y = b;
        return (x->id > y->id) - (x->id < y->id);
}

/* Makes room for n CPUs in both readings and the cores: after the first
 * sample, the only allocation (when CPUs come online). */
static int cpu_arrays_reserve(struct sampler *s, size_t n) {
        if (n <= s->n_alloc)
                return 0;
        struct cpu_ticks *a = reallocarray(s->prev, n, sizeof(*a));
        if (!a)
                return -ENOMEM;
        s->prev = a;
        a = reallocarray(s->cur, n, sizeof(*a));
        if (!a)
                return -ENOMEM;
        s->cur = a;
        struct core_busy *c = reallocarray(s->cores, n, sizeof(*c));
        if (!c)
                return -ENOMEM;
        s->cores = c;
        s->n_alloc = n;
        return 0;
}

/* Every CPU's absolute ticks from libproc2, into s->cur. */
static int reap_cpu_ticks(struct sampler *s, size_t *ret_n) {
        static enum stat_item items[] = {
                STAT_TIC_ID, STAT_TIC_USER, STAT_TIC_NICE, STAT_TIC_SYSTEM, STAT_TIC_IDLE,
                STAT_TIC_IOWAIT, STAT_TIC_IRQ, STAT_TIC_SOFTIRQ, STAT_TIC_STOLEN,
        };
        struct stat_reaped *r;
        size_t n;
        int q;

        errno = 0;
        r = procps_stat_reap(s->stat, STAT_REAP_CPUS_ONLY, items, (int) ELEMENTSOF(items));
        if (!r)
                return errno > 0 ? -errno : -EIO;
        n = r->cpus->total > 0 ? (size_t) r->cpus->total : 0;
        q = cpu_arrays_reserve(s, n);
        if (q < 0)
                return q;
        for (size_t i = 0; i < n; i++) {
                struct stat_result *h = r->cpus->stacks[i]->head;
                uint64_t idle = h[4].result.ull_int + h[5].result.ull_int;
                uint64_t total = idle;
                for (size_t k = 1; k < ELEMENTSOF(items); k++)
                        if (k != 4 && k != 5)
                                total += h[k].result.ull_int;
                s->cur[i] = (struct cpu_ticks) { .id = h[0].result.s_int, .total = total, .idle = idle };
        }
        *ret_n = n;
        return 0;
}

/* Under a root: the capture's /proc/stat, into s->cur. */
static int parse_cpu_ticks(struct sampler *s, size_t *ret_n) {
        char buf[65536];
        size_t n;
        int r;

        r = sampler_pread_text(s->root_fd[ROOT_STAT], buf, sizeof(buf));
        if (r >= 0)
                r = proc_stat_parse_cpus(buf, NULL, 0, &n);
        if (r >= 0)
                r = cpu_arrays_reserve(s, n);
        if (r >= 0)
                r = proc_stat_parse_cpus(buf, s->cur, n, ret_n);
        return r;
}

/* Reads every CPU's absolute ticks into s->cur; returns how many. */
static int read_cpu_ticks(struct sampler *s, size_t *ret_n) {
        size_t n;
        int r;

        r = s->root ? parse_cpu_ticks(s, &n) : reap_cpu_ticks(s, &n);
        if (r < 0)
                return r;
        /* /proc/stat lists CPUs by id; sort anyway, the merge join depends on it. */
        for (size_t i = 1; i < n; i++)
                if (s->cur[i].id < s->cur[i - 1].id) {
                        qsort(s->cur, n, sizeof(*s->cur), cmp_cpu_id);
                        break;
                }
        *ret_n = n;
        return 0;
}

static int read_psi(int fd, double *ret) {
        char buf[512];
        int r;

        if (fd < 0)
                return -ENOENT;
        /* A kernel booted with psi=0 has the files but reads EOPNOTSUPP. */
        r = sampler_pread_text(fd, buf, sizeof(buf));
        if (r < 0)
                return r;
        return psi_parse_some_avg10(buf, ret);
}

/*
 * libproc2 opens /proc/stat and /proc/meminfo without O_CLOEXEC and keeps
 * them open (PLATFORM.md), and offers no way to reach its descriptors: find
 * them among ours by what they point at and mark them close-on-exec, so that
 * no worker inherits them. Call once libproc2 has opened both (its first
 * reads). Best effort: a descriptor it might open later is not ours to find.
 */
static void cloexec_libproc2_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                char link[32], target[32];
                int fd = atoi(de->d_name);
                ssize_t n;

                if (de->d_name[0] == '.' || fd == dirfd(d))
                        continue;
                snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
                n = readlink(link, target, sizeof(target) - 1);
                if (n <= 0)
                        continue;
                target[n] = '\0';
                if (strcmp(target, "/proc/stat") == 0 || strcmp(target, "/proc/meminfo") == 0) {
                        int flags = fcntl(fd, F_GETFD);
                        if (flags >= 0 && !(flags & FD_CLOEXEC))
                                (void) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
                }
        }
        closedir(d);
}

/* The time of a reading: the monotonic clock, or the capture's uptime. With
 * ret_since_boot, also the time since boot, the clock of processes' start
 * times (the capture's uptime again). */
static int sampler_now(const struct sampler *s, usec_t *ret, usec_t *ret_since_boot) {
        char buf[128];
        int r;

        if (!s->root) {
                *ret = now_usec();
                if (ret_since_boot)
                        *ret_since_boot = boot_usec();
                return 0;
        }
        r = sampler_pread_text(s->root_fd[ROOT_UPTIME], buf, sizeof(buf));
        if (r < 0)
                return r;
        r = uptime_parse(buf, ret);
        if (r >= 0 && ret_since_boot)
                *ret_since_boot = *ret;
        return r;
}

/* The sources of the machine-wide signals: libproc2's, or under a root the
 * capture's files (which must all exist: a fixture is complete or wrong). */
static int sampler_open_sources(struct sampler *s) {
        static const char *const root_files[_ROOT_MAX] = {
                [ROOT_STAT] = "/proc/stat",
                [ROOT_MEMINFO] = "/proc/meminfo",
                [ROOT_LOADAVG] = "/proc/loadavg",
                [ROOT_UPTIME] = "/proc/uptime",
                [ROOT_STATUS] = "/proc/self/status",
        };
        int r;

        if (s->root) {
                for (size_t i = 0; i < _ROOT_MAX; i++) {
                        s->root_fd[i] = sampler_open_under(s->root, root_files[i]);
                        if (s->root_fd[i] < 0)
                                return -errno;
                }
                return 0;
        }
        r = procps_stat_new(&s->stat);
        if (r < 0)
                return r;
        return procps_meminfo_new(&s->meminfo);
}

int sampler_new(struct sampler **ret) {
        return sampler_new_at(NULL, ret);
}

int sampler_new_at(const char *root, struct sampler **ret) {
        static const char *const psi_files[_PSI_MAX] = {
                [PSI_CPU] = "/proc/pressure/cpu",
                [PSI_MEMORY] = "/proc/pressure/memory",
                [PSI_IO] = "/proc/pressure/io",
        };
        struct sampler *s;
        long hz;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < _PSI_MAX; i++)
                s->psi_fd[i] = -EBADF;
        for (size_t i = 0; i < _ROOT_MAX; i++)
                s->root_fd[i] = -EBADF;
        s->cgroup.pressure_fd = -EBADF;
        if (root) {
                s->root = strdup(root);
                if (!s->root) {
                        r = -ENOMEM;
                        goto fail;
                }
        }

        r = sampler_open_sources(s);
        if (r < 0)
                goto fail;
        hz = procps_hertz_get();
        s->clk_tck = hz > 0 ? (unsigned long) hz : 100;

        for (size_t i = 0; i < _PSI_MAX; i++) {
                s->psi_fd[i] = sampler_open_under(s->root, psi_files[i]);
                if (s->psi_fd[i] < 0)
                        s->psi_fd[i] = -EBADF;
        }
        cgroup_view_open(&s->cgroup, s->root);

        r = sampler_read_affinity(s->root_fd[ROOT_STATUS], &s->affinity, &s->affinity_cpus);
        if (r < 0)
                goto fail;
        uint64_t q = CGROUP_QUOTA_MAX, p = 0;
        (void) cgroup_view_quota(&s->cgroup, &q, &p);
        s->capacity = cpu_capacity_from(s->affinity_cpus, q, p);

        /* The first reading: the first sample's deltas count from here. */
        r = read_cpu_ticks(s, &s->n_prev);
        if (r < 0)
                goto fail;
        struct cpu_ticks *t = s->prev;
        s->prev = s->cur;
        s->cur = t;
        cgroup_view_start_usage(&s->cgroup);
        if (!s->root) {
                /* libproc2 has opened both files by now (a reap, a select). */
                static enum meminfo_item item = MEMINFO_MEM_TOTAL;
                (void) procps_meminfo_select(s->meminfo, &item, 1);
                cloexec_libproc2_fds();
        }
        r = sampler_now(s, &s->last, NULL);
        if (r < 0)
                goto fail;
        *ret = s;
        return 0;

fail:
        sampler_free(s);
        return r;
}

struct sampler *sampler_free(struct sampler *s) {
        if (!s)
                return NULL;
        if (s->stat)
                procps_stat_unref(&s->stat);
        if (s->meminfo)
                procps_meminfo_unref(&s->meminfo);
        for (size_t i = 0; i < _PSI_MAX; i++)
                safe_close(s->psi_fd[i]);
        for (size_t i = 0; i < _ROOT_MAX; i++)
                safe_close(s->root_fd[i]);
        free(s->root);
        cgroup_view_close(&s->cgroup);
        sampler_workers_done(&s->workers);
        free(s->prev);
        free(s->cur);
        free(s->cores);
        free(s);
        return NULL;
}


int sampler_worker(const struct sampler *s, pid_t pid, double *ret_cpu, uint64_t *ret_rss) {
        return sampler_workers_get(&s->workers, pid, ret_cpu, ret_rss);
}

unsigned sampler_capacity(const struct sampler *s) {
        return s->capacity;
}

static int sample_cpu(struct sampler *s, usec_t elapsed, struct sample *out) {
        struct cpu_load load;
        uint64_t q = CGROUP_QUOTA_MAX, p = 0;
        int level;
        size_t n_cur;
        double busy;
        int r;

        /* Re-read each time: a cpuset or `taskset -p` may change it. On failure
         * (not expected for our own pid) the last mask stays. */
        (void) sampler_read_affinity(s->root_fd[ROOT_STATUS], &s->affinity, &s->affinity_cpus);
        level = cgroup_view_quota(&s->cgroup, &q, &p);
        s->capacity = cpu_capacity_from(s->affinity_cpus, q, p);
        out->capacity = s->capacity;
        out->affinity_cpus = s->affinity_cpus;
        out->quota_cpus = level >= 0 ? (double) q / (double) p : 0;
        busy = cgroup_view_busy(&s->cgroup, level, q, p, elapsed);

        r = read_cpu_ticks(s, &n_cur);
        if (r < 0)
                return r;
        cpu_load_compute(s->prev, s->n_prev, s->cur, n_cur, &s->affinity, s->cores, &load);
        struct cpu_ticks *t = s->prev;
        s->prev = s->cur;
        s->cur = t;
        s->n_prev = n_cur;

        out->cores = s->cores;
        out->n_cores = load.n_cores;
        if (load.n_cores == 0)
                return 0;       /* no delta yet (or every CPU just hot-plugged) */
        /* Under a quota, "room" needs room on the cores and in the quota: a
         * neighbour outside our cgroup fills the former, our workers the latter. */
        if (busy < load.busy)
                busy = load.busy;
        signals_set(&out->signals, SIGNAL_CPU_BUSY, busy);
        signals_set(&out->signals, SIGNAL_CPU_CORE_MAX, load.core_max);
        signals_set(&out->signals, SIGNAL_CPU_CORE_MIN, load.core_min);
        signals_set(&out->signals, SIGNAL_CPU_IDLE_CORES, load.idle_cores);
        return 0;
}

/* load1 and mem.available: libproc2's, or the capture's under a root. */
static void sample_load_memory(struct sampler *s, struct sample *out) {
        static enum meminfo_item items[] = { MEMINFO_MEM_AVAILABLE, MEMINFO_MEM_TOTAL };
        uint64_t avail = 0, total = 0;
        double av1, av5, av15;
        char buf[4096];
        bool have_load = false;

        if (s->root) {
                if (sampler_pread_text(s->root_fd[ROOT_LOADAVG], buf, sizeof(buf)) >= 0 && loadavg_parse(buf, &av1) >= 0)
                        have_load = true;
                if (sampler_pread_text(s->root_fd[ROOT_MEMINFO], buf, sizeof(buf)) < 0 ||
                    meminfo_parse(buf, &avail, &total) < 0)
                        total = 0;
        } else {
                struct meminfo_stack *m;
                have_load = procps_loadavg(&av1, &av5, &av15) >= 0;
                /* select, not get: MEMINFO_GET caches for a second (PLATFORM.md). */
                m = procps_meminfo_select(s->meminfo, items, (int) ELEMENTSOF(items));
                if (m) {
                        avail = m->head[0].result.ul_int;
                        total = m->head[1].result.ul_int;
                }
        }
        if (have_load)
                signals_set(&out->signals, SIGNAL_LOAD1, av1 / s->capacity);
        if (total > 0 && avail <= total)
                signals_set(&out->signals, SIGNAL_MEM_AVAILABLE, 100.0 * (double) avail / (double) total);
}

static void sample_system(struct sampler *s, struct sample *out) {
        double v;

        sample_load_memory(s, out);
        out->psi_cpu_system = read_psi(s->psi_fd[PSI_CPU], &v) >= 0 ? v : -1;
        out->psi_cpu_cgroup = read_psi(s->cgroup.pressure_fd, &v) >= 0 ? v : -1;
        /* The larger of the two: the machine's figure sees a neighbour waiting
         * for CPU, the cgroup's sees our workers throttled by a quota. */
        v = out->psi_cpu_system > out->psi_cpu_cgroup ? out->psi_cpu_system : out->psi_cpu_cgroup;
        if (v >= 0)
                signals_set(&out->signals, SIGNAL_PSI_CPU, v);
        if (read_psi(s->psi_fd[PSI_MEMORY], &v) >= 0)
                signals_set(&out->signals, SIGNAL_PSI_MEMORY, v);
        if (read_psi(s->psi_fd[PSI_IO], &v) >= 0)
                signals_set(&out->signals, SIGNAL_PSI_IO, v);
}


int sampler_sample(struct sampler *s, const pid_t *pids, size_t n_pids, struct sample *ret) {
        struct sample out = { .psi_cpu_system = -1, .psi_cpu_cgroup = -1 };
        usec_t now, since_boot;
        int r, q;

        r = sampler_now(s, &now, &since_boot);
        if (r < 0)
                return r;
        out.elapsed = now > s->last ? now - s->last : 0;
        s->last = now;

        /* Every part runs even if one fails, so that all histories stay one
         * interval old and the next sample's deltas cover the same time. */
        r = sample_cpu(s, out.elapsed, &out);
        sample_system(s, &out);
        q = sampler_workers_sample(&s->workers, s->root, pids, n_pids, &(struct sampler_clock) {
                                           .elapsed = out.elapsed, .since_boot = since_boot,
                                           .clk_tck = s->clk_tck,
                                           .n_cpus = s->n_prev > 0 ? (unsigned) s->n_prev : 1 },
                                   &out.signals, &out.pool_measured);
        if (r < 0)
                return r;
        if (q < 0)
                return q;
        *ret = out;
        return 0;
}
