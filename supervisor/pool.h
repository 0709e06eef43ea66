/* SPDX-License-Identifier: MIT */
/*
 * The worker pool: a set of slots (worker ids 0..max-1), each empty or holding
 * one running or stopping worker. It keeps `desired` workers running, replaces
 * those that end after the restart backoff, gives up on a crash loop, rolls
 * workers over to a new command one at a time, and stops gracefully. Child
 * exits and timers are sd-event sources on the caller's loop; when the pool has
 * stopped it ends the loop with its exit status.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "conf/config.h"
#include "supervisor/pool_types.h"
#include "supervisor/recycle.h"
#include "supervisor/shm.h"
#include "supervisor/workload.h"

/* A pool on loop `e` with the slots of config->workers.max; the config must
 * outlive it (or be replaced by pool_reconfigure() first). */
int pool_new(sd_event *e, const struct corral_config *config, struct pool **ret);

/* The same with the children's operating system given: unit tests pass a
 * fake one; e still runs the pool's own deferred steps. */
int pool_new_os(sd_event *e, const struct corral_config *config, const struct child_os *os, void *os_data,
                struct pool **ret);

/* Kills (SIGKILL) and reaps any worker still there, then frees. Accepts NULL. */
struct pool *pool_free(struct pool *p);

/* Asks for n running workers (clamped to max): starts the missing ones now,
 * stops the most recently started ones beyond n (ready ones before those
 * still starting; in a server pool, with workers.notify, the least busy). */
int pool_set_desired(struct pool *p, unsigned n);

/* Switches to a new configuration: new bounds and restart limits at once;
 * when the command, environment, directory or user changed, workers are replaced
 * one at a time, a new one started before an old one is stopped where a slot
 * is free. A new command that cannot run (spawn_check) is refused: returns
 * its negative errno (logged with the reason) and nothing changes. The old
 * config may be freed after this returns. */
int pool_reconfigure(struct pool *p, const struct corral_config *config);

/* New workers get these segments from now on (the pool takes a reference);
 * workers started with others are replaced one at a time, so that no worker
 * ever sees a mix. The old set lives until its last worker is gone. */
void pool_set_shm(struct pool *p, struct shm_set *shm);

/* Graceful stop: no more starts, stop_signal to every worker's process group,
 * SIGKILL after stop_timeout; the loop then exits with `status`. A second call
 * kills at once (the user pressed Ctrl-C twice). */
void pool_stop(struct pool *p, int status);

/* Replaces one running worker: stop_signal to its group, SIGKILL after
 * stop_timeout, and a new one in its slot once it is gone (no backoff: the
 * owner decided, not the worker). Cannot fail. */
void pool_worker_stop(struct worker *w);

/* workers.recycle: the worker went past one of its limits (`why` says which,
 * for the log). It is replaced the way a rolling restart replaces workers:
 * a new one first where a slot is free, then the old one stopped, one at a
 * time; its exit is not a failure. With hooks the owner first takes its
 * work away (pool_worker_recycle_ready). A worker already due or not running
 * is left as it is. Cannot fail. */
void pool_worker_recycle(struct worker *w, enum recycle_reason reason, const char *why);

/* The owner (stream mode) holds nothing more of the recycled worker w: it
 * may be replaced now. Cannot fail. */
void pool_worker_recycle_ready(struct worker *w);

unsigned pool_count(const struct pool *p, enum worker_state state);

/* Writes the pids of up to n running workers; returns how many. */
size_t pool_running_pids(const struct pool *p, pid_t *pids, size_t n);

/* Stream mode: hooks sees the workers' lives from now on; NULL detaches
 * `hooks` if it is the one installed. The hooks must outlive the pool or be
 * detached. Cannot fail. */
void pool_set_hooks(struct pool *p, const struct pool_hooks *hooks);
void pool_unset_hooks(struct pool *p, const struct pool_hooks *hooks);

/* Whether w runs and takes work (not stopping, not gone). */
bool pool_worker_running(const struct worker *w);

/* The pool's fields of a snapshot: size, bounds, counts, exits, recycles and
 * a row per worker (cpu and rss from v->sampler) in v->rows. Cannot fail. */
void pool_fill_snapshot(const struct pool *p, struct metrics_snapshot *s, const struct workload_view *v);

/* "workers 2/4": running, and the bound; for the systemd status. Cannot fail. */
void pool_describe(const struct pool *p, char *buf, size_t size);

/* Makes p a workload (workload.h) owned by owner (borrowed); the workload
 * frees p. For pool_workload_new() and unit tests on a fake OS. Cannot fail. */
void pool_workload_init(struct pool *p, const struct workload_owner *owner, struct workload *ret);

/* workers.recycle.rss: a worker whose resident memory at the last sample is
 * over its own limit is replaced. Cannot fail. */
void pool_recycle_over_rss(struct pool *p, const struct sampler *sampler);

/* The lowest idle slot below n, or -ENOSPC. Worker ids are reused lowest first. */
int pool_free_slot(struct worker *const *workers, unsigned n);
