/* SPDX-License-Identifier: MIT */
/* The system side of metrics/: textfile replacement, process figures, listen addresses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <netinet/in.h>

#include "common/util.h"
#include "metrics/http.h"
#include "metrics/process.h"
#include "metrics/textfile.h"

static char dir[] = "/tmp/corral-test-metrics-XXXXXX";

static int setup(void **state) {
        (void) state;
        return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
        char path[128];
        (void) state;
        snprintf(path, sizeof(path), "%s/corral.prom", dir);
        (void) unlink(path);
        return rmdir(dir);
}

static char *slurp(const char *path) {
        _cleanup_(fclosep) FILE *f = fopen(path, "re");
        char *text = NULL;
        size_t size = 0;

        assert_non_null(f);
        assert_true(getdelim(&text, &size, '\0', f) >= 0);
        return text;
}

static size_t count_entries(const char *path) {
        DIR *d = opendir(path);
        struct dirent *de;
        size_t n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

static void test_textfile(void **state) {
        char path[128], missing[160];
        struct stat st;
        (void) state;

        snprintf(path, sizeof(path), "%s/corral.prom", dir);
        assert_int_equal(metrics_textfile_write(path, "a 1\nb 2\n", 8), 0);
        _cleanup_free_ char *first = slurp(path);
        assert_string_equal(first, "a 1\nb 2\n");

        /* Shorter content replaces the file whole: no tail of the old one. */
        assert_int_equal(metrics_textfile_write(path, "c 3\n", 4), 0);
        _cleanup_free_ char *second = slurp(path);
        assert_string_equal(second, "c 3\n");
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0644);
        assert_int_equal(count_entries(dir), 1);   /* no temporary file left behind */

        snprintf(missing, sizeof(missing), "%s/nope/corral.prom", dir);
        assert_int_equal(metrics_textfile_write(missing, "x\n", 2), -ENOENT);
        assert_int_equal(count_entries(dir), 1);
}

static void test_process(void **state) {
        struct metrics_process p = {};
        (void) state;

        assert_int_equal(metrics_process_read(&p), 0);
        assert_true(p.valid);
        assert_true(p.cpu_seconds >= 0 && p.cpu_seconds < 3600);
        assert_true(p.resident_bytes > 100 * 1024);
        assert_true(p.open_fds >= 1 && p.open_fds <= p.max_fds);
        /* Started within the last hour, and not in the future (btime is whole seconds). */
        double now = (double) time(NULL);
        assert_true(p.start_time <= now + 1.5 && p.start_time > now - 3600);
}

static void test_listen_parse(void **state) {
        static const struct { const char *text; int family; uint16_t port; } good[] = {
                { "127.0.0.1:9311", AF_INET, 9311 },
                { "0.0.0.0:0", AF_INET, 0 },
                { "[::1]:65535", AF_INET6, 65535 },
                { "[::]:80", AF_INET6, 80 },
        };
        static const char *const bad[] = {
                "", "9311", "127.0.0.1", "127.0.0.1:", ":9311", "127.0.0.1:65536", "127.0.0.1:-1",
                "127.0.0.1:9x", "::1:9311", "[::1]9311", "[::1:9311", "127.0.0.1:123456",
        };
        struct sockaddr_storage addr;
        socklen_t len;
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                print_message("good: %s\n", good[i].text);
                assert_int_equal(metrics_listen_parse(good[i].text, &addr, &len), 0);
                assert_int_equal(addr.ss_family, good[i].family);
                uint16_t port = good[i].family == AF_INET ? ((struct sockaddr_in *) &addr)->sin_port
                                                          : ((struct sockaddr_in6 *) &addr)->sin6_port;
                assert_int_equal(ntohs(port), good[i].port);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                print_message("bad: %s\n", bad[i]);
                assert_int_equal(metrics_listen_parse(bad[i], &addr, &len), -EINVAL);
        }
        /* A name resolves through getaddrinfo() (from /etc/hosts: no network
         * needed), and one that does not is -EADDRNOTAVAIL. A bare chroot may
         * have no /etc/hosts at all: then localhost is such a name. */
        struct addrinfo *ai = NULL;
        bool resolvable = getaddrinfo("localhost", NULL, NULL, &ai) == 0;
        if (ai)
                freeaddrinfo(ai);
        assert_int_equal(metrics_listen_parse("localhost:0", &addr, &len), resolvable ? 0 : -EADDRNOTAVAIL);
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata) {
        (void) ptr;
        (void) userdata;
        return size * nmemb;
}

static long http_get(uint16_t port, const char *path) {
        char url[64];
        long code = 0;
        CURL *c = curl_easy_init();

        assert_non_null(c);
        snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_cleanup(c);
        return code;
}

static void test_unpublished_then_published(void **state) {
        _cleanup_(metrics_http_stopp) struct metrics_http *h = NULL;
        uint16_t port = 0;
        (void) state;

        assert_int_equal(metrics_http_start("127.0.0.1:0", 0, &h, &port), 0);
        /* Before the first sample every page says so. */
        assert_int_equal(http_get(port, "/metrics"), 503);
        assert_int_equal(http_get(port, "/healthz"), 503);
        assert_int_equal(http_get(port, "/status"), 503);
        assert_int_equal(metrics_http_publish(h, "x 1\n", "{}", true, "ok"), 0);
        assert_int_equal(http_get(port, "/metrics"), 200);
        assert_int_equal(http_get(port, "/healthz"), 200);
        assert_int_equal(http_get(port, "/status"), 200);
        assert_int_equal(metrics_http_publish(h, "x 2\n", "{}", false, "down"), 0);
        assert_int_equal(http_get(port, "/healthz"), 503);
        assert_int_equal(http_get(port, "/nope"), 404);
}

static double now_seconds(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* A busy loop (nobody reads the render eventfd): the first request waits its
 * half second in vain, the next ones are answered at once from the last pages
 * instead of each waiting in turn; a publish makes requests wait again. */
static void test_busy_loop_costs_one_wait(void **state) {
        _cleanup_(metrics_http_stopp) struct metrics_http *h = NULL;
        uint16_t port = 0;
        (void) state;

        assert_int_equal(metrics_http_start("127.0.0.1:0", 0, &h, &port), 0);
        assert_int_equal(metrics_http_publish(h, "x 1\n", "{}", true, "ok"), 0);
        metrics_http_mark_stale(h);

        double t0 = now_seconds();
        assert_int_equal(http_get(port, "/healthz"), 200);
        double first = now_seconds() - t0;
        assert_true(first >= 0.5);
        t0 = now_seconds();
        for (int i = 0; i < 8; i++)
                assert_int_equal(http_get(port, "/healthz"), 200);
        /* Waiting in turn, 8 requests take at least 4 s. */
        assert_true(now_seconds() - t0 < 2.0);

        assert_int_equal(metrics_http_publish(h, "x 2\n", "{}", true, "ok"), 0);
        metrics_http_mark_stale(h);
        t0 = now_seconds();
        assert_int_equal(http_get(port, "/healthz"), 200);
        assert_true(now_seconds() - t0 >= 0.5);
}

static void test_connection_limit(void **state) {
        static const struct {
                const char *name;
                uint64_t nofile, reserved;
                unsigned expected;
        } cases[] = {
                { "ulimit -n 64, 2 workers: the floor",      64,      12,     4 },
                { "1024, nothing reserved",                  1024,    0,      480 },
                { "1024, 64 workers of 6 fds",               1024,    384,    288 },
                { "reserve beyond the table: the floor",     1024,    4096,   4 },
                { "just above the floor",                    64 + 10, 0,      5 },
                { "systemd's hard limit: the ceiling",       524288,  6000,   16384 },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                unsigned got = metrics_http_connection_limit(cases[i].nofile, cases[i].reserved);
                if (got != cases[i].expected)
                        fail_msg("%s: %u, expected %u", cases[i].name, got, cases[i].expected);
        }
}

static void test_stop_closes_everything(void **state) {
        struct metrics_http *h = NULL, *b = NULL;
        struct metrics_process before, after;
        char listen[32];
        uint16_t port;
        (void) state;

        assert_int_equal(metrics_process_read(&before), 0);
        assert_int_equal(metrics_http_start("127.0.0.1:0", 0, &h, &port), 0);
        snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
        assert_int_equal(metrics_http_start(listen, 0, &b, NULL), -EADDRINUSE);
        assert_null(metrics_http_stop(h));
        assert_int_equal(metrics_process_read(&after), 0);
        assert_int_equal(after.open_fds, before.open_fds);
}

static void test_port_in_use(void **state) {
        _cleanup_(metrics_http_stopp) struct metrics_http *a = NULL;
        struct metrics_http *b = NULL;
        char listen[32];
        uint16_t port = 0, port_b = 0;
        (void) state;

        assert_int_equal(metrics_http_start("127.0.0.1:0", 0, &a, &port), 0);
        assert_true(port > 0);
        snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
        assert_int_equal(metrics_http_start(listen, 0, &b, &port_b), -EADDRINUSE);
        assert_null(b);
        assert_int_equal(port_b, 0);
        assert_int_equal(metrics_http_publish(a, "x 1\n", "{}", true, "ok"), 0);
        assert_int_equal(metrics_http_publish(a, "x 2\n", "{}", false, NULL), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_textfile),
                cmocka_unit_test(test_process),
                cmocka_unit_test(test_listen_parse),
                cmocka_unit_test(test_unpublished_then_published),
                cmocka_unit_test(test_port_in_use),
                cmocka_unit_test(test_stop_closes_everything),
                cmocka_unit_test(test_busy_loop_costs_one_wait),
                cmocka_unit_test(test_connection_limit),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
