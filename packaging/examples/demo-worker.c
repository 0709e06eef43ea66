/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for real work, used by the README's demo: it counts primes, one
 * block at a time, and says how far it got about twice a second. It exits
 * cleanly on SIGTERM after finishing its current block, as a well-behaved
 * worker does.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile sig_atomic_t stop_requested;

static void on_term(int sig) {
        (void) sig;
        stop_requested = 1;
}

static bool is_prime(unsigned long n) {
        if (n < 2)
                return false;
        for (unsigned long d = 2; d * d <= n; d++)
                if (n % d == 0)
                        return false;
        return true;
}

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int main(void) {
        const char *id = getenv("CORRAL_WORKER_ID");
        unsigned long n = 1, primes = 0;
        double last_report = now();

        signal(SIGTERM, on_term);
        setvbuf(stdout, NULL, _IOLBF, 0);
        while (!stop_requested) {
                for (unsigned long end = n + 20000; n < end; n++)
                        primes += is_prime(n);
                if (now() - last_report >= 0.5) {
                        printf("worker %s: %lu primes below %lu\n", id ? id : "?", primes, n);
                        last_report = now();
                }
        }
        printf("worker %s: stopping after %lu primes\n", id ? id : "?", primes);
        return 0;
}
