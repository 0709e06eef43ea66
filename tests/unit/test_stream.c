/* SPDX-License-Identifier: MIT */
/* Stream mode's pure parts: cutting whole lines into spans, and sizing the spans. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "supervisor/stream_lines.h"

#define MS USEC_PER_MSEC

static void test_take_lines_table(void **state) {
        (void) state;
        static const struct {
                const char *name, *input;
                size_t max_lines, max_bytes;
                size_t bytes, lines;
        } cases[] = {
                { "empty",                "",            10, SIZE_MAX, 0, 0 },
                { "no whole line",        "abc",         10, SIZE_MAX, 0, 0 },
                { "one line and a part",  "ab\ncd",      10, SIZE_MAX, 3, 1 },
                { "all lines",            "a\nb\nc\n",   10, SIZE_MAX, 6, 3 },
                { "max lines",            "a\nb\nc\n",    2, SIZE_MAX, 4, 2 },
                { "zero lines asked",     "a\nb\n",       0, SIZE_MAX, 0, 0 },
                { "empty lines count",    "\n\n\nx",     10, SIZE_MAX, 3, 3 },
                { "bytes: crossing line in", "aaaa\nbb\ncc\n", 10, 3, 5, 1 },
                { "bytes: exactly reached",  "aa\nbb\ncc\n",   10, 3, 3, 1 },
                { "bytes: just over",        "aa\nbb\ncc\n",   10, 4, 6, 2 },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                size_t lines = 99;
                size_t bytes = stream_take_lines(cases[i].input, strlen(cases[i].input), cases[i].max_lines,
                                                 cases[i].max_bytes, &lines);
                if (bytes != cases[i].bytes || lines != cases[i].lines)
                        fail_msg("%s: got %zu bytes, %zu lines; want %zu, %zu", cases[i].name, bytes, lines,
                                 cases[i].bytes, cases[i].lines);
        }
}

static void test_span_lines_table(void **state) {
        static const struct {
                const char *name;
                size_t current, lines;
                uint64_t busy;
                size_t max, expected;
        } cases[] = {
                { "fast full span doubles",           64,  64,  500,         4096, 128 },
                { "fast half span doubles",           64,  32,  500,         4096, 128 },
                { "fast short span stays",            64,  31,  500,         4096, 64 },
                { "just under 1ms doubles",           64,  64,  MS - 1,      4096, 128 },
                { "1ms stays",                        64,  64,  MS,          4096, 64 },
                { "10ms stays",                       64,  64,  10 * MS,     4096, 64 },
                { "just over 10ms shrinks to fit",    64,  64,  10 * MS + 1, 4096, 12 },
                { "slow lines go one by one",         64,  64,  1000 * MS,   4096, 1 },
                { "shrinking never grows",            4,   64,  20 * MS,     4096, 4 },
                { "capped at max",                    4096, 4096, 10,        4096, 4096 },
                { "never zero",                       1,   1,   60000 * MS,  4096, 1 },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                size_t got = stream_span_lines_next(cases[i].current, cases[i].lines, cases[i].busy, cases[i].max);
                if (got != cases[i].expected)
                        fail_msg("%s: got %zu, want %zu", cases[i].name, got, cases[i].expected);
        }
        (void) state;
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_take_lines_table),
                cmocka_unit_test(test_span_lines_table),
        };
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
