/* SPDX-License-Identifier: MIT */
/* Work queue URLs as users write them: what is accepted, and what each
 * rejection says. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "conf/queue_url.h"

static void test_good(void **state) {
        static const struct {
                const char *text, *host;
                unsigned port;
                const char *user, *password, *stream, *group, *consumer;
        } cases[] = {
                { "redis://127.0.0.1:6379/jobs", "127.0.0.1", 6379, NULL, NULL, "jobs", "corral", NULL },
                { "redis://localhost/jobs", "localhost", 6379, NULL, NULL, "jobs", "corral", NULL },
                { "redis://:s3cret@h:7000/q", "h", 7000, NULL, "s3cret", "q", "corral", NULL },
                { "redis://alice:pw@h:1/q", "h", 1, "alice", "pw", "q", "corral", NULL },
                { "redis://:p%40ss%3a@h:65535/a%2Fb", "h", 65535, NULL, "p@ss:", "a/b", "corral", NULL },
                { "redis://[::1]:6380/q?group=g1", "::1", 6380, NULL, NULL, "q", "g1", NULL },
                { "redis://[::1]/q?consumer=c%201&group=g", "::1", 6379, NULL, NULL, "q", "g", "c 1" },
                { "redis://h:6379/jobs:high", "h", 6379, NULL, NULL, "jobs:high", "corral", NULL },
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct queue_url u;
                char error[512] = "";
                print_message("case %s\n", cases[i].text);
                assert_true(queue_url_is(cases[i].text));
                assert_int_equal(queue_url_parse(cases[i].text, &u, error, sizeof(error)), 0);
                assert_string_equal(u.host, cases[i].host);
                assert_int_equal(u.port, cases[i].port);
                if (cases[i].user)
                        assert_string_equal(u.user, cases[i].user);
                else
                        assert_null(u.user);
                if (cases[i].password)
                        assert_string_equal(u.password, cases[i].password);
                else
                        assert_null(u.password);
                assert_string_equal(u.stream, cases[i].stream);
                assert_string_equal(u.group, cases[i].group);
                if (cases[i].consumer)
                        assert_string_equal(u.consumer, cases[i].consumer);
                else
                        assert_null(u.consumer);
                queue_url_done(&u);
        }
}

static void test_bad(void **state) {
        static const struct { const char *text, *says; } cases[] = {
                { "http://h/q", "does not start with redis://" },
                { "redis://h:6379", "no /STREAM" },
                { "redis://h:6379/", "no stream name" },
                { "redis://:6379/q", "no host" },
                { "redis://h:/q", "no port after ':'" },
                { "redis://h:0/q", "the port is 0" },
                { "redis://h:65536/q", "not a number 1-65535" },
                { "redis://h:63x/q", "not a number 1-65535" },
                { "redis://::1:6379/q", "IPv6 address needs brackets" },
                { "redis://[::1/q", "without ']'" },
                { "redis://[::1]x/q", "after the ']'" },
                { "redis://secret@h/q", "[USER]:PASSWORD" },
                { "redis://h/q?grp=x", "unknown parameter 'grp'" },
                { "redis://h/q?group=", "'group' is empty" },
                { "redis://h/q%zz", "%-escape in the stream" },
                { "redis://h/q%00", "%-escape in the stream" },
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct queue_url u = { .port = 42 };
                char error[512] = "";
                print_message("case %s\n", cases[i].text);
                assert_int_equal(queue_url_parse(cases[i].text, &u, error, sizeof(error)), -EINVAL);
                assert_non_null(strstr(error, cases[i].says));
                assert_int_equal(u.port, 42);   /* untouched on error */
        }
}

/* The password may end up in a log: an error never shows it. */
static void test_error_masks_password(void **state) {
        struct queue_url u;
        char error[512] = "";
        (void) state;

        assert_int_equal(queue_url_parse("redis://:hunter2@h:99999/q", &u, error, sizeof(error)), -EINVAL);
        assert_null(strstr(error, "hunter2"));
        assert_non_null(strstr(error, "redis://:***@h:99999/q"));
}

static void test_not_a_queue(void **state) {
        (void) state;
        assert_false(queue_url_is("tasks.txt"));
        assert_false(queue_url_is("-"));
        assert_false(queue_url_is(NULL));
        assert_false(queue_url_is("redis:/h/q"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good),
                cmocka_unit_test(test_bad),
                cmocka_unit_test(test_error_masks_password),
                cmocka_unit_test(test_not_a_queue),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
