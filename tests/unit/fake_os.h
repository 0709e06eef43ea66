/* SPDX-License-Identifier: MIT */
/*
 * A fake operating system for the child lifecycle (struct child_os): spawns
 * hand out pids without forking, kills and timers are recorded, the clock is
 * a number the test moves. One fake for every unit test that drives children:
 * the child table itself, the pool, the batch's task slots, the workloads.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conf/config.h"
#include "supervisor/child.h"
#include "supervisor/pool.h"

#define FAKE_OS_CALLS 64

struct fake_os {
        usec_t now;                       /* what now() answers */
        pid_t next_pid;                   /* the next spawn's pid (then one more) */
        int fail[FAKE_OS_CALLS];          /* the spawn's answer by call: a negative errno, or 0 for a pid */
        unsigned n_spawns;
        int watch_result;                 /* what watch() answers */
        bool watching;                    /* the last child watched is */
        usec_t timer;                     /* the last timer set; USEC_INFINITY: disarmed */
        int kills[FAKE_OS_CALLS][2];      /* {pgid, sig}, in order */
        size_t n_kills;                   /* all of them, recorded or not */
};

extern const struct child_os fake_child_os;

/* A fake at `now` whose first spawn gets pid `first_pid`. */
void fake_os_init(struct fake_os *f, usec_t now, pid_t first_pid);

/* The next spawn fails with error (a negative errno). */
void fake_os_fail_next(struct fake_os *f, int error);

/* The exit of c's process as the watch would report it: code CLD_EXITED
 * (status: the exit status) or CLD_KILLED (status: the signal). */
void fake_os_exit(struct child *c, int code, int status);

/* How many of the recorded kills sent sig; a pool also sends SIGCONT with
 * each stop signal and SIGKILL to an exited worker's process group, so a
 * test of which workers are stopped counts the stop signal alone. */
size_t fake_os_kills_of(const struct fake_os *f, int sig);

/* The target (-pgid) of the n-th recorded kill that sent sig, 0 if none. */
pid_t fake_os_kill_target(const struct fake_os *f, int sig, size_t n);

/* Asserts that the i-th kill was sig to process group pgid (given as -pgid). */
void fake_os_assert_kill(const struct fake_os *f, size_t i, pid_t target, int sig);

/* A pool on the fake OS (at 1000 s, first pid 100), for the tests of the
 * pool's own logic: fill config (and next, for a reload), then start it. */
struct fake_pool {
        sd_event *e;
        struct corral_config config, next;
        struct fake_os os;
        struct pool *p;
};

void fake_pool_start(struct fake_pool *fx);
void fake_pool_done(struct fake_pool *fx);
/* Runs the pool's deferred steps until none is left. */
void fake_pool_settle(struct fake_pool *fx);
