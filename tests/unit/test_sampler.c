/* SPDX-License-Identifier: MIT */
/* The sampler against the real machine: pids that come and go, and the
 * capacity under a narrowed affinity (suite 'unit'); with --machine, pool.cpu
 * of forked busy and sleeping children, which depends on what else the
 * machine runs (suite 'machine', which reports and does not fail the run:
 * the same arithmetic is tested on captured files in test_sampler_fixture.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "supervisor/sampler.h"
#include "supervisor/sampler_cgroup.h"

#define INTERVAL_MS 500

static pid_t fork_child(int busy) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (busy)
                        for (volatile unsigned long i = 0;; i++)
                                ;
                for (;;)
                        pause();
        }
        return pid;
}

static void end_child(pid_t pid) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

/* Waits one sample interval: the sampler measures over whatever time passes. */
static void wait_interval(void) {
        struct timespec ts = { 0, INTERVAL_MS * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/*
 * Other sessions may share this machine, so the busy child gets a few
 * intervals to show a whole core; the sleeping one must stay quiet in all.
 */
#define ATTEMPTS 4

static void test_pool_cpu_busy_and_sleeping(void **state) {
        _cleanup_(sampler_freep) struct sampler *busy = NULL, *idle = NULL;
        pid_t b = fork_child(1), z = fork_child(0);
        struct sample sb, sz;
        double best = 0, worst_idle = 0;
        (void) state;

        assert_int_equal(sampler_new(&busy), 0);
        assert_int_equal(sampler_new(&idle), 0);

        /* The first sight of a pid gives no delta: pool.cpu is unavailable, not 0. */
        assert_int_equal(sampler_sample(busy, &b, 1, &sb), 0);
        assert_int_equal(sampler_sample(idle, &z, 1, &sz), 0);
        assert_false(signals_has(&sb.signals, SIGNAL_POOL_CPU));
        assert_true(signals_has(&sb.signals, SIGNAL_POOL_SIZE));
        assert_int_equal((int) sb.signals.value[SIGNAL_POOL_SIZE], 1);

        for (int i = 0; i < ATTEMPTS && best < 90; i++) {
                wait_interval();
                assert_int_equal(sampler_sample(busy, &b, 1, &sb), 0);
                assert_int_equal(sampler_sample(idle, &z, 1, &sz), 0);
                assert_true(signals_has(&sb.signals, SIGNAL_POOL_CPU));
                assert_true(signals_has(&sz.signals, SIGNAL_POOL_CPU));
                assert_int_equal(sb.pool_measured, 1);
                if (sb.signals.value[SIGNAL_POOL_CPU] > best)
                        best = sb.signals.value[SIGNAL_POOL_CPU];
                if (sz.signals.value[SIGNAL_POOL_CPU] > worst_idle)
                        worst_idle = sz.signals.value[SIGNAL_POOL_CPU];

                /* The machine side is there too, within its bounds. */
                assert_true(signals_has(&sb.signals, SIGNAL_CPU_BUSY));
                assert_true(sb.signals.value[SIGNAL_CPU_BUSY] >= 0 && sb.signals.value[SIGNAL_CPU_BUSY] <= 100);
                for (size_t k = 0; k < sb.n_cores; k++)
                        assert_true(sb.cores[k].busy >= 0 && sb.cores[k].busy <= 100);
                assert_false(signals_has(&sb.signals, SIGNAL_TASKS_RATE));
        }
        end_child(b);
        end_child(z);

        print_message("busy child %.1f%%, sleeping child %.1f%%\n", best, worst_idle);
        assert_true(best >= 90);
        assert_true(worst_idle <= 5);
}

/* A pid started between two samples has a figure at the second: its start
 * time in /proc/PID/stat is read against the boot clock. The interval is two
 * waits long, so only a stall of half of it between the first sample and the
 * fork would make the child look too young. */
static void test_new_pid_measured_from_its_start(void **state) {
        _cleanup_(sampler_freep) struct sampler *s = NULL;
        struct sample out;
        double cpu = -1;
        uint64_t rss;
        pid_t z;
        (void) state;

        assert_int_equal(sampler_new(&s), 0);
        assert_int_equal(sampler_sample(s, NULL, 0, &out), 0);
        z = fork_child(0);
        wait_interval();
        wait_interval();
        int r = sampler_sample(s, &z, 1, &out);
        (void) sampler_worker(s, z, &cpu, &rss);
        end_child(z);

        assert_int_equal(r, 0);
        assert_int_equal(out.pool_measured, 1);
        assert_true(signals_has(&out.signals, SIGNAL_POOL_CPU));
        assert_true(cpu >= 0 && cpu <= 5);      /* it sleeps */
        assert_true(out.signals.value[SIGNAL_POOL_CPU] == cpu);   /* the only worker */
}

static void test_pids_come_and_go(void **state) {
        _cleanup_(sampler_freep) struct sampler *s = NULL;
        pid_t pids[3];
        struct sample out;
        (void) state;

        pids[0] = fork_child(0);
        pids[1] = fork_child(0);
        assert_int_equal(sampler_new(&s), 0);
        assert_int_equal(sampler_sample(s, pids, 2, &out), 0);

        /* One ends and is reaped; a new one arrives; the order changes. */
        end_child(pids[1]);
        pids[1] = pids[0];
        pids[0] = fork_child(0);
        assert_int_equal(sampler_sample(s, pids, 2, &out), 0);
        assert_int_equal((int) out.signals.value[SIGNAL_POOL_SIZE], 2);
        assert_int_equal(out.pool_measured, 1);         /* only the old one has a delta */

        /* The pid of a reaped child (no longer a process) is not measured. */
        pid_t gone = fork_child(0);
        end_child(gone);
        pids[2] = gone;
        assert_int_equal(sampler_sample(s, pids, 3, &out), 0);
        assert_int_equal(out.pool_measured, 2);

        /* A pid passed twice counts once; no pids at all is fine. */
        pids[2] = pids[0];
        assert_int_equal(sampler_sample(s, pids, 3, &out), 0);
        assert_int_equal(out.pool_measured, 2);
        assert_int_equal(sampler_sample(s, NULL, 0, &out), 0);
        assert_false(signals_has(&out.signals, SIGNAL_POOL_CPU));
        assert_int_equal((int) out.signals.value[SIGNAL_POOL_SIZE], 0);

        end_child(pids[0]);
        end_child(pids[1]);
}

static void test_capacity_follows_affinity(void **state) {
        _cleanup_(sampler_freep) struct sampler *s = NULL;
        cpu_set_t saved, one;
        unsigned n = 0;
        struct sample out;
        (void) state;

        assert_int_equal(cpu_capacity(&n), 0);
        assert_true(n >= 1);
        assert_int_equal(sched_getaffinity(0, sizeof(saved), &saved), 0);

        CPU_ZERO(&one);
        for (int i = 0; i < CPU_SETSIZE; i++)
                if (CPU_ISSET(i, &saved)) {
                        CPU_SET(i, &one);
                        break;
                }
        assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
        assert_int_equal(cpu_capacity(&n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(sampler_new(&s), 0);
        assert_int_equal(sampler_capacity(s), 1);
        wait_interval();
        assert_int_equal(sampler_sample(s, NULL, 0, &out), 0);
        assert_int_equal(out.capacity, 1);
        assert_int_equal(out.n_cores, 1);
        assert_true(CPU_ISSET(out.cores[0].id, &one));
        assert_int_equal(sched_setaffinity(0, sizeof(saved), &saved), 0);
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pids_come_and_go),
                cmocka_unit_test(test_new_pid_measured_from_its_start),
                cmocka_unit_test(test_capacity_follows_affinity),
        };
        const struct CMUnitTest machine[] = {
                cmocka_unit_test(test_pool_cpu_busy_and_sleeping),
        };
        if (argc > 1 && strcmp(argv[1], "--machine") == 0)
                return cmocka_run_group_tests(machine, NULL, NULL);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
