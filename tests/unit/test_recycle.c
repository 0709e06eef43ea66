/* SPDX-License-Identifier: MIT */
/* workers.recycle: the per-worker limits drawn within +-jitter% (supervisor/recycle.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "supervisor/recycle.h"

static void test_jitter_cases(void **state) {
        static const struct {
                const char *name;
                uint64_t limit;
                double jitter, u;
                uint64_t expected;
        } cases[] = {
                { "0 stays never",                 0,    10,  0.9,  0 },
                { "0% is exact, low draw",         1000, 0,   0,    1000 },
                { "0% is exact, high draw",        1000, 0,   0.99, 1000 },
                { "lowest draw is -jitter",        1000, 10,  0,    900 },
                { "middle draw is the limit",      1000, 10,  0.5,  1000 },
                { "highest draw is below +jitter", 1000, 10,  0.999, 1100 },
                { "never below 1",                 1,    100, 0,    1 },
                { "jitter over 100 is clamped",    1000, 250, 0,    1 },
                { "negative jitter is none",       1000, -5,  0,    1000 },
                { "huge limits saturate",          UINT64_MAX, 100, 0.999999, UINT64_MAX },
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint64_t got = recycle_jitter(cases[i].limit, cases[i].jitter, cases[i].u);
                if (got != cases[i].expected)
                        fail_msg("%s: got %llu, expected %llu", cases[i].name, (unsigned long long) got,
                                 (unsigned long long) cases[i].expected);
        }
}

static void test_random_is_uniform_in_unit_interval(void **state) {
        uint64_t rng = 0;   /* a zero state still draws */
        unsigned halves[2] = {};
        (void) state;

        for (int i = 0; i < 10000; i++) {
                double u = recycle_random(&rng);
                assert_true(u >= 0 && u < 1);
                halves[u >= 0.5]++;
        }
        /* Not a randomness test, only that draws spread over both halves. */
        assert_true(halves[0] > 4000 && halves[1] > 4000);
}

static void test_draw_stays_within_jitter_and_spreads(void **state) {
        struct workers_config wc = {
                .recycle_tasks = 1000, .recycle_rss = 512ULL << 20, .recycle_age = 60 * USEC_PER_SEC,
                .recycle_jitter = 10,
        };
        uint64_t rng = 42, lo = UINT64_MAX, hi = 0;
        (void) state;

        for (int i = 0; i < 1000; i++) {
                struct recycle_limits l;
                recycle_draw(&wc, &rng, &l);
                assert_in_range(l.tasks, 900, 1100);
                assert_in_range(l.rss, (uint64_t) (0.9 * (512 << 20)), (uint64_t) (1.1 * (512 << 20)));
                assert_in_range(l.age, 54 * USEC_PER_SEC, 66 * USEC_PER_SEC);
                lo = l.tasks < lo ? l.tasks : lo;
                hi = l.tasks > hi ? l.tasks : hi;
        }
        /* Workers started together get different limits. */
        assert_true(lo < 950 && hi > 1050);
}

static void test_draw_without_jitter_is_exact_and_zero_is_never(void **state) {
        struct workers_config wc = { .recycle_tasks = 7, .recycle_rss = 0, .recycle_age = 3 * USEC_PER_SEC };
        uint64_t rng = 1;
        struct recycle_limits l;
        (void) state;

        for (int i = 0; i < 100; i++) {
                recycle_draw(&wc, &rng, &l);
                assert_int_equal(l.tasks, 7);
                assert_int_equal(l.rss, 0);
                assert_int_equal(l.age, 3 * USEC_PER_SEC);
        }
}

static void test_reason_names(void **state) {
        (void) state;
        assert_string_equal(recycle_reason_name(RECYCLE_TASKS), "tasks");
        assert_string_equal(recycle_reason_name(RECYCLE_RSS), "rss");
        assert_string_equal(recycle_reason_name(RECYCLE_AGE), "age");
        assert_string_equal(recycle_reason_name(_RECYCLE_MAX), "unknown");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_jitter_cases),
                cmocka_unit_test(test_random_is_uniform_in_unit_interval),
                cmocka_unit_test(test_draw_stays_within_jitter_and_spreads),
                cmocka_unit_test(test_draw_without_jitter_is_exact_and_zero_is_never),
                cmocka_unit_test(test_reason_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
