/* SPDX-License-Identifier: MIT */
/*
 * The worker pool: a set of slots (worker ids 0..max-1), each empty or holding
 * one running or stopping worker. It keeps `desired` workers running, replaces
 * those that end after the restart backoff, gives up on a crash loop, and stops
 * gracefully. Child exits and timers are sd-event sources on the caller's loop;
 * when the pool has stopped it ends the loop with its exit status.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "conf/config.h"
#include "supervisor/restart.h"

enum worker_state {
        WORKER_EMPTY,            /* the slot is free */
        WORKER_RUNNING,
        WORKER_STOPPING,         /* stop_signal sent */
        _WORKER_STATE_MAX,
};

struct pool;

struct worker {
        struct pool *pool;
        unsigned id;
        enum worker_state state;
        pid_t pid;               /* also its process group */
        usec_t started;          /* CLOCK_MONOTONIC */
        sd_event_source *child;
        sd_event_source *kill_timer;   /* SIGKILL once stop_timeout has passed */
};

enum worker_outcome {
        OUTCOME_SUCCESS,         /* exited 0 */
        OUTCOME_FAILURE,         /* exited non-zero */
        OUTCOME_SIGNAL,          /* killed by a signal */
        _OUTCOME_MAX,
};

struct pool {
        sd_event *event;
        const struct corral_config *config;
        struct worker *workers;  /* config->workers.max slots, indexed by id */
        unsigned n_slots;
        unsigned desired;
        unsigned done;           /* workers that ended for good (restart: on-failure, never) */
        struct restart_limits limits;
        struct restart_state restart;
        sd_event_source *restart_timer;
        bool stopping;
        int exit_status;         /* the loop's, once stopped */
        char last_exit[96];      /* "exited with status 1", for the crash-loop report */
        uint64_t restarts;
        uint64_t exits[_OUTCOME_MAX];
};

/* A pool of config->workers.max slots on loop `e`; the config must outlive it. */
int pool_new(sd_event *e, const struct corral_config *config, struct pool **ret);

/* Kills (SIGKILL) and reaps any worker still there, then frees. Accepts NULL. */
struct pool *pool_free(struct pool *p);

/* Asks for n running workers (clamped to the slots): starts the missing ones
 * now, stops the most recently started ones beyond n. */
int pool_set_desired(struct pool *p, unsigned n);

/* Graceful stop: no more starts, stop_signal to every worker's process group,
 * SIGKILL after stop_timeout; the loop then exits with `status`. A second call
 * kills at once (the user pressed Ctrl-C twice). */
void pool_stop(struct pool *p, int status);

unsigned pool_count(const struct pool *p, enum worker_state state);

/* The lowest free slot, or -ENOSPC. Worker ids are reused lowest first. */
int pool_free_slot(const struct worker *workers, unsigned n);
