/* SPDX-License-Identifier: MIT */
/*
 * The sampler's pure half: parsers for the kernel files libproc2 does not
 * cover (PSI, cgroup v2 cpu.max and cpu.stat, /proc/PID/stat, the cgroup2
 * mount and our cgroup path), for the few it does when the sampler reads
 * captured files instead of the kernel (/proc/stat, meminfo, loadavg, uptime,
 * the affinity in /proc/self/status: see sampler_new_at()), and the
 * arithmetic that turns two readings of counters into percentages. No system calls, no clock, no allocation: the
 * sampler feeds it text and numbers, and the unit tests feed it captured and
 * broken contents and synthetic tick series.
 *
 * Parsers return 0 or a negative errno (-EINVAL for malformed text, -ENOENT
 * for a missing line or field, -ERANGE for overflow) and write their
 * out-parameters only on success.
 */
#pragma once

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

/* cpu.max's "max": no quota. */
#define CGROUP_QUOTA_MAX UINT64_MAX

/* The "avg10" of the "some" line of a PSI file (/proc/pressure/cpu,
 * a cgroup's cpu.pressure), in percent. */
int psi_parse_some_avg10(const char *text, double *ret);

/* cgroup v2 cpu.max: "QUOTA PERIOD" or "max PERIOD" (quota CGROUP_QUOTA_MAX).
 * The period may be omitted ("max" alone, as some kernels print it): 100000. */
int cgroup_parse_cpu_max(const char *text, uint64_t *ret_quota, uint64_t *ret_period);

/* cgroup v2 cpu.stat: the value of "usage_usec". */
int cgroup_parse_cpu_usage(const char *text, uint64_t *ret_usec);

/* /proc/self/cgroup: the path of the unified ("0::") hierarchy, e.g. "/" or
 * "/system.slice/corral.service". Points into text; *ret_len excludes the newline. */
int cgroup_parse_self(const char *text, const char **ret_path, size_t *ret_len);

/* /proc/self/mountinfo: the mount point of the first cgroup2 file system,
 * with the kernel's octal escapes (\040 for a space) undone, into buf. */
int mountinfo_find_cgroup2(const char *text, char *buf, size_t size);

/* /proc/PID/stat: utime + stime + cutime + cstime in clock ticks (the
 * process's own CPU and that of its reaped children). The command name may
 * hold spaces and parentheses: fields are counted from the last ')'. */
int proc_stat_parse_ticks(const char *text, uint64_t *ret_ticks);

/* /proc/PID/stat: the resident set size (field 24), in pages. */
int proc_stat_parse_rss(const char *text, uint64_t *ret_pages);

/* /proc/PID/stat: when the process started (field 22), in clock ticks since boot. */
int proc_stat_parse_start(const char *text, uint64_t *ret_ticks);

/* Usable CPUs from the affinity count and a cgroup quota (CGROUP_QUOTA_MAX or
 * a zero period: none): min(affinity, ceil(quota / period)), never below 1. */
unsigned cpu_capacity_from(unsigned affinity, uint64_t quota, uint64_t period);

/* One CPU's counters from /proc/stat, reduced to what busy needs. */
struct cpu_ticks {
        int id;                 /* the N of "cpuN" */
        uint64_t total;         /* user+nice+system+idle+iowait+irq+softirq+steal */
        uint64_t idle;          /* idle+iowait */
};

/* The busy share of one CPU between two readings, 1 - Δidle/Δtotal, in
 * percent, or a negative value when there is no usable delta (no time passed,
 * or a counter went backwards: a CPU that went offline and came back). Never
 * outside [0, 100] otherwise. */
double cpu_ticks_busy(const struct cpu_ticks *prev, const struct cpu_ticks *cur);

/* One usable core's busy share in the last interval. */
struct core_busy {
        int id;
        double busy;            /* % */
};

struct cpu_load {
        double busy;            /* mean of the cores measured, % */
        double core_max, core_min;
        unsigned idle_cores;    /* measured cores under CPU_IDLE_BELOW % */
        size_t n_cores;         /* cores measured: usable, present in both readings, sane delta */
};

#define CPU_IDLE_BELOW 20.0

/*
 * Matches two readings by CPU id (both ascending by id, as /proc/stat lists
 * them), so a CPU that appears or vanishes between them is simply not
 * measured this time. Only CPUs in `usable` count. Writes up to n_cur entries
 * to ret_cores (which must hold n_cur) and the summary to *ret_load; with no
 * core measured, n_cores is 0 and the other fields are 0.
 */
void cpu_load_compute(const struct cpu_ticks *prev, size_t n_prev,
                      const struct cpu_ticks *cur, size_t n_cur,
                      const cpu_set_t *usable,
                      struct core_busy *ret_cores, struct cpu_load *ret_load);

/* A process's CPU between two readings of its ticks, in % of one core, or a
 * negative value when there is no usable delta (backwards, no time passed).
 * Capped at 100 × max_cpus: a reaped child's whole lifetime lands in
 * cutime at once and must not read as more than the machine can do. */
double pid_cpu_percent(uint64_t prev_ticks, uint64_t cur_ticks, usec_t elapsed,
                       unsigned long clk_tck, unsigned max_cpus);

/* A process seen for the first time: its CPU since it started, `since_boot`
 * being now on the clock of its start time, in % of one core. Only for one
 * that started during the interval just ended (`elapsed` long) and has run
 * for half of it and ten ticks at least: a younger one has run too briefly
 * to say anything, and an older one should have been seen before. Else negative:
 * its first figure comes with the next sample. */
double pid_first_cpu_percent(uint64_t ticks, uint64_t start_ticks, usec_t since_boot, usec_t elapsed,
                             unsigned long clk_tck, unsigned max_cpus);

/* A cgroup's CPU use relative to its quota between two usage_usec readings,
 * in percent, clamped to [0, 100]; negative when there is no usable delta. */
double cgroup_quota_busy(uint64_t prev_usage, uint64_t cur_usage, usec_t elapsed,
                         uint64_t quota, uint64_t period);

/* The parsers below read what libproc2 reads in production; the sampler uses
 * them only when pointed at a directory of captured files (sampler_new_at()). */

/* /proc/stat: the "cpuN" lines (not the "cpu" total), in file order, as
 * sampler.c reduces libproc2's: total = user..steal, idle = idle + iowait.
 * Writes the first `max` to ret (ret may be NULL when max is 0) and the
 * number of lines to *ret_n, which may exceed max: call again with more room.
 * -ENOENT without any. */
int proc_stat_parse_cpus(const char *text, struct cpu_ticks *ret, size_t max, size_t *ret_n);

/* /proc/meminfo: MemAvailable and MemTotal, in kB. */
int meminfo_parse(const char *text, uint64_t *ret_available_kib, uint64_t *ret_total_kib);

/* /proc/loadavg: the 1-minute load average. */
int loadavg_parse(const char *text, double *ret_load1);

/* /proc/uptime: the first field ("12345.67"), in µs. */
int uptime_parse(const char *text, usec_t *ret);

/* A kernel CPU list ("0-3,5", as in Cpus_allowed_list or cpuset.cpus). */
int cpu_list_parse(const char *text, cpu_set_t *ret);

/* /proc/PID/status: the CPUs of "Cpus_allowed_list:". */
int proc_status_parse_cpus_allowed(const char *text, cpu_set_t *ret);
