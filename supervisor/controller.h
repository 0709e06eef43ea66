/* SPDX-License-Identifier: MIT */
/*
 * The controller of `corral run`: one sd-event loop that owns the pool, the
 * sampler and the metrics endpoint. Each sample.interval it samples, (decides,)
 * resizes the pool, and publishes metrics, /status and the systemd status; it
 * turns TERM/INT into a graceful stop, HUP into a reload, TTIN/TTOU into a
 * manual resize.
 */
#pragma once

#include "conf/config.h"
#include "supervisor/run_args.h"

/* Runs until the pool has stopped. Takes over *config (its contents are moved
 * out; the caller's copy is left zeroed). Returns the process exit status. */
int controller_run(const struct run_args *args, struct corral_config *config);
