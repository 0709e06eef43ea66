/* SPDX-License-Identifier: MIT */
/* The notify protocol: parsing a datagram, and an endpoint that hears the
 * worker it expects and no other sender. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "supervisor/notify.h"

static void test_parse(void **state) {
        static const struct {
                const char *name, *text;
                bool ready, watchdog, has_status;
                const char *status;
        } cases[] = {
                { "ready",                "READY=1",                    true,  false, false, "" },
                { "ready and status",     "READY=1\nSTATUS=up 3 conns", true,  false, true,  "up 3 conns" },
                { "ready=0 is not ready", "READY=0",                    false, false, false, "" },
                { "ready=10 is not 1",    "READY=10",                   false, false, false, "" },
                { "watchdog",             "WATCHDOG=1\n",               false, true,  false, "" },
                { "unknown keys ignored", "MAINPID=1\nFDSTORE=1\nX",    false, false, false, "" },
                { "empty status",         "STATUS=",                    false, false, true,  "" },
                { "control chars",        "STATUS=a\tb\x1b",            false, false, true,  "a b " },
                { "empty",                "",                           false, false, false, "" },
                { "key prefix only",      "READY",                      false, false, false, "" },
        };
        (void) state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct notify_message m;
                print_message("%s\n", cases[i].name);
                notify_parse(cases[i].text, strlen(cases[i].text), &m);
                assert_int_equal(m.ready, cases[i].ready);
                assert_int_equal(m.watchdog, cases[i].watchdog);
                assert_int_equal(m.has_status, cases[i].has_status);
                assert_string_equal(m.status, cases[i].status);
        }

        /* A status longer than the buffer is cut, not overrun. */
        char big[600] = "STATUS=";
        memset(big + 7, 'x', sizeof(big) - 8);
        big[sizeof(big) - 1] = '\0';
        struct notify_message m;
        notify_parse(big, strlen(big), &m);
        assert_int_equal(strlen(m.status), NOTIFY_STATUS_MAX - 1);
}

struct heard {
        unsigned messages, refused;
        bool ready;
        pid_t refused_pid;
};

static void on_message(struct notify_endpoint *e, const struct notify_message *m, void *userdata) {
        struct heard *h = userdata;
        (void) e;
        h->messages++;
        h->ready = h->ready || m->ready;
}

static void on_refused(struct notify_endpoint *e, pid_t sender, void *userdata) {
        struct heard *h = userdata;
        (void) e;
        h->refused++;
        h->refused_pid = sender;
}

static void send_to(const struct notify_endpoint *e, const char *text) {
        const char *at = strchr(notify_endpoint_env(e), '@');
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        assert_non_null(at);
        size_t len = strlen(at);
        memcpy(sa.sun_path, at, len);
        sa.sun_path[0] = '\0';
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(sendto(fd, text, strlen(text), 0, (struct sockaddr *) &sa,
                                (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len)),
                         (ssize_t) strlen(text));
        close(fd);
}

static void test_endpoint_hears_only_its_worker(void **state) {
        static struct heard h;
        static const struct notify_handler handler = { .message = on_message, .refused = on_refused, .userdata = &h };
        sd_event *event = NULL;
        struct notify_endpoint *e = NULL;
        (void) state;

        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(notify_endpoint_new(event, &handler, &e), 0);
        assert_true(strncmp(notify_endpoint_env(e), "NOTIFY_SOCKET=@", 15) == 0);

        /* Expecting no one: our message is refused. */
        send_to(e, "READY=1");
        assert_true(sd_event_run(event, 1000000) > 0);
        assert_int_equal(h.messages, 0);
        assert_int_equal(h.refused, 1);
        assert_int_equal(h.refused_pid, getpid());

        /* Another worker's socket: still refused. */
        notify_endpoint_expect(e, getpid() + 100000, 0);
        send_to(e, "READY=1");
        assert_true(sd_event_run(event, 1000000) > 0);
        assert_int_equal(h.messages, 0);
        assert_int_equal(h.refused, 2);

        /* Ours (we lead our process group, as a worker does). */
        notify_endpoint_expect(e, getpid(), 0);
        send_to(e, "READY=1\nSTATUS=ok");
        assert_true(sd_event_run(event, 1000000) > 0);
        assert_int_equal(h.messages, 1);
        assert_true(h.ready);

        notify_endpoint_free(e);
        sd_event_unref(event);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_endpoint_hears_only_its_worker),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
