/* SPDX-License-Identifier: MIT */
/*
 * Per-task batch mode: a queue of input lines, a set of running-task slots
 * (CORRAL_WORKER_ID is the slot), one process per task attempt, its stdout
 * (tasks.output) collected through a pipe and written whole when it ends
 * (group), passed on in whole lines as it comes (line-buffer), or corral's own
 * stdout (ungroup), a joblog line per attempt, retries, keep_order, the stop,
 * and the progress bar.
 *
 * Spawning is the hot path (DESIGN.md: dispatch at xargs speed): tasks start
 * through spawn_worker() (vfork-style, no page tables copied), the program is
 * looked up in PATH once, the argv and environment are built in buffers reused
 * from task to task, and nothing is logged per task unless -v.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf/units.h"
#include "supervisor/batch.h"
#include "supervisor/identity.h"
#include "supervisor/joblog.h"
#include "supervisor/log.h"
#include "supervisor/spawn.h"
#include "supervisor/task.h"

extern char **environ;

/* With keep_order, a task starts only while its output is at most this many
 * places ahead of the next one to print: a stuck task holds up the output
 * anyway, and this bounds what is buffered behind it. */
#define ORDER_WINDOW 4096u
#define BAR_INTERVAL (200 * USEC_PER_MSEC)
#define FIRST_FAILED_MAX 5
#define READ_CHUNK (64u * 1024u)
/* sd-event's default slack is 250ms, which would stretch a short timeout by
 * most of itself. */
#define TIMEOUT_ACCURACY (1 * USEC_PER_MSEC)

/* A task waiting to run (or to run again): one invocation of COMMAND, over
 * one line or, with tasks.batch N, up to N lines joined by '\n'. */
struct pending {
        uint64_t seq;            /* 1-based input line number of its first line */
        uint64_t ord;            /* 0-based among the tasks this run, for keep_order */
        unsigned attempts;       /* made so far */
        unsigned lines;          /* task lines in it, >= 1 */
        char *line;              /* owned; the lines joined by '\n' */
        size_t len;
};

/* A double-ended ring: new lines at the back, retries at the front. */
struct queue {
        struct pending *ring;
        size_t cap, head, len;   /* cap is a power of two */
};

struct slot {
        struct batch *batch;
        unsigned id;
        bool busy;
        struct pending task;
        pid_t pid;
        usec_t started;          /* CLOCK_MONOTONIC */
        double started_real;     /* seconds since the epoch, for the joblog */
        sd_event_source *child, *out, *timer, *err;
        int out_fd;
        int err_fd;              /* the task's stderr, when corral prefixes its lines */
        struct strbuf err_line;  /* a partial stderr line */
        bool exited, eof, timed_out;
        unsigned timeout_phase;  /* 0: running; 1: stop_signal sent; 2: SIGKILL sent */
        int how, status;         /* CLD_EXITED (status: exit status) or killed (status: signal) */
        struct strbuf output;    /* group: all of it; live: what may not go out yet */
        bool live;               /* its output is passed on as it comes */
        uint64_t received;       /* bytes it wrote to stdout (the joblog's Receive) */
};

struct batch {
        sd_event *event;
        const struct corral_config *config;
        struct batch_options opts;
        bool prefix_stderr;      /* stderr is a terminal: tasks' lines get their number */
        unsigned concurrency, running, max;
        uint64_t running_lines;  /* task lines in the running invocations */
        struct slot **slots;
        unsigned n_slots;

        /* input */
        int in_fd;
        bool in_async, in_eof;
        sd_event_source *in_source;
        struct line_reader reader;
        uint64_t line_no, next_ord;
        /* tasks.batch: the invocation being gathered from the input. The
         * shard's lines are cut into invocations at fixed places (every
         * batch-th line of the shard), so a joblog Seq names the same lines
         * in every run with the same --batch and --shard: that is what makes
         * --resume work per line. */
        uint64_t shard_pos;      /* lines of the shard read so far */
        struct pending gather;   /* .line unused: the text is in gather_text */
        struct strbuf gather_text;
        bool gather_done;        /* the joblog has it as done: its lines are skipped */
        struct queue queue;
        size_t queue_target;
        int null_fd;             /* tasks' stdin when the input is corral's stdin */

        /* joblog */
        int joblog_fd;
        struct joblog_state done_before;
        struct strbuf joblog_line, command_line;
        struct task_argv joblog_argv;

        /* spawning: reused from task to task */
        struct task_argv argv;
        char **envp;             /* environment; the last four entries are per task */
        struct shm_set *shm;     /* shared segments every task gets (a reference) */
        size_t env_task;         /* index of the first per-task entry */
        char id_var[48], max_var[48], seq_var[48];
        struct strbuf task_var;
        char *exe;               /* command[0] resolved once; NULL: looked up per task */

        /* output: fixed for the run (a reload cannot switch modes halfway) */
        enum task_output output;
        bool keep_order;
        bool direct_output;      /* ungroup: tasks write to corral's stdout itself */
        bool bar_over_output;    /* the bar shares a terminal with the output */
        bool bar_drawn;          /* a bar line is on the terminal now */
        struct order_buffer order;
        size_t order_held;
        bool stdout_broken;

        /* counts */
        uint64_t ok, failed, skipped, total;  /* total 0: unknown */
        uint64_t exits[_METRICS_OUTCOME_MAX];
        struct metrics_histogram durations;
        uint64_t first_failed[FIRST_FAILED_MAX];
        size_t n_first_failed;
        uint64_t interval_done, interval_attempts;
        double interval_seconds;
        usec_t interval_start, start_time;

        /* the end */
        bool stopping, finished, undone;
        int fatal_status;        /* 2 when the command cannot run; 0 otherwise */
        sd_event_source *stop_timer, *bar_timer, *retry_timer;
        bool bar;
        int bar_fd;
        void (*on_stopping)(void *userdata);
        void *userdata;
};

static void batch_progress(struct batch *b);

static usec_t batch_now(struct batch *b) {
        usec_t now = 0;
        (void) sd_event_now(b->event, CLOCK_MONOTONIC, &now);
        return now;
}

/* ---- the queue ---------------------------------------------------------- */

static int queue_reserve(struct queue *q) {
        if (q->len < q->cap)
                return 0;
        size_t cap = q->cap ? q->cap * 2 : 64;
        struct pending *ring = calloc(cap, sizeof(*ring));
        if (!ring)
                return -ENOMEM;
        for (size_t i = 0; i < q->len; i++)
                ring[i] = q->ring[(q->head + i) & (q->cap - 1)];
        free(q->ring);
        q->ring = ring;
        q->cap = cap;
        q->head = 0;
        return 0;
}

static int queue_push_back(struct queue *q, const struct pending *p) {
        int r = queue_reserve(q);
        if (r < 0)
                return r;
        q->ring[(q->head + q->len++) & (q->cap - 1)] = *p;
        return 0;
}

static int queue_push_front(struct queue *q, const struct pending *p) {
        int r = queue_reserve(q);
        if (r < 0)
                return r;
        q->head = (q->head - 1) & (q->cap - 1);
        q->ring[q->head] = *p;
        q->len++;
        return 0;
}

static struct pending queue_pop_front(struct queue *q) {
        struct pending p = q->ring[q->head];
        q->head = (q->head + 1) & (q->cap - 1);
        q->len--;
        return p;
}

static void queue_clear(struct queue *q) {
        while (q->len > 0)
                free(queue_pop_front(q).line);
}

/* ---- output ------------------------------------------------------------- */

static void bar_draw(struct batch *b, bool last);

/* Output lines would land on the bar's line: wipe it first (the caller draws
 * it again after writing). Returns whether it did. */
static bool bar_step_aside(struct batch *b, bool output_on_stdout) {
        if (!b->bar_drawn || (output_on_stdout && !b->bar_over_output))
                return false;
        (void) !write(b->bar_fd, "\r\033[K", 4);
        b->bar_drawn = false;
        return true;
}

/* Writes a task's output whole, in one go where the pipe allows. */
static void emit(struct batch *b, const char *data, size_t len) {
        bool redraw = len > 0 && bar_step_aside(b, true);
        while (len > 0 && !b->stdout_broken) {
                ssize_t n = write(STDOUT_FILENO, data, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        /* An inherited non-blocking stdout: wait for room. */
                        (void) poll(&(struct pollfd) { .fd = STDOUT_FILENO, .events = POLLOUT }, 1, -1);
                        continue;
                }
                if (n < 0) {
                        log_warning_errno(errno, "Failed to write task output, dropping it from now on: %m");
                        b->stdout_broken = true;
                        return;
                }
                data += n;
                len -= (size_t) n;
        }
        if (redraw)
                bar_draw(b, false);
}

static void emit_in_order(struct batch *b) {
        char *data;
        size_t len;
        while (order_buffer_pop(&b->order, &data, &len)) {
                b->order_held--;
                emit(b, data, len);
                free(data);
        }
}

/* At the end, outputs behind tasks that never ran (a stop) still come out. */
static void emit_rest(struct batch *b) {
        while (b->order_held > 0) {
                emit_in_order(b);
                if (b->order_held > 0)
                        b->order.next++;   /* a hole: that task never ended */
        }
}

/* ---- the progress bar --------------------------------------------------- */

static void bar_draw(struct batch *b, bool last) {
        char line[512], out[600];
        struct winsize ws;
        unsigned width = 80;
        double elapsed = (double) (batch_now(b) - b->start_time) / (double) USEC_PER_SEC;
        uint64_t done = b->ok + b->failed + b->skipped;

        if (ioctl(b->bar_fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
                width = ws.ws_col - 1;
        if (width > sizeof(line) - 1)
                width = sizeof(line) - 1;
        task_bar_format(line, sizeof(line), width, done, b->total, b->failed, b->running,
                        elapsed > 0.2 ? (double) (b->ok + b->failed) / elapsed : -1);
        int n = snprintf(out, sizeof(out), "\r%s\033[K%s", line, last ? "\n" : "");
        if (n > 0)
                (void) !write(b->bar_fd, out, (size_t) n < sizeof(out) ? (size_t) n : sizeof(out) - 1);
        b->bar_drawn = !last;
}

static int on_bar_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct batch *b = userdata;
        bar_draw(b, false);
        if (sd_event_source_set_time(s, usec + BAR_INTERVAL) >= 0)
                (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        return 0;
}

/* The bar goes to a terminal only: stderr when it is one; with --bar also the
 * controlling terminal when stderr is redirected; never into a pipe or file. */
static int bar_open(const struct batch_options *o) {
        if (o->bar == BATCH_BAR_NEVER)
                return -EBADF;
        if (isatty(STDERR_FILENO))
                return STDERR_FILENO;
        if (o->bar == BATCH_BAR_ALWAYS) {
                int fd = open("/dev/tty", O_WRONLY | O_NOCTTY | O_CLOEXEC);
                if (fd >= 0)
                        return fd;
        }
        return -EBADF;
}

/* True when the bar and corral's stdout are the same terminal, so that output
 * written while the bar shows would be glued to it. */
static bool bar_shares_stdout(int bar_fd) {
        struct stat a, o;
        return bar_fd >= 0 && isatty(STDOUT_FILENO) && fstat(bar_fd, &a) >= 0 && fstat(STDOUT_FILENO, &o) >= 0 &&
               a.st_rdev == o.st_rdev;
}

/* ---- the end ------------------------------------------------------------ */

static void summarize(struct batch *b, int status) {
        char first[FIRST_FAILED_MAX * 24 + 8] = "";
        size_t n = 0;

        for (size_t i = 0; i < b->n_first_failed; i++)
                n += (size_t) snprintf(first + n, sizeof(first) - n, "%s%llu", i ? ", " : "",
                                       (unsigned long long) b->first_failed[i]);
        if (b->failed > b->n_first_failed)
                snprintf(first + n, sizeof(first) - n, ", ...");
        if (status == 0) {
                log_info("%llu ok, 0 failed%s", (unsigned long long) b->ok,
                         b->skipped ? " (resumed)" : "");
                return;
        }
        log_warning("%llu ok, %llu failed%s%s%s", (unsigned long long) b->ok, (unsigned long long) b->failed,
                    b->failed ? "; first failed: seq " : "", first,
                    b->undone ? "; stopped with tasks left undone (run again with --resume)" : "");
}

static void batch_maybe_finish(struct batch *b) {
        if (b->finished || b->running > 0)
                return;
        if (!b->stopping && (b->queue.len > 0 || !b->in_eof))
                return;

        b->finished = true;
        emit_rest(b);
        int status = b->fatal_status ? b->fatal_status : (b->failed > 0 || b->undone) ? 1 : 0;
        if (b->bar_fd >= 0) {
                bar_draw(b, true);
                b->bar_timer = sd_event_source_disable_unref(b->bar_timer);
        }
        if (b->fatal_status == 0)
                summarize(b, status);
        b->stop_timer = sd_event_source_disable_unref(b->stop_timer);
        b->retry_timer = sd_event_source_disable_unref(b->retry_timer);
        b->in_source = sd_event_source_disable_unref(b->in_source);
        (void) sd_event_exit(b->event, status);
}

static void kill_all(struct batch *b) {
        for (unsigned i = 0; i < b->n_slots; i++)
                if (b->slots[i]->busy && !b->slots[i]->exited)
                        (void) kill(-b->slots[i]->pid, SIGKILL);
}

static int on_stop_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct batch *b = userdata;
        char t[32];
        (void) s;
        (void) usec;
        log_warning("%u task%s still running %s after the stop, killing", b->running, b->running == 1 ? "" : "s",
                    format_duration(b->config->workers.stop_timeout, t));
        kill_all(b);
        return 0;
}

void batch_stop(struct batch *b) {
        if (b->finished)
                return;
        if (b->stopping) {
                log_notice("stopping at once");
                kill_all(b);
                return;
        }
        b->stopping = true;
        b->undone = b->queue.len > 0 || !b->in_eof;
        queue_clear(&b->queue);
        b->in_source = sd_event_source_disable_unref(b->in_source);
        if (b->on_stopping)
                b->on_stopping(b->userdata);
        if (b->running > 0) {
                log_info("stopping: no new tasks; waiting for %u running", b->running);
                int r = sd_event_add_time_relative(b->event, &b->stop_timer, CLOCK_MONOTONIC,
                                                   b->config->workers.stop_timeout, 0, on_stop_timer, b);
                if (r < 0) {
                        log_error_errno(r, "Failed to arm the stop timer, killing the tasks now: %m");
                        kill_all(b);
                }
        }
        batch_maybe_finish(b);
}

/* The command cannot run at all: say so once, end with exit 2. */
static void batch_fatal(struct batch *b, int error) {
        char as[256];
        log_error_errno(error, "cannot run '%s'%s: %m", b->config->command[0],
                        identity_describe(&b->config->workers, as, sizeof(as)));
        b->fatal_status = 2;
        batch_stop(b);
}

/* ---- input -------------------------------------------------------------- */

static bool in_shard(const struct tasks_config *t, uint64_t seq) {
        return t->shard_count <= 1 || (seq - 1) % t->shard_count == t->shard_index;
}

/* Queues the gathered invocation, unless the joblog has it as done. */
static int batch_push_gathered(struct batch *b) {
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

/* Adds one line of the shard to the invocation being gathered; queues it
 * once it has tasks.batch lines. */
static int batch_gather(struct batch *b, uint64_t seq, const char *line, size_t len) {
        const struct tasks_config *t = &b->config->tasks;
        unsigned per = t->batch > 1 ? t->batch : 1;
        int r;

        if (b->shard_pos++ % per == 0) {
                b->gather = (struct pending) { .seq = seq };
                b->gather_text.len = 0;
                b->gather_done = (b->opts.resume || b->opts.resume_failed) &&
                                 joblog_state_done(&b->done_before, seq, b->opts.resume_failed, t->retries);
        }
        if (b->gather_done)
                b->skipped++;
        else {
                if (b->gather.lines > 0 && (r = strbuf_append(&b->gather_text, "\n", 1)) < 0)
                        return r;
                if ((r = strbuf_append(&b->gather_text, line, len)) < 0)
                        return r;
                b->gather.lines++;
        }
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
                if (r == -E2BIG) {
                        log_error("%s:%llu: a task line longer than %u bytes cannot be an argument",
                                  t->from, (unsigned long long) b->line_no + 1, TASK_LINE_MAX);
                        return r;
                }
                if (r < 0)
                        return r;
                if (r == 0)
                        return 0;
                uint64_t seq = ++b->line_no;
                if (!in_shard(t, seq))
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

static void batch_input_failed(struct batch *b, int r) {
        (void) r;
        b->fatal_status = 2;
        b->in_eof = true;
        batch_stop(b);
}

/* Fills the queue from a regular file, which never blocks for long. For a
 * pipe or terminal, only arms the input source while the queue is short. */
static void batch_fill_queue(struct batch *b) {
        int r;

        if (b->stopping || b->in_eof)
                return;
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
        batch_progress(b);
        return 0;
}

/* ---- one task ----------------------------------------------------------- */

/* Passes on a task's stderr line by line, each prefixed with the task's
 * number, so that the lines of concurrent tasks can be told apart on a
 * terminal. final: the task has ended; what is left is flushed. */
static void slot_read_stderr(struct slot *s, bool final) {
        struct strbuf *l = &s->err_line;
        for (;;) {
                if (s->err_fd < 0 || strbuf_reserve(l, READ_CHUNK) < 0)
                        break;
                ssize_t n = read(s->err_fd, l->data + l->len, l->cap - l->len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        if (n == 0 || errno != EAGAIN) {
                                s->err = sd_event_source_disable_unref(s->err);
                                s->err_fd = safe_close(s->err_fd);
                                final = true;
                        }
                        break;
                }
                l->len += (size_t) n;
                if (!final)
                        break;
        }

        /* Complete lines go out now, one write() each; a partial one waits for
         * its end, unless the task is gone. */
        char prefix[32];
        int np = snprintf(prefix, sizeof(prefix), "[%llu] ", (unsigned long long) s->task.seq);
        size_t start = 0;
        bool redraw = false;
        while (start < l->len) {
                char *nl = memchr(l->data + start, '\n', l->len - start);
                if (!nl && !final)
                        break;
                size_t end = nl ? (size_t) (nl - l->data) + 1 : l->len;
                struct iovec iov[3] = {
                        { prefix, (size_t) np },
                        { l->data + start, end - start },
                        { (char *) "\n", nl ? 0 : 1 },
                };
                if (!redraw && s->batch->bar_fd == STDERR_FILENO)
                        redraw = bar_step_aside(s->batch, false);
                (void) !writev(STDERR_FILENO, iov, 3);
                start = end;
        }
        memmove(l->data, l->data + start, l->len - start);
        l->len -= start;
        if (redraw)
                bar_draw(s->batch, false);
}

static int on_task_stderr(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        (void) src;
        (void) fd;
        (void) revents;
        slot_read_stderr(userdata, false);
        return 0;
}

static void slot_release_io(struct slot *s) {
        s->child = sd_event_source_unref(s->child);
        s->out = sd_event_source_disable_unref(s->out);
        s->timer = sd_event_source_disable_unref(s->timer);
        s->out_fd = safe_close(s->out_fd);
        if (s->err_fd >= 0)
                slot_read_stderr(s, true);
        s->err = sd_event_source_disable_unref(s->err);
        s->err_fd = safe_close(s->err_fd);
        s->err_line.len = 0;
}

/* Keeps the lowest failed Seqs, sorted, for the summary. */
static void note_failed(struct batch *b, uint64_t seq) {
        size_t i = b->n_first_failed;
        if (i == FIRST_FAILED_MAX) {
                if (seq >= b->first_failed[i - 1])
                        return;
                i--;
        } else
                b->n_first_failed++;
        for (; i > 0 && b->first_failed[i - 1] > seq; i--)
                b->first_failed[i] = b->first_failed[i - 1];
        b->first_failed[i] = seq;
}

/*
 * A joblog line could not be written (a full disk, most often). The joblog is
 * what --resume trusts, so the batch stops as on TERM (no new task; running
 * ones finish, unrecorded) rather than run tasks whose end nobody records and
 * a resume would run again: exit status 1, tasks left undone. A part of the
 * line that did get written is cut off, so that the joblog still reads.
 */
static void joblog_failed(struct batch *b, uint64_t seq, ssize_t written, off_t end, int error) {
        if (written > 0 && end >= 0 && ftruncate(b->joblog_fd, end) < 0)
                log_warning_errno(errno, "Failed to cut the partial line off the joblog, ignoring: %m");
        log_error_errno(error, "Failed to write the joblog line of task %llu: %m; stopping the batch "
                        "(make room, then run again with --resume)", (unsigned long long) seq);
        b->joblog_fd = safe_close(b->joblog_fd);
        if (!b->stopping)
                batch_stop(b);
        b->undone = true;
}

static void write_joblog(struct batch *b, const struct pending *t, double start, double runtime,
                         uint64_t received, int exitval, int sig) {
        if (b->joblog_fd < 0)
                return;
        b->joblog_line.len = 0;
        b->command_line.len = 0;
        if (task_argv_build(&b->joblog_argv, b->config->command, t->line, t->len) < 0 ||
            task_command_line(&b->command_line, b->joblog_argv.argv) < 0)
                return (void) log_warning_errno(ENOMEM, "Failed to write the joblog line of task %llu: %m",
                                                (unsigned long long) t->seq);
        struct joblog_entry e = {
                .seq = t->seq, .start = start, .runtime = runtime, .receive = received,
                .exitval = exitval, .signal = sig, .command = b->command_line.data,
        };
        if (joblog_format(&b->joblog_line, &e) < 0)
                return;
        /* One write per line (O_APPEND): a SIGKILL of corral loses no line and
         * never leaves half of one. */
        off_t end = lseek(b->joblog_fd, 0, SEEK_END);
        errno = 0;
        ssize_t n = write(b->joblog_fd, b->joblog_line.data, b->joblog_line.len);
        if (n == (ssize_t) b->joblog_line.len)
                return;
        joblog_failed(b, t->seq, n, end, n < 0 ? errno : ENOSPC);
}

/* Writes what a live task's output holds that may go now: whole lines
 * (line-buffer) or everything (ungroup); final: the task ended, the rest goes. */
static void slot_pass_on(struct slot *s, bool final) {
        struct strbuf *o = &s->output;
        size_t n = s->batch->output == TASK_OUTPUT_LINE ?
                   task_output_cut(o->data, o->len, TASK_LINE_BUFFER_MAX, final) : o->len;
        if (n == 0)
                return;
        emit(s->batch, o->data, n);
        memmove(o->data, o->data + n, o->len - n);
        o->len -= n;
}

/* keep_order with line-buffer, as GNU parallel: the oldest task still to be
 * printed is live, the others are collected. Once the order moved on, the
 * task now first goes live with what it wrote so far, if it is running. */
static void order_head_goes_live(struct batch *b) {
        if (b->output != TASK_OUTPUT_LINE)
                return;
        for (unsigned i = 0; i < b->n_slots; i++) {
                struct slot *s = b->slots[i];
                if (s->busy && !s->live && s->task.ord == b->order.next) {
                        s->live = true;
                        slot_pass_on(s, false);
                        return;
                }
        }
}

/* Accounts for one ended attempt: joblog, retry or result, output. The slot
 * is free afterwards. The caller calls batch_progress(). */
static void slot_finish(struct slot *s) {
        struct batch *b = s->batch;
        usec_t now = batch_now(b);
        double runtime = (double) (now - s->started) / (double) USEC_PER_SEC;
        bool killed = s->how != CLD_EXITED;
        int exitval = killed ? 0 : s->status;
        int sig = killed ? s->status : 0;
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
        write_joblog(b, &s->task, s->started_real, runtime, s->received, exitval, sig);
        b->exits[outcome]++;
        metrics_histogram_observe(&b->durations, runtime);
        b->interval_attempts++;
        b->interval_seconds += runtime;
        s->task.attempts++;
        log_debug("task %llu (pid %d) %s %d after %.3fs", (unsigned long long) s->task.seq, s->pid,
                  killed ? "killed by signal" : "exited with status", killed ? sig : exitval, runtime);

        s->busy = false;
        s->pid = 0;
        b->running--;
        b->running_lines -= s->task.lines;

        if (!ok && !b->stopping && s->task.attempts <= b->config->tasks.retries) {
                /* Another attempt, first in line; this attempt's output, unless
                 * it went out live, is dropped. */
                s->output.len = 0;
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
                        note_failed(b, s->task.seq + (uint64_t) i * b->config->tasks.shard_count);
        }
        if (b->keep_order) {
                /* The buffer goes to the order buffer; the slot starts a new one. */
                char *data = NULL;
                size_t len = s->output.len;
                if (len > 0) {
                        data = s->output.data;
                        s->output = (struct strbuf) {};
                }
                if (order_buffer_put(&b->order, s->task.ord, data, len) >= 0)
                        b->order_held++;
                else
                        log_warning_errno(ENOMEM, "Failed to keep the output of task %llu: %m",
                                          (unsigned long long) s->task.seq);
                emit_in_order(b);
                order_head_goes_live(b);
        } else {
                emit(b, s->output.data, s->output.len);
                s->output.len = 0;
        }
        free(s->task.line);
        s->task = (struct pending) {};
}

/* Reads what the task wrote. until_empty: drain (at exit) rather than one
 * read (from the event loop, which calls again while there is more). */
static void slot_read(struct slot *s, bool until_empty) {
        const struct batch *b = s->batch;
        for (;;) {
                if (strbuf_reserve(&s->output, READ_CHUNK) < 0) {
                        log_warning_errno(ENOMEM, "Failed to keep the output of task %llu, dropping it: %m",
                                          (unsigned long long) s->task.seq);
                        s->output.len = 0;
                        if (strbuf_reserve(&s->output, READ_CHUNK) < 0)
                                return;
                }
                ssize_t n = read(s->out_fd, s->output.data + s->output.len, s->output.cap - s->output.len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        /* EOF (or an error, which ends the output just as well). */
                        s->eof = true;
                        s->out = sd_event_source_disable_unref(s->out);
                        s->out_fd = safe_close(s->out_fd);
                        return;
                }
                s->output.len += (size_t) n;
                if (b->output != TASK_OUTPUT_UNGROUP)
                        s->received += (uint64_t) n;
                if (s->live)
                        slot_pass_on(s, false);
                if (!until_empty)
                        return;
        }
}

static int on_task_output(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct slot *s = userdata;
        struct batch *b = s->batch;
        (void) src;
        (void) fd;
        (void) revents;
        slot_read(s, false);
        if (s->eof && s->exited) {
                slot_finish(s);
                batch_progress(b);
        }
        return 0;
}

static int on_task_exit(sd_event_source *src, const siginfo_t *si, void *userdata) {
        struct slot *s = userdata;
        struct batch *b = s->batch;
        (void) src;

        s->exited = true;
        s->how = si->si_code;
        s->status = si->si_status;
        s->child = sd_event_source_unref(s->child);
        /* Still a zombie, so the group cannot be someone else's: what the task
         * left running goes with it, and its end of the pipe with that. */
        (void) kill(-s->pid, SIGKILL);
        if (!s->eof)
                slot_read(s, true);
        /* A descendant that left the group may still hold the pipe: then the
         * output ends at its EOF. */
        if (s->eof) {
                slot_finish(s);
                batch_progress(b);
        }
        return 0;
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
        batch_progress(s->batch);
}

/* tasks.timeout, in phases so that a hung task can never hang the batch:
 * stop_signal to the task's process group, SIGKILL stop_timeout later, and
 * if it ended but a descendant still holds its output, stop waiting. */
static int on_task_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        struct slot *s = userdata;
        const struct workers_config *w = &s->batch->config->workers;
        char t[32];
        (void) usec;

        if (s->exited) {
                /* Reaped, so its pid may be another process's now: no kill. */
                slot_abandon_output(s);
                return 0;
        }
        s->timed_out = true;
        if (s->timeout_phase == 0 && w->stop_signal != SIGKILL) {
                log_warning("task %llu (pid %d) ran longer than its timeout %s, sending signal %d (%s)",
                            (unsigned long long) s->task.seq, s->pid,
                            format_duration(s->batch->config->tasks.timeout, t), w->stop_signal,
                            strsignal(w->stop_signal));
                (void) kill(-s->pid, w->stop_signal);
                s->timeout_phase = 1;
        } else {
                log_warning("task %llu (pid %d) %s, killing", (unsigned long long) s->task.seq, s->pid,
                            s->timeout_phase == 0 ? "ran longer than its timeout" : "is still running");
                (void) kill(-s->pid, SIGKILL);
                s->timeout_phase = 2;
        }
        /* Again after stop_timeout: to kill, or to stop waiting for the output. */
        if (sd_event_source_set_time_relative(src, w->stop_timeout) >= 0)
                (void) sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
        return 0;
}

static struct slot *batch_free_slot(struct batch *b) {
        for (unsigned i = 0; i < b->max && i < b->n_slots; i++)
                if (!b->slots[i]->busy)
                        return b->slots[i];
        return NULL;
}

/* Starts s->task in slot s. Returns 0; or a negative errno with the task
 * still in s->task and nothing started. A failed exec of a command that
 * varies per task is a failed attempt, already accounted for. */
static int slot_start(struct batch *b, struct slot *s) {
        const struct pending *t = &s->task;
        _cleanup_(closep) int out_read = -EBADF, out_write = -EBADF;
        int fds[2], r;

        s->output.len = 0;
        s->received = 0;
        r = task_argv_build(&b->argv, b->config->command, t->line, t->len);
        if (r < 0)
                return r;
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

        if (!b->direct_output) {
                if (pipe2(fds, O_CLOEXEC) < 0)
                        return -errno;
                out_read = fds[0];
                out_write = fds[1];
                if (fcntl(out_read, F_SETFL, O_NONBLOCK) < 0)
                        return -errno;
        }

        _cleanup_(closep) int err_read = -EBADF, err_write = -EBADF;
        if (b->prefix_stderr) {
                if (pipe2(fds, O_CLOEXEC) < 0)
                        return -errno;
                err_read = fds[0];
                err_write = fds[1];
                if (fcntl(err_read, F_SETFL, O_NONBLOCK) < 0)
                        return -errno;
        }
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
        s->started = batch_now(b);
        {
                usec_t real = 0;
                (void) sd_event_now(b->event, CLOCK_REALTIME, &real);
                s->started_real = (double) real / (double) USEC_PER_SEC;
        }
        pid_t pid = spawn_worker(&req);
        if (pid < 0)
                return (int) pid;
        out_write = safe_close(out_write);
        err_write = safe_close(err_write);

        s->pid = pid;
        s->busy = true;
        s->exited = s->timed_out = false;
        s->eof = b->direct_output;   /* nothing to read: it writes to our stdout */
        s->live = b->output == TASK_OUTPUT_UNGROUP ||
                  (b->output == TASK_OUTPUT_LINE && (!b->keep_order || t->ord == b->order.next));
        s->timeout_phase = 0;
        s->output.len = 0;
        b->running++;
        b->running_lines += t->lines;

        r = sd_event_add_child(b->event, &s->child, pid, WEXITED, on_task_exit, s);
        if (r >= 0)
                r = sd_event_source_set_child_process_own(s->child, true);
        if (r >= 0 && out_read >= 0)
                r = sd_event_add_io(b->event, &s->out, out_read, EPOLLIN, on_task_output, s);
        if (r >= 0 && err_read >= 0)
                r = sd_event_add_io(b->event, &s->err, err_read, EPOLLIN, on_task_stderr, s);
        if (r >= 0 && b->config->tasks.timeout > 0)
                r = sd_event_add_time_relative(b->event, &s->timer, CLOCK_MONOTONIC, b->config->tasks.timeout,
                                               TIMEOUT_ACCURACY, on_task_timeout, s);
        if (r < 0) {
                /* Cannot watch it: take it back, the task waits for another try. */
                (void) kill(-pid, SIGKILL);
                if (!s->child)
                        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                                ;
                slot_release_io(s);
                s->busy = false;
                s->pid = 0;
                b->running--;
                b->running_lines -= t->lines;
                return r;
        }
        s->out_fd = TAKE_FD(out_read);
        s->err_fd = TAKE_FD(err_read);
        log_debug("task %llu started in slot %u (pid %d)", (unsigned long long) t->seq, s->id, pid);
        return 0;
}

static bool is_exec_error(int r) {
        switch (-r) {
        case ENOENT: case EACCES: case ENOEXEC: case ENOTDIR: case ELOOP:
        case ENAMETOOLONG: case EISDIR: case ETXTBSY: case EPERM: case E2BIG:
                return true;   /* E2BIG: this task's line, not the command; EPERM:
                                * also corral may not become workers.user/group */
        default:
                return false;
        }
}

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
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
                                              on_retry_timer, b) < 0) {
                log_error("cannot make progress: giving up");
                batch_stop(b);
        }
}

/* Starts tasks while there are free places and tasks to run. */
static void batch_dispatch(struct batch *b) {
        bool varies = !b->exe;

        while (!b->stopping && b->running < b->concurrency) {
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
                if (is_exec_error(r) && !varies && r != -E2BIG) {
                        free(s->task.line);
                        s->task = (struct pending) {};
                        batch_fatal(b, r);
                        return;
                }
                if (is_exec_error(r)) {
                        /* This line names a program that cannot run: the task
                         * fails as a shell's would, with 127. */
                        s->busy = true;
                        b->running++;
                        b->running_lines += s->task.lines;
                        s->exited = s->eof = true;
                        s->timed_out = false;
                        s->how = CLD_EXITED;
                        s->status = 127;
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

/* After anything changed: start what can start, read ahead, maybe end. */
static void batch_progress(struct batch *b) {
        batch_dispatch(b);
        batch_fill_queue(b);
        batch_maybe_finish(b);
}

/* ---- setting up --------------------------------------------------------- */

/* command[0] as execvpe would find it, resolved once instead of per task. */
static char *resolve_command(const char *name) {
        if (strchr(name, '/'))
                return strdup(name);
        const char *path = getenv("PATH");
        if (!path)
                path = "/bin:/usr/bin";
        for (const char *p = path; p; ) {
                const char *colon = strchr(p, ':');
                size_t n = colon ? (size_t) (colon - p) : strlen(p);
                char *full;
                if (asprintf(&full, "%.*s%s%s", (int) n, p, n ? "/" : "", name) < 0)
                        return NULL;
                struct stat st;
                if (access(full, X_OK) == 0 && stat(full, &st) == 0 && S_ISREG(st.st_mode))
                        return full;
                free(full);
                p = colon ? colon + 1 : NULL;
        }
        /* Not found: let exec report it, with its own errno. */
        return strdup(name);
}

/* The environment of every task: ours, the configured variables, and four
 * per-task entries at the end (CORRAL_WORKER_ID, _MAX, TASK_SEQ, TASK). */
static int batch_build_env(struct batch *b) {
        const struct workers_config *wc = &b->config->workers;
        static const char *const ours[] = { "CORRAL_WORKER_ID=", "CORRAL_WORKERS_MAX=", "CORRAL_TASK_SEQ=",
                                            "CORRAL_TASK=" };
        size_t n_user = strv_length(wc->env), n_shm = b->shm ? strv_length(b->shm->env) : 0, n = 0;
        _cleanup_free_ char **extra = calloc(n_user + n_shm + ELEMENTSOF(ours) + 1, sizeof(char *));
        if (!extra)
                return -ENOMEM;
        for (size_t i = 0; i < n_user; i++)
                extra[n++] = wc->env[i];
        for (size_t i = 0; i < n_shm; i++)
                extra[n++] = b->shm->env[i];
        for (size_t i = 0; i < ELEMENTSOF(ours); i++)
                extra[n++] = (char *) ours[i];
        char **envp = env_merge(environ, extra);
        if (!envp)
                return -ENOMEM;
        free(b->envp);
        b->envp = envp;
        b->env_task = strv_length(envp) - ELEMENTSOF(ours);
        snprintf(b->max_var, sizeof(b->max_var), "CORRAL_WORKERS_MAX=%u", b->max);
        return 0;
}

static int batch_grow_slots(struct batch *b, unsigned n) {
        if (n <= b->n_slots)
                return 0;
        struct slot **a = reallocarray(b->slots, n, sizeof(struct slot *));
        if (!a)
                return -ENOMEM;
        b->slots = a;
        for (; b->n_slots < n; b->n_slots++) {
                struct slot *s = calloc(1, sizeof(*s));
                if (!s)
                        return -ENOMEM;
                *s = (struct slot) { .batch = b, .id = b->n_slots, .out_fd = -EBADF, .err_fd = -EBADF };
                b->slots[b->n_slots] = s;
        }
        return 0;
}

static int batch_apply_config(struct batch *b, const struct corral_config *config) {
        int r;

        b->config = config;
        b->max = config->workers.max;
        r = batch_grow_slots(b, b->max);
        if (r < 0)
                return r;
        free(b->exe);
        b->exe = NULL;
        if (!strstr(config->command[0], "{}") && !(b->exe = resolve_command(config->command[0])))
                return -ENOMEM;
        r = batch_build_env(b);
        if (r < 0)
                return r;
        b->queue_target = 2 * (size_t) b->max + 16;
        if (b->concurrency > b->max)
                b->concurrency = b->max;
        return 0;
}

/* Lines in the input file from its current offset (the bar's total). */
static uint64_t count_lines(int fd, const struct tasks_config *t) {
        char buf[64 * 1024];
        off_t off = lseek(fd, 0, SEEK_CUR);
        uint64_t lines = 0;
        bool partial = false;
        ssize_t n;

        if (off < 0)
                return 0;
        while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
                for (char *p = buf, *end = buf + n; (p = memchr(p, '\n', (size_t) (end - p))); p++)
                        lines++;
                partial = buf[n - 1] != '\n';
                off += n;
        }
        lines += partial;
        if (t->shard_count > 1)
                lines = lines > t->shard_index ? (lines - t->shard_index - 1) / t->shard_count + 1 : 0;
        return lines;
}

static int batch_open_input(struct batch *b) {
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

/* With tasks.batch, a joblog Seq stands for the invocation that starts at
 * that line, so resuming needs the cuts of the run that wrote it: the same
 * --batch and --shard. A Seq of this shard that starts no invocation here
 * shows they differ; the run is refused rather than redoing or skipping lines.
 * Seqs of other shards are fine (the joblogs of all shards concatenated). */
static int check_resume_cuts(const struct batch *b) {
        const struct tasks_config *t = &b->config->tasks;
        const struct joblog_state *st = &b->done_before;

        if (t->batch <= 1)
                return 0;
        uint64_t first = 0;   /* the lowest, so the message does not depend on the hash */
        for (size_t i = 0; i < st->cap; i++) {
                uint64_t seq = st->table[i].seq;
                if (seq == 0 || !in_shard(t, seq) || ((seq - 1) / t->shard_count) % t->batch == 0)
                        continue;
                if (first == 0 || seq < first)
                        first = seq;
        }
        if (first == 0)
                return 0;
        log_error("%s: Seq %llu does not start an invocation of --batch %u%s: resume with the "
                  "--batch and --shard of the run that wrote it", t->joblog, (unsigned long long) first,
                  t->batch, t->shard_count > 1 ? " in this shard" : "");
        return -EINVAL;
}

static int batch_open_joblog(struct batch *b) {
        const char *path = b->config->tasks.joblog;
        bool resuming = b->opts.resume || b->opts.resume_failed;
        struct stat st;
        char error[512];
        int r;

        if (!path) {
                if (resuming) {
                        log_error("--resume needs a joblog (--joblog FILE or tasks.joblog)");
                        return -EINVAL;
                }
                return 0;
        }
        if (resuming) {
                r = joblog_read(path, &b->done_before, error, sizeof(error));
                if (r < 0) {
                        log_error("%s", error);
                        return r == -ENOMEM ? r : -EINVAL;
                }
                r = check_resume_cuts(b);
                if (r < 0)
                        return r;
        }
        /* As GNU parallel: a new run starts a new joblog, a resumed one appends. */
        b->joblog_fd = joblog_open(path, resuming, error, sizeof(error));
        if (b->joblog_fd < 0)
                return log_error("%s", error), -EINVAL;
        if (fstat(b->joblog_fd, &st) >= 0 && st.st_size == 0) {
                struct strbuf h = {};
                r = joblog_format_header(&h);
                if (r >= 0 && write(b->joblog_fd, h.data, h.len) != (ssize_t) h.len)
                        r = log_error_errno(errno ? errno : EIO, "Failed to write the joblog %s: %m", path);
                strbuf_done(&h);
                if (r < 0)
                        return r;
        }
        return 0;
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
                .bar_fd = -EBADF,
                .concurrency = 1,
                /* On a terminal the lines of concurrent tasks would be a jumble;
                 * in a pipe or the journal they pass through untouched. */
                .prefix_stderr = isatty(STDERR_FILENO),
                .output = config->tasks.output,
                .keep_order = config->tasks.keep_order,
        };
        r = batch_apply_config(b, config);
        if (r < 0) {
                batch_free(b);
                return log_error_errno(r, "Failed to set up the batch: %m");
        }
        r = batch_open_joblog(b);
        if (r >= 0)
                r = batch_open_input(b);
        if (r < 0) {
                batch_free(b);
                return r;
        }
        b->bar_fd = bar_open(opts);
        b->bar_over_output = bar_shares_stdout(b->bar_fd);
        /* ungroup's "as it comes" is the task writing to our stdout itself,
         * unless the bar shares its terminal: then the output passes through
         * corral, which wipes the bar before each piece. */
        b->direct_output = b->output == TASK_OUTPUT_UNGROUP && !b->bar_over_output;
        *ret = b;
        return 0;
}

int batch_start(struct batch *b) {
        b->start_time = b->interval_start = batch_now(b);
        if (b->bar_fd >= 0) {
                int r = sd_event_add_time_relative(b->event, &b->bar_timer, CLOCK_MONOTONIC, BAR_INTERVAL, 0,
                                                   on_bar_timer, b);
                if (r < 0)
                        log_warning_errno(r, "Failed to arm the progress bar, going without: %m");
        }
        batch_progress(b);
        return 0;
}

struct batch *batch_free(struct batch *b) {
        if (!b)
                return NULL;
        for (unsigned i = 0; i < b->n_slots; i++) {
                struct slot *s = b->slots[i];
                if (s->busy && !s->exited)
                        (void) kill(-s->pid, SIGKILL);   /* the child source reaps it */
                slot_release_io(s);
                free(s->task.line);
                strbuf_done(&s->output);
                strbuf_done(&s->err_line);
                free(s);
        }
        free(b->slots);
        queue_clear(&b->queue);
        free(b->queue.ring);
        sd_event_source_disable_unref(b->in_source);
        sd_event_source_disable_unref(b->stop_timer);
        sd_event_source_disable_unref(b->bar_timer);
        sd_event_source_disable_unref(b->retry_timer);
        if (b->in_fd > STDERR_FILENO)
                safe_close(b->in_fd);
        safe_close(b->null_fd);
        safe_close(b->joblog_fd);
        if (b->bar_fd > STDERR_FILENO)
                safe_close(b->bar_fd);
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
                if (b->slots[i]->busy && !b->slots[i]->exited)
                        pids[k++] = b->slots[i]->pid;
        return k;
}

static uint64_t batch_backlog(const struct batch *b) {
        if (b->stopping)
                return 0;
        /* A file's total is known: what is left of it, read or not. */
        uint64_t done = b->ok + b->failed + b->skipped + b->running_lines;
        if (b->total > 0)
                return b->total > done ? b->total - done : 0;
        return b->queue.len;
}

void batch_fill_signals(struct batch *b, struct signals *s) {
        usec_t now = batch_now(b);
        double elapsed = (double) (now - b->interval_start) / (double) USEC_PER_SEC;

        signals_set(s, SIGNAL_TASKS_BACKLOG, (double) batch_backlog(b));
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
}

void batch_set_on_stopping(struct batch *b, void (*cb)(void *userdata), void *userdata) {
        b->on_stopping = cb;
        b->userdata = userdata;
}
