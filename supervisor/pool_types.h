/* SPDX-License-Identifier: MIT */
/*
 * The pool's data (see pool.h): its workers, its slots and stream mode's
 * hooks, for pool.c, the parts split from it (pool_start.c,
 * pool_scale_in.c) and stream_types.h, none of which needs pool.c itself.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "conf/config.h"
#include "supervisor/child.h"
#include "supervisor/listen.h"
#include "supervisor/notify.h"
#include "supervisor/recycle.h"
#include "supervisor/restart.h"
#include "supervisor/shm.h"
#include "supervisor/workload.h"

/* A worker as the rest of corral sees it; the pool keeps it equal to its
 * child's state (child.h), which is the one that decides. */
enum worker_state {
        WORKER_EMPTY,            /* no process: idle, or waiting out the restart backoff */
        WORKER_RUNNING,          /* running, draining, or to be replaced */
        WORKER_STOPPING,         /* stop_signal sent */
        WORKER_STARTING,         /* runs, has not said READY=1 yet (workers.notify) */
        _WORKER_STATE_MAX,
};

enum worker_outcome {            /* the first three of enum child_outcome */
        OUTCOME_SUCCESS,         /* exited 0 */
        OUTCOME_FAILURE,         /* exited non-zero */
        OUTCOME_SIGNAL,          /* killed by a signal */
        _OUTCOME_MAX,
};

struct pool;

struct worker {
        struct pool *pool;
        unsigned id;
        enum worker_state state; /* read-only: child.state, seen from outside */
        struct child child;      /* its life: pid, started, state */
        uint64_t restarts;       /* times this slot was refilled */
        struct shm_set *shm;     /* the shared segments it was given (a reference) */
        struct recycle_limits recycle;   /* workers.recycle: its own limits, drawn when it started */
        struct notify_endpoint *notify;  /* its NOTIFY_SOCKET (workers.notify), kept across restarts */
        struct notify_handler *notify_handler;   /* owned: the endpoint's, pointing back here */
        char status[NOTIFY_STATUS_MAX];  /* its last STATUS=, "" if none */
};

/* Stream mode's view of the workers' lives (NULL for a plain pool). */
struct pool_hooks {
        /* Before a worker starts: its stdin and stdout, {read end, write end}
         * of two pipes, whose other ends the hook keeps. The pool closes these
         * after the spawn. 0 or a negative errno (the start fails). */
        int (*open_stdio)(struct pool *p, struct worker *w, int ret_stdio[2], void *userdata);
        /* After the spawn: error 0 when the worker runs, else why it did not. */
        void (*started)(struct pool *p, struct worker *w, int error, void *userdata);
        /* The worker ended (still described by w). Returns true when that was
         * expected: it is neither replaced nor counted as a failure. Otherwise
         * it is replaced after the backoff whatever workers.restart says: a
         * stream worker is never "done". */
        bool (*ended)(struct pool *p, struct worker *w, bool asked_to_stop, void *userdata);
        /* The worker went past a recycle limit. The owner gives no more work
         * to it and calls pool_worker_recycle_ready() once it holds none. */
        void (*recycle)(struct pool *p, struct worker *w, void *userdata);
        void *userdata;
};

struct pool {
        sd_event *event;
        const struct corral_config *config;
        struct worker **workers; /* n_alloc slots, indexed by id; new workers go below `max` */
        unsigned n_alloc;
        unsigned max;
        unsigned desired;
        unsigned done;           /* workers that ended for good (restart: on-failure, never) */
        struct shm_set *shm;     /* the segments new workers get (a reference) */
        struct restart_limits limits;
        struct restart_state restart;
        usec_t restart_at;       /* when the earliest slot in its backoff is refilled */
        struct child_stop stop;  /* what the children's stop means (a reload changes it) */
        sd_event_source *kick;   /* runs pool_reconcile() after the children's events */
        const struct child_os *os;   /* how the children reach the system (tests: a fake) */
        void *os_data;
        bool started_once;       /* a worker ran: from now on a command that cannot run is not exit 2 */
        bool stopping;
        bool crash_loop;
        int exit_status;         /* the loop's, once stopped */
        char last_exit[96];      /* "exited with status 1", for the crash-loop report */
        uint64_t restarts;
        uint64_t exits[_OUTCOME_MAX];
        uint64_t recycles[_RECYCLE_MAX];
        uint64_t rng;            /* recycle_random()'s state, for the jitter */

        /* The controller: told when the pool starts stopping (a crash loop
         * included), asked where a new worker goes (workers.placement). */
        const struct workload_owner *owner;

        const struct pool_hooks *hooks;
        const struct listen_set *listen;   /* the sockets every worker gets (not owned); NULL: none */
};
