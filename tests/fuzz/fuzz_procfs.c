/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: every parser of supervisor/procfs_parse.h (PSI, cgroup
 * cpu.max and cpu.stat, /proc/self/cgroup, mountinfo, /proc/PID/stat, and the
 * captured-file ones: /proc/stat, meminfo, loadavg, uptime, CPU lists) on the
 * same arbitrary text, as if the kernel had written it. Besides the
 * sanitizers' findings, it checks the contracts: results in range, pointers
 * into the text, a NUL-terminated mount point within the buffer.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/procfs_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = malloc(size + 1);
        if (!text)
                abort();
        memcpy(text, data, size);
        text[size] = '\0';
        size_t len = strlen(text);

        double avg10;
        if (psi_parse_some_avg10(text, &avg10) == 0 && !(avg10 >= 0 && avg10 <= 100))
                abort();

        uint64_t quota, period;
        if (cgroup_parse_cpu_max(text, &quota, &period) == 0) {
                if (period == 0)
                        abort();
                (void) cpu_capacity_from(2, quota, period);
        }

        uint64_t usage, ticks, pages;
        (void) cgroup_parse_cpu_usage(text, &usage);
        (void) proc_stat_parse_ticks(text, &ticks);
        (void) proc_stat_parse_rss(text, &pages);

        const char *path;
        size_t path_len;
        if (cgroup_parse_self(text, &path, &path_len) == 0 &&
            (path < text || path + path_len > text + len))
                abort();

        /* A small buffer too, to exercise the "does not fit" path. */
        char mount[4096], small[8];
        if (mountinfo_find_cgroup2(text, mount, sizeof(mount)) == 0 && strnlen(mount, sizeof(mount)) == sizeof(mount))
                abort();
        if (mountinfo_find_cgroup2(text, small, sizeof(small)) == 0 && strnlen(small, sizeof(small)) == sizeof(small))
                abort();

        struct cpu_ticks cpus[4];
        size_t n_cpus;
        if (proc_stat_parse_cpus(text, cpus, 4, &n_cpus) == 0) {
                for (size_t i = 0; i < n_cpus && i < 4; i++)
                        if (cpus[i].idle > cpus[i].total || cpus[i].id < 0)
                                abort();
        }
        uint64_t avail, total;
        double load1;
        usec_t up;
        cpu_set_t set;
        (void) meminfo_parse(text, &avail, &total);
        if (loadavg_parse(text, &load1) == 0 && !(load1 >= 0))
                abort();
        (void) uptime_parse(text, &up);
        (void) cpu_list_parse(text, &set);
        (void) proc_status_parse_cpus_allowed(text, &set);

        free(text);
        return 0;
}
