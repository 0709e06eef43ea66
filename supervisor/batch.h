/* SPDX-License-Identifier: MIT */
/*
 * Per-task batch mode (`corral run --tasks FILE|-`): each input line runs
 * COMMAND once, `{}` replaced by the line, with retries, a GNU parallel
 * joblog, --resume, output per tasks.output (grouped per task, in whole
 * lines as it comes, or passed through; in completion or input order), a
 * progress bar, and the tasks.* signals for the policy. The number
 * of tasks running at once is the batch's "pool size"; the controller sets it
 * (batch_set_concurrency) as the policy decides. Input is read only as far as
 * the dispatcher needs, so an endless stdin runs in bounded memory.
 *
 * Child exits, output pipes, input and timers are sd-event sources on the
 * caller's loop; when the batch is over it ends the loop with its exit status:
 * 0 every task succeeded, 1 some failed after their retries or were left
 * undone by a stop, 2 the command cannot be executed at all.
 */
#pragma once

#include "supervisor/shm.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "conf/config.h"
#include "metrics/corral_metrics.h"
#include "policy/signals.h"
#include "supervisor/progress_bar.h"
#include "supervisor/workload.h"

struct batch;

struct batch_options;

/*
 * A batch over config->tasks on loop e; the config must outlive it (or be
 * replaced with batch_reconfigure() first). Opens the input and the joblog
 * (reading it first for a resume). Problems are logged; returns 0, -EINVAL for
 * a user error (a joblog that does not parse, an input that cannot be opened),
 * or another negative errno. Nothing runs before batch_start().
 */
int batch_new(sd_event *e, const struct corral_config *config, const struct batch_options *opts,
              struct batch **ret);

/* Kills (SIGKILL) the tasks still running, then frees. Accepts NULL; returns NULL. */
struct batch *batch_free(struct batch *b);

/* The tasks' processes reach the system through os (unit tests: a fake);
 * before batch_start() only. Cannot fail. */
struct child_os;
void batch_set_os(struct batch *b, const struct child_os *os, void *os_data);

/* Starts reading the input and running tasks. Returns 0 or a negative errno. */
int batch_start(struct batch *b);

/* Tasks to run at once, clamped to [1, workers.max]. Lowering it stops no
 * task: fewer are started as the running ones end. Cannot fail. */
void batch_set_concurrency(struct batch *b, unsigned n);

/* Switches to a new configuration (bounds, command, env: for tasks started
 * from now on). The old config may be freed after this returns. */
/* Tasks started from now on get these shared segments (fds and
 * CORRAL_SHM_* variables); the batch takes a reference. Returns 0 or -ENOMEM. */
int batch_set_shm(struct batch *b, struct shm_set *shm);

int batch_reconfigure(struct batch *b, const struct corral_config *config);

/* TERM/INT: no more tasks start; running ones may finish within stop_timeout,
 * then are killed. A second call kills them at once. */
void batch_stop(struct batch *b);

/* True while tasks wait to run or the input may still hold some. */
bool batch_has_work(const struct batch *b);

unsigned batch_concurrency(const struct batch *b);
unsigned batch_running(const struct batch *b);
unsigned batch_max(const struct batch *b);
bool batch_stopping(const struct batch *b);

/* Writes the pids of up to n running tasks; returns how many. */
size_t batch_running_pids(const struct batch *b, pid_t *pids, size_t n);

/* Sets tasks.backlog, tasks.busy, and tasks.rate and tasks.latency over the
 * time since the previous call (latency is left unavailable when no task
 * ended in between). Cannot fail. */
void batch_fill_signals(struct batch *b, struct signals *s);

/* The pool and task fields of a metrics snapshot: desired, max, running,
 * stopping, exits, tasks_ok/failed/pending, utilization, task_duration. */
void batch_fill_snapshot(const struct batch *b, struct metrics_snapshot *s);

/* Called once when the batch starts stopping (TERM, or the command cannot run). */
void batch_set_on_stopping(struct batch *b, void (*cb)(void *userdata), void *userdata);
