/* SPDX-License-Identifier: MIT */
/* --results records: what a tasks.results value names, and records read
 * back with json-c as a program would (nulls, truncation, bytes that are
 * not UTF-8, a symbolic link refused). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "supervisor/results_file.h"
#include "tests/unit/fixture_tree.h"

static char dir[] = "/tmp/test-results-XXXXXX";

static int setup(void **state) {
        (void) state;
        return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
        (void) state;
        fixture_remove(dir);
        return 0;
}

/* Writes records to a fresh file and parses its lines back. */
static json_object *write_and_read(const struct result_record *recs, size_t n) {
        char path[64], line[256 * 1024];
        struct results_file *f;
        snprintf(path, sizeof(path), "%s/r.jsonl", dir);
        assert_int_equal(results_file_open(path, false, &f), 0);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(results_file_write(f, &recs[i]), 0);
        results_file_free(f);

        json_object *all = json_object_new_array();
        FILE *in = fopen(path, "r");
        assert_non_null(in);
        while (fgets(line, sizeof(line), in)) {
                assert_non_null(strchr(line, '\n'));
                json_object *o = json_tokener_parse(line);
                assert_non_null(o);
                json_object_array_add(all, o);
        }
        fclose(in);
        return all;
}

static json_object *field(json_object *all, size_t i, const char *key) {
        json_object *v = NULL;
        assert_true(json_object_object_get_ex(json_object_array_get_idx(all, i), key, &v));
        return v;
}

static void test_kinds_of_value(void **state) {
        (void) state;
        assert_int_equal(results_kind(NULL), RESULTS_NONE);
        assert_int_equal(results_kind(""), RESULTS_NONE);
        assert_int_equal(results_kind("out/results.jsonl"), RESULTS_FILE);
        assert_int_equal(results_kind("redis://127.0.0.1:6379/jobs:results"), RESULTS_REDIS);
        assert_int_equal(results_kind("redis.jsonl"), RESULTS_FILE);
}

static void test_records_read_back(void **state) {
        static char big[RESULTS_OUTPUT_MAX + 10];
        (void) state;
        memset(big, 'x', sizeof(big));
        const struct result_record recs[] = {
                { .seq = 1, .task = "a b", .task_len = 3, .exited = true, .exit = 3, .duration = 0.25,
                  .out = "out\n", .out_len = 4, .err = "", .err_len = 0 },
                { .seq = 2, .task = "k", .task_len = 1, .exited = false, .signal = 9, .out = big,
                  .out_len = sizeof(big), .err = "e", .err_len = 1, .err_truncated = true },
                { .seq = 3, .task = "caf\xc3\xa9 \xff\xc0\x80", .task_len = 9, .exited = true },
                { .seq = 4, .error = "line too long" },
        };
        json_object *all = write_and_read(recs, 4);
        assert_int_equal(json_object_array_length(all), 4);

        assert_int_equal(json_object_get_int64(field(all, 0, "seq")), 1);
        assert_string_equal(json_object_get_string(field(all, 0, "task")), "a b");
        assert_int_equal(json_object_get_int(field(all, 0, "exit")), 3);
        assert_int_equal(json_object_get_int(field(all, 0, "signal")), 0);
        assert_true(json_object_get_double(field(all, 0, "duration")) == 0.25);
        assert_string_equal(json_object_get_string(field(all, 0, "stdout")), "out\n");
        assert_false(json_object_get_boolean(field(all, 0, "stdout_truncated")));

        assert_null(field(all, 1, "exit"));                 /* killed: no exit status */
        assert_int_equal(json_object_get_int(field(all, 1, "signal")), 9);
        assert_int_equal(json_object_get_string_len(field(all, 1, "stdout")), RESULTS_OUTPUT_MAX);
        assert_true(json_object_get_boolean(field(all, 1, "stdout_truncated")));
        assert_true(json_object_get_boolean(field(all, 1, "stderr_truncated")));

        /* é stays; 0xff and the overlong 0xc0 0x80 become U+FFFD each byte */
        assert_string_equal(json_object_get_string(field(all, 2, "task")),
                            "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
        assert_null(field(all, 2, "stdout"));               /* not captured */

        assert_null(field(all, 3, "task"));
        assert_string_equal(json_object_get_string(field(all, 3, "error")), "line too long");
        json_object_put(all);
}

static void test_a_symbolic_link_is_refused(void **state) {
        char target[64], link[64];
        struct results_file *f;
        (void) state;
        snprintf(target, sizeof(target), "%s/target", dir);
        snprintf(link, sizeof(link), "%s/link", dir);
        FILE *t = fopen(target, "w");
        assert_non_null(t);
        fclose(t);
        assert_int_equal(symlink(target, link), 0);
        assert_int_equal(results_file_open(link, false, &f), -ELOOP);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kinds_of_value),
                cmocka_unit_test(test_records_read_back),
                cmocka_unit_test(test_a_symbolic_link_is_refused),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
