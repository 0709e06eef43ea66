/* SPDX-License-Identifier: MIT */
/*
 * bench/sample-cost: the CPU time corral spends on one sample with a pool of
 * 64 workers (64 sleeping children here), measured with getrusage() over 1000
 * samples. The goal (issue 5): under 1 ms per sample, so that sampling every
 * second costs under 0.1% of a core. Usage: sample-cost [WORKERS [SAMPLES]]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "supervisor/sampler.h"

static double tv_usec(struct timeval tv) {
        return (double) tv.tv_sec * 1e6 + (double) tv.tv_usec;
}

int main(int argc, char **argv) {
        size_t workers = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
        unsigned samples = argc > 2 ? (unsigned) strtoul(argv[2], NULL, 10) : 1000;
        _cleanup_(sampler_freep) struct sampler *s = NULL;
        struct rusage before, after;
        struct timespec t0, t1;
        struct sample out;
        pid_t *pids;
        int r;

        if (workers == 0 || workers > 4096 || samples == 0) {
                fprintf(stderr, "Usage: sample-cost [WORKERS [SAMPLES]]\n");
                return 2;
        }
        pids = calloc(workers, sizeof(*pids));
        if (!pids)
                return 1;
        for (size_t i = 0; i < workers; i++) {
                pids[i] = fork();
                if (pids[i] < 0) {
                        perror("fork");
                        return 1;
                }
                if (pids[i] == 0)
                        for (;;)
                                pause();
        }

        r = sampler_new(&s);
        if (r < 0) {
                fprintf(stderr, "sampler_new: %d\n", r);
                return 1;
        }
        /* The first sample opens the workers' /proc/PID/stat: a one-off cost. */
        r = sampler_sample(s, pids, workers, &out);
        if (r < 0)
                return 1;

        getrusage(RUSAGE_SELF, &before);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (unsigned i = 0; i < samples; i++)
                if (sampler_sample(s, pids, workers, &out) < 0)
                        return 1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        getrusage(RUSAGE_SELF, &after);

        double user = (tv_usec(after.ru_utime) - tv_usec(before.ru_utime)) / samples;
        double sys = (tv_usec(after.ru_stime) - tv_usec(before.ru_stime)) / samples;
        double wall = ((double) (t1.tv_sec - t0.tv_sec) * 1e6 + (double) (t1.tv_nsec - t0.tv_nsec) / 1e3) / samples;
        printf("sample-cost: %zu workers, %u samples: %.1f us CPU per sample (user %.1f, sys %.1f), "
               "%.1f us wall; goal < 1000 us: %s; at 1 s sampling %.3f%% of a core\n",
               workers, samples, user + sys, user, sys, wall,
               user + sys < 1000 ? "met" : "MISSED", (user + sys) / 1e4);

        for (size_t i = 0; i < workers; i++)
                kill(pids[i], SIGKILL);
        for (size_t i = 0; i < workers; i++)
                waitpid(pids[i], NULL, 0);
        free(pids);
        return 0;
}
