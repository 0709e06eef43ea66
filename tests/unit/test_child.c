/* SPDX-License-Identifier: MIT */
/* The child lifecycle's table, driven through a fake operating system: every
 * transition without forking a process. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "supervisor/child.h"
#include "tests/unit/fake_os.h"

#define MS USEC_PER_MSEC
#define S USEC_PER_SEC
#define PID 4242

/* ---- the fake owner (the OS is tests/unit/fake_os.c) ---- */

struct fake {
        struct fake_os os;
        usec_t delay;            /* what `ended` answers */
        struct child_end end;
        unsigned n_started, n_ended, n_recycle, n_ready, n_killed, n_not_ready;
        bool ready_on_recycle;   /* the owner has no work to take away */
        bool take_as_ready;      /* what `not_ready` answers: false, kill it */
};

static void owner_started(struct child *c, void *userdata) {
        (void) c;
        ((struct fake *) userdata)->n_started++;
}

static usec_t owner_ended(struct child *c, const struct child_end *end, void *userdata) {
        struct fake *f = userdata;
        (void) c;
        f->n_ended++;
        f->end = *end;
        return f->delay;
}

static void owner_recycle(struct child *c, void *userdata) {
        struct fake *f = userdata;
        f->n_recycle++;
        if (f->ready_on_recycle)
                child_dispatch(c, CHILD_EVENT_RECYCLE_READY);
}

static void owner_ready(struct child *c, void *userdata) {
        (void) c;
        ((struct fake *) userdata)->n_ready++;
}

static void owner_killed(struct child *c, void *userdata) {
        (void) c;
        ((struct fake *) userdata)->n_killed++;
}

static bool owner_not_ready(struct child *c, void *userdata) {
        struct fake *f = userdata;
        (void) c;
        f->n_not_ready++;
        return !f->take_as_ready;
}

static const struct child_owner fake_owner = {
        .started = owner_started, .ended = owner_ended, .recycle = owner_recycle,
        .ready = owner_ready, .killed = owner_killed, .not_ready = owner_not_ready,
};

static const struct child_stop stop = { .signal = SIGTERM, .timeout = 5 * S };
static const struct spawn_request request = { .argv = (char *[]) { "worker", NULL } };

static void setup(struct fake *f, struct child *c) {
        *f = (struct fake) { .delay = CHILD_NO_RESTART };
        fake_os_init(&f->os, 100 * S, PID);
        child_init(c, &fake_child_os, &f->os, &stop, &fake_owner, f);
}

/* A running child, started at 100 s. */
static void setup_running(struct fake *f, struct child *c, usec_t age) {
        setup(f, c);
        assert_int_equal(child_start(c, &request, age), 0);
        assert_int_equal(c->state, CHILD_RUNNING);
}

static void assert_kill(const struct fake *f, size_t i, pid_t pgid, int sig) {
        fake_os_assert_kill(&f->os, i, pgid, sig);
}

static void exit_with(struct child *c, int code, int status) {
        fake_os_exit(c, code, status);
}

/* ---- starting ---- */

static void test_start_runs_and_watches(void **state) {
        struct fake f;
        struct child c;
        (void) state;

        setup_running(&f, &c, 0);
        assert_int_equal(c.pid, PID);
        assert_int_equal(c.started, 100 * S);
        assert_true(f.os.watching);
        assert_int_equal(f.n_started, 1);
        assert_int_equal(f.os.timer, USEC_INFINITY);   /* no age limit, no timer */
        assert_true(child_is_live(&c));
}

static void test_start_failure_permanent_backs_off(void **state) {
        struct fake f;
        struct child c;
        (void) state;

        setup(&f, &c);
        fake_os_fail_next(&f.os, -ENOENT);
        f.delay = 200 * MS;
        assert_int_equal(child_start(&c, &request, 0), -ENOENT);
        assert_int_equal(f.n_ended, 1);
        assert_int_equal(f.n_started, 0);
        assert_int_equal(f.end.outcome, CHILD_START_FAILED);
        assert_int_equal(f.end.error, -ENOENT);
        assert_false(f.end.transient);
        assert_int_equal(c.state, CHILD_BACKOFF);
        assert_int_equal(c.pid, 0);
        assert_int_equal(f.os.timer, 100 * S + 200 * MS);

        /* The backoff ends: idle, and the owner is told it may start it. */
        child_timer(&c);
        assert_int_equal(c.state, CHILD_IDLE);
        assert_int_equal(f.n_ready, 1);
}

static void test_start_failure_transient_is_marked(void **state) {
        static const int transient[] = { -EMFILE, -ENFILE, -EAGAIN, -ENOMEM };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(transient); i++) {
                struct fake f;
                struct child c;
                setup(&f, &c);
                fake_os_fail_next(&f.os, transient[i]);
                f.delay = 1 * S;
                assert_int_equal(child_start(&c, &request, 0), transient[i]);
                assert_true(f.end.transient);
                assert_int_equal(c.state, CHILD_BACKOFF);
        }
        assert_false(child_error_is_transient(-EACCES));
        assert_false(child_error_is_transient(-ENOEXEC));
        assert_false(child_error_is_transient(-EPERM));
        /* One list for every owner: what the batch fails as 127 is never
         * what the pool retries as a shortage, and an error in neither is
         * left to the owner. */
        assert_int_equal(child_error_kind(-ENOENT), CHILD_ERROR_CANNOT_RUN);
        assert_int_equal(child_error_kind(-E2BIG), CHILD_ERROR_CANNOT_RUN);
        assert_int_equal(child_error_kind(-EMFILE), CHILD_ERROR_SHORTAGE);
        assert_int_equal(child_error_kind(-EIO), CHILD_ERROR_OTHER);
}

static void test_start_failure_without_restart_stays_idle(void **state) {
        struct fake f;
        struct child c;
        (void) state;

        setup(&f, &c);
        fake_os_fail_next(&f.os, -EACCES);
        assert_int_equal(child_start(&c, &request, 0), -EACCES);
        assert_int_equal(c.state, CHILD_IDLE);
        assert_int_equal(f.os.timer, USEC_INFINITY);
}

static void test_watch_failure_is_a_start_failure(void **state) {
        struct fake f;
        struct child c;
        (void) state;

        setup(&f, &c);
        f.os.watch_result = -EMFILE;
        assert_int_equal(child_start(&c, &request, 0), -EMFILE);
        assert_int_equal(f.end.outcome, CHILD_START_FAILED);
        assert_true(f.end.transient);
        assert_int_equal(c.pid, 0);
        assert_int_equal(f.n_started, 0);
}

/* ---- exits ---- */

static void test_exit_while_running_is_classified(void **state) {
        static const struct {
                const char *name;
                int code, status;
                enum child_outcome outcome;
                const char *text;
        } cases[] = {
                { "exit 0", CLD_EXITED, 0, CHILD_SUCCESS, "exited with status 0" },
                { "exit 3", CLD_EXITED, 3, CHILD_FAILURE, "exited with status 3" },
                { "killed", CLD_KILLED, SIGKILL, CHILD_SIGNAL, "was killed by signal KILL" },
                { "dumped", CLD_DUMPED, SIGSEGV, CHILD_SIGNAL, "was killed by signal SEGV (core dumped)" },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct fake f;
                struct child c;
                char text[80];
                print_message("case %s\n", cases[i].name);
                setup_running(&f, &c, 0);
                f.os.now += 3 * S;
                f.delay = 100 * MS;
                exit_with(&c, cases[i].code, cases[i].status);
                assert_int_equal(f.end.outcome, cases[i].outcome);
                assert_false(f.end.asked_to_stop);
                assert_int_equal(f.end.uptime, 3 * S);
                assert_string_equal(child_end_describe(&f.end, text, sizeof(text)), cases[i].text);
                /* What is left of its process group goes with it. */
                assert_kill(&f, 0, -PID, SIGKILL);
                assert_false(f.os.watching);
                assert_int_equal(c.state, CHILD_BACKOFF);
                assert_int_equal(f.os.timer, 103 * S + 100 * MS);
        }
}

/* ---- stopping ---- */

static void test_stop_signals_group_and_arms_kill_timer(void **state) {
        struct fake f;
        struct child c;
        (void) state;

        setup_running(&f, &c, 0);
        child_dispatch(&c, CHILD_EVENT_STOP);
        assert_int_equal(c.state, CHILD_STOPPING);
        assert_int_equal(f.os.n_kills, 2);
        assert_kill(&f, 0, -PID, SIGTERM);
        assert_kill(&f, 1, -PID, SIGCONT);
        assert_int_equal(f.os.timer, 105 * S);
        assert_true(child_has_process(&c));
        assert_false(child_is_live(&c));

        /* A second STOP sends nothing more. */
        child_dispatch(&c, CHILD_EVENT_STOP);
        assert_int_equal(f.os.n_kills, 2);
}

static void test_exit_during_stop_was_asked_for(void **state) {
        struct fake f;
        struct child c;
        (void) state;

        setup_running(&f, &c, 0);
        child_dispatch(&c, CHILD_EVENT_STOP);
        exit_with(&c, CLD_EXITED, 0);
        assert_true(f.end.asked_to_stop);
        assert_int_equal(c.state, CHILD_IDLE);
        assert_int_equal(f.os.timer, USEC_INFINITY);   /* the kill timer is gone */
        assert_int_equal(f.n_killed, 0);
}

static void test_timeout_during_stop_kills_the_group(void **state) {
        struct fake f;
        struct child c;
        (void) state;

        setup_running(&f, &c, 0);
        child_dispatch(&c, CHILD_EVENT_STOP);
        f.os.now = 105 * S;
        child_timer(&c);
        assert_int_equal(f.n_killed, 1);
        assert_kill(&f, 2, -PID, SIGKILL);
        assert_int_equal(c.state, CHILD_STOPPING);
        exit_with(&c, CLD_KILLED, SIGKILL);
        assert_int_equal(f.end.outcome, CHILD_SIGNAL);
        assert_true(f.end.asked_to_stop);
        assert_int_equal(c.state, CHILD_IDLE);
}

static void test_kill_at_once(void **state) {
        struct fake f;
        struct child c;
        (void) state;

        setup_running(&f, &c, 0);
        child_dispatch(&c, CHILD_EVENT_KILL);
        assert_kill(&f, 0, -PID, SIGKILL);
        assert_int_equal(c.state, CHILD_STOPPING);
        exit_with(&c, CLD_KILLED, SIGKILL);
        assert_true(f.end.asked_to_stop);
}

static void test_stop_in_backoff_cancels_it(void **state) {
        struct fake f;
        struct child c;
        (void) state;

        setup_running(&f, &c, 0);
        f.delay = 1 * S;
        exit_with(&c, CLD_EXITED, 1);
        assert_int_equal(c.state, CHILD_BACKOFF);
        child_dispatch(&c, CHILD_EVENT_STOP);
        assert_int_equal(c.state, CHILD_IDLE);
        assert_int_equal(f.os.timer, USEC_INFINITY);
        assert_int_equal(f.n_ready, 0);
}

/* ---- recycling and replacement ---- */

static void test_recycle_drains_then_is_replaced(void **state) {
        struct fake f;
        struct child c;
        (void) state;

        setup_running(&f, &c, 0);
        child_recycle(&c, RECYCLE_RSS, "rss 600 MiB over 512 MiB");
        assert_int_equal(c.state, CHILD_DRAINING);
        assert_int_equal(f.n_recycle, 1);
        assert_int_equal(c.recycle_reason, RECYCLE_RSS);
        assert_string_equal(c.recycle_why, "rss 600 MiB over 512 MiB");
        assert_false(child_is_stale(&c));

        /* A second limit while draining changes nothing. */
        child_recycle(&c, RECYCLE_TASKS, "tasks");
        assert_int_equal(f.n_recycle, 1);
        assert_int_equal(c.recycle_reason, RECYCLE_RSS);

        child_dispatch(&c, CHILD_EVENT_RECYCLE_READY);
        assert_int_equal(c.state, CHILD_RECYCLED);
        assert_true(child_is_stale(&c));
        assert_true(child_is_live(&c));
        child_dispatch(&c, CHILD_EVENT_STOP);
        assert_int_equal(c.state, CHILD_STOPPING);
}

static void test_age_limit_recycles(void **state) {
        struct fake f;
        struct child c;
        (void) state;

        setup(&f, &c);
        f.ready_on_recycle = true;
        assert_int_equal(child_start(&c, &request, 60 * S), 0);
        assert_int_equal(f.os.timer, 160 * S);
        f.os.now = 160 * S;
        child_timer(&c);
        /* The owner had nothing to take away: recycled at once. */
        assert_int_equal(c.state, CHILD_RECYCLED);
        assert_int_equal(c.recycle_reason, RECYCLE_AGE);
        assert_string_equal(c.recycle_why, "age 1m reached");
}

static void test_reload_outdates_running_and_draining(void **state) {
        struct fake f;
        struct child c;
        (void) state;

        setup_running(&f, &c, 60 * S);
        child_dispatch(&c, CHILD_EVENT_OUTDATE);
        assert_int_equal(c.state, CHILD_OUTDATED);
        assert_int_equal(f.os.timer, USEC_INFINITY);   /* no age recycle for an outdated child */
        assert_true(child_is_stale(&c));

        setup_running(&f, &c, 0);
        child_recycle(&c, RECYCLE_TASKS, "1000 lines");
        child_dispatch(&c, CHILD_EVENT_OUTDATE);
        assert_int_equal(c.state, CHILD_OUTDATED);

        /* An outdated child that exits on its own is an ordinary exit. */
        f.delay = 100 * MS;
        exit_with(&c, CLD_EXITED, 1);
        assert_false(f.end.asked_to_stop);
        assert_int_equal(c.state, CHILD_BACKOFF);
}

/* ---- readiness (the notify protocol) ---- */

/* A child that must say READY=1 within 60 s, started at 100 s. */
static void setup_unready(struct fake *f, struct child *c, usec_t age) {
        setup(f, c);
        c->ready_timeout = 60 * S;
        assert_int_equal(child_start(c, &request, age), 0);
}

static void test_unready_until_ready(void **state) {
        struct fake f;
        struct child c;
        (void) state;

        setup_unready(&f, &c, 30 * S);
        assert_int_equal(c.state, CHILD_UNREADY);
        assert_int_equal(f.n_started, 1);
        assert_true(child_is_live(&c));
        assert_true(child_is_unready(&c));
        assert_false(child_is_stale(&c));
        assert_int_equal(f.os.timer, 160 * S);   /* the start timeout, not the age */

        f.os.now = 102 * S;
        child_dispatch(&c, CHILD_EVENT_READY);
        assert_int_equal(c.state, CHILD_RUNNING);
        assert_false(child_is_unready(&c));
        assert_int_equal(f.os.timer, 130 * S);   /* the age counts from the start */
        assert_int_equal(f.os.n_kills, 0);

        /* A second READY=1 changes nothing. */
        child_dispatch(&c, CHILD_EVENT_READY);
        assert_int_equal(c.state, CHILD_RUNNING);
        assert_int_equal(f.os.timer, 130 * S);
}

static void test_ready_without_age_disarms_the_timeout(void **state) {
        struct fake f;
        struct child c;
        (void) state;

        setup_unready(&f, &c, 0);
        child_dispatch(&c, CHILD_EVENT_READY);
        assert_int_equal(c.state, CHILD_RUNNING);
        assert_int_equal(f.os.timer, USEC_INFINITY);
}

static void test_not_ready_in_time_is_killed_and_fails(void **state) {
        struct fake f;
        struct child c;
        (void) state;

        setup_unready(&f, &c, 0);
        f.os.now = 159999 * MS;
        assert_int_equal(f.os.n_kills, 0);
        f.os.now = 160 * S;
        child_timer(&c);
        assert_kill(&f, 0, -PID, SIGKILL);
        assert_int_equal(f.n_not_ready, 1);
        assert_int_equal(c.state, CHILD_UNREADY);

        /* Its end is a failure the owner did not ask for: restart after the backoff. */
        f.delay = 100 * MS;
        exit_with(&c, CLD_KILLED, SIGKILL);
        assert_int_equal(f.end.outcome, CHILD_SIGNAL);
        assert_false(f.end.asked_to_stop);
        assert_int_equal(c.state, CHILD_BACKOFF);
}

static void test_unready_stops_and_outdates(void **state) {
        struct fake f;
        struct child c;
        (void) state;

        setup_unready(&f, &c, 0);
        child_dispatch(&c, CHILD_EVENT_STOP);
        assert_int_equal(c.state, CHILD_STOPPING);
        assert_kill(&f, 0, -PID, SIGTERM);
        assert_int_equal(f.os.timer, 105 * S);   /* stop_timeout, not the start timeout */
        child_dispatch(&c, CHILD_EVENT_READY);   /* too late to matter */
        assert_int_equal(c.state, CHILD_STOPPING);

        setup_unready(&f, &c, 0);
        child_dispatch(&c, CHILD_EVENT_OUTDATE);
        assert_int_equal(c.state, CHILD_OUTDATED);
        assert_int_equal(f.os.timer, USEC_INFINITY);

        setup_unready(&f, &c, 0);
        child_recycle(&c, RECYCLE_RSS, "rss");   /* not running yet: nothing to recycle */
        assert_int_equal(c.state, CHILD_UNREADY);
}

static void test_hung_is_killed_and_fails(void **state) {
        static const enum child_state live[] = { CHILD_UNREADY, CHILD_RUNNING, CHILD_OUTDATED };
        struct fake f;
        struct child c;
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(live); i++) {
                print_message("hung in %s\n", child_state_name(live[i]));
                setup_unready(&f, &c, 0);
                if (live[i] != CHILD_UNREADY)
                        child_dispatch(&c, CHILD_EVENT_READY);
                if (live[i] == CHILD_OUTDATED)
                        child_dispatch(&c, CHILD_EVENT_OUTDATE);
                assert_int_equal(c.state, live[i]);
                child_dispatch(&c, CHILD_EVENT_HUNG);
                assert_kill(&f, 0, -PID, SIGKILL);
                assert_int_equal(c.state, live[i]);
                f.delay = 100 * MS;
                exit_with(&c, CLD_KILLED, SIGKILL);
                assert_false(f.end.asked_to_stop);
                assert_int_equal(c.state, CHILD_BACKOFF);
        }

        /* Idle or stopping: nothing to kill. */
        setup(&f, &c);
        child_dispatch(&c, CHILD_EVENT_HUNG);
        assert_int_equal(f.os.n_kills, 0);
}

static void test_not_ready_in_time_may_be_taken_as_ready(void **state) {
        struct fake f;
        struct child c;
        (void) state;

        setup_unready(&f, &c, 30 * S);
        f.take_as_ready = true;
        f.os.now = 160 * S;
        child_timer(&c);
        assert_int_equal(f.n_not_ready, 1);
        assert_int_equal(f.os.n_kills, 0);
        assert_int_equal(c.state, CHILD_RUNNING);
        assert_int_equal(f.os.timer, 130 * S);   /* the age limit, from the start: already due */
}

/* ---- the table as a whole ---- */

static void test_ignored_events_keep_the_state(void **state) {
        static const enum child_event ignored_when_idle[] = {
                CHILD_EVENT_STARTED, CHILD_EVENT_START_FAILED, CHILD_EVENT_EXITED, CHILD_EVENT_STOP,
                CHILD_EVENT_KILL, CHILD_EVENT_TIMER, CHILD_EVENT_RECYCLE, CHILD_EVENT_RECYCLE_READY,
                CHILD_EVENT_OUTDATE, CHILD_EVENT_READY, CHILD_EVENT_HUNG,
        };
        struct fake f;
        struct child c;
        (void) state;

        setup(&f, &c);
        for (size_t i = 0; i < ELEMENTSOF(ignored_when_idle); i++) {
                print_message("idle + %s\n", child_event_name(ignored_when_idle[i]));
                child_dispatch(&c, ignored_when_idle[i]);
                assert_int_equal(c.state, CHILD_IDLE);
        }
        assert_int_equal(f.os.n_kills, 0);

        setup_running(&f, &c, 0);
        assert_int_equal(child_start(&c, &request, 0), -EBUSY);
        child_dispatch(&c, CHILD_EVENT_RECYCLE_READY);
        assert_int_equal(c.state, CHILD_RUNNING);
        assert_int_equal(f.n_started, 1);
}

static void test_done_kills_and_forgets(void **state) {
        struct fake f;
        struct child c;
        (void) state;

        setup_running(&f, &c, 0);
        child_dispatch(&c, CHILD_EVENT_STOP);
        child_done(&c);
        assert_kill(&f, 2, -PID, SIGKILL);
        assert_false(f.os.watching);
        assert_int_equal(f.os.timer, USEC_INFINITY);
        assert_int_equal(c.state, CHILD_IDLE);
        assert_int_equal(f.n_ended, 0);
}

static void test_names(void **state) {
        (void) state;
        for (enum child_state s = 0; s < _CHILD_STATE_MAX; s++)
                assert_string_not_equal(child_state_name(s), "?");
        for (enum child_event e = 0; e < _CHILD_EVENT_MAX; e++)
                assert_string_not_equal(child_event_name(e), "?");
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_start_runs_and_watches),
                cmocka_unit_test(test_start_failure_permanent_backs_off),
                cmocka_unit_test(test_start_failure_transient_is_marked),
                cmocka_unit_test(test_start_failure_without_restart_stays_idle),
                cmocka_unit_test(test_watch_failure_is_a_start_failure),
                cmocka_unit_test(test_exit_while_running_is_classified),
                cmocka_unit_test(test_stop_signals_group_and_arms_kill_timer),
                cmocka_unit_test(test_exit_during_stop_was_asked_for),
                cmocka_unit_test(test_timeout_during_stop_kills_the_group),
                cmocka_unit_test(test_kill_at_once),
                cmocka_unit_test(test_stop_in_backoff_cancels_it),
                cmocka_unit_test(test_recycle_drains_then_is_replaced),
                cmocka_unit_test(test_age_limit_recycles),
                cmocka_unit_test(test_reload_outdates_running_and_draining),
                cmocka_unit_test(test_ignored_events_keep_the_state),
                cmocka_unit_test(test_done_kills_and_forgets),
                cmocka_unit_test(test_unready_until_ready),
                cmocka_unit_test(test_ready_without_age_disarms_the_timeout),
                cmocka_unit_test(test_not_ready_in_time_is_killed_and_fails),
                cmocka_unit_test(test_not_ready_in_time_may_be_taken_as_ready),
                cmocka_unit_test(test_unready_stops_and_outdates),
                cmocka_unit_test(test_hung_is_killed_and_fails),
                cmocka_unit_test(test_names),
        };
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
