/* SPDX-License-Identifier: MIT */
/*
 * The one interface between the controller and what it sizes: a workload.
 * corral has three: the long-lived pool of workers (pool.c), the per-task
 * batch (batch.c, --tasks) and the stream (stream.c, --stream: the pool's
 * workers fed lines). The controller samples, decides a size and reports the
 * same way for each; everything that differs sits behind these operations,
 * a small table of function pointers in the style of systemd's unit vtables.
 *
 * The size is "workers running" for a pool and a stream, "tasks at once" for
 * a batch. An operation a workload has no use for is NULL; the inline
 * helpers below then do nothing.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "conf/config.h"
#include "metrics/corral_metrics.h"
#include "policy/signals.h"
#include "supervisor/shm.h"

struct sampler;

/* What the controller lends a workload for the workers' rows of a snapshot. */
struct workload_view {
        const struct sampler *sampler;   /* per-process CPU and RSS of the last sample */
        usec_t now;                      /* CLOCK_MONOTONIC */
        struct metrics_worker *rows;     /* room for workload_slots() rows */
};

struct listen_set;

/* The controller's side, called by the workload. */
struct workload_owner {
        /* A stop began (TERM, the input is done, a crash loop): say so at once. */
        void (*stopping)(void *userdata);
        /* A worker became ready (READY=1, or taken as ready after
         * start_timeout): say so at once. NULL: nothing to say. */
        void (*ready)(void *userdata);
        /* workers.placement: the CPU worker `id` is pinned to, or -1. NULL: none. */
        int (*place)(unsigned id, void *userdata);
        /* How busy a worker was lately (its CPU, % of one core), or a negative
         * number when unknown: scaling in stops the least busy. NULL: unknown. */
        double (*busy)(pid_t pid, void *userdata);
        void *userdata;
};

struct workload_ops {
        const char *kind;                /* "pool", "batch", "stream": for the log */
        /* Starts at `size` (logged). 0 or a negative errno. */
        int (*start)(void *w, unsigned size);
        /* The size it is heading for, and its bound. */
        unsigned (*size)(const void *w);
        unsigned (*max)(const void *w);
        /* Moves to n (clamped to [1 or 0, max]). Cannot fail. */
        void (*resize)(void *w, unsigned n);
        /* TERM/INT: stops gracefully; a second call kills at once. */
        void (*stop)(void *w);
        bool (*stopping)(const void *w);
        /* A reload: a negative errno (logged) refuses it, nothing changed. */
        int (*reconfigure)(void *w, const struct corral_config *config);
        /* New workers or tasks get these segments (a reference is taken). */
        int (*set_shm)(void *w, struct shm_set *shm);
        /* How many workers or task places there may be: rows and pids to make room for. */
        size_t (*slots)(const void *w);
        /* Writes the pids of up to n running processes; returns how many. */
        size_t (*running_pids)(const void *w, pid_t *pids, size_t n);
        /* Adds its own signals (tasks.*) to a sample's. */
        void (*fill_signals)(void *w, struct signals *s);
        /* After a sample: limits that need one (workers.recycle.rss). */
        void (*check_limits)(void *w, const struct sampler *sampler);
        /* Its fields of a snapshot, once; s->signals is set already. */
        void (*fill_snapshot)(const void *w, struct metrics_snapshot *s, const struct workload_view *v);
        /* "workers 2/4" or "tasks 3/8 running", for the systemd status. */
        void (*describe)(const void *w, char *buf, size_t size);
        /* Kills (SIGKILL) what still runs, frees. Accepts NULL. */
        void (*free)(void *w);
};

struct workload {
        const struct workload_ops *ops;
        void *impl;
};

struct workload_options {
        bool resume, resume_failed;      /* batch: --resume, --resume-failed */
        bool quiet;                      /* -q: no progress bar, unless --bar */
        bool bar;                        /* --bar: a bar even when stderr is no terminal */
        const struct listen_set *listen; /* pool, stream: listen:'s sockets for every worker (borrowed) */
};

/* Each kind's constructor, for workload_new() (workload_new.h) and the unit tests. */
int pool_workload_new(sd_event *e, const struct corral_config *config, const struct workload_options *o,
                      const struct workload_owner *owner, struct workload *ret);
int batch_workload_new(sd_event *e, const struct corral_config *config, const struct workload_options *o,
                       const struct workload_owner *owner, struct workload *ret);
int stream_workload_new(sd_event *e, const struct corral_config *config, const struct workload_options *o,
                        const struct workload_owner *owner, struct workload *ret);

/* Frees it; the workload is empty after. Accepts an empty one. */
static inline void workload_done(struct workload *w) {
        if (w->ops)
                w->ops->free(w->impl);
        *w = (struct workload) {};
}

static inline int workload_start(struct workload *w, unsigned size) {
        return w->ops->start(w->impl, size);
}

static inline unsigned workload_size(const struct workload *w) {
        return w->ops->size(w->impl);
}

static inline unsigned workload_max(const struct workload *w) {
        return w->ops->max(w->impl);
}

static inline void workload_resize(struct workload *w, unsigned n) {
        w->ops->resize(w->impl, n);
}

static inline void workload_stop(struct workload *w) {
        w->ops->stop(w->impl);
}

static inline bool workload_stopping(const struct workload *w) {
        return w->ops->stopping(w->impl);
}

static inline int workload_reconfigure(struct workload *w, const struct corral_config *config) {
        return w->ops->reconfigure(w->impl, config);
}

static inline int workload_set_shm(struct workload *w, struct shm_set *shm) {
        return w->ops->set_shm(w->impl, shm);
}

static inline size_t workload_slots(const struct workload *w) {
        return w->ops->slots(w->impl);
}

static inline size_t workload_running_pids(const struct workload *w, pid_t *pids, size_t n) {
        return w->ops->running_pids(w->impl, pids, n);
}

static inline void workload_fill_signals(struct workload *w, struct signals *s) {
        if (w->ops->fill_signals)
                w->ops->fill_signals(w->impl, s);
}

static inline void workload_check_limits(struct workload *w, const struct sampler *sampler) {
        if (w->ops->check_limits)
                w->ops->check_limits(w->impl, sampler);
}

static inline void workload_fill_snapshot(const struct workload *w, struct metrics_snapshot *s,
                                          const struct workload_view *v) {
        w->ops->fill_snapshot(w->impl, s, v);
}

static inline void workload_describe(const struct workload *w, char *buf, size_t size) {
        w->ops->describe(w->impl, buf, size);
}
