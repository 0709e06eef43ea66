/* SPDX-License-Identifier: MIT */
/* The restart schedule and crash-loop count of DESIGN.md "Restarts and the crash loop". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>

#include "conf/config.h"
#include "supervisor/pool.h"
#include "supervisor/restart.h"
#include "tests/unit/fake_os.h"

#define MS USEC_PER_MSEC
#define S USEC_PER_SEC

static const struct restart_limits defaults = {
        .initial = 100 * MS, .max = 30 * S, .reset_after = 10 * S, .burst = 10,
};

static void test_quick_failures_double_up_to_max(void **state) {
        static const usec_t expected[] = {
                100 * MS, 200 * MS, 400 * MS, 800 * MS, 1600 * MS, 3200 * MS,
                6400 * MS, 12800 * MS, 25600 * MS, 30 * S, 30 * S,
        };
        struct restart_state s;
        (void) state;

        restart_state_init(&s, &defaults);
        for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
                assert_int_equal(restart_record_exit(&s, &defaults, 50 * MS, true), expected[i]);
}

static void test_long_run_resets_delay_and_count(void **state) {
        struct restart_state s;
        (void) state;

        restart_state_init(&s, &defaults);
        for (int i = 0; i < 5; i++)
                restart_record_exit(&s, &defaults, 0, true);
        assert_int_equal(s.quick_failures, 5);

        /* A worker that ran reset_after is replaced after the initial delay. */
        assert_int_equal(restart_record_exit(&s, &defaults, 10 * S, true), 100 * MS);
        assert_int_equal(s.quick_failures, 0);
        assert_int_equal(restart_record_exit(&s, &defaults, 0, true), 100 * MS);
        assert_int_equal(restart_record_exit(&s, &defaults, 0, true), 200 * MS);
}

static void test_just_under_reset_after_is_quick(void **state) {
        struct restart_state s;
        (void) state;

        restart_state_init(&s, &defaults);
        restart_record_exit(&s, &defaults, 10 * S - 1, true);
        assert_int_equal(s.quick_failures, 1);
        assert_int_equal(s.delay, 200 * MS);
}

static void test_crash_loop_after_more_than_burst(void **state) {
        struct restart_state s;
        (void) state;

        restart_state_init(&s, &defaults);
        for (unsigned i = 0; i < defaults.burst; i++) {
                restart_record_exit(&s, &defaults, 0, true);
                assert_false(restart_is_crash_loop(&s, &defaults));
        }
        restart_record_exit(&s, &defaults, 0, true);
        assert_true(restart_is_crash_loop(&s, &defaults));
}

static void test_quick_success_backs_off_but_breaks_the_row(void **state) {
        struct restart_state s;
        (void) state;

        restart_state_init(&s, &defaults);
        for (int i = 0; i < 5; i++)
                restart_record_exit(&s, &defaults, 0, true);
        assert_int_equal(restart_record_exit(&s, &defaults, 0, false), 3200 * MS);
        assert_int_equal(s.quick_failures, 0);
        assert_int_equal(s.delay, 6400 * MS);
}

static void test_zero_initial_delay_restarts_at_once(void **state) {
        const struct restart_limits l = { .initial = 0, .max = S, .reset_after = S, .burst = 3 };
        struct restart_state s;
        (void) state;

        restart_state_init(&s, &l);
        assert_int_equal(restart_record_exit(&s, &l, 0, true), 0);
        assert_int_equal(restart_record_exit(&s, &l, 0, true), 0);
}

static void test_free_slot_is_lowest_and_reused(void **state) {
        struct worker slots[4] = {};
        struct worker *w[4] = { &slots[0], &slots[1], &slots[2], &slots[3] };
        (void) state;

        assert_int_equal(pool_free_slot(w, 4), 0);
        slots[0].child.state = CHILD_RUNNING;
        slots[1].child.state = CHILD_STOPPING;
        assert_int_equal(pool_free_slot(w, 4), 2);
        slots[2].child.state = CHILD_RUNNING;
        /* A slot waiting out its restart backoff is taken. */
        slots[3].child.state = CHILD_BACKOFF;
        assert_int_equal(pool_free_slot(w, 4), -ENOSPC);
        slots[1].child.state = CHILD_IDLE;
        assert_int_equal(pool_free_slot(w, 4), 1);
        assert_int_equal(pool_free_slot(w, 0), -ENOSPC);
}

static void test_transient_failures_back_off_without_a_crash_loop(void **state) {
        struct restart_state s;
        (void) state;

        restart_state_init(&s, &defaults);
        restart_record_exit(&s, &defaults, 0, true);
        restart_record_exit(&s, &defaults, 0, true);
        assert_int_equal(s.quick_failures, 2);
        /* Out of fds: the wait grows as for a quick exit ... */
        assert_int_equal(restart_record_transient(&s, &defaults), 400 * MS);
        assert_int_equal(restart_record_transient(&s, &defaults), 800 * MS);
        /* ... but the row of failures neither grows nor breaks. */
        assert_int_equal(s.quick_failures, 2);
        for (int i = 0; i < 20; i++)
                restart_record_transient(&s, &defaults);
        assert_int_equal(s.delay, 30 * S);
        assert_false(restart_is_crash_loop(&s, &defaults));
}


/* ---- the pool on a fake operating system ---- */

static void fixture_config(struct corral_config *c, char **command, unsigned max) {
        config_init(c);
        c->command = command;
        c->workers.min = 1;
        c->workers.max = max;
        c->workers.crash_burst = 2;
}

static void fixture_setup(struct fake_pool *fx, unsigned max) {
        static char *command[] = { "/bin/true", NULL };
        *fx = (struct fake_pool) {};
        fixture_config(&fx->config, command, max);
        fake_pool_start(fx);
}

static void worker_exits(struct fake_pool *fx, unsigned id, int status) {
        fake_os_exit(&fx->p->workers[id]->child, CLD_EXITED, status);
        fake_pool_settle(fx);
}

static unsigned live(const struct pool *p) {
        return pool_count(p, WORKER_RUNNING);
}

static void test_pool_transient_start_failure_is_retried_until_full(void **state) {
        struct fake_pool fx;
        (void) state;

        fixture_setup(&fx, 3);
        fx.os.fail[2] = -EMFILE;
        pool_set_desired(fx.p, 3);
        fake_pool_settle(&fx);
        assert_int_equal(live(fx.p), 2);
        assert_int_equal(fx.p->workers[2]->child.state, CHILD_BACKOFF);
        assert_false(fx.p->stopping);

        /* Its backoff over, the slot is started again, and this time it runs. */
        child_timer(&fx.p->workers[2]->child);
        fake_pool_settle(&fx);
        assert_int_equal(live(fx.p), 3);
        assert_int_equal(fx.p->restart.quick_failures, 0);
        fake_pool_done(&fx);
}

static void test_pool_command_that_cannot_run_at_startup_is_exit_2(void **state) {
        struct fake_pool fx;
        int exit_code = -1;
        (void) state;

        fixture_setup(&fx, 2);
        fx.os.fail[0] = -ENOENT;
        pool_set_desired(fx.p, 2);
        assert_true(fx.p->stopping);
        assert_int_equal(fx.p->exit_status, 2);
        assert_int_equal(fx.os.n_spawns, 1);   /* one failure says it all */
        assert_true(sd_event_get_exit_code(fx.e, &exit_code) >= 0);
        assert_int_equal(exit_code, 2);
        fake_pool_done(&fx);
}

static void test_pool_replacement_that_cannot_run_is_a_failure(void **state) {
        struct fake_pool fx;
        (void) state;

        fixture_setup(&fx, 2);
        pool_set_desired(fx.p, 2);
        fx.os.fail[2] = fx.os.fail[3] = -ENOENT;
        worker_exits(&fx, 0, 1);                  /* a quick failure ... */
        child_timer(&fx.p->workers[0]->child);    /* ... whose replacement cannot start */
        fake_pool_settle(&fx);
        assert_false(fx.p->stopping);
        assert_int_equal(fx.p->workers[0]->child.state, CHILD_BACKOFF);
        assert_int_equal(fx.p->workers[1]->child.state, CHILD_RUNNING);
        assert_int_equal(fx.p->restart.quick_failures, 2);

        /* One more is more than the burst of 2, but worker 1 runs: a restart
         * that cannot start never stops it. */
        child_timer(&fx.p->workers[0]->child);
        fake_pool_settle(&fx);
        assert_false(fx.p->stopping);
        assert_int_equal(fx.p->workers[1]->child.state, CHILD_RUNNING);

        /* Once no worker runs, it is a crash loop: exit 3. */
        fx.os.fail[4] = -ENOENT;
        worker_exits(&fx, 1, 1);
        child_timer(&fx.p->workers[1]->child);
        fake_pool_settle(&fx);
        assert_true(fx.p->stopping);
        assert_true(fx.p->crash_loop);
        assert_int_equal(fx.p->exit_status, 3);
        fake_pool_done(&fx);
}

static void test_pool_rolling_replacement_that_cannot_start_keeps_the_old_worker(void **state) {
        static char *command[] = { "/bin/sh", NULL };
        struct fake_pool fx;
        (void) state;

        fixture_setup(&fx, 3);
        pool_set_desired(fx.p, 2);
        pid_t old0 = fx.p->workers[0]->child.pid, old1 = fx.p->workers[1]->child.pid;
        fixture_config(&fx.next, command, 3);
        fx.os.fail[2] = -ENOEXEC;                 /* passes the look, fails the exec */
        assert_int_equal(pool_reconfigure(fx.p, &fx.next), 0);
        fake_pool_settle(&fx);
        /* The new one could not start in slot 2: nobody was stopped. */
        assert_int_equal(fx.p->workers[2]->child.state, CHILD_BACKOFF);
        assert_int_equal(fx.p->workers[0]->child.state, CHILD_OUTDATED);
        assert_int_equal(fx.p->workers[1]->child.state, CHILD_OUTDATED);
        assert_int_equal(fx.os.n_kills, 0);
        assert_int_equal(fx.p->restart.quick_failures, 0);

        /* The retry starts it; only then is an old one stopped. */
        child_timer(&fx.p->workers[2]->child);
        fake_pool_settle(&fx);
        assert_int_equal(fx.p->workers[2]->child.state, CHILD_RUNNING);
        assert_int_equal(pool_count(fx.p, WORKER_STOPPING), 1);
        assert_int_equal(fx.os.kills[0][1], SIGTERM);
        assert_true(fx.os.kills[0][0] == -old0 || fx.os.kills[0][0] == -old1);
        fake_pool_done(&fx);
}

static void test_pool_reload_to_a_missing_command_changes_nothing(void **state) {
        static char *command[] = { "/nonexistent/prog", NULL };
        struct fake_pool fx;
        (void) state;

        fixture_setup(&fx, 2);
        pool_set_desired(fx.p, 2);
        fixture_config(&fx.next, command, 2);
        assert_int_equal(pool_reconfigure(fx.p, &fx.next), -ENOENT);
        fake_pool_settle(&fx);
        assert_ptr_equal(fx.p->config, &fx.config);
        assert_int_equal(fx.p->workers[0]->child.state, CHILD_RUNNING);
        assert_int_equal(fx.p->workers[1]->child.state, CHILD_RUNNING);
        assert_int_equal(fx.os.n_spawns, 2);
        assert_int_equal(fx.os.n_kills, 0);
        fake_pool_done(&fx);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_quick_failures_double_up_to_max),
                cmocka_unit_test(test_long_run_resets_delay_and_count),
                cmocka_unit_test(test_just_under_reset_after_is_quick),
                cmocka_unit_test(test_crash_loop_after_more_than_burst),
                cmocka_unit_test(test_quick_success_backs_off_but_breaks_the_row),
                cmocka_unit_test(test_zero_initial_delay_restarts_at_once),
                cmocka_unit_test(test_free_slot_is_lowest_and_reused),
                cmocka_unit_test(test_transient_failures_back_off_without_a_crash_loop),
                cmocka_unit_test(test_pool_transient_start_failure_is_retried_until_full),
                cmocka_unit_test(test_pool_command_that_cannot_run_at_startup_is_exit_2),
                cmocka_unit_test(test_pool_replacement_that_cannot_run_is_a_failure),
                cmocka_unit_test(test_pool_rolling_replacement_that_cannot_start_keeps_the_old_worker),
                cmocka_unit_test(test_pool_reload_to_a_missing_command_changes_nothing),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
