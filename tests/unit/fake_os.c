/* SPDX-License-Identifier: MIT */
/* The fake operating system of fake_os.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <signal.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "tests/unit/fake_os.h"

static pid_t fake_spawn(void *os, const struct spawn_request *req) {
        struct fake_os *f = os;
        (void) req;
        unsigned i = f->n_spawns++;
        if (i < FAKE_OS_CALLS && f->fail[i] < 0)
                return f->fail[i];
        return f->next_pid++;
}

static int fake_watch(void *os, struct child *c) {
        struct fake_os *f = os;
        (void) c;
        f->watching = f->watch_result >= 0;
        return f->watch_result;
}

static void fake_unwatch(void *os, struct child *c) {
        (void) c;
        ((struct fake_os *) os)->watching = false;
}

static void fake_release(void *os, struct child *c) {
        struct fake_os *f = os;
        (void) c;
        f->watching = false;
        f->timer = USEC_INFINITY;
}

static int fake_kill(void *os, pid_t pgid, int sig) {
        struct fake_os *f = os;
        if (f->n_kills < FAKE_OS_CALLS) {
                f->kills[f->n_kills][0] = pgid;
                f->kills[f->n_kills][1] = sig;
        }
        f->n_kills++;
        return 0;
}

static int fake_set_timer(void *os, struct child *c, usec_t when) {
        (void) c;
        ((struct fake_os *) os)->timer = when;
        return 0;
}

static usec_t fake_now(void *os) {
        return ((struct fake_os *) os)->now;
}

const struct child_os fake_child_os = {
        .spawn = fake_spawn, .watch = fake_watch, .unwatch = fake_unwatch, .release = fake_release,
        .kill = fake_kill, .set_timer = fake_set_timer, .now = fake_now,
};

void fake_os_init(struct fake_os *f, usec_t now, pid_t first_pid) {
        *f = (struct fake_os) { .now = now, .next_pid = first_pid, .timer = USEC_INFINITY };
}

void fake_os_fail_next(struct fake_os *f, int error) {
        if (f->n_spawns < FAKE_OS_CALLS)
                f->fail[f->n_spawns] = error;
}

void fake_os_exit(struct child *c, int code, int status) {
        siginfo_t si = { .si_code = code, .si_status = status };
        child_exited(c, &si);
}

size_t fake_os_kills_of(const struct fake_os *f, int sig) {
        size_t n = 0;
        for (size_t i = 0; i < f->n_kills && i < FAKE_OS_CALLS; i++)
                n += f->kills[i][1] == sig;
        return n;
}

pid_t fake_os_kill_target(const struct fake_os *f, int sig, size_t n) {
        for (size_t i = 0; i < f->n_kills && i < FAKE_OS_CALLS; i++)
                if (f->kills[i][1] == sig && n-- == 0)
                        return f->kills[i][0];
        return 0;
}

void fake_os_assert_kill(const struct fake_os *f, size_t i, pid_t target, int sig) {
        assert_true(i < f->n_kills && i < FAKE_OS_CALLS);
        assert_int_equal(f->kills[i][0], target);
        assert_int_equal(f->kills[i][1], sig);
}

void fake_pool_start(struct fake_pool *fx) {
        fake_os_init(&fx->os, 1000 * USEC_PER_SEC, 100);
        assert_int_equal(sd_event_new(&fx->e), 0);
        assert_int_equal(pool_new_os(fx->e, &fx->config, &fake_child_os, &fx->os, &fx->p), 0);
}

void fake_pool_done(struct fake_pool *fx) {
        fx->p = pool_free(fx->p);
        fx->e = sd_event_unref(fx->e);
}

void fake_pool_settle(struct fake_pool *fx) {
        while (sd_event_run(fx->e, 0) > 0)
                ;
}
