/* SPDX-License-Identifier: MIT */
/*
 * struct corral_config: every key of DESIGN.md "Configuration", with the
 * defaults filled in. The YAML loader writes it, command-line flags override
 * it, and the supervisor reads it. Durations are in microseconds, percentages
 * 0-100.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/util.h"
#include "policy/settings.h"

/* The limits of counts: one constant each, the same in the file and on the
 * command line. Large enough for any machine, small enough that arrays per
 * worker stay cheap. */
#define WORKERS_LIMIT 65536u        /* workers.min, max and initial; a rule's scale */
#define TASKS_BATCH_LIMIT 100000u   /* tasks.batch: lines per invocation */
#define COUNT_LIMIT 1000000u        /* tasks.retries, crash_limit.burst, a shard's K and N */
#define IN_FLIGHT_LIMIT 1000000u    /* tasks.in_flight */

enum restart_mode {
        RESTART_ALWAYS,
        RESTART_ON_FAILURE,
        RESTART_NEVER,
        _RESTART_MAX,
};

enum placement {
        PLACEMENT_NONE,
        PLACEMENT_SPREAD,
        PLACEMENT_LEAST_LOADED,
        _PLACEMENT_MAX,
};

enum task_mode {
        TASK_MODE_PER_TASK,
        TASK_MODE_STREAM,
        _TASK_MODE_MAX,
};

/* tasks.until: when a work queue's consumer ends. */
enum task_until {
        TASK_UNTIL_FOREVER,      /* a service: until stopped */
        TASK_UNTIL_EMPTY,        /* once nothing is undelivered or pending (a Job's completion) */
        _TASK_UNTIL_MAX,
};

#define QUEUE_LEASE_DEFAULT (5 * 60 * USEC_PER_SEC)
#define QUEUE_LEASE_MIN (100 * USEC_PER_MSEC)
#define QUEUE_MAX_DELIVERIES_DEFAULT 3u

/* tasks.output: how a task's output reaches corral's stdout. */
enum task_output {
        TASK_OUTPUT_GROUP,       /* a task's output is written whole when it ends */
        TASK_OUTPUT_LINE,        /* "line-buffer": whole lines, interleaved between tasks */
        TASK_OUTPUT_UNGROUP,     /* passed through as it comes */
        _TASK_OUTPUT_MAX,
};

/* "group", "line-buffer", "ungroup" (as tasks.output writes them), NULL-terminated. */
extern const char *const task_output_names[_TASK_OUTPUT_MAX + 1];

/* The name of an output mode, or NULL for an invalid value. */
const char *task_output_to_string(enum task_output o);

/* Who workers run as, in numbers: workers.user and workers.group resolved by
 * `corral run` at start and on every reload, so that a spawn never reads the
 * user database. All false: as corral itself. */
struct worker_identity {
        bool set_groups;         /* setgroups(groups): only with a user */
        bool set_gid;
        bool set_uid;
        uid_t uid;
        gid_t gid;
        gid_t *groups;           /* the user's supplementary groups, gid among them */
        size_t n_groups;
};

struct workers_config {
        unsigned min;
        unsigned max;            /* 0 until resolved: usable CPUs (batch, stream: what the machine holds) */
        unsigned initial;        /* 0 until resolved: min */
        int stop_signal;
        usec_t stop_timeout;
        enum restart_mode restart;
        usec_t backoff_initial;
        usec_t backoff_max;
        usec_t backoff_reset_after;
        unsigned crash_burst;
        enum placement placement;
        uint64_t recycle_tasks;  /* 0 = never */
        uint64_t recycle_rss;    /* bytes, 0 = never */
        usec_t recycle_age;      /* 0 = never */
        double recycle_jitter;   /* % */
        char *user;              /* a name or a number; NULL: corral's */
        char *group;             /* NULL: the user's primary group (or corral's) */
        unsigned user_line, user_column;     /* where they are in the file, 0 if not there */
        unsigned group_line, group_column;
        struct worker_identity identity;     /* resolved from user and group by `corral run` */
        char **env;              /* "KEY=VALUE", added to the inherited environment */
        char *cwd;
        unsigned cwd_line, cwd_column;       /* where it is in the file, 0 if not there */
        bool notify;             /* workers speak the sd_notify protocol (implied by listen:) */
        bool notify_given;       /* workers.notify was in the file: listen: implies nothing */
        usec_t start_timeout;    /* a worker not READY=1 by then counts as a failed start */
        usec_t watchdog;         /* 0 = none; else silence after WATCHDOG=1 this long: replaced */
};

struct shared_config {
        char *name;
        char *path;              /* one of path and command */
        char **command;
        bool huge;
        uint64_t max_size;       /* 0 = half of MemAvailable */
        usec_t timeout;          /* command: how long it may take; 0 = no limit */
};

#define METRICS_LISTEN_DEFAULT "127.0.0.1:9311"

struct metrics_config {
        char *listen;            /* "host:port" or "none"; NULL: the default, METRICS_LISTEN_DEFAULT */
        char *textfile;
};

/* The syntax of a `listen:` address: "HOST:PORT" ("[::]:8080") or "unix:PATH". */
#define LISTEN_UNIX_PREFIX "unix:"

/* One `listen:` address and where it is in the file. */
struct listen_config {
        char *address;
        unsigned line, column;
};

struct tasks_config {
        char *from;              /* NULL = no batch; "-" = stdin */
        enum task_mode mode;
        char *joblog;
        char *results;           /* --results: a JSON-lines file (redis://: a queue's stream) */
        unsigned retries;
        bool keep_order;
        enum task_output output;
        usec_t timeout;          /* 0 = none */
        unsigned batch;
        unsigned shard_index;
        unsigned shard_count;
        bool resume;             /* --resume: skip what the joblog has as done (no key in the file) */
        bool resume_failed;      /* --resume-failed: ... and rerun the failed ones */
        /* a work queue (tasks.from redis://...) */
        usec_t lease;            /* an entry pending longer on a silent consumer is claimed */
        unsigned max_deliveries; /* then it goes to STREAM:dead */
        enum task_until until;
        char *failed_line;       /* stream: the output line for a given-up line; NULL = empty */
        unsigned in_flight;      /* stream: the most lines one worker holds; 0 = by its answer time */
};

/* Where a value came from, for the checks that relate values to each other
 * over the merged configuration (conf_validate): its place in the file, or
 * the command-line flag that set it last; neither for a default. */
struct config_origin {
        unsigned line, column;   /* 1-based, in the file; 0: not from the file */
        const char *flag;        /* static text such as "--max"; NULL: not set by a flag */
};

/* The values conf_validate relates, and where each came from. */
struct config_origins {
        struct config_origin min, max, initial;
        struct config_origin backoff_initial, backoff_max;
        struct config_origin target, optimize;   /* the policy.target / policy.optimize mappings */
        struct config_origin mode, output, keep_order;
        struct config_origin batch_flag;         /* the first flag given that needs a batch (tasks.from) */
        struct config_origin from, until, results;
        struct config_origin in_flight, failed_line;   /* stream mode's own keys */
};

struct corral_config {
        char *path;              /* the file it came from, NULL for built-in defaults */
        char **command;          /* argv */
        unsigned command_line, command_column;   /* where it is in the file, 0 if not there */
        struct workers_config workers;
        usec_t sample_interval;
        struct policy_config policy;
        struct shared_config *shared;
        size_t n_shared;
        struct metrics_config metrics;
        struct listen_config *listen;    /* `listen:`, bound before the workers start */
        size_t n_listen;
        unsigned listen_backlog; /* 0: SOMAXCONN */
        struct tasks_config tasks;
        struct config_origins origin;
};

/* Fills every key with its DESIGN.md default (no command, no rules). Cannot fail. */
void config_init(struct corral_config *c);

/* Frees what the config owns and leaves it zeroed. Accepts a zeroed config. */
void config_done(struct corral_config *c);
