/* SPDX-License-Identifier: MIT */
/* The pool with workers that speak the notify protocol, on a fake operating
 * system: a rolling replacement waits for each new worker's READY=1 (one
 * worker over max when the pool is full), and scaling in stops a ready
 * worker before one still starting, the least busy first. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>

#include "conf/config.h"
#include "supervisor/pool.h"
#include "tests/unit/fake_os.h"

static void fixture_config(struct corral_config *c, char **command, unsigned max) {
        config_init(c);
        c->command = command;
        c->workers.min = 1;
        c->workers.max = max;
        c->workers.notify = true;
        c->workers.notify_given = true;
}

static void setup(struct fake_pool *fx, unsigned max) {
        static char *command[] = { "/bin/true", NULL };
        *fx = (struct fake_pool) { 0 };
        fixture_config(&fx->config, command, max);
        fake_pool_start(fx);
}

/* READY=1 from worker id, as the notify endpoint passes it on. */
static void ready(struct fake_pool *fx, unsigned id) {
        child_dispatch(&fx->p->workers[id]->child, CHILD_EVENT_READY);
        pool_set_desired(fx->p, fx->p->desired);      /* the kick the endpoint sends */
        fake_pool_settle(fx);
}

static void exits(struct fake_pool *fx, unsigned id) {
        fake_os_exit(&fx->p->workers[id]->child, CLD_EXITED, 0);
        fake_pool_settle(fx);
}

/* Workers stopped so far: the stop signal (SIGTERM) is counted, not the
 * SIGCONT that goes with it nor the SIGKILL that clears an exited group. */
static size_t stops(const struct fake_pool *fx) {
        return fake_os_kills_of(&fx->os, SIGTERM);
}

/* The latest worker stopped is pid. */
static void assert_last_stop(const struct fake_pool *fx, pid_t pid) {
        size_t n = stops(fx);
        assert_true(n > 0);
        assert_int_equal(fake_os_kill_target(&fx->os, SIGTERM, n - 1), -pid);
}

static void test_workers_start_unready(void **state) {
        struct fake_pool fx;
        (void) state;

        setup(&fx, 2);
        pool_set_desired(fx.p, 2);
        fake_pool_settle(&fx);
        assert_int_equal(pool_count(fx.p, WORKER_STARTING), 2);
        assert_int_equal(pool_count(fx.p, WORKER_RUNNING), 0);
        ready(&fx, 1);
        assert_int_equal(pool_count(fx.p, WORKER_STARTING), 1);
        assert_int_equal(pool_count(fx.p, WORKER_RUNNING), 1);
        fake_pool_done(&fx);
}

static void test_rolling_replacement_waits_for_ready(void **state) {
        static char *command[] = { "/bin/false", NULL };
        struct fake_pool fx;
        (void) state;

        setup(&fx, 2);
        pool_set_desired(fx.p, 2);
        ready(&fx, 0);
        ready(&fx, 1);
        pid_t old0 = fx.p->workers[0]->child.pid, old1 = fx.p->workers[1]->child.pid;

        fixture_config(&fx.next, command, 2);
        assert_int_equal(pool_reconfigure(fx.p, &fx.next), 0);
        fake_pool_settle(&fx);
        /* The pool is full: the new worker runs in slot max, and no old one stops. */
        assert_int_equal(fx.p->n_alloc, 3);
        assert_int_equal(fx.p->workers[2]->child.state, CHILD_UNREADY);
        assert_int_equal(stops(&fx), 0);

        ready(&fx, 2);
        assert_int_equal(stops(&fx), 1);
        assert_int_equal(pool_count(fx.p, WORKER_STOPPING), 1);
        pid_t stopped = fake_os_kill_target(&fx.os, SIGTERM, 0) == -old0 ? old0 : old1;
        unsigned stopped_id = stopped == old0 ? 0 : 1;
        assert_last_stop(&fx, stopped);

        /* Once it is gone, the next new one starts in its slot; the other old
         * one stays until that one is ready too. */
        exits(&fx, stopped_id);
        assert_int_equal(fx.p->workers[stopped_id]->child.state, CHILD_UNREADY);
        assert_int_equal(stops(&fx), 1);
        ready(&fx, stopped_id);
        assert_int_equal(stops(&fx), 2);
        assert_last_stop(&fx, stopped == old0 ? old1 : old0);
        fake_pool_done(&fx);
}

static void test_scale_in_stops_a_ready_worker_first(void **state) {
        struct fake_pool fx;
        (void) state;

        setup(&fx, 3);
        pool_set_desired(fx.p, 2);
        ready(&fx, 0);                     /* worker 1, the newest, is still starting */
        pool_set_desired(fx.p, 1);
        fake_pool_settle(&fx);
        assert_last_stop(&fx, fx.p->workers[0]->child.pid);
        assert_int_equal(fx.p->workers[1]->child.state, CHILD_UNREADY);
        fake_pool_done(&fx);
}

static double busy_by_pid(pid_t pid, void *userdata) {
        (void) userdata;
        return pid == 100 ? 5.0 : 90.0;   /* worker 0 (pid 100) idles */
}

static const struct workload_owner busy_owner = { .busy = busy_by_pid };

static void test_scale_in_stops_the_least_busy(void **state) {
        struct fake_pool fx;
        (void) state;

        setup(&fx, 3);
        fx.p->owner = &busy_owner;
        pool_set_desired(fx.p, 3);
        ready(&fx, 0);
        ready(&fx, 1);
        ready(&fx, 2);
        pool_set_desired(fx.p, 2);
        fake_pool_settle(&fx);
        /* Not the newest (2): the idle one. */
        assert_int_equal(stops(&fx), 1);
        assert_last_stop(&fx, 100);
        fake_pool_done(&fx);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_workers_start_unready),
                cmocka_unit_test(test_rolling_replacement_waits_for_ready),
                cmocka_unit_test(test_scale_in_stops_a_ready_worker_first),
                cmocka_unit_test(test_scale_in_stops_the_least_busy),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
