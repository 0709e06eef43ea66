/* SPDX-License-Identifier: MIT */
/*
 * corral's stdout queue (supervisor/output_sink.c) and a task's spool
 * (supervisor/spool.c), against real pipes and files: order, backpressure,
 * marks after the bytes before them, failure, and the spill to a file.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "supervisor/output_sink.h"
#include "supervisor/spool.h"

struct mark_log {
        int delivered, dropped;
};

static void on_mark(void *data, bool delivered) {
        struct mark_log *m = data;
        if (delivered)
                m->delivered++;
        else
                m->dropped++;
}

/* Reads what is in the pipe now (non-blocking), appending to out. */
static size_t drain(int fd, char *out, size_t at, size_t cap) {
        for (;;) {
                ssize_t n = read(fd, out + at, cap - at);
                if (n <= 0)
                        return at;
                at += (size_t) n;
        }
}

static void test_a_slow_reader_gets_everything_in_order_and_marks_after_it(void **state) {
        sd_event *e = NULL;
        struct sink *s = NULL;
        struct mark_log m = {};
        int fds[2];
        const size_t total = 3 * 1024 * 1024;
        char *in = malloc(total), *out = malloc(total);
        (void) state;

        for (size_t i = 0; i < total; i++)
                in[i] = (char) ('a' + i % 26);
        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
        /* Our write end stays blocking: the sink must use its own non-blocking one. */
        assert_int_equal(fcntl(fds[1], F_SETFL, 0), 0);
        assert_int_equal(sink_new(e, fds[1], &s), 0);
        for (size_t off = 0; off < total; off += 64 * 1024)
                assert_int_equal(sink_write(s, in + off, 64 * 1024), 0);
        assert_int_equal(sink_mark(s, on_mark, &m), 0);
        /* Nobody read: it did not block, it is full and the mark waits. */
        assert_true(sink_full(s));
        assert_int_equal(m.delivered, 0);
        assert_int_equal(fcntl(fds[1], F_GETFL) & O_NONBLOCK, 0);

        size_t got = 0;
        for (int i = 0; i < 100000 && !sink_idle(s); i++) {
                got = drain(fds[0], out, got, total);
                assert_true(sd_event_run(e, 1000000) >= 0);
        }
        got = drain(fds[0], out, got, total);
        assert_true(sink_idle(s));
        assert_int_equal(got, total);
        assert_memory_equal(in, out, total);
        assert_int_equal(m.delivered, 1);
        assert_int_equal(sink_error(s), 0);

        /* The reader goes away: the next write fails, later marks are dropped. */
        close(fds[0]);
        assert_int_equal(sink_write(s, "x\n", 2), -EPIPE);
        assert_int_equal(sink_mark(s, on_mark, &m), -EPIPE);
        assert_int_equal(m.dropped, 1);
        sink_free(s);
        close(fds[1]);
        sd_event_unref(e);
        free(in);
        free(out);
}

static void test_dropping_runs_the_marks_as_not_delivered(void **state) {
        sd_event *e = NULL;
        struct sink *s = NULL;
        struct mark_log m = {};
        int fds[2];
        static char block[256 * 1024];
        (void) state;

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
        assert_int_equal(sink_new(e, fds[1], &s), 0);
        assert_int_equal(sink_write(s, block, sizeof(block)), 0);
        assert_int_equal(sink_mark(s, on_mark, &m), 0);
        assert_false(sink_idle(s));
        sink_drop(s);
        assert_true(sink_idle(s));
        assert_int_equal(m.dropped, 1);
        assert_int_equal(m.delivered, 0);
        sink_free(s);
        close(fds[0]);
        close(fds[1]);
        sd_event_unref(e);
}

static void test_a_spool_spills_past_its_cap_and_comes_back_whole(void **state) {
        sd_event *e = NULL;
        struct sink *s = NULL;
        struct spool o = SPOOL_INIT;
        const size_t cap = 1024 * 1024, total = 5 * cap / 2;
        char *in = malloc(total), *out = malloc(total);
        char path[] = "/tmp/test-output-sink-XXXXXX";
        (void) state;

        for (size_t i = 0; i < total; i++)
                in[i] = (char) (i * 7);
        for (size_t off = 0; off < total; off += 4096)
                assert_int_equal(spool_append(&o, in + off, 4096 < total - off ? 4096 : total - off, cap), 0);
        assert_true(o.fd >= 0);          /* past the cap: in a file ... */
        assert_null(o.mem.data);         /* ... and none of it in memory */
        assert_int_equal(spool_len(&o), total);

        int fd = mkostemp(path, O_CLOEXEC);
        assert_true(fd >= 0);
        unlink(path);
        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(sink_new(e, fd, &s), 0);
        assert_int_equal(spool_to_sink(&o, s), 0);   /* a regular file: written at once */
        assert_true(sink_idle(s));
        spool_done(&o);
        assert_int_equal(pread(fd, out, total, 0), (ssize_t) total);
        assert_memory_equal(in, out, total);
        sink_free(s);
        close(fd);
        sd_event_unref(e);
        free(in);
        free(out);
}

int main(void) {
        /* As corral: a closed pipe is an EPIPE to handle, not a death. */
        signal(SIGPIPE, SIG_IGN);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_a_slow_reader_gets_everything_in_order_and_marks_after_it),
                cmocka_unit_test(test_dropping_runs_the_marks_as_not_delivered),
                cmocka_unit_test(test_a_spool_spills_past_its_cap_and_comes_back_whole),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
