/* SPDX-License-Identifier: MIT */
/*
 * An I/O-bound task for tests and benchmarks of batch sizing: it waits 50 ms
 * (as a task waiting on the network or a disk would, using no CPU), then
 * prints its task line. Throughput grows with the number run at once far
 * beyond the CPUs, until spawning them costs the machine.
 *
 * Usage: io-task LINE      environment: IO_TASK_MS (default 50)
 */
#include <stdio.h>

#include "tasks/task_util.h"

int main(int argc, char **argv) {
        sleep_ms(env_u64("IO_TASK_MS", 50));
        printf("%s\n", argc > 1 ? argv[argc - 1] : "");
        return 0;
}
