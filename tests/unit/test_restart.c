/* SPDX-License-Identifier: MIT */
/* The restart schedule and crash-loop count of DESIGN.md "Restarts and the crash loop". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "supervisor/pool.h"
#include "supervisor/restart.h"

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
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
