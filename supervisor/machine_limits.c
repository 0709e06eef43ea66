/* SPDX-License-Identifier: MIT */
/*
 * The machine's limits on how many workers a batch may run (policy/ceiling.h
 * turns them into a ceiling): the process and file limits, the pids cgroup,
 * MemAvailable. Read once when the run's configuration is built.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/small_file.h"
#include "supervisor/machine_limits.h"

/* A number from a one-line file ("max" is none); UINT64_MAX if unreadable. */
static uint64_t read_u64_file(const char *path) {
        char buf[64];
        if (read_small_file(path, buf, sizeof(buf)) <= 0)
                return UINT64_MAX;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(buf, &end, 10);
        return end == buf || errno ? UINT64_MAX : (uint64_t) v;
}

/* Our cgroup's path in the pids hierarchy: v1's "N:pids:/path" or v2's
 * "0::/path", with the directory it is under. False if neither is found. */
static bool pids_cgroup(char *ret_dir, size_t size) {
        static const char *const v2_mounts[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
        char line[4096];
        bool found = false;
        FILE *f = fopen("/proc/self/cgroup", "re");
        if (!f)
                return false;
        while (!found && fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = '\0';
                char *path = strrchr(line, ':');
                if (!path)
                        continue;
                if (strstr(line, ":pids:")) {
                        snprintf(ret_dir, size, "/sys/fs/cgroup/pids%s", strcmp(path + 1, "/") ? path + 1 : "");
                        found = true;
                } else if (strncmp(line, "0::", 3) == 0)
                        for (size_t i = 0; !found && i < sizeof(v2_mounts) / sizeof(v2_mounts[0]); i++) {
                                char probe[4200];
                                snprintf(ret_dir, size, "%s%s", v2_mounts[i], strcmp(path + 1, "/") ? path + 1 : "");
                                snprintf(probe, sizeof(probe), "%s/pids.current", ret_dir);
                                found = access(probe, R_OK) == 0;
                        }
        }
        fclose(f);
        return found;
}

/* The tightest room (pids.max - pids.current) from our cgroup up to the top. */
static void read_pids(struct machine_limits *l) {
        char dir[4096], path[4200];
        if (!pids_cgroup(dir, sizeof(dir)))
                return;
        for (;;) {
                snprintf(path, sizeof(path), "%s/pids.max", dir);
                uint64_t max = read_u64_file(path);
                snprintf(path, sizeof(path), "%s/pids.current", dir);
                uint64_t cur = read_u64_file(path);
                if (max != UINT64_MAX && (l->pids_max == UINT64_MAX ||
                                          max - (cur == UINT64_MAX ? 0 : cur) < l->pids_max - l->pids_current)) {
                        l->pids_max = max;
                        l->pids_current = cur == UINT64_MAX || cur > max ? max : cur;
                }
                char *slash = strrchr(dir, '/');
                if (!slash || slash == dir || strcmp(dir, "/sys/fs/cgroup") == 0 ||
                    strcmp(dir, "/sys/fs/cgroup/pids") == 0 || strcmp(dir, "/sys/fs/cgroup/unified") == 0)
                        break;
                *slash = '\0';
        }
}

static uint64_t mem_available(void) {
        char line[256];
        uint64_t kib = UINT64_MAX;
        FILE *f = fopen("/proc/meminfo", "re");
        if (!f)
                return UINT64_MAX;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "MemAvailable: %" SCNu64 " kB", &kib) == 1)
                        break;
        fclose(f);
        return kib == UINT64_MAX ? UINT64_MAX : kib * 1024;
}

void machine_limits_read(struct machine_limits *ret) {
        struct machine_limits l = { UINT64_MAX, UINT64_MAX, UINT64_MAX, 0, UINT64_MAX };
        struct rlimit rl;

        /* Root is not held to RLIMIT_NPROC (CAP_SYS_RESOURCE, CAP_SYS_ADMIN). */
        if (geteuid() != 0 && getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
                l.nproc = rl.rlim_cur;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY)
                l.nofile = rl.rlim_max;
        read_pids(&l);
        l.mem_available = mem_available();
        *ret = l;
}
