/* SPDX-License-Identifier: MIT */
/*
 * What corral reports about itself, as one plain struct, and its two renderings:
 * the Prometheus text of DESIGN.md "Metrics" (here) and the /status JSON
 * (status_json.h). Pure.
 *
 * The supervisor fills a struct metrics_snapshot on its loop thread once per
 * sample, renders it there, and publishes the rendered strings to the HTTP
 * server (metrics/http.h) and the textfile. Nothing here keeps a pointer into
 * the snapshot, so the HTTP thread never sees the pool. The snapshot only
 * borrows the strings and arrays it points to: they must stay valid while a
 * render function runs, no longer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/signals.h"

enum metrics_worker_state {
        METRICS_WORKER_STARTING,  /* forked, not yet counted as running */
        METRICS_WORKER_RUNNING,
        METRICS_WORKER_STOPPING,  /* stop signal sent */
        _METRICS_WORKER_STATE_MAX,
};

enum metrics_outcome {           /* same order as the pool's enum worker_outcome */
        METRICS_OUTCOME_SUCCESS,
        METRICS_OUTCOME_FAILURE,
        METRICS_OUTCOME_SIGNAL,
        _METRICS_OUTCOME_MAX,
};

enum metrics_recycle_reason {   /* same order as supervisor/recycle.h's enum recycle_reason */
        METRICS_RECYCLE_TASKS,
        METRICS_RECYCLE_RSS,
        METRICS_RECYCLE_AGE,
        _METRICS_RECYCLE_MAX,
};

enum metrics_direction {
        METRICS_SCALE_UP,
        METRICS_SCALE_DOWN,
        _METRICS_DIRECTION_MAX,
};

/* Upper bounds of corral_task_duration_seconds, in seconds (+Inf implied). */
#define METRICS_DURATION_BUCKETS 14
extern const double metrics_duration_bounds[METRICS_DURATION_BUCKETS];

/* Task durations, kept by the supervisor and copied by value into each snapshot. */
struct metrics_histogram {
        uint64_t counts[METRICS_DURATION_BUCKETS + 1];  /* per bucket; last = above the largest bound */
        double sum;                                     /* seconds */
};

/* Adds one observation (seconds). Cannot fail. */
void metrics_histogram_observe(struct metrics_histogram *h, double seconds);

struct metrics_core {
        unsigned id;             /* the CPU number */
        double busy;             /* % 0-100 over the last interval */
};

struct metrics_scale_count {
        const char *rule;        /* rule name, "target", "optimize", "manual", ... */
        enum metrics_direction direction;
        uint64_t count;
};

struct metrics_segment {
        const char *name;        /* shared: key */
        uint64_t bytes;
        double load_seconds;     /* how long loading it took */
        uint64_t generation;     /* 1 at start, +1 for each reload that loaded it anew */
};

struct metrics_worker {
        unsigned id;             /* slot, CORRAL_WORKER_ID */
        int pid;
        enum metrics_worker_state state;
        double uptime;           /* seconds */
        double cpu;              /* % of one core over the last interval */
        uint64_t rss;            /* bytes */
        uint64_t tasks;          /* tasks (or stream lines) it completed */
        uint64_t restarts;       /* times this slot was refilled */
        const char *status;      /* its last STATUS= (notify protocol); NULL or "": none */
};

struct metrics_rule {
        const char *name;
        const char *when;        /* the condition as written; may be NULL */
        double for_seconds;      /* its `for` */
        bool holding;            /* the condition is true now */
        double held;             /* seconds it has been true; 0 when not holding */
        int scale;               /* its `scale:`: the sign names the direction its events count in */
};

struct metrics_decision {
        bool valid;              /* false until the policy decided once */
        const char *rule;        /* who decided: a rule name, "target", ... */
        const char *reason;      /* one line, for humans */
        bool changed;            /* false until the size changed once: from, to and age are unset */
        unsigned from, to;       /* pool size before and after the last change */
        double age;              /* seconds since the last change */
};

/* corral's own process (metrics/process.h fills it). */
struct metrics_process {
        bool valid;
        double cpu_seconds;      /* user + system, all threads */
        uint64_t resident_bytes;
        double start_time;       /* seconds since the Unix epoch */
        uint64_t open_fds;
        uint64_t max_fds;        /* RLIMIT_NOFILE soft limit */
};

/* A work queue's figures (tasks.from: redis://...). */
struct metrics_queue {
        bool present;            /* false: no queue, no corral_queue_* metrics */
        int64_t lag, pending;    /* the group's; -1: not known (yet) */
        uint64_t dead, reclaimed;   /* entries this consumer moved to STREAM:dead, claimed from others */
};

struct metrics_snapshot {
        const char *version;
        unsigned workers[_METRICS_WORKER_STATE_MAX];
        unsigned desired, min, max;
        bool stopping;           /* the pool is shutting down */
        bool crash_loop;
        struct signals signals;  /* as the controller last saw them, percentages 0-100 */
        const struct metrics_core *cores;
        size_t n_cores;
        const struct metrics_scale_count *scale_events;
        size_t n_scale_events;
        bool target, optimize;   /* policy.target / policy.optimize configured: their series start at 0 */
        uint64_t exits[_METRICS_OUTCOME_MAX];
        uint64_t recycles[_METRICS_RECYCLE_MAX];   /* workers replaced at a workers.recycle limit */
        uint64_t restarts;
        uint64_t tasks_ok, tasks_failed, tasks_pending;
        double utilization;      /* share of worker time busy, 0-1 */
        struct metrics_histogram task_duration;
        const struct metrics_segment *segments;
        size_t n_segments;
        uint64_t reloads_ok, reloads_failed;
        const struct metrics_worker *worker_rows;
        size_t n_worker_rows;
        const struct metrics_rule *rules;
        size_t n_rules;
        struct metrics_decision last_decision;
        struct metrics_process process;
        struct metrics_queue queue;
};

/* The names of the label values ("running", "failure", "rss"); "unknown"
 * out of range. Cannot fail. */
const char *metrics_worker_state_name(enum metrics_worker_state s);
const char *metrics_outcome_name(enum metrics_outcome o);
const char *metrics_recycle_name(enum metrics_recycle_reason r);

/*
 * The /healthz verdict: healthy while at least `min` workers run and the pool
 * is neither stopping nor in a crash loop. Writes a one-line reason (no
 * newline) into reason. Cannot fail.
 */
bool metrics_snapshot_health(const struct metrics_snapshot *s, char *reason, size_t size);

/*
 * Renders the Prometheus text of DESIGN.md "Metrics" (ratios 0-1, seconds,
 * bytes). *ret_text is the caller's to free. Returns 0, -ENOMEM, or -EINVAL
 * when a borrowed name cannot be a label value (NULL).
 */
int metrics_snapshot_render(const struct metrics_snapshot *s, char **ret_text, size_t *ret_len);
