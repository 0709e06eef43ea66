/* SPDX-License-Identifier: MIT */
/* Stream dispatch by measured latency: how many lines a worker may hold,
 * how its answers are measured, and when a silent worker counts as stalled. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "supervisor/stream_lines.h"

#define MS USEC_PER_MSEC

/* A fresh pace that measured `lines` answers in `busy` and may hold `floor`. */
static struct stream_pace pace_of(double busy, double lines, size_t floor) {
        struct stream_pace p;
        stream_pace_reset(&p, 1);
        p.busy = busy;
        p.lines = lines;
        p.floor = floor;
        return p;
}

static void test_limit_table(void **state) {
        static const struct {
                const char *name;
                double busy, lines;     /* the decaying sums: mean = busy / lines usec */
                size_t floor;
                unsigned in_flight;
                size_t expected;
        } cases[] = {
                { "unknown: one line",               0,          0,    1,  0, 1 },
                { "200ms lines: one",                200 * MS,   1,    1,  0, 1 },
                { "just slower than the horizon",    20 * MS + 1, 1,   1,  0, 1 },
                { "the horizon: one",                20 * MS,    1,    1,  0, 1 },
                { "10ms lines: two",                 10 * MS,    1,    1,  0, 2 },
                { "7ms lines: three",                7 * MS,     1,    1,  0, 3 },
                { "1us lines: the horizon's worth",  1000,       1000, 1,  0, 20000 },
                { "answers in no time: unbounded",   0,          5,    1,  0, SIZE_MAX / 2 },
                { "a stalled worker keeps its floor", 200 * MS,  1,    64, 0, 64 },
                { "in_flight caps the horizon",      1000,       1000, 1,  4, 4 },
                { "in_flight caps the floor too",    200 * MS,   1,    64, 1, 1 },
                { "in_flight above: no effect",      200 * MS,   1,    1,  8, 1 },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct stream_pace p = pace_of(cases[i].busy, cases[i].lines, cases[i].floor);
                size_t got = stream_pace_limit(&p, cases[i].in_flight);
                if (got != cases[i].expected)
                        fail_msg("%s: got %zu, want %zu", cases[i].name, got, cases[i].expected);
        }
        (void) state;
}

static void test_answers_are_measured_from_the_silence(void **state) {
        struct stream_pace p;
        (void) state;

        stream_pace_reset(&p, 1);
        assert_true(stream_pace_line_usec(&p) == 0);
        p.since = 1000 * MS;                            /* it got a line */
        stream_pace_answered(&p, 1, 1200 * MS);         /* answered 200 ms later */
        assert_true(stream_pace_line_usec(&p) == 200 * MS);
        assert_int_equal(stream_pace_limit(&p, 0), 1);
        assert_int_equal(p.since, 1200 * MS);           /* the next silence begins at the answer */
        stream_pace_answered(&p, 0, 5000 * MS);         /* nothing answered: nothing changes */
        assert_int_equal(p.since, 1200 * MS);

        /* A fast filter: a first answer after a round trip, then a big burst.
         * Weighted by lines, the mean follows the burst at once. */
        stream_pace_reset(&p, 2);
        p.since = 0;
        stream_pace_answered(&p, 1, 100);
        assert_int_equal(stream_pace_limit(&p, 0), 200);
        stream_pace_answered(&p, 200, 300);
        assert_true(stream_pace_limit(&p, 0) > 10000);

        /* A worker that slows down is followed within a few answers (the
         * burst of 200 weighs 1/2^k after k answers). */
        for (int i = 0; i < 6; i++)
                stream_pace_answered(&p, 1, p.since + 100 * MS);
        assert_int_equal(stream_pace_limit(&p, 0), 1);
}

static void test_look_table(void **state) {
        static const struct {
                const char *name;
                enum pace_reading reading;
                double busy, lines;
                size_t floor, held;
                usec_t silent;
                bool stalled;
                size_t floor_after;
        } cases[] = {
                { "waiting on stdin: stalled at once",   PACE_WAITING, 0, 0,            1,  1,  1 * MS,    true,  2 },
                { "waiting: above what it holds",        PACE_WAITING, 0, 0,            1,  10, 2 * MS,    true,  20 },
                { "waiting: above its floor",            PACE_WAITING, 0, 0,            64, 10, 2 * MS,    true,  128 },
                { "busy, unknown, 1.999s",               PACE_BUSY,    0, 0,            1,  1,  1999 * MS, false, 1 },
                { "busy, unknown, 2s: backstop",         PACE_BUSY,    0, 0,            1,  1,  2000 * MS, true,  2 },
                { "busy, 1s lines, 3.999s",              PACE_BUSY,    1000 * MS, 1,    1,  1,  3999 * MS, false, 1 },
                { "busy, 1s lines, 4s",                  PACE_BUSY,    1000 * MS, 1,    1,  1,  4000 * MS, true,  2 },
                { "unseen, 99ms",                        PACE_UNKNOWN, 0, 0,            1,  1,  99 * MS,   false, 1 },
                { "unseen, 100ms",                       PACE_UNKNOWN, 0, 0,            1,  1,  100 * MS,  true,  2 },
                { "unseen, 200ms lines: 4 times that",   PACE_UNKNOWN, 200 * MS, 1,     1,  1,  799 * MS,  false, 1 },
                { "unseen, 200ms lines, 800ms",          PACE_UNKNOWN, 200 * MS, 1,     1,  1,  800 * MS,  true,  2 },
                { "unseen, 2 lines held expect twice",   PACE_UNKNOWN, 200 * MS, 1,     1,  2,  1599 * MS, false, 1 },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct stream_pace p = pace_of(cases[i].busy, cases[i].lines, cases[i].floor);
                p.since = 10000 * MS;
                usec_t now = p.since + cases[i].silent;
                bool got = stream_pace_look(&p, cases[i].held, now, cases[i].reading);
                if (got != cases[i].stalled || p.floor != cases[i].floor_after)
                        fail_msg("%s: got %s, floor %zu; want %s, floor %zu", cases[i].name, got ? "stalled" : "not",
                                 p.floor, cases[i].stalled ? "stalled" : "not", cases[i].floor_after);
                /* A stall begins a new silence, looked at soon again. */
                if (got && (p.since != now || stream_pace_next_look(&p) != PACE_PROBE_FIRST))
                        fail_msg("%s: a stall must begin a new silence", cases[i].name);
        }
        (void) state;
}

static void test_looks_double_then_space_out(void **state) {
        static const usec_t want[] = { 2 * MS, 4 * MS, 8 * MS, 16 * MS, 32 * MS, 64 * MS, 128 * MS, 256 * MS,
                                       456 * MS, 656 * MS };
        struct stream_pace p;
        (void) state;

        stream_pace_reset(&p, 1);
        p.since = 0;
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                usec_t at = stream_pace_next_look(&p);
                if (at != want[i])
                        fail_msg("look %zu at %llu, want %llu", i, (unsigned long long) at,
                                 (unsigned long long) want[i]);
                assert_false(stream_pace_look(&p, 1, at, PACE_BUSY));   /* working, under the backstop */
        }
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_limit_table),
                cmocka_unit_test(test_answers_are_measured_from_the_silence),
                cmocka_unit_test(test_look_table),
                cmocka_unit_test(test_looks_double_then_space_out),
        };
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
