/* SPDX-License-Identifier: MIT */
/*
 * A long-running worker for the e2e tests: it optionally touches some memory,
 * writes "ready ID PID" (ID from CORRAL_WORKER_ID, "-" without it), and waits
 * for its stop signal. C, not Python: tests that replace workers every few
 * hundred milliseconds must not measure an interpreter's start-up on a busy
 * machine (PLATFORM.md: ~0.1 s for Python, ~0.4 s to touch 96 MiB).
 *
 * Usage: idle-task [--hold-mib N [--hold-worker ID]] [--fail-on-term]
 *   --hold-mib: touch N MiB before "ready" (only worker ID with --hold-worker);
 *   --fail-on-term: exit with status 1 on SIGTERM (a failure, were it not asked
 *   to stop) instead of being killed by it.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void exit_failed(int sig) {
        (void) sig;
        _exit(1);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "hold-mib",     required_argument, NULL, 'm' },
                { "hold-worker",  required_argument, NULL, 'w' },
                { "fail-on-term", no_argument,       NULL, 'f' },
                {}
        };
        const char *id = getenv("CORRAL_WORKER_ID"), *hold_worker = NULL;
        unsigned long hold_mib = 0;
        int fail_on_term = 0, c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'm': hold_mib = strtoul(optarg, NULL, 10); break;
                case 'w': hold_worker = optarg; break;
                case 'f': fail_on_term = 1; break;
                default:
                        fprintf(stderr, "idle-task: bad arguments\n");
                        return 2;
                }
        if (fail_on_term) {
                struct sigaction sa = { .sa_handler = exit_failed };
                sigaction(SIGTERM, &sa, NULL);
        }
        if (hold_mib && (!hold_worker || (id && strcmp(id, hold_worker) == 0))) {
                size_t size = hold_mib << 20;
                char *hold = malloc(size);
                if (!hold)
                        return 1;
                memset(hold, 'x', size);
                /* Kept live to the end: the compiler may not drop the touch. */
                __asm__ volatile("" : : "r"(hold) : "memory");
        }
        printf("ready %s %d\n", id ? id : "-", (int) getpid());
        fflush(stdout);
        for (;;)
                pause();
}
