/* SPDX-License-Identifier: MIT */
/*
 * The batch's input: the file source (a file or stdin): task lines read as
 * far as the dispatcher needs (a pipe only when epoll says it is readable),
 * the shard's lines cut into invocations of tasks.batch lines, invocations
 * the joblog has as done skipped (--resume), and the rest queued. And the
 * batch as the consumer of a task source (task_source.h) of another kind:
 * a work queue (queue_source.c) gives its lines here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "common/exit_status.h"
#include "conf/queue_url.h"
#include "supervisor/batch_results.h"
#include "supervisor/log.h"
#include "supervisor/progress_bar.h"
#include "supervisor/queue_source.h"
#include "supervisor/task_input.h"

bool batch_in_shard(const struct tasks_config *t, uint64_t seq) {
        return t->shard_count <= 1 || (seq - 1) % t->shard_count == t->shard_index;
}

/* Queues the gathered invocation, unless the joblog has it as done. */
int batch_push_gathered(struct batch *b) {
        struct pending p = b->gather;
        bool done = b->gather_done;

        b->gather = (struct pending) {};
        b->gather_done = false;
        if (p.lines == 0 || done)
                return 0;
        p.ord = b->next_ord;
        p.len = b->gather_text.len;
        p.line = malloc(p.len + 1);
        if (!p.line)
                return -ENOMEM;
        memcpy(p.line, b->gather_text.data, p.len);
        p.line[p.len] = '\0';
        if (queue_push_back(&b->queue, &p) < 0) {
                free(p.line);
                return -ENOMEM;
        }
        b->next_ord++;
        return 0;
}

/* Opens the invocation that line seq starts (skipped whole when the joblog
 * has it as done). */
static void batch_gather_open(struct batch *b, uint64_t seq) {
        const struct tasks_config *t = &b->config->tasks;

        b->gather = (struct pending) { .seq = seq };
        b->gather_text.len = 0;
        b->gather_bytes = 0;
        b->gather_done = (b->opts.resume || b->opts.resume_failed) &&
                         joblog_state_done(&b->done_before, seq, b->opts.resume_failed, t->retries);
}

/* --resume: the run that wrote the joblog cut an invocation early at seq
 * (its input or environment differed); cut there too, so that no line of a
 * later part of it is taken as done. */
static bool batch_joblog_cut_here(const struct batch *b, uint64_t seq) {
        return (b->opts.resume || b->opts.resume_failed) && joblog_state_done(&b->done_before, seq, false, 0);
}

/* A line no invocation can carry (line NULL: dropped as it was read): a
 * failed task, said with its place, not run and not retried. */
static void batch_line_too_long(struct batch *b, uint64_t seq, size_t len) {
        char from[512];   /* a queue's password stays out of the log */
        log_error("%s:%llu: a task line of %zu bytes is too long: execve() passes at most %zu bytes of a line "
                  "to '%s' (as an argument and in $CORRAL_TASK); counting it as failed",
                  queue_url_masked(b->config->tasks.from, from, sizeof(from)), (unsigned long long) seq, len, arg_budget_line_max(&b->arg_budget),
                  b->config->command[0]);
        b->failed++;
        b->interval_done++;
        b->exits[METRICS_OUTCOME_FAILURE]++;
        batch_note_failed(b, seq, NULL, 0);   /* its place is in the error above */
        batch_write_not_run(b, seq, "line too long");
        if (b->source.ops->not_run)
                b->source.ops->not_run(b->source.src, seq, "line too long");
}

/* Adds one line of the shard to the invocation being gathered; queues it
 * once it has tasks.batch lines, or before a line that would not fit. */
int batch_gather(struct batch *b, uint64_t seq, const char *line, size_t len) {
        const struct tasks_config *t = &b->config->tasks;
        unsigned per = t->batch > 1 ? t->batch : 1;
        bool never_fits = !line || !arg_budget_fits(&b->arg_budget, 0, 0, len);
        int r;

        if (b->shard_pos++ % per == 0 || b->gather.seq == 0)
                batch_gather_open(b, seq);
        else if (never_fits || !arg_budget_fits(&b->arg_budget, b->gather.lines, b->gather_bytes, len) ||
                 batch_joblog_cut_here(b, seq)) {
                if ((r = batch_push_gathered(b)) < 0)
                        return r;
                batch_gather_open(b, seq);
        }
        if (never_fits) {
                batch_line_too_long(b, seq, len);
                b->gather = (struct pending) {};   /* the next line opens another */
        } else if (b->gather_done) {
                b->skipped++;
                b->gather.lines++;
        } else {
                if (b->gather.lines > 0 && (r = strbuf_append(&b->gather_text, "\n", 1)) < 0)
                        return r;
                if ((r = strbuf_append(&b->gather_text, line, len)) < 0)
                        return r;
                b->gather.lines++;
        }
        b->gather_bytes += len;
        if (b->shard_pos % per == 0)
                return batch_push_gathered(b);
        return 0;
}

/* Moves whole lines from the reader into the queue, up to the target. */
static int batch_take_lines(struct batch *b) {
        const struct tasks_config *t = &b->config->tasks;
        char *line;
        size_t len;
        int r;

        while (b->queue.len < b->queue_target) {
                r = line_reader_next(&b->reader, &line, &len);
                if (r == -E2BIG)
                        line = NULL;   /* dropped: too long for any invocation */
                else if (r < 0)
                        return r;
                if (r == 0)
                        return 0;
                uint64_t seq = ++b->line_no;
                if (!batch_in_shard(t, seq))
                        continue;
                r = batch_gather(b, seq, line, len);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The end of the input: a last, shorter invocation goes too (as xargs -n). */
static int batch_input_ended(struct batch *b) {
        b->in_eof = true;
        return batch_push_gathered(b);
}

/* One read() of the input. Returns 0, or a negative errno after which the
 * input counts as ended. */
static int batch_read_input(struct batch *b) {
        char *p;
        size_t n;
        int r = line_reader_space(&b->reader, READ_CHUNK, &p, &n);
        if (r < 0)
                return r;
        ssize_t k;
        do
                k = read(b->in_fd, p, n);
        while (k < 0 && errno == EINTR);
        if (k < 0 && errno == EAGAIN)
                return 0;
        if (k < 0) {
                r = -errno;
                log_error_errno(r, "Failed to read the tasks from %s: %m", b->config->tasks.from);
                line_reader_commit(&b->reader, 0);
                return r;
        }
        line_reader_commit(&b->reader, (size_t) k);
        return 0;
}

void batch_input_failed(struct batch *b, int r) {
        (void) r;
        b->fatal_status = EXIT_USAGE;
        b->in_eof = true;
        b->hooks.stop(b);
}

/* Fills the queue from a regular file, which never blocks for long. For a
 * pipe or terminal, only arms the input source while the queue is short. */
static void file_fill(void *src) {
        struct batch *b = src;
        int r;

        if (b->in_async) {
                r = batch_take_lines(b);   /* lines already read */
                if (r < 0)
                        return batch_input_failed(b, r);
                if (b->reader.eof && b->reader.start == b->reader.end && batch_input_ended(b) < 0)
                        return batch_input_failed(b, -ENOMEM);
                (void) sd_event_source_set_enabled(b->in_source, !b->in_eof && b->queue.len < b->queue_target
                                                                         ? SD_EVENT_ON : SD_EVENT_OFF);
                return;
        }
        while (b->queue.len < b->queue_target && !b->in_eof) {
                r = batch_take_lines(b);
                if (r < 0)
                        return batch_input_failed(b, r);
                if (b->queue.len >= b->queue_target)
                        break;
                if (b->reader.eof) {
                        if (batch_input_ended(b) < 0)
                                return batch_input_failed(b, -ENOMEM);
                        break;
                }
                r = batch_read_input(b);
                if (r < 0)
                        return batch_input_failed(b, r);
        }
}

static int on_input(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct batch *b = userdata;
        (void) s;
        (void) fd;
        (void) revents;
        int r = batch_read_input(b);
        if (r < 0) {
                batch_input_failed(b, r);
                return 0;
        }
        b->hooks.progress(b);
        return 0;
}

/* Lines in the input file from its current offset, of this shard: the bar's total. */
static uint64_t count_lines(int fd, const struct tasks_config *t) {
        uint64_t lines = progress_count_lines(fd);
        if (t->shard_count > 1)
                lines = lines > t->shard_index ? (lines - t->shard_index - 1) / t->shard_count + 1 : 0;
        return lines;
}

static void file_stop(void *src) {
        struct batch *b = src;
        b->in_source = sd_event_source_disable_unref(b->in_source);
}

static const struct task_source_ops file_source = {
        .name = "file",
        .fill = file_fill,
        .stop = file_stop,
};

static int file_open(struct batch *b) {
        const char *from = b->config->tasks.from;
        struct stat st;

        if (strcmp(from, "-") == 0) {
                b->in_fd = STDIN_FILENO;
                /* The tasks must not eat the task lines. */
                b->null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (b->null_fd < 0)
                        return log_error_errno(errno, "Failed to open /dev/null: %m");
        } else {
                b->in_fd = open(from, O_RDONLY | O_CLOEXEC);
                if (b->in_fd < 0)
                        return log_error_errno(errno, "cannot read the tasks from %s: %m", from), -EINVAL;
        }
        if (fstat(b->in_fd, &st) < 0)
                return log_error_errno(errno, "cannot read the tasks from %s: %m", from), -EINVAL;
        if (S_ISREG(st.st_mode)) {
                b->total = count_lines(b->in_fd, &b->config->tasks);
                return 0;
        }
        /* A pipe or terminal may block: read it when the loop says it is readable. */
        int r = sd_event_add_io(b->event, &b->in_source, b->in_fd, EPOLLIN, on_input, b);
        if (r == -EPERM)
                return 0;    /* not pollable (/dev/null): plain reads never block */
        if (r < 0)
                return log_error_errno(r, "Failed to watch the task input: %m");
        (void) sd_event_source_set_enabled(b->in_source, SD_EVENT_OFF);
        b->in_async = true;
        return 0;
}

/* The batch as a task source's consumer (struct task_consumer). */
static int consumer_line(void *data, uint64_t seq, const char *line, size_t len, const char **why) {
        struct batch *b = data;
        (void) why;
        /* --batch: a queue has no fixed cuts, each reply's lines are cut anew. */
        if (b->gather.lines == 0)
                b->shard_pos = 0;
        return batch_gather(b, seq, line, len);
}

static int consumer_flush(void *data) {
        struct batch *b = data;
        return b->gather.lines > 0 ? batch_push_gathered(b) : 0;
}

static void consumer_ended(void *data) {
        struct batch *b = data;
        b->in_eof = true;
        b->hooks.progress(b);
}

static void consumer_progress(void *data) {
        struct batch *b = data;
        b->hooks.progress(b);
}

static void consumer_failed(void *data, int error) {
        batch_input_failed(data, error);
}

/* Invocations to hold (running and queued): what the pool runs at once and
 * as many again, enough to hide a round trip to a server, few enough that
 * other consumers get the rest: a line queued here waits for this pool. */
static size_t consumer_wanted(void *data) {
        const struct batch *b = data;
        size_t per = b->config->tasks.batch > 1 ? b->config->tasks.batch : 1;
        size_t limit = 2 * (size_t) b->concurrency;
        if (limit > b->queue_target)
                limit = b->queue_target;
        size_t held = b->running + b->queue.len;
        return held < limit ? (limit - held) * per : 0;
}

static bool consumer_busy(void *data, uint64_t seq) {
        const struct batch *b = data;
        for (unsigned i = 0; i < b->n_slots; i++) {
                const struct slot *s = b->slots[i];
                if (s->busy && seq >= s->task.seq && seq < s->task.seq + s->task.lines)
                        return true;
        }
        return false;
}

static void consumer_after_output(void *data, task_output_fn fn, void *fn_data) {
        struct batch *b = data;
        (void) sink_mark(b->sink, fn, fn_data);    /* on failure it ran, with false */
}

int batch_open_input(struct batch *b) {
        if (queue_url_is(b->config->tasks.from)) {
                struct task_consumer c = {
                        .data = b, .line = consumer_line, .flush = consumer_flush, .ended = consumer_ended,
                        .progress = consumer_progress, .failed = consumer_failed, .wanted = consumer_wanted,
                        .busy = consumer_busy, .after_output = consumer_after_output,
                };
                return queue_source_open(b->event, b->config, &c, &b->source);
        }
        b->source = (struct task_source) { .ops = &file_source, .src = b };
        return file_open(b);
}

void batch_fill_queue(struct batch *b) {
        if (b->stopping || b->in_eof)
                return;
        b->source.ops->fill(b->source.src);
}

const char *batch_input_task_id_var(struct batch *b, const struct pending *t) {
        return b->source.ops->task_id_var ? b->source.ops->task_id_var(b->source.src, t->seq, t->lines) : NULL;
}

void batch_input_capture(struct batch *b, const struct spool *out) {
        if (b->source.ops->capture)
                b->source.ops->capture(b->source.src, out);
}

void batch_input_done(struct batch *b, const struct pending *t, const struct task_report *r) {
        if (b->source.ops->done)
                b->source.ops->done(b->source.src, t->seq, t->lines, r);
}

void batch_input_stop(struct batch *b) {
        if (b->source.ops->stop)
                b->source.ops->stop(b->source.src);
}

bool batch_input_settled(struct batch *b) {
        return !b->source.ops->settled || b->source.ops->settled(b->source.src);
}

int batch_input_status(struct batch *b, int status) {
        return b->source.ops->status ? b->source.ops->status(b->source.src, status, b->output_failed) : status;
}

bool batch_input_summarize(struct batch *b, int status) {
        return b->source.ops->summarize && b->source.ops->summarize(b->source.src, status);
}

bool batch_input_backlog(const struct batch *b, uint64_t *ret) {
        return b->source.ops->backlog && b->source.ops->backlog(b->source.src, ret);
}

void batch_input_fill_snapshot(const struct batch *b, struct metrics_snapshot *s) {
        if (b->source.ops->fill_snapshot)
                b->source.ops->fill_snapshot(b->source.src, s);
}

void batch_input_fill_signals(const struct batch *b, struct signals *s) {
        if (b->source.ops->fill_signals)
                b->source.ops->fill_signals(b->source.src, s);
}

/* Accepts a batch whose input never opened. */
void batch_input_free(struct batch *b) {
        if (b->source.ops && b->source.ops->free)
                b->source.ops->free(b->source.src);
        b->source = (struct task_source) {};
}
