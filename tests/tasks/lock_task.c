/* SPDX-License-Identifier: MIT */
/*
 * A contended task for tests and benchmarks of batch sizing. It waits 10 ms
 * outside the lock (its own I/O), then takes an exclusive flock on LOCKFILE
 * and does about 10 ms of CPU work holding it. Waiters spin on
 * flock(LOCK_NB), as callers of a spinlock or an optimistic retry loop do, so
 * each one burns a CPU the holder may need.
 *
 * So: 1 at once leaves the lock idle half the time; 2 at once keep it busy
 * (the best throughput: the lock is the bottleneck at k = 2); every further
 * task only adds a spinner, which on a machine with few cores slows the
 * holder, and throughput falls. On an otherwise idle machine the peak is at
 * k = 2 (the smallest size that saturates the lock); other jobs taking CPU
 * move it around (bench/optimize measured k = 4 best once), but it stays small.
 *
 * Usage: lock-task LOCKFILE LINE
 * environment: LOCK_TASK_ITERS (work in the lock, default 6000000),
 *              LOCK_TASK_MS (wait outside it, default 10)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include "tasks/task_util.h"

int main(int argc, char **argv) {
        if (argc < 2) {
                fprintf(stderr, "usage: lock-task LOCKFILE LINE\n");
                return 2;
        }
        int fd = open(argv[1], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
                fprintf(stderr, "lock-task: cannot open %s: %m\n", argv[1]);
                return 2;
        }
        sleep_ms(env_u64("LOCK_TASK_MS", 10));
        while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno != EWOULDBLOCK && errno != EINTR) {
                        fprintf(stderr, "lock-task: cannot lock %s: %m\n", argv[1]);
                        return 2;
                }
        }
        unsigned long long v = burn(env_u64("LOCK_TASK_ITERS", 6000000));
        flock(fd, LOCK_UN);     /* close would release it too; say when */
        close(fd);
        printf("%s %llu\n", argc > 2 ? argv[argc - 1] : "", v);
        return 0;
}
