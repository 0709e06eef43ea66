/* SPDX-License-Identifier: MIT */
/*
 * A CPU-bound task for tests and benchmarks of batch sizing: a busy loop of
 * fixed work (about 20 ms of one core on this project's machine), then it
 * prints its task line. Throughput peaks at about one task per usable CPU.
 *
 * Usage: cpu-task LINE     environment: CPU_TASK_ITERS (default 12000000)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tasks/task_util.h"

int main(int argc, char **argv) {
        uint64_t iters = env_u64("CPU_TASK_ITERS", 12000000);

        printf("%s %llu\n", argc > 1 ? argv[argc - 1] : "", (unsigned long long) burn(iters));
        return 0;
}
