/* SPDX-License-Identifier: MIT */
/*
 * The workload interface (workload.h) on a fake operating system: which
 * workload a configuration makes, the pool driven through the interface
 * alone, and a per-task batch's tasks going through the child lifecycle
 * (TERM and tasks.timeout: stop_signal + SIGCONT to the group, SIGKILL after
 * stop_timeout), all without forking.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "conf/config.h"
#include "supervisor/batch.h"
#include "supervisor/batch_types.h"
#include "supervisor/pool.h"
#include "supervisor/sampler.h"
#include "supervisor/workload.h"
#include "supervisor/workload_new.h"
#include "tests/unit/fake_os.h"

#define S USEC_PER_SEC

static char *command[] = { "/bin/true", NULL };

struct owner_log {
        unsigned stopping;
};

static void owner_stopping(void *userdata) {
        ((struct owner_log *) userdata)->stopping++;
}

static void config_setup(struct corral_config *c, unsigned max) {
        config_init(c);
        c->command = command;
        c->workers.min = 1;
        c->workers.max = max;
        c->workers.stop_signal = SIGTERM;
        c->workers.stop_timeout = 5 * S;
}

/* Runs the loop's pending work (deferred steps, pipes at EOF). */
static void settle(sd_event *e) {
        while (sd_event_run(e, 0) > 0)
                ;
}

static int exit_code(sd_event *e) {
        int code = -1;
        return sd_event_get_exit_code(e, &code) >= 0 ? code : -1;
}

/* ---- which workload ---- */

static void test_the_config_picks_the_workload(void **state) {
        static const struct {
                const char *from;
                enum task_mode mode;
                const char *kind;
        } cases[] = {
                { NULL,        TASK_MODE_PER_TASK, "pool" },
                { "/dev/null", TASK_MODE_PER_TASK, "batch" },
                { "/dev/null", TASK_MODE_STREAM,   "stream" },
        };
        struct owner_log log = {};
        const struct workload_owner owner = { .stopping = owner_stopping, .userdata = &log };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct corral_config c;
                struct workload w = {};
                sd_event *e = NULL;
                print_message("case %zu: %s\n", i, cases[i].kind);
                config_setup(&c, 3);
                c.tasks.from = (char *) cases[i].from;
                c.tasks.mode = cases[i].mode;
                assert_int_equal(sd_event_new(&e), 0);
                assert_int_equal(workload_new(e, &c, &(struct workload_options) {}, &owner, &w), 0);
                assert_string_equal(w.ops->kind, cases[i].kind);
                assert_int_equal(workload_max(&w), 3);
                assert_false(workload_stopping(&w));
                workload_done(&w);
                assert_null(w.ops);
                c.tasks.from = NULL;
                c.command = NULL;   /* static */
                config_done(&c);
                sd_event_unref(e);
        }
}

/* ---- a pool, through the interface alone ---- */

struct pool_fx {
        sd_event *e;
        struct corral_config config;
        struct fake_os os;
        struct owner_log log;
        struct workload_owner owner;
        struct workload w;
        struct sampler *sampler;
        struct metrics_worker rows[8];
};

static void pool_fx_setup(struct pool_fx *fx) {
        struct pool *p;
        *fx = (struct pool_fx) {};
        fake_os_init(&fx->os, 1000 * S, 100);
        config_setup(&fx->config, 3);
        fx->owner = (struct workload_owner) { .stopping = owner_stopping, .userdata = &fx->log };
        assert_int_equal(sd_event_new(&fx->e), 0);
        assert_int_equal(pool_new_os(fx->e, &fx->config, &fake_child_os, &fx->os, &p), 0);
        pool_workload_init(p, &fx->owner, &fx->w);
        assert_int_equal(sampler_new(&fx->sampler), 0);
}

static void pool_fx_done(struct pool_fx *fx) {
        workload_done(&fx->w);
        fx->sampler = sampler_free(fx->sampler);
        fx->e = sd_event_unref(fx->e);
}

static void snapshot(struct pool_fx *fx, struct metrics_snapshot *s) {
        *s = (struct metrics_snapshot) {};
        assert_true(workload_slots(&fx->w) <= ELEMENTSOF(fx->rows));
        workload_fill_snapshot(&fx->w, s, &(struct workload_view) {
                                       .sampler = fx->sampler, .now = fx->os.now, .rows = fx->rows });
}

static void test_pool_started_resized_and_reported_through_the_interface(void **state) {
        struct pool_fx fx;
        struct metrics_snapshot s;
        pid_t pids[8];
        char what[64];
        (void) state;

        pool_fx_setup(&fx);
        assert_int_equal(workload_start(&fx.w, 2), 0);
        settle(fx.e);
        assert_int_equal(fx.os.n_spawns, 2);
        assert_int_equal(workload_size(&fx.w), 2);
        assert_int_equal(workload_running_pids(&fx.w, pids, ELEMENTSOF(pids)), 2);
        workload_describe(&fx.w, what, sizeof(what));
        assert_string_equal(what, "workers 2/3");

        /* Down to one: the newest worker gets the stop signal. */
        workload_resize(&fx.w, 1);
        settle(fx.e);
        fake_os_assert_kill(&fx.os, 0, -101, SIGTERM);
        fake_os_assert_kill(&fx.os, 1, -101, SIGCONT);
        snapshot(&fx, &s);
        assert_int_equal(s.desired, 1);
        assert_int_equal(s.max, 3);
        assert_int_equal(s.workers[METRICS_WORKER_RUNNING], 1);
        assert_int_equal(s.workers[METRICS_WORKER_STOPPING], 1);
        assert_int_equal(s.n_worker_rows, 2);
        assert_int_equal(s.utilization, 0);   /* no pool.cpu signal: unknown, not set */

        /* With the pool's CPU in the sample, it is the pool's busy share. */
        signals_set(&s.signals, SIGNAL_POOL_CPU, 50);
        workload_fill_snapshot(&fx.w, &s, &(struct workload_view) {
                                       .sampler = fx.sampler, .now = fx.os.now, .rows = fx.rows });
        assert_true(s.utilization > 0.49 && s.utilization < 0.51);
        pool_fx_done(&fx);
}

static void test_pool_stop_through_the_interface_ends_the_loop_with_0(void **state) {
        struct pool_fx fx;
        (void) state;

        pool_fx_setup(&fx);
        assert_int_equal(workload_start(&fx.w, 2), 0);
        workload_stop(&fx.w);
        assert_true(workload_stopping(&fx.w));
        assert_int_equal(fx.log.stopping, 1);
        struct pool *p = fx.w.impl;
        fake_os_exit(&p->workers[0]->child, CLD_EXITED, 0);
        fake_os_exit(&p->workers[1]->child, CLD_KILLED, SIGTERM);
        settle(fx.e);
        assert_int_equal(exit_code(fx.e), 0);
        pool_fx_done(&fx);
}

/* ---- a batch's tasks on the child lifecycle ---- */

struct batch_fx {
        sd_event *e;
        struct corral_config config;
        struct fake_os os;
        struct owner_log log;
        struct workload_owner owner;
        struct workload w;
        char path[64];
};

static void batch_fx_setup(struct batch_fx *fx, unsigned max, usec_t timeout) {
        *fx = (struct batch_fx) {};
        fake_os_init(&fx->os, 1000 * S, 100);
        config_setup(&fx->config, max);
        fx->config.tasks.timeout = timeout;
        snprintf(fx->path, sizeof(fx->path), "/tmp/corral-test-workload-XXXXXX");
        int fd = mkstemp(fx->path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "a\nb\nc\nd\n", 8), 8);
        close(fd);
        fx->config.tasks.from = fx->path;
        fx->owner = (struct workload_owner) { .stopping = owner_stopping, .userdata = &fx->log };
        assert_int_equal(sd_event_new(&fx->e), 0);
        assert_int_equal(workload_new(fx->e, &fx->config, &(struct workload_options) { .quiet = true },
                                      &fx->owner, &fx->w), 0);
        batch_set_os(fx->w.impl, &fake_child_os, &fx->os);
}

static void batch_fx_done(struct batch_fx *fx) {
        workload_done(&fx->w);
        unlink(fx->path);
        fx->e = sd_event_unref(fx->e);
}

static struct child *task_child(struct batch_fx *fx, unsigned slot) {
        return &((struct batch *) fx->w.impl)->slots[slot]->child;
}

/* Two tasks running (pids 100 and 101), then TERM: each gets stop_signal
 * and SIGCONT on its process group, and its kill timer. */
static void batch_fx_two_tasks_stopped(struct batch_fx *fx) {
        batch_fx_setup(fx, 2, 0);
        assert_int_equal(workload_start(&fx->w, 2), 0);
        settle(fx->e);
        assert_int_equal(fx->os.n_spawns, 2);
        assert_int_equal(task_child(fx, 0)->state, CHILD_RUNNING);
        workload_stop(&fx->w);
        assert_int_equal(fx->log.stopping, 1);
        assert_int_equal(fx->os.n_kills, 4);
        fake_os_assert_kill(&fx->os, 0, -100, SIGTERM);
        fake_os_assert_kill(&fx->os, 1, -100, SIGCONT);
        fake_os_assert_kill(&fx->os, 2, -101, SIGTERM);
        fake_os_assert_kill(&fx->os, 3, -101, SIGCONT);
        assert_int_equal(fx->os.timer, fx->os.now + 5 * S);
        assert_int_equal(task_child(fx, 1)->state, CHILD_STOPPING);
}

static void test_term_stops_each_task_then_kills_after_stop_timeout(void **state) {
        struct batch_fx fx;
        (void) state;

        batch_fx_two_tasks_stopped(&fx);

        /* One acts on it; the other is killed once stop_timeout has passed. */
        fake_os_exit(task_child(&fx, 0), CLD_EXITED, 0);
        settle(fx.e);
        fx.os.now += 5 * S;
        fake_os_assert_kill(&fx.os, 4, -100, SIGKILL);   /* what is left of the ended task's group */
        child_timer(task_child(&fx, 1));
        fake_os_assert_kill(&fx.os, 5, -101, SIGKILL);
        fake_os_exit(task_child(&fx, 1), CLD_KILLED, SIGKILL);
        settle(fx.e);
        assert_int_equal(exit_code(fx.e), 1);   /* tasks were left undone */
        batch_fx_done(&fx);
}

static void test_tasks_stopped_together_are_killed_together(void **state) {
        struct batch_fx fx;
        (void) state;

        batch_fx_two_tasks_stopped(&fx);
        /* Neither acts on TERM: the first timer kills both, a second TERM is not needed. */
        fx.os.now += 5 * S;
        child_timer(task_child(&fx, 0));
        assert_int_equal(fx.os.n_kills, 6);
        fake_os_assert_kill(&fx.os, 4, -100, SIGKILL);
        fake_os_assert_kill(&fx.os, 5, -101, SIGKILL);
        assert_int_equal(fx.os.timer, USEC_INFINITY);   /* the other's kill timer is disarmed */
        fake_os_exit(task_child(&fx, 0), CLD_KILLED, SIGKILL);
        fake_os_exit(task_child(&fx, 1), CLD_KILLED, SIGKILL);
        settle(fx.e);
        assert_int_equal(exit_code(fx.e), 1);
        batch_fx_done(&fx);
}

static void test_a_task_past_its_timeout_is_stopped_as_a_worker_is(void **state) {
        struct batch_fx fx;
        (void) state;

        batch_fx_setup(&fx, 1, 2 * S);
        assert_int_equal(workload_start(&fx.w, 1), 0);
        settle(fx.e);
        struct child *c = task_child(&fx, 0);
        assert_int_equal(fx.os.timer, fx.os.now + 2 * S);   /* tasks.timeout is its age limit */

        fx.os.now += 2 * S;
        child_timer(c);
        assert_int_equal(c->state, CHILD_STOPPING);
        fake_os_assert_kill(&fx.os, 0, -100, SIGTERM);
        fake_os_assert_kill(&fx.os, 1, -100, SIGCONT);
        fx.os.now += 5 * S;
        child_timer(c);
        fake_os_assert_kill(&fx.os, 2, -100, SIGKILL);
        fake_os_exit(c, CLD_KILLED, SIGKILL);
        settle(fx.e);
        /* It failed (no retries); the next task runs in its slot. */
        struct batch *b = fx.w.impl;
        assert_int_equal(b->failed, 1);
        assert_int_equal(fx.os.n_spawns, 2);
        assert_int_equal(c->state, CHILD_RUNNING);
        batch_fx_done(&fx);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_the_config_picks_the_workload),
                cmocka_unit_test(test_pool_started_resized_and_reported_through_the_interface),
                cmocka_unit_test(test_pool_stop_through_the_interface_ends_the_loop_with_0),
                cmocka_unit_test(test_term_stops_each_task_then_kills_after_stop_timeout),
                cmocka_unit_test(test_tasks_stopped_together_are_killed_together),
                cmocka_unit_test(test_a_task_past_its_timeout_is_stopped_as_a_worker_is),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
