/* SPDX-License-Identifier: MIT */
/*
 * The configuration `corral run` works with: the file (or the built-in default
 * policy), then the command-line flags on top, then what only the machine can
 * tell (the default max from the usable CPUs). Built the same way at start and
 * on every reload, so the flags keep winning over the file.
 */
#pragma once

#include "conf/config.h"
#include "supervisor/run_args.h"

/* Fills *ret (zeroed or done beforehand). Problems are logged, file ones as
 * FILE:LINE:COL; returns -EINVAL for a user error, -ENOMEM, or 0. */
int run_config_build(const struct run_args *args, struct corral_config *ret);

/* The address to serve metrics on, or NULL for none. */
const char *run_config_metrics_listen(const struct corral_config *c);
