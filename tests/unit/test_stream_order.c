/* SPDX-License-Identifier: MIT */
/*
 * Stream mode's accounting and order without a worker or a loop: results of
 * later spans wait until the spans before them are done, a given-up line's
 * placeholder stands in its place, spans and bytes in flight are counted
 * down as spans end, and a worker's queue of spans keeps its order as it
 * grows and counts what it holds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "supervisor/stream_input.h"
#include "supervisor/stream_order.h"
#include "supervisor/stream_worker.h"

struct order_fx {
        struct corral_config config;
        struct stream s;
};

static void fx_init(struct order_fx *fx, bool keep_order) {
        *fx = (struct order_fx) {};
        fx->config.tasks.failed_line = (char *) "FAILED";
        fx->s = (struct stream) { .config = &fx->config, .keep_order = keep_order, .next_seq = 1 };
}

static void fx_done(struct order_fx *fx) {
        for (size_t i = 0; i < fx->s.ring_len; i++) {
                struct span *span = fx->s.ring[(fx->s.ring_head + i) & (fx->s.ring_cap - 1)];
                strbuf_done(&span->out);
                free(span);
        }
        free(fx->s.ring);
        strbuf_done(&fx->s.out);
}

/* A span of n lines of `bytes` input bytes, in flight as stream_input.c cuts it. */
static struct span *fx_span(struct order_fx *fx, size_t n, size_t bytes) {
        struct span *span = calloc(1, sizeof(*span));
        assert_non_null(span);
        *span = (struct span) { .seq = fx->s.next_seq, .n_lines = n, .len = bytes };
        if (fx->s.keep_order)
                assert_int_equal(stream_ring_push(&fx->s, span), 0);
        fx->s.next_seq += n;
        fx->s.n_spans++;
        fx->s.bytes_in_flight += bytes;
        return span;
}

/* A worker's answers to all of span's lines. */
static void answer(struct order_fx *fx, struct span *span, const char *text) {
        stream_deliver(&fx->s, span, text, strlen(text));
        span->n_done = span->n_lines;
}

static void assert_out(struct order_fx *fx, const char *expected) {
        assert_int_equal(fx->s.out.len, strlen(expected));
        if (fx->s.out.len > 0)
                assert_memory_equal(fx->s.out.data, expected, fx->s.out.len);
}

static void test_later_spans_wait_for_earlier_ones(void **state) {
        struct order_fx fx;
        (void) state;

        fx_init(&fx, true);
        struct span *a = fx_span(&fx, 2, 10), *b = fx_span(&fx, 1, 5), *c = fx_span(&fx, 2, 7);
        answer(&fx, c, "c4\nc5\n");
        span_complete(&fx.s, c);
        answer(&fx, b, "b3\n");
        span_complete(&fx.s, b);
        assert_out(&fx, "");                        /* line 1 has no answer yet */
        assert_int_equal(fx.s.n_spans, 3);
        assert_int_equal(fx.s.bytes_in_flight, 22);

        answer(&fx, a, "a1\na2\n");
        span_complete(&fx.s, a);
        assert_out(&fx, "a1\na2\nb3\nc4\nc5\n");
        assert_int_equal(fx.s.n_spans, 0);
        assert_int_equal(fx.s.bytes_in_flight, 0);
        assert_int_equal(fx.s.ring_len, 0);
        fx_done(&fx);
}

static void test_the_head_span_goes_out_at_once(void **state) {
        struct order_fx fx;
        (void) state;

        fx_init(&fx, true);
        struct span *a = fx_span(&fx, 1, 3), *b = fx_span(&fx, 1, 3);
        answer(&fx, a, "a1\n");
        assert_out(&fx, "a1\n");                    /* straight to the output buffer */
        span_complete(&fx.s, a);
        assert_true(stream_span_is_head(&fx.s, b));
        assert_int_equal(fx.s.n_spans, 1);
        answer(&fx, b, "b2\n");
        span_complete(&fx.s, b);
        assert_out(&fx, "a1\nb2\n");
        fx_done(&fx);
}

static void test_a_placeholder_stands_in_the_given_up_lines_place(void **state) {
        struct order_fx fx;
        (void) state;

        fx_init(&fx, true);
        struct span *a = fx_span(&fx, 2, 4), *b = fx_span(&fx, 2, 4);
        /* Line 3 ends its worker too often, before line 1 is answered. */
        stream_note_given_up(&fx.s, 3);
        b->n_done = 1;
        stream_deliver(&fx.s, b, "b4\n", 3);
        b->n_done = 2;
        span_complete(&fx.s, b);
        assert_out(&fx, "");
        answer(&fx, a, "a1\na2\n");
        span_complete(&fx.s, a);
        assert_out(&fx, "a1\na2\nFAILED\nb4\n");
        assert_int_equal(fx.s.given_up, 1);
        assert_int_equal(fx.s.first_given_up[0], 3);
        fx_done(&fx);
}

static void test_without_keep_order_spans_end_as_they_finish(void **state) {
        struct order_fx fx;
        (void) state;

        fx_init(&fx, false);
        struct span *a = fx_span(&fx, 3, 9), *b = fx_span(&fx, 2, 6);
        b->n_done = 2;
        span_complete(&fx.s, b);
        assert_int_equal(fx.s.n_spans, 1);
        assert_int_equal(fx.s.bytes_in_flight, 9);
        a->n_done = 1;                              /* the stop gives up on lines 2 and 3 */
        span_abandon(&fx.s, a);
        assert_int_equal(fx.s.undone, 2);
        assert_int_equal(fx.s.n_spans, 0);
        assert_int_equal(fx.s.bytes_in_flight, 0);
        fx_done(&fx);
}

static void test_the_summary_keeps_the_lowest_given_up_lines(void **state) {
        static const uint64_t order[] = { 90, 30, 70, 10, 50, 80, 20 };
        static const uint64_t lowest[FIRST_GIVEN_UP_MAX] = { 10, 20, 30, 50, 70 };
        struct order_fx fx;
        (void) state;

        fx_init(&fx, false);
        for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
                stream_note_given_up(&fx.s, order[i]);
        assert_int_equal(fx.s.given_up, 7);
        assert_memory_equal(fx.s.first_given_up, lowest, sizeof(lowest));
        assert_out(&fx, "FAILED\nFAILED\nFAILED\nFAILED\nFAILED\nFAILED\nFAILED\n");
        fx_done(&fx);
}

static void test_a_workers_queue_keeps_its_order_and_counts(void **state) {
        struct sworker sw = { .in_fd = -EBADF, .out_fd = -EBADF, .peek_fd = -EBADF };
        struct span spans[40];
        (void) state;

        /* Its ring wraps, then grows: the spans come out oldest first. */
        for (unsigned i = 0; i < 40; i++) {
                spans[i] = (struct span) { .seq = i + 1, .n_lines = 3, .n_done = i % 2, .len = 30, .from = 10 * (i % 2) };
                assert_int_equal(sworker_reserve(&sw), 0);
                *sworker_at(&sw, sw.q_len++) = &spans[i];
                sw.lines += spans[i].n_lines - spans[i].n_done;
                sw.bytes += spans[i].len - spans[i].from;
                if (i == 9)
                        for (unsigned k = 0; k < 5; k++)
                                assert_ptr_equal(sworker_pop(&sw), &spans[k]);
        }
        assert_int_equal(sw.q_len, 35);
        assert_int_equal(sw.lines, 35 * 3 - 18);   /* spans 5..39: the 18 odd ones had a line answered */
        sw.q_sent = 2;
        sw.sent_off = 7;
        for (unsigned k = 5; k < 40; k++) {
                assert_ptr_equal(sworker_head(&sw), &spans[k]);
                assert_ptr_equal(sworker_pop(&sw), &spans[k]);
        }
        assert_int_equal(sw.lines, 0);
        assert_int_equal(sw.bytes, 0);
        assert_int_equal(sw.q_sent, 0);
        assert_int_equal(sw.sent_off, 0);          /* the partly written one left with the others */
        free(sw.q);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_later_spans_wait_for_earlier_ones),
                cmocka_unit_test(test_the_head_span_goes_out_at_once),
                cmocka_unit_test(test_a_placeholder_stands_in_the_given_up_lines_place),
                cmocka_unit_test(test_without_keep_order_spans_end_as_they_finish),
                cmocka_unit_test(test_the_summary_keeps_the_lowest_given_up_lines),
                cmocka_unit_test(test_a_workers_queue_keeps_its_order_and_counts),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
