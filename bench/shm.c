/* SPDX-License-Identifier: MIT */
/*
 * bench/shm: what a shared segment costs and saves (issue 8).
 *  1. Time to load a file into a sealed segment (shm_segment_load) against
 *     `cat FILE > /dev/null` in the same run, both from a warm page cache,
 *     best of 3 each (goal: <= 1.2x). Also against `cat FILE > memfd`:
 *     cat to /dev/null allocates nothing, a segment must allocate and fill
 *     every page, so that is the like-for-like figure.
 *  2. Summed Pss and Rss of 8 workers that each map the segment and touch
 *     every page, against the same 8 workers each reading the file into
 *     private memory (goal for shared: summed Pss <= 1.1x the size).
 * Not a test: it prints figures. Usage: shm [FILE [WORKERS]]; without FILE
 * a 1 GiB file is written to /var/tmp and removed afterwards.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <inttypes.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "supervisor/shm.h"
#include "supervisor/spawn.h"

#define GIB ((size_t) 1 << 30)

extern char **environ;

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int die(const char *what) {
        perror(what);
        exit(1);
}

static void make_file(const char *path, size_t size) {
        size_t chunk = 1 << 20;
        uint64_t *buf = malloc(chunk), x = 88172645463325252ULL;
        FILE *f = fopen(path, "we");
        if (!buf || !f)
                die(path);
        for (size_t done = 0; done < size; done += chunk) {
                for (size_t i = 0; i < chunk / 8; i++) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        buf[i] = x;
                }
                if (fwrite(buf, 1, chunk, f) != chunk)
                        die(path);
        }
        if (fclose(f) != 0)
                die(path);
        free(buf);
}

/* `cat FILE > /dev/null`, or with into_memory `cat FILE > memfd`: the same
 * copy, but into fresh pages, which is what a segment has to do too. */
static double time_cat(const char *path, bool into_memory) {
        posix_spawn_file_actions_t fa;
        char *argv[] = { "cat", (char *) path, NULL };
        pid_t pid;
        int status, memfd = -1;

        posix_spawn_file_actions_init(&fa);
        if (into_memory) {
                memfd = memfd_create("bench", MFD_CLOEXEC);
                if (memfd < 0)
                        die("memfd_create");
                posix_spawn_file_actions_adddup2(&fa, memfd, STDOUT_FILENO);
        } else
                posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        double t0 = now();
        if (posix_spawnp(&pid, "cat", &fa, NULL, argv, environ) != 0)
                die("cat");
        waitpid(pid, &status, 0);
        double t = now() - t0;
        posix_spawn_file_actions_destroy(&fa);
        if (memfd >= 0)
                close(memfd);
        return t;
}

static double time_load(const char *path, struct shm_set **ret) {
        struct shared_config sc = { .name = "data", .path = (char *) path };
        struct shm_error err;
        double t0 = now();
        if (shm_set_load(&sc, 1, ret, &err) < 0) {
                fprintf(stderr, "%s\n", err.message);
                exit(1);
        }
        return now() - t0;
}

/* The worker: "shared" maps CORRAL_SHM_DATA, "private" reads FILE into its
 * own memory; either way every page is touched, then it reports on READY
 * and holds until HOLD closes. */
static int worker(const char *mode, const char *path, int ready, int hold) {
        size_t size;
        const volatile uint8_t *p;

        if (strcmp(mode, "shared") == 0) {
                size = strtoull(getenv("CORRAL_SHM_DATA_SIZE"), NULL, 10);
                p = mmap(NULL, size, PROT_READ, MAP_SHARED, atoi(getenv("CORRAL_SHM_DATA")), 0);
                if (p == MAP_FAILED)
                        return 4;
        } else {
                struct stat st;
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || fstat(fd, &st) < 0)
                        return 4;
                size = (size_t) st.st_size;
                uint8_t *b = malloc(size);
                if (!b)
                        return 4;
                for (size_t done = 0; done < size;) {
                        ssize_t n = read(fd, b + done, size - done);
                        if (n <= 0)
                                return 4;
                        done += (size_t) n;
                }
                p = b;
        }
        uint8_t sum = 0;
        for (size_t i = 0; i < size; i += 4096)
                sum += p[i];
        (void) !write(ready, &sum, 1);
        char c;
        while (read(hold, &c, 1) > 0)
                ;
        return 0;
}

static uint64_t rollup_kib(pid_t pid, const char *key) {
        char path[64], line[256];
        unsigned long long kib = 0;
        snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int) pid);
        FILE *f = fopen(path, "re");
        if (!f)
                die(path);
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, key, strlen(key)) == 0 && sscanf(line + strlen(key), " %llu", &kib) == 1)
                        break;
        fclose(f);
        return kib;
}

/* Starts n workers in mode, awaits them, sums their Pss and Rss (KiB). */
static void measure(const char *mode, const char *path, const struct shm_set *set, int n, uint64_t *ret_pss,
                    uint64_t *ret_rss) {
        int ready[2], hold[2];
        char ready_text[16], hold_text[16], self[4096];
        pid_t pids[256];

        ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (len < 0)
                die("/proc/self/exe");
        self[len] = '\0';
        if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(hold, O_CLOEXEC) < 0)
                die("pipe");
        snprintf(ready_text, sizeof(ready_text), "%d", ready[1]);
        snprintf(hold_text, sizeof(hold_text), "%d", hold[0]);
        char *argv[] = { self, "--worker", (char *) mode, (char *) path, ready_text, hold_text, NULL };
        char **envp = env_merge(environ, set->env);
        int keep[] = { set->fds[0], ready[1], hold[0] };
        struct spawn_request req = { .argv = argv, .envp = envp, .keep_fds = keep, .n_keep_fds = 3 };

        for (int i = 0; i < n; i++)
                if ((pids[i] = spawn_worker(&req)) < 0)
                        die("spawn");
        close(ready[1]);
        close(hold[0]);
        for (int got = 0; got < n;) {
                char buf[256];
                ssize_t r = read(ready[0], buf, sizeof(buf));
                if (r <= 0)
                        die("a worker failed");
                got += (int) r;
        }
        *ret_pss = *ret_rss = 0;
        for (int i = 0; i < n; i++) {
                *ret_pss += rollup_kib(pids[i], "Pss:");
                *ret_rss += rollup_kib(pids[i], "Rss:");
        }
        close(hold[1]);
        for (int i = 0; i < n; i++)
                waitpid(pids[i], NULL, 0);
        close(ready[0]);
        free(envp);
}

int main(int argc, char **argv) {
        if (argc == 6 && strcmp(argv[1], "--worker") == 0)
                return worker(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));

        char generated[] = "/var/tmp/corral-bench-shm-XXXXXX";
        const char *path = argc > 1 ? argv[1] : NULL;
        int workers = argc > 2 ? atoi(argv[2]) : 8;
        if (workers < 1 || workers > 256)
                workers = 8;
        if (!path) {
                int fd = mkstemp(generated);
                if (fd < 0)
                        die(generated);
                close(fd);
                make_file(generated, GIB);
                path = generated;
        }
        struct stat st;
        if (stat(path, &st) < 0)
                die(path);
        double mib = (double) st.st_size / (1 << 20);

        /* Warm the page cache once, so both sides read from memory. */
        time_cat(path, false);
        double best_cat = 1e9, best_load = 1e9, best_cat_memory = 1e9;
        struct shm_set *set = NULL;
        for (int i = 0; i < 3; i++) {
                double c = time_cat(path, false), m = time_cat(path, true);
                best_cat_memory = m < best_cat_memory ? m : best_cat_memory;
                set = shm_set_unref(set);
                double l = time_load(path, &set);
                best_cat = c < best_cat ? c : best_cat;
                best_load = l < best_load ? l : best_load;
        }
        printf("load %.0f MiB: segment %.3f s (%.2f GiB/s), cat > /dev/null %.3f s; ratio %.2fx (goal <= 1.2x)\n",
               mib, best_load, mib / 1024 / best_load, best_cat, best_load / best_cat);
        printf("  (cat > memfd, the same copy into fresh pages: %.3f s; segment / that %.2fx)\n", best_cat_memory,
               best_load / best_cat_memory);

        uint64_t shared_pss, shared_rss, private_pss, private_rss;
        measure("shared", path, set, workers, &shared_pss, &shared_rss);
        measure("private", path, set, workers, &private_pss, &private_rss);
        double size_kib = (double) st.st_size / 1024;
        printf("%d workers, shared segment: summed Pss %.0f MiB (%.2fx the size, goal <= 1.1x), Rss %.0f MiB\n",
               workers, (double) shared_pss / 1024, (double) shared_pss / size_kib, (double) shared_rss / 1024);
        printf("%d workers, private copies: summed Pss %.0f MiB (%.2fx the size), Rss %.0f MiB\n", workers,
               (double) private_pss / 1024, (double) private_pss / size_kib, (double) private_rss / 1024);
        printf("memory saved by sharing: %.0f MiB (%.1fx less)\n", (double) (private_pss - shared_pss) / 1024,
               (double) private_pss / (double) shared_pss);

        shm_set_unref(set);
        if (path == generated)
                unlink(generated);
        return 0;
}
