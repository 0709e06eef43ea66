/* SPDX-License-Identifier: MIT */
/*
 * One task's life in batch mode: starting an attempt in a slot, its process
 * going through the one child lifecycle of child.h (the vfork-style spawner,
 * the pidfd watch, stop_signal + SIGCONT to its group, SIGKILL after
 * stop_timeout), tasks.timeout as that child's age limit, the bounded wait for
 * output a leftover holds, the accounting of an ended attempt (retry or
 * result).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include "common/exit_status.h"
#include "conf/units.h"
#include "supervisor/identity.h"
#include "supervisor/spawn.h"

#include "supervisor/batch_joblog.h"
#include "supervisor/batch_results.h"
#include "supervisor/log.h"
#include "supervisor/task_input.h"
#include "supervisor/task_output.h"
#include "supervisor/task_slot.h"

/* The same event to every task's child: STOP (stop_signal + SIGCONT to its
 * process group, SIGKILL after stop_timeout) or KILL. */
void slots_dispatch(struct batch *b, enum child_event event) {
        for (unsigned i = 0; i < b->n_slots; i++)
                child_dispatch(&b->slots[i]->child, event);
}

static usec_t slot_now(const struct batch *b) {
        usec_t now = 0;
        (void) sd_event_now(b->event, CLOCK_MONOTONIC, &now);
        return now;
}

void slot_release_io(struct slot *s) {
        s->out = sd_event_source_disable_unref(s->out);
        s->timer = sd_event_source_disable_unref(s->timer);
        s->out_fd = safe_close(s->out_fd);
        if (s->err_fd >= 0)
                slot_read_stderr(s, true);
        s->err = sd_event_source_disable_unref(s->err);
        s->err_fd = safe_close(s->err_fd);
        s->err_line.len = 0;
}

/* keep_order: the output and joblog line wait for their turn; past
 * ORDER_MEMORY_MAX of waiting output in memory, new ones wait in files. */
static void slot_result_in_order(struct slot *s, struct joblog_pending *line) {
        struct batch *b = s->batch;
        struct task_result *r = malloc(sizeof(*r));
        if (!r) {
                log_warning_errno(ENOMEM, "Failed to keep the output of task %llu: %m",
                                  (unsigned long long) s->task.seq);
                spool_done(&s->spool);
                batch_joblog_pending_free(line);
                b->undone = true;
                return;
        }
        *r = (struct task_result) { .out = s->spool, .line = line };
        s->spool = SPOOL_INIT;
        int e;
        if (b->order_memory + r->out.mem.len > ORDER_MEMORY_MAX && (e = spool_spill(&r->out)) < 0)
                log_warning_errno(e, "Failed to move waiting output to $TMPDIR, keeping it in memory: %m");
        size_t memory = r->out.mem.len;
        e = order_buffer_put(&b->order, s->task.ord, r, 0);   /* frees r on failure */
        if (e >= 0) {
                b->order_held++;
                b->order_memory += memory;
        } else {
                log_warning_errno(e, "Failed to keep the output of task %llu: %m", (unsigned long long) s->task.seq);
                b->undone = true;
        }
        batch_emit_in_order(b);
        batch_order_head_goes_live(b);
}

/* Accounts for one ended attempt: joblog, retry or result, output. The slot
 * is free afterwards. The caller calls the batch's progress hook. */
void slot_finish(struct slot *s) {
        struct batch *b = s->batch;
        usec_t now = slot_now(b);
        double runtime = (double) (now - s->started) / (double) USEC_PER_SEC;
        bool killed = s->end.outcome == CHILD_SIGNAL;
        int exitval = killed ? 0 : s->end.status;
        int sig = killed ? s->end.status : 0;
        bool ok = !killed && exitval == 0 && !s->timed_out;
        enum metrics_outcome outcome = killed ? METRICS_OUTCOME_SIGNAL :
                                       exitval == 0 && !s->timed_out ? METRICS_OUTCOME_SUCCESS :
                                       METRICS_OUTCOME_FAILURE;

        if (s->timed_out) {
                /* As GNU parallel logs a job its --timeout killed: Exitval -1
                 * and the signal, the one sent when the task exited on it. */
                exitval = -1;
                if (!killed)
                        sig = b->config->workers.stop_signal;
        }

        slot_release_io(s);
        /* Live output is out already, retried or not: what is written cannot
         * be taken back, so a last line without a newline goes too. */
        if (s->live)
                slot_pass_on(s, true);
        struct joblog_pending *line = batch_joblog_line(b, &s->task, s->started_real, runtime, s->received,
                                                        exitval, sig);
        if (s->output_lost) {
                /* Not in the joblog: --resume runs it again. */
                batch_joblog_pending_free(line);
                line = NULL;
                b->undone = true;
                s->output_lost = false;
        }
        b->exits[outcome]++;
        metrics_histogram_observe(&b->durations, runtime);
        b->interval_attempts++;
        b->interval_seconds += runtime;
        s->task.attempts++;
        log_debug("task %llu (pid %d) %s %d after %.3fs", (unsigned long long) s->task.seq, s->pid,
                  killed ? "killed by signal" : "exited with status", killed ? sig : exitval, runtime);

        s->busy = false;
        b->running--;
        b->running_lines -= s->task.lines;

        if (!ok && !b->stopping && s->task.attempts <= b->config->tasks.retries) {
                /* Another attempt, first in line; this attempt's output, unless
                 * it went out live, is dropped. Its joblog line follows what
                 * went out live. */
                s->output.len = 0;
                spool_done(&s->spool);
                batch_joblog_after_output(b, line);
                line = NULL;
                if (queue_push_front(&b->queue, &s->task) >= 0) {
                        s->task = (struct pending) {};
                        return;
                }
                log_warning_errno(ENOMEM, "Failed to queue task %llu for a retry: %m",
                                  (unsigned long long) s->task.seq);
        }

        /* Results, the rate and the bar count task lines, not invocations:
         * a batch of N lines that failed is N failed lines. */
        b->interval_done += s->task.lines;
        if (ok)
                b->ok += s->task.lines;
        else {
                b->failed += s->task.lines;
                for (unsigned i = 0; i < s->task.lines && i < FIRST_FAILED_MAX; i++)
                        batch_note_failed(b, s->task.seq + (uint64_t) i * b->config->tasks.shard_count,
                                          i == 0 ? s->task.line : NULL, s->task.len);
        }
        batch_write_result(s, exitval, sig, runtime);
        batch_input_capture(b, &s->spool);
        if (b->keep_order)
                slot_result_in_order(s, line);
        else
                batch_deliver(b, &s->spool, line);
        batch_input_done(b, &s->task, &(struct task_report) { ok, killed ? 128 + sig : exitval, runtime });
        free(s->task.line);
        s->task = (struct pending) {};
}

/* Stops waiting for the output of a task that ended: something it started
 * outside its process group still holds the pipe open. */
static void slot_abandon_output(struct slot *s) {
        log_warning("task %llu ended, but a process it left behind keeps its output open; not waiting for it",
                    (unsigned long long) s->task.seq);
        s->out = sd_event_source_disable_unref(s->out);
        s->out_fd = safe_close(s->out_fd);
        s->eof = true;
        slot_finish(s);
        s->batch->hooks.progress(s->batch);
}

static int on_output_deadline(sd_event_source *src, uint64_t usec, void *userdata) {
        (void) src;
        (void) usec;
        slot_abandon_output(userdata);
        return 0;
}

/* With tasks.timeout, a task that ended while a leftover holds its output
 * is waited for until its timeout, or stop_timeout more once it timed out:
 * a hung leftover can never hang the batch. */
static void slot_await_output(struct slot *s) {
        const struct batch *b = s->batch;
        usec_t timeout = b->config->tasks.timeout, now = slot_now(s->batch);
        if (timeout == 0)
                return;
        usec_t when = s->timed_out ? now + b->config->workers.stop_timeout : s->started + timeout;
        int r = sd_event_add_time(b->event, &s->timer, CLOCK_MONOTONIC, when > now ? when : now, TIMEOUT_ACCURACY,
                                  on_output_deadline, s);
        if (r < 0)
                log_warning_errno(r, "Failed to bound the wait for task %llu's output, ignoring: %m",
                                  (unsigned long long) s->task.seq);
}

/* ---- the task's child (child.h): the lifecycle every process of corral goes through ---- */

static void slot_started(struct child *c, void *userdata) {
        (void) c;
        (void) userdata;
}

/* The process ended. A start that failed is slot_start()'s to report. */
static usec_t slot_ended(struct child *c, const struct child_end *end, void *userdata) {
        struct slot *s = userdata;
        (void) c;
        if (end->outcome == CHILD_START_FAILED)
                return CHILD_NO_RESTART;
        s->end = *end;
        s->exited = true;
        if (!s->eof)
                slot_read(s, true);
        /* A descendant that left the group may still hold the pipe: then the
         * output ends at its EOF. */
        if (s->eof) {
                slot_finish(s);
                s->batch->hooks.progress(s->batch);
        } else
                slot_await_output(s);
        return CHILD_NO_RESTART;
}

/* tasks.timeout is the task child's age limit: past it the task is stopped
 * as a pool worker is, stop_signal + SIGCONT, SIGKILL after stop_timeout. */
static void slot_timed_out(struct child *c, void *userdata) {
        struct slot *s = userdata;
        const struct workers_config *w = &s->batch->config->workers;
        char t[32], sig[16];

        s->timed_out = true;
        if (w->stop_signal != SIGKILL)
                log_warning("task %llu (pid %d) ran longer than its timeout %s, sending SIG%s",
                            (unsigned long long) s->task.seq, c->pid, format_duration(c->age, t),
                            signal_to_string(w->stop_signal, sig));
        else
                log_warning("task %llu (pid %d) ran longer than its timeout %s, killing",
                            (unsigned long long) s->task.seq, c->pid, format_duration(c->age, t));
        child_dispatch(c, CHILD_EVENT_STOP);
}

static bool slot_stopped_by_batch(const struct slot *s) {
        return s->child.state == CHILD_STOPPING && !s->timed_out;
}

/* stop_timeout passed after the stop signal (SIGKILL was sent). The tasks a
 * stop signalled together are killed together, with one line. */
static void slot_killed(struct child *c, void *userdata) {
        struct slot *s = userdata;
        struct batch *b = s->batch;
        char t[32];
        unsigned n = 0;

        if (s->timed_out) {
                log_warning("task %llu (pid %d) is still running, killing", (unsigned long long) s->task.seq,
                            c->pid);
                return;
        }
        for (unsigned i = 0; i < b->n_slots; i++)
                n += slot_stopped_by_batch(b->slots[i]);
        log_warning("%u task%s still running %s after the stop, killing", n, n == 1 ? "" : "s",
                    format_duration(c->stop->timeout, t));
        for (unsigned i = 0; i < b->n_slots; i++)
                if (b->slots[i] != s && slot_stopped_by_batch(b->slots[i]))
                        child_dispatch(&b->slots[i]->child, CHILD_EVENT_KILL);
}

static const struct child_owner slot_owner = {
        .started = slot_started,
        .ended = slot_ended,
        .recycle = slot_timed_out,
        .killed = slot_killed,
};

void slot_init(struct batch *b, struct slot *s, unsigned id) {
        *s = (struct slot) { .batch = b, .id = id, .out_fd = -EBADF, .err_fd = -EBADF, .spool = SPOOL_INIT };
        child_init(&s->child, b->os, b->os_data, &b->stop, &slot_owner, s);
}

struct slot *slot_new(struct batch *b, unsigned id) {
        struct slot *s = malloc(sizeof(*s));
        if (s)
                slot_init(b, s, id);
        return s;
}

/* The per-task entries of the environment the batch reuses: its slot, its
 * seq and its line(s). 0 or -ENOMEM. */
static int slot_env(struct batch *b, const struct slot *s) {
        const struct pending *t = &s->task;
        snprintf(b->id_var, sizeof(b->id_var), "CORRAL_WORKER_ID=%u", s->id);
        snprintf(b->seq_var, sizeof(b->seq_var), "CORRAL_TASK_SEQ=%llu", (unsigned long long) t->seq);
        b->task_var.len = 0;
        if (strbuf_append(&b->task_var, "CORRAL_TASK=", strlen("CORRAL_TASK=")) < 0 ||
            strbuf_append(&b->task_var, t->line, t->len) < 0)
                return -ENOMEM;
        b->envp[b->env_task] = b->id_var;
        b->envp[b->env_task + 1] = b->max_var;
        b->envp[b->env_task + 2] = b->seq_var;
        b->envp[b->env_task + 3] = b->task_var.data;
        b->envp[b->env_task + 4] = (char *) batch_input_task_id_var(b, t);   /* NULL ends the list */
        return 0;
}

/* A pipe for a task's output: our end non-blocking. 0 or a negative errno. */
static int output_pipe(int *ret_read, int *ret_write) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        *ret_read = fds[0];
        *ret_write = fds[1];
        return fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0 ? -errno : 0;
}

/* The task's stdout is readable: read it; the task is over once it also exited. */
static int slot_on_output(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct slot *s = userdata;
        struct batch *b = s->batch;
        (void) fd;
        (void) revents;
        /* Backpressure: nobody reads our output fast enough; the tasks wait on
         * their pipes until the sink's callback reads on. */
        if (sink_full(b->sink)) {
                (void) sd_event_source_set_enabled(src, SD_EVENT_OFF);
                b->output_paused = true;
                return 0;
        }
        slot_read(s, false);
        if (s->eof && s->exited) {
                slot_finish(s);
                b->hooks.progress(b);
        }
        return 0;
}

static int slot_on_stderr(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        (void) src;
        (void) fd;
        (void) revents;
        slot_read_stderr(userdata, false);
        return 0;
}

/* Starts s->task in slot s. Returns 0; or a negative errno with the task
 * still in s->task and nothing started. A failed exec of a command that
 * varies per task is a failed attempt, already accounted for. */
int slot_start(struct batch *b, struct slot *s) {
        const struct pending *t = &s->task;
        _cleanup_(closep) int out_read = -EBADF, out_write = -EBADF;
        int r;

        s->output.len = 0;
        s->received = 0;
        s->err_kept.len = 0;
        s->err_more = false;
        r = task_argv_build(&b->argv, b->config->command, t->line, t->len);
        if (r < 0)
                return r;
        r = slot_env(b, s);
        if (r < 0)
                return r;
        _cleanup_(closep) int err_read = -EBADF, err_write = -EBADF;
        if (!b->direct_output && (r = output_pipe(&out_read, &out_write)) < 0)
                return r;
        if ((b->prefix_stderr || b->results) && (r = output_pipe(&err_read, &err_write)) < 0)
                return r;
        int stdio[3] = { b->null_fd, out_write, err_write };
        struct spawn_request req = {
                .path = b->exe,
                .argv = b->argv.argv,
                .envp = b->envp,
                .cwd = b->config->workers.cwd,
                .identity = &b->config->workers.identity,
                .stdio = stdio,
                .keep_fds = b->shm ? b->shm->fds : NULL,
                .n_keep_fds = b->shm ? b->shm->n_segments : 0,
        };
        /* Watched before it exists: a task that cannot be watched never runs. */
        if (out_read >= 0)
                r = sd_event_add_io(b->event, &s->out, out_read, EPOLLIN, slot_on_output, s);
        if (r >= 0 && err_read >= 0)
                r = sd_event_add_io(b->event, &s->err, err_read, EPOLLIN, slot_on_stderr, s);
        s->started = slot_now(b);
        usec_t real = 0;
        (void) sd_event_now(b->event, CLOCK_REALTIME, &real);
        s->started_real = (double) real / (double) USEC_PER_SEC;
        s->exited = s->timed_out = false;
        s->eof = b->direct_output;   /* nothing to read: it writes to our stdout */
        if (r >= 0)
                r = child_start(&s->child, &req, b->config->tasks.timeout);
        if (r < 0) {
                slot_release_io(s);   /* the task waits for another try */
                return r;
        }
        out_write = safe_close(out_write);
        err_write = safe_close(err_write);

        s->busy = true;
        s->pid = s->child.pid;
        s->live = b->output == TASK_OUTPUT_UNGROUP ||
                  (b->output == TASK_OUTPUT_LINE && (!b->keep_order || t->ord == b->order.next));
        s->output.len = 0;
        b->running++;
        b->running_lines += t->lines;
        s->out_fd = TAKE_FD(out_read);
        s->err_fd = TAKE_FD(err_read);
        log_debug("task %llu started in slot %u (pid %d)", (unsigned long long) t->seq, s->id, s->child.pid);
        return 0;
}

bool batch_is_exec_error(int r) {
        /* E2BIG among them: for a batch, this task's line, not the command. */
        return child_error_kind(r) == CHILD_ERROR_CANNOT_RUN;
}
