/* SPDX-License-Identifier: MIT */
/*
 * One stream worker's side (stream_worker.c): its pipes, its queue of spans
 * written to its stdin, its results read and matched to its lines, and the
 * pool's hooks that tell the stream of its life.
 */
#pragma once

#include <stdbool.h>

#include "supervisor/pool.h"
#include "supervisor/stream_types.h"

void sworker_close(struct sworker *sw);
/* Room for one more span in the queue. Returns 0 or -ENOMEM. */
int sworker_reserve(struct sworker *sw);
/* Takes the oldest span off the worker's queue (it must have one). */
struct span *sworker_pop(struct sworker *sw);
/* Replaces the worker; its lines go to others when it is gone. */
void sworker_kill(struct sworker *sw, bool charge);
/* Writes as much of the queued spans as its stdin pipe takes. */
void sworker_write(struct sworker *sw);
/* Before tasks.timeout is applied: start-up does not count (moves progress on). */
void sworker_clock(struct sworker *sw, usec_t now);

int stream_hook_open_stdio(struct pool *p, struct worker *w, int ret_stdio[2], void *userdata);
void stream_hook_started(struct pool *p, struct worker *w, int error, void *userdata);
bool stream_hook_ended(struct pool *p, struct worker *w, bool asked_to_stop, void *userdata);
void stream_hook_recycle(struct pool *p, struct worker *w, void *userdata);
