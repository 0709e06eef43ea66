/* SPDX-License-Identifier: MIT */
/* process_* metrics from /proc/self, as the Prometheus client libraries compute them. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/small_file.h"
#include "common/util.h"
#include "metrics/process.h"

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

/* The start time from /proc/self/stat's field 22 (clock ticks after boot) and /proc/stat's btime. */
static int read_start_time(double *ret) {
        char buf[1024];
        unsigned long long start_ticks, btime = 0;
        int r;

        r = read_small_file("/proc/self/stat", buf, sizeof(buf));
        if (r < 0)
                return r;
        /* The command name may hold spaces and parentheses: fields count from the last ')'. */
        const char *p = strrchr(buf, ')');
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
                                "%*d %*d %llu", &start_ticks) != 1)
                return -EIO;

        _cleanup_(fclosep) FILE *f = fopen("/proc/stat", "re");
        if (!f)
                return -errno;
        char line[256];
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "btime %llu", &btime) == 1)
                        break;
        long hz = sysconf(_SC_CLK_TCK);
        if (btime == 0 || hz <= 0)
                return -EIO;
        *ret = (double) btime + (double) start_ticks / (double) hz;
        return 0;
}

static int count_fds(uint64_t *ret) {
        _cleanup_(closedirp) DIR *d = opendir("/proc/self/fd");
        uint64_t n = 0;
        struct dirent *de;

        if (!d)
                return -errno;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        /* The listing's own fd is not one of ours. */
        *ret = n > 0 ? n - 1 : 0;
        return 0;
}

int metrics_process_read(struct metrics_process *ret) {
        struct metrics_process p = { .valid = true };
        struct rusage ru;
        struct rlimit rl;
        char buf[128];
        unsigned long long size, resident;
        int r;

        /* getrusage counts every thread in microseconds; /proc ticks are 10 ms coarse. */
        if (getrusage(RUSAGE_SELF, &ru) < 0)
                return -errno;
        p.cpu_seconds = (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 +
                        (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;

        r = read_small_file("/proc/self/statm", buf, sizeof(buf));
        if (r < 0)
                return r;
        if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
                return -EIO;
        p.resident_bytes = (uint64_t) resident * (uint64_t) sysconf(_SC_PAGESIZE);

        r = read_start_time(&p.start_time);
        if (r < 0)
                return r;
        r = count_fds(&p.open_fds);
        if (r < 0)
                return r;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        p.max_fds = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t) rl.rlim_cur;

        *ret = p;
        return 0;
}
