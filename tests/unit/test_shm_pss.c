/* SPDX-License-Identifier: MIT */
/*
 * One physical copy (issue 8, DESIGN.md goal "summed PSS <= 1.1 x segment
 * size"): 8 workers, started through spawn_worker with the segment's fd in
 * keep_fds and its CORRAL_SHM_* variables, each map and read every page of a
 * 256 MiB segment. With one copy shared, their Pss (plus the loader's) sums to
 * about 256 MiB; private copies would be 8 times that. An assertion on memory,
 * not on time: readiness comes through a pipe, never a sleep.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervisor/shm.h"
#include "supervisor/spawn.h"

#define SEGMENT_SIZE ((size_t) 256 << 20)
#define WORKERS 8
#define KIB 1024ULL

extern char **environ;

/* Writes SEGMENT_SIZE pseudo-random bytes to path; returns their FNV-1a over
 * 64-bit words, as shm-touch computes it. */
static uint64_t write_data(const char *path) {
        size_t chunk = 1 << 20;
        _cleanup_free_ uint64_t *buf = malloc(chunk);
        uint64_t x = 88172645463325252ULL, h = 1469598103934665603ULL;
        FILE *f = fopen(path, "we");

        assert_non_null(buf);
        assert_non_null(f);
        for (size_t done = 0; done < SEGMENT_SIZE; done += chunk) {
                for (size_t i = 0; i < chunk / 8; i++) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        buf[i] = x;
                        h = (h ^ x) * 1099511628211ULL;
                }
                assert_int_equal(fwrite(buf, 1, chunk, f), chunk);
        }
        assert_int_equal(fclose(f), 0);
        return h;
}

/* "Pss:" or "Rss:" of /proc/PID/smaps_rollup, in bytes. */
static uint64_t rollup(pid_t pid, const char *key) {
        char path[64], line[256];
        unsigned long long kib = 0;
        bool found = false;

        snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int) pid);
        FILE *f = fopen(path, "re");
        assert_non_null(f);
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, key, strlen(key)) == 0 && sscanf(line + strlen(key), " %llu kB", &kib) == 1) {
                        found = true;
                        break;
                }
        fclose(f);
        assert_true(found);
        return kib * KIB;
}

/* Reads exactly size bytes, waiting at most a minute in all (only a broken
 * worker ever makes it wait that long). */
static void read_all(int fd, char *buf, size_t size) {
        for (size_t got = 0; got < size;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                assert_int_equal(poll(&p, 1, 60000), 1);
                ssize_t n = read(fd, buf + got, size - got);
                assert_true(n > 0);
                got += (size_t) n;
        }
}

static void test_eight_workers_share_one_copy(void **state) {
        char dir[] = "/tmp/corral-test-shm-pss-XXXXXX", path[64], ready_text[16], hold_text[16];
        const char *touch = getenv("SHM_TOUCH");
        struct shm_set *set = NULL;
        struct shm_error err = {};
        int ready[2], hold[2], status;
        pid_t pids[WORKERS];
        (void) state;

        if (!touch)
                skip();
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/data.bin", dir);
        uint64_t expected = write_data(path);

        struct shared_config sc = { .name = "data", .path = path };
        assert_int_equal(shm_set_load(&sc, 1, &set, &err), 0);
        /* The page cache's copy of the file is not the segment: drop both. */
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);

        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
        snprintf(ready_text, sizeof(ready_text), "%d", ready[1]);
        snprintf(hold_text, sizeof(hold_text), "%d", hold[0]);
        char *argv[] = { (char *) touch, "DATA", ready_text, hold_text, NULL };
        _cleanup_free_ char **envp = env_merge(environ, set->env);
        assert_non_null(envp);
        int keep[] = { set->fds[0], ready[1], hold[0] };
        struct spawn_request req = { .argv = argv, .envp = envp, .keep_fds = keep, .n_keep_fds = 3 };

        for (int i = 0; i < WORKERS; i++) {
                pids[i] = spawn_worker(&req);
                assert_true(pids[i] > 0);
        }
        ready[1] = safe_close(ready[1]);
        hold[0] = safe_close(hold[0]);

        char lines[WORKERS * 17 + 1] = "";
        read_all(ready[0], lines, WORKERS * 17);

        uint64_t pss = rollup(getpid(), "Pss:"), loader = pss;
        for (int i = 0; i < WORKERS; i++) {
                uint64_t p = rollup(pids[i], "Pss:"), rss = rollup(pids[i], "Rss:");
                /* Each worker really has the whole segment mapped in... */
                assert_true(rss >= SEGMENT_SIZE);
                pss += p;
        }
        print_message("summed Pss of %d workers + loader (%llu KiB): %llu KiB = %.3f x the %zu MiB segment\n",
                      WORKERS, (unsigned long long) (loader / KIB), (unsigned long long) (pss / KIB),
                      (double) pss / (double) SEGMENT_SIZE, SEGMENT_SIZE >> 20);
        /* ... and yet all of them together hold about one copy. */
        assert_true((double) pss <= 1.1 * (double) SEGMENT_SIZE);

        /* Every worker saw exactly the file's bytes. */
        for (int i = 0; i < WORKERS; i++) {
                unsigned long long h = 0;
                assert_int_equal(sscanf(lines + 17 * i, "%16llx", &h), 1);
                assert_int_equal(h, expected);
        }

        hold[1] = safe_close(hold[1]);
        for (int i = 0; i < WORKERS; i++) {
                assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
                assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        safe_close(ready[0]);
        shm_set_unref(set);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_eight_workers_share_one_copy),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
