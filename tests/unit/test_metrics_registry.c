/* SPDX-License-Identifier: MIT */
/* The registry and its Prometheus text rendering: every type, escaping, errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/util.h"
#include "metrics/registry.h"

static char *render(const struct metrics_registry *r) {
        char *text = NULL;
        size_t len = 0;

        assert_int_equal(metrics_render(r, &text, &len), 0);
        assert_non_null(text);
        assert_int_equal(strlen(text), len);
        return text;
}

static void test_empty(void **state) {
        _cleanup_(metrics_registry_freep) struct metrics_registry *r = NULL;
        (void) state;

        assert_int_equal(metrics_registry_new(&r), 0);
        _cleanup_free_ char *text = render(r);
        assert_string_equal(text, "");
}

static void test_every_type(void **state) {
        _cleanup_(metrics_registry_freep) struct metrics_registry *r = NULL;
        struct metric_family *c, *g, *h, *e;
        static const double bounds[] = { 0.1, 1, 10 };
        (void) state;

        assert_int_equal(metrics_registry_new(&r), 0);
        assert_int_equal(metrics_family_add(r, "x_requests_total", "Requests", METRIC_COUNTER,
                                            (const char *const[]) { "code", "method", NULL }, &c), 0);
        assert_int_equal(metrics_set(c, (const char *const[]) { "200", "GET" }, 1027), 0);
        assert_int_equal(metrics_set(c, (const char *const[]) { "400", "POST" }, 3), 0);
        /* The same labels again replace the value instead of adding a line. */
        assert_int_equal(metrics_set(c, (const char *const[]) { "400", "POST" }, 4), 0);
        assert_int_equal(metrics_family_add(r, "x_temperature", "Degrees", METRIC_GAUGE, NULL, &g), 0);
        assert_int_equal(metrics_set(g, NULL, -2.5), 0);
        assert_int_equal(metrics_histogram_add(r, "x_latency_seconds", "Latency",
                                               (const char *const[]) { "path", NULL }, bounds, 3, &h), 0);
        assert_int_equal(metrics_histogram_set(h, (const char *const[]) { "/a" },
                                               (const uint64_t[]) { 1, 2, 0, 4 }, 60.25), 0);
        assert_int_equal(metrics_histogram_add(r, "x_plain_seconds", "No labels", NULL, bounds, 3, &e), 0);
        assert_int_equal(metrics_histogram_set(e, NULL, (const uint64_t[]) { 0, 0, 1, 0 }, 5), 0);
        assert_int_equal(metrics_family_add(r, "x_unset", "Declared, never set", METRIC_GAUGE, NULL, &g), 0);

        _cleanup_free_ char *text = render(r);
        assert_string_equal(text,
                "# HELP x_requests_total Requests\n"
                "# TYPE x_requests_total counter\n"
                "x_requests_total{code=\"200\",method=\"GET\"} 1027\n"
                "x_requests_total{code=\"400\",method=\"POST\"} 4\n"
                "# HELP x_temperature Degrees\n"
                "# TYPE x_temperature gauge\n"
                "x_temperature -2.5\n"
                "# HELP x_latency_seconds Latency\n"
                "# TYPE x_latency_seconds histogram\n"
                "x_latency_seconds_bucket{path=\"/a\",le=\"0.1\"} 1\n"
                "x_latency_seconds_bucket{path=\"/a\",le=\"1\"} 3\n"
                "x_latency_seconds_bucket{path=\"/a\",le=\"10\"} 3\n"
                "x_latency_seconds_bucket{path=\"/a\",le=\"+Inf\"} 7\n"
                "x_latency_seconds_sum{path=\"/a\"} 60.25\n"
                "x_latency_seconds_count{path=\"/a\"} 7\n"
                "# HELP x_plain_seconds No labels\n"
                "# TYPE x_plain_seconds histogram\n"
                "x_plain_seconds_bucket{le=\"0.1\"} 0\n"
                "x_plain_seconds_bucket{le=\"1\"} 0\n"
                "x_plain_seconds_bucket{le=\"10\"} 1\n"
                "x_plain_seconds_bucket{le=\"+Inf\"} 1\n"
                "x_plain_seconds_sum 5\n"
                "x_plain_seconds_count 1\n"
                "# HELP x_unset Declared, never set\n"
                "# TYPE x_unset gauge\n");
}

static void test_escaping(void **state) {
        _cleanup_(metrics_registry_freep) struct metrics_registry *r = NULL;
        struct metric_family *f;
        (void) state;

        assert_int_equal(metrics_registry_new(&r), 0);
        assert_int_equal(metrics_family_add(r, "x_events_total", "A \"quoted\" back\\slash\nand newline",
                                            METRIC_COUNTER, (const char *const[]) { "rule", NULL }, &f), 0);
        assert_int_equal(metrics_set(f, (const char *const[]) { "a\"b\\c" }, 1), 0);
        assert_int_equal(metrics_set(f, (const char *const[]) { "two\nlines" }, 2), 0);
        assert_int_equal(metrics_set(f, (const char *const[]) { "" }, 3), 0);

        _cleanup_free_ char *text = render(r);
        /* HELP escapes only backslash and newline; label values also the quote. */
        assert_string_equal(text,
                "# HELP x_events_total A \"quoted\" back\\\\slash\\nand newline\n"
                "# TYPE x_events_total counter\n"
                "x_events_total{rule=\"a\\\"b\\\\c\"} 1\n"
                "x_events_total{rule=\"two\\nlines\"} 2\n"
                "x_events_total{rule=\"\"} 3\n");
}

static void test_invalid(void **state) {
        _cleanup_(metrics_registry_freep) struct metrics_registry *r = NULL;
        struct metric_family *f = NULL, *g;
        static const double up[] = { 1, 2 }, flat[] = { 1, 1 }, down[] = { 2, 1 };
        static const double inf[] = { 1, INFINITY };
        static const char *const bad_names[] = { "", "1x", "a-b", "a b", "é" };
        (void) state;

        assert_int_equal(metrics_registry_new(&r), 0);
        for (size_t i = 0; i < ELEMENTSOF(bad_names); i++) {
                assert_int_equal(metrics_family_add(r, bad_names[i], "", METRIC_GAUGE, NULL, &f), -EINVAL);
                assert_false(metrics_name_is_valid(bad_names[i]));
        }
        assert_true(metrics_name_is_valid("job:rate_5m"));
        assert_int_equal(metrics_family_add(r, "x", "", METRIC_GAUGE,
                                            (const char *const[]) { "a:b", NULL }, &f), -EINVAL);
        assert_int_equal(metrics_family_add(r, "x", "", METRIC_GAUGE,
                                            (const char *const[]) { "__name", NULL }, &f), -EINVAL);
        assert_int_equal(metrics_family_add(r, "x", "", METRIC_HISTOGRAM, NULL, &f), -EINVAL);
        assert_int_equal(metrics_histogram_add(r, "h", "", (const char *const[]) { "le", NULL }, up, 2, &f), -EINVAL);
        assert_int_equal(metrics_histogram_add(r, "h", "", NULL, flat, 2, &f), -EINVAL);
        assert_int_equal(metrics_histogram_add(r, "h", "", NULL, down, 2, &f), -EINVAL);
        assert_int_equal(metrics_histogram_add(r, "h", "", NULL, inf, 2, &f), -EINVAL);
        assert_null(f);

        assert_int_equal(metrics_family_add(r, "x", "", METRIC_GAUGE, (const char *const[]) { "le", NULL }, &f), 0);
        assert_int_equal(metrics_family_add(r, "x", "", METRIC_COUNTER, NULL, &g), -EEXIST);
        assert_int_equal(metrics_histogram_add(r, "h", "", NULL, up, 2, &g), 0);
        assert_int_equal(metrics_histogram_add(r, "h", "", NULL, up, 2, &g), -EEXIST);
        assert_int_equal(metrics_set(g, NULL, 1), -EINVAL);
        assert_int_equal(metrics_histogram_set(f, (const char *const[]) { "x" }, (const uint64_t[]) { 1, 2, 3 }, 1),
                         -EINVAL);
}

static void test_format_value(void **state) {
        static const struct { double v; const char *text; } cases[] = {
                { 0, "0" },
                { -0.0, "-0" },
                { 1, "1" },
                { 1000000, "1000000" },
                { 18446744073709551615.0, "1.8446744073709552e+19" },
                { 0.1, "0.1" },
                { 0.635, "0.635" },
                { -2.5, "-2.5" },
                { 1e-9, "1e-09" },
                { 1700000000.5, "1700000000.5" },
                { 1.0 / 3, "0.3333333333333333" },
                { INFINITY, "+Inf" },
                { -INFINITY, "-Inf" },
                { NAN, "NaN" },
        };
        char buf[32];
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                print_message("case %zu: %s\n", i, cases[i].text);
                assert_string_equal(metrics_format_value(cases[i].v, buf), cases[i].text);
                if (isfinite(cases[i].v))
                        assert_true(strtod(buf, NULL) == cases[i].v);
        }
}

static void test_many_samples(void **state) {
        _cleanup_(metrics_registry_freep) struct metrics_registry *r = NULL;
        struct metric_family *f;
        char label[16];
        (void) state;

        /* Enough to grow the arrays several times. */
        assert_int_equal(metrics_registry_new(&r), 0);
        for (int i = 0; i < 40; i++) {
                snprintf(label, sizeof(label), "f%d", i);
                assert_int_equal(metrics_family_add(r, label, "", METRIC_GAUGE,
                                                    (const char *const[]) { "i", NULL }, &f), 0);
                for (int j = 0; j < 40; j++) {
                        snprintf(label, sizeof(label), "%d", j);
                        assert_int_equal(metrics_set(f, (const char *const[]) { label }, j), 0);
                }
        }
        _cleanup_free_ char *text = render(r);
        assert_non_null(strstr(text, "\nf39{i=\"39\"} 39\n"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_every_type),
                cmocka_unit_test(test_escaping),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_format_value),
                cmocka_unit_test(test_many_samples),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
