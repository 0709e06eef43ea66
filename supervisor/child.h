/* SPDX-License-Identifier: MIT */
/*
 * One child process's life, the one lifecycle every long-lived worker of
 * corral goes through: started through spawn_worker(), watched through a
 * child event source, stopped with stop_signal + SIGCONT to its process
 * group and SIGKILL after stop_timeout, its exit classified, and a wait
 * (the restart backoff) before it may start again.
 *
 * The life is a table, as in s6-supervise: actions[state][event] is a small
 * function that acts and names the next state. Nothing beside the state
 * says where the child is: "past a recycle limit" or "to be replaced" are
 * states, not flags. The operating system is reached through struct
 * child_os only (spawn, kill, the exit watch, one timer, the clock), so that
 * unit tests drive every transition without forking.
 *
 * What to do about an exit (restart it, after how long, or leave the slot
 * empty) is the owner's call: the child asks its owner through
 * struct child_owner and does what the answer says. The child does not log.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "common/util.h"
#include "supervisor/recycle.h"
#include "supervisor/spawn.h"

enum child_state {
        CHILD_IDLE,              /* no process: free to start */
        CHILD_STARTING,          /* the spawn is under way */
        CHILD_RUNNING,           /* its process runs and takes work */
        CHILD_DRAINING,          /* past a recycle limit: its owner takes its work away */
        CHILD_RECYCLED,          /* drained after a recycle limit: to be replaced; still runs */
        CHILD_OUTDATED,          /* on an old command, env, cwd, user or segments: to be replaced */
        CHILD_STOPPING,          /* stop_signal sent; SIGKILL when the timer fires */
        CHILD_BACKOFF,           /* ended or failed to start; may start again when the timer fires */
        CHILD_UNREADY,           /* runs, but has not said READY=1 yet (c->ready_timeout > 0) */
        _CHILD_STATE_MAX,
};

enum child_event {
        CHILD_EVENT_START,       /* the owner wants a process */
        CHILD_EVENT_STARTED,     /* the spawn succeeded */
        CHILD_EVENT_START_FAILED,/* the spawn failed (c->error says why) */
        CHILD_EVENT_EXITED,      /* the process ended (c->exit says how) */
        CHILD_EVENT_STOP,        /* stop gracefully; leave the backoff without starting */
        CHILD_EVENT_KILL,        /* SIGKILL now (a second Ctrl-C, or the owner goes away) */
        CHILD_EVENT_TIMER,       /* the deadline of the state passed: age, stop_timeout or backoff */
        CHILD_EVENT_RECYCLE,     /* past a recycle limit */
        CHILD_EVENT_RECYCLE_READY, /* its owner holds none of its work any more */
        CHILD_EVENT_OUTDATE,     /* its command (env, cwd, user, segments) is outdated */
        CHILD_EVENT_READY,       /* it said READY=1 (notify protocol) */
        CHILD_EVENT_HUNG,        /* it stopped its watchdog pings: SIGKILL, an exit like a crash */
        _CHILD_EVENT_MAX,
};

enum child_outcome {
        CHILD_SUCCESS,           /* exited 0 */
        CHILD_FAILURE,           /* exited non-zero */
        CHILD_SIGNAL,            /* killed by a signal */
        CHILD_START_FAILED,      /* never ran: see child_end.error */
        _CHILD_OUTCOME_MAX,
};

/* How a child ended, for its owner. */
struct child_end {
        enum child_outcome outcome;
        int status;              /* the exit status, or the signal */
        bool core_dumped;
        int error;               /* CHILD_START_FAILED: the negative errno */
        bool transient;          /* CHILD_START_FAILED: a lack of resources; retrying may cure it */
        bool asked_to_stop;      /* it was stopping: the owner asked for this end */
        usec_t uptime;
};

/* Returned by child_owner.ended: stay idle, do not start again by itself. */
#define CHILD_NO_RESTART USEC_INFINITY

struct child;

/* The operating system, as the child sees it. A failing call returns a
 * negative errno. The sd-event implementation is child_os_sd_event(). */
struct child_os {
        /* Starts the process: its pid, or a negative errno (see spawn_worker). */
        pid_t (*spawn)(void *os, const struct spawn_request *req);
        /* Watches c->pid: child_exited(c, si) once it has ended. On failure
         * it has killed and reaped the process. */
        int (*watch)(void *os, struct child *c);
        /* Stops watching, after the exit. Cannot fail. */
        void (*unwatch)(void *os, struct child *c);
        /* Frees what it holds for c (watch, timer): the child goes away. Cannot fail. */
        void (*release)(void *os, struct child *c);
        int (*kill)(void *os, pid_t pgid, int sig);
        /* child_timer(c) at `when` (CLOCK_MONOTONIC); USEC_INFINITY disarms. */
        int (*set_timer)(void *os, struct child *c, usec_t when);
        usec_t (*now)(void *os);
};

/* The owner's side. Every callback is made with the child already in a
 * state that is safe to act on: the callback may send the child events. */
struct child_owner {
        /* It runs (c->pid). A failed start goes to `ended` instead. */
        void (*started)(struct child *c, void *userdata);
        /* It ended or could not start. Returns how long to wait before it may
         * start again (CHILD_BACKOFF, then `ready`), or CHILD_NO_RESTART. */
        usec_t (*ended)(struct child *c, const struct child_end *end, void *userdata);
        /* It went past a recycle limit: take its work away, then send
         * CHILD_EVENT_RECYCLE_READY (at once when there is none). */
        void (*recycle)(struct child *c, void *userdata);
        /* Its backoff is over: it is idle and may be started. */
        void (*ready)(struct child *c, void *userdata);
        /* stop_timeout passed after the stop signal: SIGKILL was sent. */
        void (*killed)(struct child *c, void *userdata);
        /* Its state changed from `old`. */
        void (*changed)(struct child *c, enum child_state old, void *userdata);
        /* Optional: it was not ready within ready_timeout. Returns true to
         * kill it (SIGKILL; its exit follows, a failure not asked for), false
         * to take it as ready. NULL: kill. */
        bool (*not_ready)(struct child *c, void *userdata);
};

/* What stopping means, shared by every child of an owner (a reload changes it). */
struct child_stop {
        int signal;              /* workers.stop_signal */
        usec_t timeout;          /* workers.stop_timeout */
};

struct child {
        enum child_state state;
        pid_t pid;               /* also its process group; 0 when none */
        usec_t started;          /* CLOCK_MONOTONIC */
        usec_t age;              /* recycle it after running this long; 0 = never */
        usec_t ready_timeout;    /* set by the owner before a start: 0, it is ready when it runs;
                                  * else UNREADY until READY, killed if not ready this long */
        enum recycle_reason recycle_reason;   /* DRAINING and RECYCLED: which limit */
        char recycle_why[96];    /* "rss 612 MiB over 512 MiB", for the log */

        /* Set for one event: the request of START, the error of START_FAILED,
         * the status of EXITED. */
        const struct spawn_request *request;
        int error;
        siginfo_t exit;

        const struct child_stop *stop;
        const struct child_os *os;
        void *os_data;
        const struct child_owner *owner;
        void *userdata;

        /* The os's handles (sd-event sources); the fake OS ignores them. */
        void *exit_source;
        void *timer_source;
};

/* An idle child. The pointers must outlive it. Cannot fail. */
void child_init(struct child *c, const struct child_os *os, void *os_data, const struct child_stop *stop,
                const struct child_owner *owner, void *userdata);

/* Kills (SIGKILL to the group) whatever runs and forgets it, timers
 * included; the child is idle after. For an owner going away. Cannot fail. */
void child_done(struct child *c);

/* Feeds one event to the table. Cannot fail: an event a state has no use
 * for is ignored. */
void child_dispatch(struct child *c, enum child_event event);

/* Starts the process req describes (the child must be idle); `age`: recycle
 * after running this long, 0 = never. Returns 0 when it runs, else the spawn's
 * negative errno (the owner's `ended` has been told already). */
int child_start(struct child *c, const struct spawn_request *req, usec_t age);

/* The owner could not even prepare the start (no memory, no pipes): a
 * start failure like the spawn's, through the same transitions. Returns error. */
int child_fail_start(struct child *c, int error);

/* The child went past a recycle limit; `why` is for the log. Ignored unless running. */
void child_recycle(struct child *c, enum recycle_reason reason, const char *why);

/* For the os: the watched process ended, / the timer fired. */
void child_exited(struct child *c, const siginfo_t *si);
void child_timer(struct child *c);

/* Whether the child has a process (live, or stopping). */
bool child_has_process(const struct child *c);

/* Whether it runs and is not being stopped (unready, running, draining, recycled or outdated). */
bool child_is_live(const struct child *c);

/* Whether it runs but has not said READY=1 yet. */
bool child_is_unready(const struct child *c);

/* Whether it is to be replaced (recycled or outdated). */
bool child_is_stale(const struct child *c);

/* What an error of a start (a negative errno) says of trying again: the
 * one list of errnos for every owner of children. Which one an errno in
 * neither list goes with is the owner's call: the pool takes it as a
 * command that cannot run, the batch tries the task again. */
enum child_error_kind {
        CHILD_ERROR_OTHER,
        CHILD_ERROR_CANNOT_RUN,   /* exec refused this command (ENOENT, EACCES, E2BIG, ...) */
        CHILD_ERROR_SHORTAGE,     /* a lack of resources a later try may not meet (EMFILE, ENOMEM, ...) */
};
enum child_error_kind child_error_kind(int error);

/* Whether error is a shortage (CHILD_ERROR_SHORTAGE). */
bool child_error_is_transient(int error);

const char *child_state_name(enum child_state s);
const char *child_event_name(enum child_event e);

/* "exited with status 1", "was killed by signal KILL (core dumped)", or
 * "could not start: No such file or directory". Returns buf. */
const char *child_end_describe(const struct child_end *end, char *buf, size_t size);

/* The operating system through sd-event: pass the loop as os_data. */
extern const struct child_os child_os_sd_event;
