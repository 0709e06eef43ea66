/* SPDX-License-Identifier: MIT */
/* Durations, counts and signal names as users write them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <cmocka.h>

#include "common/hostport.h"
#include "conf/units.h"

static void test_durations(void **state) {
        static const struct { const char *text; usec_t usec; } good[] = {
                { "0", 0 },
                { "250ms", 250 * USEC_PER_MSEC },
                { "5s", 5 * USEC_PER_SEC },
                { "1.5s", 1500 * USEC_PER_MSEC },
                { "2m", 120 * USEC_PER_SEC },
                { "1h", 3600 * USEC_PER_SEC },
                { "10us", 10 },
        };
        static const char *const bad[] = { "", "5", "-1s", "5 s", "s", "1x", "1sec", "nan", "inf", "1e30h" };
        (void) state;

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                usec_t t = 1;
                assert_int_equal(parse_duration(good[i].text, &t), 0);
                assert_int_equal(t, good[i].usec);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                usec_t t = 42;
                assert_true(parse_duration(bad[i], &t) < 0);
                assert_int_equal(t, 42);   /* untouched on error */
        }
}

static void test_unsigned(void **state) {
        unsigned v = 7;
        (void) state;

        assert_int_equal(parse_unsigned("0", 10, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(parse_unsigned("10", 10, &v), 0);
        assert_int_equal(v, 10);
        assert_int_equal(parse_unsigned("11", 10, &v), -ERANGE);
        assert_int_equal(parse_unsigned("-1", 10, &v), -EINVAL);
        assert_int_equal(parse_unsigned("+1", 10, &v), -EINVAL);
        assert_int_equal(parse_unsigned("1a", 10, &v), -EINVAL);
        assert_int_equal(parse_unsigned("", 10, &v), -EINVAL);
        assert_int_equal(parse_unsigned("99999999999999999999", 10, &v), -ERANGE);
        assert_int_equal(v, 10);
}

static void test_signals(void **state) {
        int sig = 0;
        char buf[16];
        (void) state;

        assert_int_equal(parse_signal("TERM", &sig), 0);
        assert_int_equal(sig, SIGTERM);
        assert_int_equal(parse_signal("SIGINT", &sig), 0);
        assert_int_equal(sig, SIGINT);
        assert_int_equal(parse_signal("hup", &sig), 0);
        assert_int_equal(sig, SIGHUP);
        assert_int_equal(parse_signal("9", &sig), 0);
        assert_int_equal(sig, SIGKILL);
        assert_true(parse_signal("SIGNOPE", &sig) < 0);
        assert_true(parse_signal("0", &sig) < 0);
        assert_true(parse_signal("", &sig) < 0);
        assert_string_equal(signal_to_string(SIGKILL, buf), "KILL");
}

static void test_format_size(void **state) {
        char buf[32];
        (void) state;

        assert_string_equal(format_size(0, buf), "0 B");
        assert_string_equal(format_size(1023, buf), "1023 B");
        assert_string_equal(format_size(1024, buf), "1 KiB");
        assert_string_equal(format_size(512ULL << 20, buf), "512 MiB");
        assert_string_equal(format_size(3ULL << 29, buf), "1.5 GiB");
        assert_string_equal(format_size(UINT64_MAX, buf), "16 EiB");
}

static void test_format_duration(void **state) {
        char buf[32];
        (void) state;

        assert_string_equal(format_duration(0, buf), "0s");
        assert_string_equal(format_duration(100 * USEC_PER_MSEC, buf), "100ms");
        assert_string_equal(format_duration(1500 * USEC_PER_MSEC, buf), "1.5s");
        assert_string_equal(format_duration(120 * USEC_PER_SEC, buf), "2m");
        /* truncated, never rounded up: just short of 2s never reads "2s" */
        assert_string_equal(format_duration(1999999, buf), "1.999s");
        assert_string_equal(format_duration(2 * USEC_PER_SEC, buf), "2s");
        assert_string_equal(format_duration(999, buf), "999us");
        assert_string_equal(format_duration(USEC_PER_MSEC, buf), "1ms");
        assert_string_equal(format_duration(1234567, buf), "1.234s");
        assert_string_equal(format_duration(90 * USEC_PER_SEC, buf), "1.5m");
        assert_string_equal(format_duration(59999999, buf), "59.99s");
        assert_string_equal(format_duration(3600 * USEC_PER_SEC, buf), "1h");
        assert_string_equal(format_duration(100000 * 3600 * USEC_PER_SEC + 1, buf), "100000h");
        assert_string_equal(format_duration(USEC_INFINITY - 1, buf), "5124095576h");
        assert_string_equal(format_duration(USEC_INFINITY, buf), "infinity");
}

/* HOST:PORT: the one syntax of metrics.listen and --metrics. */
static void test_listen_address(void **state) {
        static const struct {
                const char *text;
                int result;
        } cases[] = {
                { "127.0.0.1:8080", 0 },
                { "[::]:8080", 0 },
                { "localhost:80", 0 },
                { "unix:/run/app.sock", 0 },
                { "unix:relative.sock", 0 },
                { "127.0.0.1:0", -EINVAL },          /* a port nobody could find */
                { "8080", -EINVAL },
                { "::1:8080", -EINVAL },
                { "unix:", -EINVAL },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                print_message("%s\n", cases[i].text);
                assert_int_equal(parse_listen_address(cases[i].text), cases[i].result);
        }
        /* 107 bytes of path fit a sockaddr_un, 108 do not. */
        char path[5 + 109] = "unix:";
        memset(path + 5, 'p', 107);
        path[5 + 107] = '\0';
        assert_int_equal(parse_listen_address(path), 0);
        path[5 + 107] = 'p';
        path[5 + 108] = '\0';
        assert_int_equal(parse_listen_address(path), -ENAMETOOLONG);
}

static void test_hostport(void **state) {
        static const struct {
                const char *text, *host;
                unsigned port;
        } good[] = {
                { "127.0.0.1:9311", "127.0.0.1", 9311 },
                { "localhost:0", "localhost", 0 },
                { "[::1]:9311", "::1", 9311 },
                { "[::ffff:10.0.0.1]:80", "::ffff:10.0.0.1", 80 },
                { "metrics-1.example.com:65535", "metrics-1.example.com", 65535 },
        };
        static const char *const bad[] = {
                "127.0.0.1", ":9311", "::1:9311", "[::1]9311", "[]:80", "[x::1]:80", "host:65536", "host:",
                "host:123456", "host:80x", "host:-1", "a_b:80", "a b:80", "[::1:80",
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                char *host = NULL;
                uint16_t port = 1;
                print_message("good: %s\n", good[i].text);
                assert_int_equal(hostport_parse(good[i].text, &host, &port), 0);
                assert_string_equal(host, good[i].host);
                assert_int_equal(port, good[i].port);
                free(host);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                print_message("bad: %s\n", bad[i]);
                assert_int_equal(hostport_parse(bad[i], NULL, NULL), -EINVAL);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_durations),
                cmocka_unit_test(test_unsigned),
                cmocka_unit_test(test_signals),
                cmocka_unit_test(test_format_duration),
                cmocka_unit_test(test_format_size),
                cmocka_unit_test(test_hostport),
                cmocka_unit_test(test_listen_address),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
