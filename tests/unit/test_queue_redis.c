/* SPDX-License-Identifier: MIT */
/*
 * The queue's connection finds a server that moved: a host name is looked
 * up on a thread, answered on the loop, and every reconnect looks it up
 * again instead of going back to the address it had. No Redis is needed: a
 * listening socket completes the connect.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "common/util.h"
#include "supervisor/name_lookup.h"
#include "supervisor/queue_redis.h"

#define DEADLINE (20 * USEC_PER_SEC)   /* only catches a hang (meson gives a unit test 30 s) */

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) usec;
        *(bool *) userdata = true;
        return sd_event_exit(sd_event_source_get_event(s), 1);
}

/* Runs e until something calls sd_event_exit(); false when the deadline came first. */
static bool run_until_exit(sd_event *e) {
        sd_event_source *deadline = NULL;
        bool expired = false;
        assert_int_equal(sd_event_add_time_relative(e, &deadline, CLOCK_MONOTONIC, DEADLINE, 0, on_deadline, &expired), 0);
        (void) sd_event_loop(e);
        sd_event_source_disable_unref(deadline);
        return !expired;
}

static void test_numeric_hosts_need_no_lookup(void **state) {
        static const struct {
                const char *host;
                bool numeric;
        } cases[] = {
                { "127.0.0.1", true }, { "10.1.2.3", true }, { "::1", true }, { "fe80::1", true },
                { "localhost", false }, { "redis.example", false }, { "127.0.0.1.nip.io", false }, { "", false },
        };
        (void) state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                if (name_is_numeric(cases[i].host) != cases[i].numeric)
                        fail_msg("%s: expected %s", cases[i].host, cases[i].numeric ? "numeric" : "a name");
        }
}

struct lookup_result {
        sd_event *e;
        int calls, error;
        bool loopback;
};

static void on_lookup(struct name_lookup *l, int error, const struct addrinfo *ai, void *userdata) {
        struct lookup_result *res = userdata;
        res->calls++;
        res->error = error;
        for (; ai; ai = ai->ai_next)
                if (ai->ai_family == AF_INET &&
                    ((const struct sockaddr_in *) ai->ai_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK))
                        res->loopback = true;
        name_lookup_free(l);   /* from within, as the link does */
        (void) sd_event_exit(res->e, 0);
}

static void test_a_lookup_is_answered_on_the_loop(void **state) {
        struct lookup_result res = {};
        struct name_lookup *l = NULL;
        (void) state;

        assert_int_equal(sd_event_new(&res.e), 0);
        assert_int_equal(name_lookup_start(res.e, "localhost", on_lookup, &res, &l), 0);
        assert_int_equal(res.calls, 0);   /* never from within the start */
        assert_true(run_until_exit(res.e));
        assert_int_equal(res.calls, 1);
        assert_int_equal(res.error, 0);
        assert_true(res.loopback);
        sd_event_unref(res.e);
}

static void test_a_lookup_freed_before_its_answer_never_calls(void **state) {
        struct lookup_result res = {}, other = {};
        struct name_lookup *l = NULL, *l2 = NULL;
        (void) state;

        assert_int_equal(sd_event_new(&res.e), 0);
        other.e = res.e;
        assert_int_equal(name_lookup_start(res.e, "localhost", on_lookup, &res, &l), 0);
        name_lookup_free(l);
        /* The loop runs until a second lookup answers: the first one's
         * answer, had it been kept, would have come by then or soon after. */
        assert_int_equal(name_lookup_start(res.e, "localhost", on_lookup, &other, &l2), 0);
        assert_true(run_until_exit(res.e));
        assert_int_equal(other.calls, 1);
        assert_int_equal(res.calls, 0);
        sd_event_unref(res.e);
}

static void on_connected(void *userdata) {
        (void) sd_event_exit(userdata, 0);
}

/* The server's address changed while the link was away: it started on a
 * stale numeric address (nothing listens there), and a reconnect that looks
 * "localhost" up again finds the listener. Going back to the stale address
 * would never connect. */
static void test_a_reconnect_looks_the_host_up_again(void **state) {
        static const struct redis_link_ops ops = { .connected = on_connected };
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        struct redis_link *link = NULL;
        sd_event *e = NULL;
        (void) state;

        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(fd, 4), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        struct queue_url u = { .host = (char *) "localhost", .port = ntohs(sa.sin_port), .stream = (char *) "s",
                               .group = (char *) "g" };

        assert_int_equal(sd_event_new(&e), 0);
        /* 127.0.0.2 is loopback too, but the listener is bound to 127.0.0.1 only. */
        assert_int_equal(redis_link_new(e, &u, "127.0.0.2", &ops, e, &link), 0);
        assert_true(run_until_exit(e));
        assert_true(redis_link_up(link));
        redis_link_free(link);
        sd_event_unref(e);
        close(fd);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_numeric_hosts_need_no_lookup),
                cmocka_unit_test(test_a_lookup_is_answered_on_the_loop),
                cmocka_unit_test(test_a_lookup_freed_before_its_answer_never_calls),
                cmocka_unit_test(test_a_reconnect_looks_the_host_up_again),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
