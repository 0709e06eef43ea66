/* SPDX-License-Identifier: MIT */
/*
 * The command line of `corral run`, parsed into what it overrides in the
 * configuration. Pure apart from getopt's own state, so it is unit-tested.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"

struct run_args {
        const char *config_path;   /* -c FILE */
        const char *metrics;       /* --metrics HOST:PORT|none */
        unsigned min, max;
        bool min_set, max_set;
        usec_t stop_timeout;       /* USEC_INFINITY: not given */
        usec_t restart_delay;      /* USEC_INFINITY: not given */
        unsigned crash_limit;
        bool crash_limit_set;
        int verbosity;             /* -1 quiet, 0 normal, 1 verbose */
        bool help;
        char **command;            /* points into argv; NULL: none given */
};

/* Parses argv (argv[0] is "run"). On a user error returns -EINVAL with a
 * one-line reason in `error`. */
int run_args_parse(int argc, char **argv, struct run_args *ret, char *error, size_t error_size);

extern const char run_usage[];
