/* SPDX-License-Identifier: MIT */
/*
 * Per-task batch mode: the batch itself. Setting up (config, slots, input,
 * joblog), dispatching queued tasks into free slots while the concurrency
 * the controller sets allows, the end (exit status and summary), and the
 * signals and snapshot for the controller. See batch_internal.h for the
 * files around it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <math.h>

#include "conf/queue_url.h"
#include "conf/units.h"
#include "supervisor/identity.h"

#include "common/exit_status.h"
#include "supervisor/batch.h"
#include "supervisor/batch_joblog.h"
#include "supervisor/batch_results.h"
#include "supervisor/batch_types.h"
#include "supervisor/slots.h"
#include "supervisor/log.h"
#include "supervisor/task_env.h"
#include "supervisor/task_input.h"
#include "supervisor/task_output.h"
#include "supervisor/task_slot.h"

static void batch_progress(struct batch *b);
static void batch_fatal(struct batch *b, int error);

static usec_t batch_now(struct batch *b) {
        usec_t now = 0;
        (void) sd_event_now(b->event, CLOCK_MONOTONIC, &now);
        return now;
}

static void batch_maybe_finish(struct batch *b) {
        if (b->finished || b->running > 0)
                return;
        if (!b->stopping && (b->queue.len > 0 || !b->in_eof))
                return;

        batch_emit_rest(b);
        /* The results are the point of the run: the end waits until they are
         * written, unless writing failed or a stop gave up on them. */
        if (!sink_idle(b->sink) && sink_error(b->sink) == 0 && !b->output_abandoned)
                return;
        if (!batch_input_settled(b))
                return;    /* a queue's acks and hand-backs are on their way */
        b->finished = true;
        int status = b->fatal_status ? b->fatal_status : (b->failed > 0 || b->undone) ? 1 : 0;
        status = batch_input_status(b, status);
        progress_bar_finish(b->bar);
        if (b->fatal_status == 0)
                /* a queue's summary counts its entries, which --resume does not apply to */
                if (!batch_input_summarize(b, status))
                        batch_log_summary(b, status);
        b->stop_timer = sd_event_source_disable_unref(b->stop_timer);
        b->retry_timer = sd_event_source_disable_unref(b->retry_timer);
        b->in_source = sd_event_source_disable_unref(b->in_source);
        (void) sd_event_exit(b->event, status);
}

static struct slot *batch_free_slot(struct batch *b) {
        for (unsigned i = 0; i < b->max && i < b->n_slots; i++)
                if (!b->slots[i]->busy)
                        return b->slots[i];
        return NULL;
}

static int on_batch_retry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        batch_progress(userdata);
        return 0;
}

/* A start failed for want of resources (processes, fds, memory): try again
 * when a running task ends, or after a moment when none runs. */
static void batch_hold_back(struct batch *b, int r) {
        log_warning_errno(r, "Failed to start a task, trying again shortly: %m");
        if (b->running > 0)
                return;
        if (b->retry_timer) {
                (void) sd_event_source_set_time_relative(b->retry_timer, 100 * USEC_PER_MSEC);
                (void) sd_event_source_set_enabled(b->retry_timer, SD_EVENT_ONESHOT);
        } else if (sd_event_add_time_relative(b->event, &b->retry_timer, CLOCK_MONOTONIC, 100 * USEC_PER_MSEC, 0,
                                              on_batch_retry_timer, b) < 0) {
                log_error("cannot make progress: giving up");
                batch_stop(b);
        }
}

/* Starts tasks while there are free places and tasks to run. */
static void batch_dispatch(struct batch *b) {
        bool varies = !b->exe;

        /* Backpressure: while corral's stdout is full, nothing new starts. */
        while (!b->stopping && b->running < b->concurrency && !sink_full(b->sink)) {
                if (b->queue.len == 0)
                        batch_fill_queue(b);
                if (b->queue.len == 0 || b->stopping)
                        break;
                const struct pending *head = &b->queue.ring[b->queue.head];
                if (b->keep_order && head->attempts == 0 && head->ord >= b->order.next + ORDER_WINDOW)
                        break;
                struct slot *s = batch_free_slot(b);
                if (!s)
                        break;
                s->task = queue_pop_front(&b->queue);
                int r = slot_start(b, s);
                if (r >= 0)
                        continue;
                if (batch_is_exec_error(r) && !varies && r != -E2BIG) {
                        free(s->task.line);
                        s->task = (struct pending) {};
                        batch_fatal(b, r);
                        return;
                }
                if (batch_is_exec_error(r)) {
                        /* This line names a program that cannot run: the task
                         * fails as a shell's would, with 127. */
                        s->busy = true;
                        b->running++;
                        b->running_lines += s->task.lines;
                        s->exited = s->eof = true;
                        s->timed_out = false;
                        s->end = (struct child_end) { .outcome = CHILD_FAILURE, .status = 127 };
                        s->pid = 0;   /* none ran */
                        char as[256];
                        log_warning_errno(r, "task %llu: cannot run '%s'%s: %m", (unsigned long long) s->task.seq,
                                          b->argv.argv[0], identity_describe(&b->config->workers, as, sizeof(as)));
                        slot_finish(s);
                        continue;
                }
                (void) queue_push_front(&b->queue, &s->task);
                s->task = (struct pending) {};
                batch_hold_back(b, r);
                break;
        }
}

/* Writing results failed (EPIPE, ENOSPC, a closed stdout): a failure of
 * the run, which stops as on TERM. The joblog has only the tasks whose output
 * was written, so --resume runs the others. */
static void batch_check_output(struct batch *b) {
        int r = sink_error(b->sink);
        if (r == 0 || b->output_failed)
                return;
        b->output_failed = true;
        b->undone = true;
        log_error_errno(r, "Failed to write the output: %m; stopping the batch");
        batch_stop(b);
}

/* After anything changed: start what can start, read ahead, maybe end. */
/* stop_timeout after a stop: TERM is acted on within it whatever the reader
 * of our output does, so output nobody took by then is given up. */
static void abandon_output(struct batch *b) {
        if (sink_idle(b->sink) || b->output_abandoned)
                return;
        log_warning("%llu bytes of output not taken by the reader, dropping them (their tasks stay undone)",
                    (unsigned long long) sink_pending(b->sink));
        b->output_abandoned = true;
        sink_drop(b->sink);
}

/* The tasks' own timers kill them; this one bounds the wait for the reader. */
static int on_batch_stop_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct batch *b = userdata;
        (void) s;
        (void) usec;
        abandon_output(b);
        batch_maybe_finish(b);
        return 0;
}

void batch_stop(struct batch *b) {
        if (b->finished)
                return;
        if (b->stopping) {
                log_notice("stopping at once");
                slots_dispatch(b, CHILD_EVENT_KILL);
                abandon_output(b);
                batch_maybe_finish(b);
                return;
        }
        b->stopping = true;
        if (b->queue.len > 0 || !b->in_eof)
                b->undone = true;
        queue_clear(&b->queue);
        batch_input_stop(b);
        if (b->on_stopping)
                b->on_stopping(b->userdata);
        if (b->running > 0) {
                char sig[16];
                log_info("stopping: no new tasks; sending %s to %u running",
                         signal_to_string(b->config->workers.stop_signal, sig), b->running);
                slots_dispatch(b, CHILD_EVENT_STOP);
        }
        if (b->running > 0 || !sink_idle(b->sink)) {
                int r = sd_event_add_time_relative(b->event, &b->stop_timer, CLOCK_MONOTONIC,
                                                   b->config->workers.stop_timeout, 0, on_batch_stop_timer, b);
                if (r < 0) {
                        log_error_errno(r, "Failed to arm the stop timer, killing the tasks now: %m");
                        slots_dispatch(b, CHILD_EVENT_KILL);
                        abandon_output(b);
                }
        }
        batch_maybe_finish(b);
}

/* The command cannot run at all: say so once, end with exit 2. */
static void batch_fatal(struct batch *b, int error) {
        char as[256];
        log_error_errno(error, "cannot run '%s'%s: %m", b->config->command[0],
                        identity_describe(&b->config->workers, as, sizeof(as)));
        b->fatal_status = EXIT_USAGE;
        batch_stop(b);
}

/* The sink wrote, drained or failed: resume reading output, dispatch, maybe end. */
static void batch_on_sink(void *userdata) {
        struct batch *b = userdata;
        if (b->output_paused && !sink_full(b->sink)) {
                b->output_paused = false;
                for (unsigned i = 0; i < b->n_slots; i++)
                        if (b->slots[i]->out)
                                (void) sd_event_source_set_enabled(b->slots[i]->out, SD_EVENT_ON);
        }
        batch_progress(b);
}

/* After anything changed: start what can start, read ahead, maybe end. */
static void batch_progress(struct batch *b) {
        batch_check_output(b);
        batch_dispatch(b);
        batch_fill_queue(b);
        batch_maybe_finish(b);
}

static int slot_make(void *userdata, unsigned id) {
        struct batch *b = userdata;
        return (b->slots[id] = slot_new(b, id)) ? 0 : -ENOMEM;
}

static int batch_grow_slots(struct batch *b, unsigned n) {
        return slots_grow(&b->slots, &b->n_slots, n, slot_make, b);
}

static int batch_apply_config(struct batch *b, const struct corral_config *config) {
        int r;

        b->config = config;
        b->max = config->workers.max;
        b->stop = (struct child_stop) { .signal = config->workers.stop_signal,
                                        .timeout = config->workers.stop_timeout };
        r = batch_grow_slots(b, b->max);
        if (r < 0)
                return r;
        free(b->exe);
        b->exe = NULL;
        if (!strstr(config->command[0], "{}") && !(b->exe = task_resolve_command(config->command[0])))
                return -ENOMEM;
        r = batch_build_env(b);
        if (r < 0)
                return r;
        b->queue_target = 2 * (size_t) b->max + 16;
        if (b->concurrency > b->max)
                b->concurrency = b->max;
        return 0;
}

/* The bar's view of the batch. */
static void batch_bar_counts(void *userdata, struct progress_counts *ret) {
        const struct batch *b = userdata;
        *ret = (struct progress_counts) {
                .done = b->ok + b->failed + b->skipped,
                .skipped = b->skipped,
                .failed = b->failed,
                .total = b->total,
                .running = b->running,
                .output_pending = !sink_idle(b->sink),
        };
}

int batch_new(sd_event *e, const struct corral_config *config, const struct batch_options *opts,
              struct batch **ret) {
        struct batch *b = calloc(1, sizeof(*b));
        int r;

        if (!b)
                return -ENOMEM;
        *b = (struct batch) {
                .event = sd_event_ref(e),
                .opts = *opts,
                .in_fd = -EBADF,
                .null_fd = -EBADF,
                .joblog_fd = -EBADF,
                .hooks = { .progress = batch_progress, .stop = batch_stop },
                .concurrency = 1,
                /* On a terminal the lines of concurrent tasks would be a jumble;
                 * in a pipe or the journal they pass through untouched. */
                .prefix_stderr = isatty(STDERR_FILENO),
                .output = config->tasks.output,
                .keep_order = config->tasks.keep_order,
                .os = &child_os_sd_event,
                .os_data = e,
        };
        b->order.free_item = task_result_free;
        r = sink_new(e, STDOUT_FILENO, &b->sink);
        if (r >= 0)
                r = batch_apply_config(b, config);
        if (r < 0) {
                batch_free(b);
                return log_error_errno(r, "Failed to set up the batch: %m");
        }
        sink_set_callback(b->sink, batch_on_sink, b);
        r = batch_open_joblog(b);
        if (r >= 0)
                r = batch_open_results(b);
        if (r >= 0)
                r = batch_open_input(b);
        if (r < 0) {
                batch_free(b);
                return r;
        }
        r = progress_bar_new(e, opts->bar, batch_bar_counts, b, &b->bar);
        if (r < 0)
                log_warning_errno(r, "Failed to arm the progress bar, going without: %m");
        b->bar_over_output = progress_bar_shares_stdout(b->bar);
        /* ungroup's "as it comes" is the task writing to our stdout itself,
         * unless the bar shares its terminal: then the output passes through
         * corral, which wipes the bar before each piece. */
        b->direct_output = b->output == TASK_OUTPUT_UNGROUP && !b->bar_over_output;
        *ret = b;
        return 0;
}

void batch_set_os(struct batch *b, const struct child_os *os, void *os_data) {
        b->os = os;
        b->os_data = os_data;
        for (unsigned i = 0; i < b->n_slots; i++)
                slot_init(b, b->slots[i], i);
}

int batch_start(struct batch *b) {
        b->start_time = b->interval_start = batch_now(b);
        batch_progress(b);
        return 0;
}

struct batch *batch_free(struct batch *b) {
        if (!b)
                return NULL;
        /* First: what was not written leaves its task undone (out of the joblog). */
        b->sink = sink_free(b->sink);
        batch_input_free(b);    /* after the sink: its marks call the source */
        for (unsigned i = 0; i < b->n_slots; i++) {
                struct slot *s = b->slots[i];
                child_done(&s->child);   /* kills its group; the child source reaps it */
                slot_release_io(s);
                free(s->task.line);
                strbuf_done(&s->output);
                spool_done(&s->spool);
                strbuf_done(&s->err_line);
                strbuf_done(&s->err_kept);
                free(s);
        }
        free(b->slots);
        queue_clear(&b->queue);
        free(b->queue.ring);
        sd_event_source_disable_unref(b->in_source);
        sd_event_source_disable_unref(b->stop_timer);
        sd_event_source_disable_unref(b->retry_timer);
        if (b->in_fd > STDERR_FILENO)
                safe_close(b->in_fd);
        safe_close(b->null_fd);
        safe_close(b->joblog_fd);
        results_file_free(b->results);
        progress_bar_free(b->bar);
        line_reader_done(&b->reader);
        joblog_state_free(&b->done_before);
        strbuf_done(&b->joblog_line);
        strbuf_done(&b->command_line);
        task_argv_done(&b->joblog_argv);
        task_argv_done(&b->argv);
        strbuf_done(&b->task_var);
        strbuf_done(&b->gather_text);
        free(b->envp);
        shm_set_unref(b->shm);
        free(b->exe);
        order_buffer_done(&b->order);
        sd_event_unref(b->event);
        free(b);
        return NULL;
}

void batch_set_concurrency(struct batch *b, unsigned n) {
        if (n < 1)
                n = 1;
        if (n > b->max)
                n = b->max;
        if (n == b->concurrency)
                return;
        log_debug("tasks at once: %u -> %u", b->concurrency, n);
        b->concurrency = n;
        if (b->start_time)
                batch_progress(b);
}

int batch_set_shm(struct batch *b, struct shm_set *shm) {
        /* A task keeps the segments it was started with: its copies of the fds
         * hold them. New tasks get these. */
        shm_set_unref(b->shm);
        b->shm = shm_set_ref(shm);
        return batch_build_env(b);
}

int batch_reconfigure(struct batch *b, const struct corral_config *config) {
        if (config->tasks.output != b->output || config->tasks.keep_order != b->keep_order)
                log_warning("tasks.output and tasks.keep_order changed: they take effect when corral restarts");
        return batch_apply_config(b, config);
}

bool batch_has_work(const struct batch *b) {
        return !b->stopping && (b->queue.len > 0 || !b->in_eof);
}

unsigned batch_concurrency(const struct batch *b) {
        return b->concurrency;
}

unsigned batch_running(const struct batch *b) {
        return b->running;
}

unsigned batch_max(const struct batch *b) {
        return b->max;
}

bool batch_stopping(const struct batch *b) {
        return b->stopping;
}

size_t batch_running_pids(const struct batch *b, pid_t *pids, size_t n) {
        size_t k = 0;
        for (unsigned i = 0; i < b->n_slots && k < n; i++)
                if (child_has_process(&b->slots[i]->child))
                        pids[k++] = b->slots[i]->child.pid;
        return k;
}

static uint64_t batch_backlog(const struct batch *b) {
        if (b->stopping)
                return 0;
        /* A file's total is known: what is left of it, read or not. */
        uint64_t done = b->ok + b->failed + b->skipped + b->running_lines, waiting;
        if (batch_input_backlog(b, &waiting))
                return waiting + b->queue.len;
        if (b->total > 0)
                return b->total > done ? b->total - done : 0;
        return b->queue.len;
}

void batch_fill_signals(struct batch *b, struct signals *s) {
        usec_t now = batch_now(b);
        double elapsed = (double) (now - b->interval_start) / (double) USEC_PER_SEC;

        signals_set(s, SIGNAL_TASKS_BACKLOG, (double) batch_backlog(b));
        batch_input_fill_signals(b, s);
        signals_set(s, SIGNAL_TASKS_BUSY, fmin(100.0, 100.0 * b->running / (double) b->concurrency));
        if (elapsed > 0)
                signals_set(s, SIGNAL_TASKS_RATE, (double) b->interval_done / elapsed);
        if (b->interval_attempts > 0)
                signals_set(s, SIGNAL_TASKS_LATENCY, b->interval_seconds / (double) b->interval_attempts);
        b->interval_start = now;
        b->interval_done = b->interval_attempts = 0;
        b->interval_seconds = 0;
}

void batch_fill_snapshot(const struct batch *b, struct metrics_snapshot *s) {
        s->desired = b->concurrency;
        s->max = b->max;
        s->stopping = b->stopping;
        s->workers[METRICS_WORKER_RUNNING] = b->running;
        for (int i = 0; i < _METRICS_OUTCOME_MAX; i++)
                s->exits[i] = b->exits[i];
        s->tasks_ok = b->ok;
        s->tasks_failed = b->failed;
        s->tasks_pending = batch_backlog(b);
        s->utilization = fmin(1.0, (double) b->running / (double) b->concurrency);
        s->task_duration = b->durations;
        batch_input_fill_snapshot(b, s);
}

void batch_set_on_stopping(struct batch *b, void (*cb)(void *userdata), void *userdata) {
        b->on_stopping = cb;
        b->userdata = userdata;
}

/* ---- the batch as a workload (workload.h) ---- */

static int bw_start(void *w, unsigned size) {
        struct batch *b = w;
        char from[512];   /* a queue's password stays out of the log */
        batch_set_concurrency(b, size);
        log_info("batch from %s: %u task%s at once to start, up to %u",
                 queue_url_masked(b->config->tasks.from, from, sizeof(from)), b->concurrency,
                 b->concurrency == 1 ? "" : "s", b->max);
        return batch_start(b);
}

static unsigned bw_size(const void *w) {
        return batch_concurrency(w);
}

static unsigned bw_max(const void *w) {
        return batch_max(w);
}

static void bw_resize(void *w, unsigned n) {
        batch_set_concurrency(w, n);
}

static void bw_stop(void *w) {
        batch_stop(w);
}

static bool bw_stopping(const void *w) {
        return batch_stopping(w);
}

static int bw_reconfigure(void *w, const struct corral_config *config) {
        return batch_reconfigure(w, config);
}

static int bw_set_shm(void *w, struct shm_set *shm) {
        return batch_set_shm(w, shm);
}

static size_t bw_slots(const void *w) {
        return ((const struct batch *) w)->n_slots;
}

static size_t bw_running_pids(const void *w, pid_t *pids, size_t n) {
        return batch_running_pids(w, pids, n);
}

static void bw_fill_signals(void *w, struct signals *s) {
        batch_fill_signals(w, s);
}

static void bw_fill_snapshot(const void *w, struct metrics_snapshot *s, const struct workload_view *v) {
        (void) v;   /* a task's process is too short-lived for a row */
        batch_fill_snapshot(w, s);
}

static void bw_describe(const void *w, char *buf, size_t size) {
        snprintf(buf, size, "tasks %u/%u running", batch_running(w), batch_concurrency(w));
}

static void bw_free(void *w) {
        batch_free(w);
}

static const struct workload_ops batch_workload_ops = {
        .kind = "batch",
        .start = bw_start,
        .size = bw_size,
        .max = bw_max,
        .resize = bw_resize,
        .stop = bw_stop,
        .stopping = bw_stopping,
        .reconfigure = bw_reconfigure,
        .set_shm = bw_set_shm,
        .slots = bw_slots,
        .running_pids = bw_running_pids,
        .fill_signals = bw_fill_signals,
        .fill_snapshot = bw_fill_snapshot,
        .describe = bw_describe,
        .free = bw_free,
};

int batch_workload_new(sd_event *e, const struct corral_config *config, const struct workload_options *o,
                       const struct workload_owner *owner, struct workload *ret) {
        struct batch *b;
        int r = batch_new(e, config, &(struct batch_options) {
                                  .resume = o->resume, .resume_failed = o->resume_failed,
                                  .bar = batch_bar_mode(o->quiet, o->bar),
                          }, &b);
        if (r < 0)
                return r;   /* logged */
        batch_set_on_stopping(b, owner->stopping, owner->userdata);
        if (config->workers.recycle_tasks > 0)
                log_warning("workers.recycle.tasks counts stream-mode lines only: "
                            "in per-task mode each task is its own process; ignoring it");
        *ret = (struct workload) { .ops = &batch_workload_ops, .impl = b };
        return 0;
}
