/* SPDX-License-Identifier: MIT */
/*
 * tasks.timeout in stream mode does not count a worker's start-up: the clock
 * of its first line is held while that line sits unread in its stdin pipe
 * (a real pipe here; no process), and runs once it was read or answered.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "supervisor/stream_worker.h"

#define S USEC_PER_SEC

struct clock_fx {
        int pipe[2];
        struct span span;
        struct span *q[1];
        struct sworker sw;
};

/* A worker sent two lines, "abc\n" and "de\n", none read or answered yet. */
static void clock_setup(struct clock_fx *fx) {
        static const char in[] = "abc\nde\n";
        *fx = (struct clock_fx) {};
        assert_int_equal(pipe2(fx->pipe, O_CLOEXEC), 0);
        assert_int_equal(write(fx->pipe[1], in, 7), 7);
        fx->span = (struct span) { .seq = 1, .n_lines = 2, .in = in, .len = 7 };
        fx->q[0] = &fx->span;
        fx->sw = (struct sworker) {
                .id = 0, .in_fd = fx->pipe[1], .out_fd = -EBADF, .peek_fd = fx->pipe[0],
                .q = fx->q, .q_cap = 1, .q_len = 1, .q_sent = 1,
                .lines = 2, .bytes = 7, .written = 7, .progress = 10 * S,
        };
}

static void clock_done(struct clock_fx *fx) {
        close(fx->pipe[0]);
        close(fx->pipe[1]);
}

static void drain(struct clock_fx *fx, size_t n) {
        char buf[16];
        assert_int_equal(read(fx->pipe[0], buf, n), (ssize_t) n);
}

static void test_start_up_holds_the_clock(void **state) {
        struct clock_fx fx;
        (void) state;

        clock_setup(&fx);
        sworker_clock(&fx.sw, 11 * S);
        assert_false(fx.sw.clock_runs);
        assert_int_equal(fx.sw.progress, 11 * S);   /* nothing counted yet */
        sworker_clock(&fx.sw, 15 * S);
        assert_int_equal(fx.sw.progress, 15 * S);
        clock_done(&fx);
}

static void test_part_of_the_first_line_read_still_holds_it(void **state) {
        struct clock_fx fx;
        (void) state;

        clock_setup(&fx);
        drain(&fx, 3);   /* "abc", not its newline */
        sworker_clock(&fx.sw, 11 * S);
        assert_false(fx.sw.clock_runs);
        clock_done(&fx);
}

static void test_the_first_line_read_starts_the_clock(void **state) {
        struct clock_fx fx;
        (void) state;

        clock_setup(&fx);
        sworker_clock(&fx.sw, 11 * S);
        drain(&fx, 4);   /* "abc\n": the second line still waits, the first is taken */
        sworker_clock(&fx.sw, 12 * S);
        assert_true(fx.sw.clock_runs);
        /* From the check that saw it taken: it may have been read just now. */
        assert_int_equal(fx.sw.progress, 12 * S);
        sworker_clock(&fx.sw, 20 * S);
        assert_int_equal(fx.sw.progress, 12 * S);   /* running: no longer moved */
        clock_done(&fx);
}

static void test_the_write_end_closed_still_tells(void **state) {
        struct clock_fx fx;
        (void) state;

        clock_setup(&fx);
        close(fx.pipe[1]);                /* the end of the input */
        fx.pipe[1] = -1;
        fx.sw.in_fd = -EBADF;
        sworker_clock(&fx.sw, 11 * S);
        assert_false(fx.sw.clock_runs);
        drain(&fx, 7);
        sworker_clock(&fx.sw, 12 * S);
        assert_true(fx.sw.clock_runs);
        clock_done(&fx);
}

static void test_an_answer_starts_the_clock(void **state) {
        struct clock_fx fx;
        (void) state;

        clock_setup(&fx);
        fx.sw.answered = 1;
        sworker_clock(&fx.sw, 11 * S);
        assert_true(fx.sw.clock_runs);
        assert_int_equal(fx.sw.progress, 10 * S);
        clock_done(&fx);
}

static void test_without_a_read_end_the_clock_runs_as_it_used_to(void **state) {
        struct clock_fx fx;
        (void) state;

        clock_setup(&fx);
        fx.sw.peek_fd = -EBADF;
        sworker_clock(&fx.sw, 11 * S);
        assert_true(fx.sw.clock_runs);
        assert_int_equal(fx.sw.progress, 10 * S);
        clock_done(&fx);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_start_up_holds_the_clock),
                cmocka_unit_test(test_part_of_the_first_line_read_still_holds_it),
                cmocka_unit_test(test_the_first_line_read_starts_the_clock),
                cmocka_unit_test(test_the_write_end_closed_still_tells),
                cmocka_unit_test(test_an_answer_starts_the_clock),
                cmocka_unit_test(test_without_a_read_end_the_clock_runs_as_it_used_to),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
