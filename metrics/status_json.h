/* SPDX-License-Identifier: MIT */
/*
 * The /status JSON of a snapshot (status_json.c). Pure.
 */
#pragma once

#include <stddef.h>
#include <json-c/json.h>

#include "metrics/corral_metrics.h"

/* Builds the /status JSON object; the caller owns the reference. Returns 0 or -ENOMEM. */
int metrics_snapshot_status(const struct metrics_snapshot *s, struct json_object **ret);

/* metrics_snapshot_status() as a compact string the caller frees. Returns 0 or -ENOMEM. */
int metrics_snapshot_status_json(const struct metrics_snapshot *s, char **ret_text, size_t *ret_len);
