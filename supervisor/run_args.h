/* SPDX-License-Identifier: MIT */
/*
 * The command line of `corral run`, parsed into what it overrides in the
 * configuration. Pure apart from getopt's own state and, for `--shard env`,
 * two environment variables, so it is unit-tested.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"
#include "conf/config.h"
#include "supervisor/batch.h"

struct run_args {
        const char *config_path;   /* -c FILE */
        const char *metrics;       /* --metrics HOST:PORT|none */
        unsigned min, max;
        bool min_set, max_set;
        const char *min_flag, *max_flag;  /* "--min"/"--max", or "-j" that set both */
        usec_t stop_timeout;       /* USEC_INFINITY: not given */
        usec_t restart_delay;      /* USEC_INFINITY: not given */
        unsigned crash_limit;
        bool crash_limit_set;
        int verbosity;             /* -1 quiet, 0 normal, 1 verbose */
        /* batch mode; each overrides its tasks: key when given */
        const char *tasks;         /* --tasks FILE|- */
        const char *joblog;        /* --joblog FILE */
        const char *results;       /* --results FILE */
        bool stream;               /* --stream */
        bool keep_order;           /* --keep-order */
        bool line_buffer;          /* --line-buffer */
        bool ungroup;              /* --ungroup */
        unsigned retries;          /* --retries N */
        bool retries_set;
        usec_t timeout;            /* --timeout DURATION; USEC_INFINITY: not given */
        unsigned batch;            /* --batch N; 0: not given */
        unsigned shard_index, shard_count;   /* --shard K/N or env; count 0: not given */
        bool resume;               /* --resume */
        bool resume_failed;        /* --resume-failed */
        bool bar;                  /* --bar */
        bool until_empty;          /* --until-empty */
        bool help;
        char **command;            /* points into argv; NULL: none given */
};

/* Parses argv (argv[0] is "run"). On a user error returns -EINVAL with a
 * one-line reason in `error`: a malformed flag, or flags that contradict
 * each other by conf_validate()'s rules (--min 3 --max 2, --ungroup
 * --keep-order). -ENOMEM when out of memory. */
int run_args_parse(int argc, char **argv, struct run_args *ret, char *error, size_t error_size);

/* Writes the flags a gives over c (the file's values or the defaults), and
 * records each in c->origin as set by its flag, for conf_validate(). A
 * --restart-delay longer than the backoff's max raises the max. Returns 0 or
 * -ENOMEM. */
int run_args_apply(const struct run_args *a, struct corral_config *c);

/* --shard env: K and N from the values of JOB_COMPLETION_INDEX and
 * CORRAL_SHARDS (NULL: unset). Returns 0, or -EINVAL with the reason. */
int shard_from_env(const char *index, const char *count, unsigned *ret_index, unsigned *ret_count,
                   char *error, size_t error_size);

/* --shard env from the environment, the first scheduler whose index is set:
 * Kubernetes (JOB_COMPLETION_INDEX, CORRAL_SHARDS), Slurm
 * (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT), AWS
 * Batch (AWS_BATCH_JOB_ARRAY_INDEX, _SIZE), Cloud Run (CLOUD_RUN_TASK_INDEX,
 * _COUNT). Returns 0, or -EINVAL with the reason. */
int shard_from_environment(unsigned *ret_index, unsigned *ret_count, char *error, size_t error_size);

extern const char run_usage[];
