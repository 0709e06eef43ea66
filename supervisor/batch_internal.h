/* SPDX-License-Identifier: MIT */
/*
 * The inside of per-task batch mode, shared by the files that make it up:
 *   batch.c         the batch: set-up, dispatch, the end, the controller's API
 *   task_slot.c     one task's life: start, exit, timeout, the stop
 *   task_input.c    the input: the file/stdin source (reading, sharding),
 *                   --batch invocations, the batch as a consumer of a
 *                   task source (task_source.h: a work queue)
 *   task_output.c   what tasks write: collected, passed on, put in order
 *   batch_joblog.c  the joblog: opening (and resume checks), one line per attempt
 *   progress_bar.c  the progress bar on the terminal
 *   task_env.c      what a task is started with: its program and environment
 * Nothing outside these files includes this header.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "common/util.h"
#include "supervisor/arg_limits.h"
#include "supervisor/batch.h"
#include "supervisor/child.h"
#include "supervisor/joblog.h"
#include "supervisor/output_sink.h"
#include "supervisor/results_file.h"
#include "supervisor/spool.h"
#include "supervisor/task.h"
#include "supervisor/task_source.h"

struct joblog_pending;
struct batch;
struct pending;

/* With keep_order, a task starts only while its output is at most this many
 * places ahead of the next one to print: a stuck task holds up the output
 * anyway, and this bounds what is buffered behind it. */
#define ORDER_WINDOW 4096u
#define BAR_INTERVAL (200 * USEC_PER_MSEC)
#define FIRST_FAILED_MAX 5
#define READ_CHUNK (64u * 1024u)
/* With keep_order, outputs waiting for their turn beyond this much memory
 * go to files (each task's own spool is capped by SPOOL_MEMORY_MAX). */
#define ORDER_MEMORY_MAX (16u * 1024u * 1024u)
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
        bool busy;               /* holds a task: its process runs, or its output is still read */
        struct pending task;
        struct child child;      /* the task's process: its life, as a pool worker's */
        pid_t pid;               /* the attempt's, for the log (child.pid is 0 once it ended) */
        usec_t started;          /* CLOCK_MONOTONIC */
        double started_real;     /* seconds since the epoch, for the joblog */
        sd_event_source *out, *err;
        sd_event_source *timer;  /* ended, output held by a leftover: when to stop waiting */
        int out_fd;
        int err_fd;              /* the task's stderr, when corral prefixes its lines */
        struct strbuf err_line;  /* a partial stderr line */
        struct strbuf err_kept;  /* --results: the first RESULTS_OUTPUT_MAX bytes of stderr */
        bool err_more;           /* ... and there was more */
        bool exited;             /* its process ended (child.end says how) */
        bool eof;                /* its output ended */
        bool timed_out;          /* it went past tasks.timeout (the joblog says -1) */
        struct child_end end;    /* how it ended */
        struct strbuf output;    /* live: what may not go out yet (part of a line) */
        struct spool spool;      /* not live: all of it, in memory or a file */
        bool live;               /* its output is passed on as it comes */
        bool output_lost;        /* it could not be kept (no room for the spill file) */
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
        struct task_source source;   /* the file source's state is the batch itself */
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
        /* An invocation is also cut early where its next line would break
         * execve()'s limits: at the same places in every run over the same
         * input and environment. */
        struct arg_budget arg_budget;
        size_t gather_bytes;     /* of the lines gathered, done or not */
        struct queue queue;
        size_t queue_target;
        int null_fd;             /* tasks' stdin when the input is corral's stdin */

        /* --results FILE */
        struct results_file *results;

        /* joblog */
        int joblog_fd;
        struct joblog_state done_before;
        struct strbuf joblog_line, command_line;
        struct task_argv joblog_argv;

        /* spawning: reused from task to task */
        struct task_argv argv;
        char **envp;             /* environment; the last five entries are per task */
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
        struct order_buffer order;   /* of struct task_result */
        size_t order_held;
        size_t order_memory;     /* bytes of output the order buffer holds in memory */
        struct sink *sink;       /* corral's stdout */
        bool output_paused;      /* the sink is full: tasks' output is not read */
        bool output_failed;      /* writing to stdout failed: the batch stops */
        bool output_abandoned;   /* the stop gave up on output nobody read */

        /* counts */
        uint64_t ok, failed, skipped, total;  /* total 0: unknown */
        uint64_t exits[_METRICS_OUTCOME_MAX];
        struct metrics_histogram durations;
        uint64_t first_failed[FIRST_FAILED_MAX];
        size_t n_first_failed;
        uint64_t interval_done, interval_attempts;
        double interval_seconds;
        usec_t interval_start, start_time;

        /* the tasks' processes */
        struct child_stop stop;  /* workers.stop_signal and stop_timeout (a reload changes them) */
        const struct child_os *os;   /* how they reach the system (tests: a fake) */
        void *os_data;

        /* the end */
        bool stopping, finished, undone;
        int fatal_status;        /* 2 when the command cannot run; 0 otherwise */
        sd_event_source *stop_timer, *bar_timer, *retry_timer;
        bool bar;
        int bar_fd;
        void (*on_stopping)(void *userdata);
        void *userdata;
};

/* The queue: a ring of tasks to run, new ones at the back, retries at the front. */
static inline int queue_reserve(struct queue *q) {
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

static inline int queue_push_back(struct queue *q, const struct pending *p) {
        int r = queue_reserve(q);
        if (r < 0)
                return r;
        q->ring[(q->head + q->len++) & (q->cap - 1)] = *p;
        return 0;
}

static inline int queue_push_front(struct queue *q, const struct pending *p) {
        int r = queue_reserve(q);
        if (r < 0)
                return r;
        q->head = (q->head - 1) & (q->cap - 1);
        q->ring[q->head] = *p;
        q->len++;
        return 0;
}

static inline struct pending queue_pop_front(struct queue *q) {
        struct pending p = q->ring[q->head];
        q->head = (q->head + 1) & (q->cap - 1);
        q->len--;
        return p;
}

static inline void queue_clear(struct queue *q) {
        while (q->len > 0)
                free(queue_pop_front(q).line);
}

static inline bool batch_in_shard(const struct tasks_config *t, uint64_t seq) {
        return t->shard_count <= 1 || (seq - 1) % t->shard_count == t->shard_index;
}

/* batch.c */
usec_t batch_now(struct batch *b);
/* After anything changed: start what can start, read ahead, maybe end. */
void batch_progress(struct batch *b);
void batch_maybe_finish(struct batch *b);

/* task_slot.c */
/* Starts s->task in slot s. Returns 0; or a negative errno with the task
 * still in s->task and nothing started. */
int slot_start(struct batch *b, struct slot *s);
/* Accounts for one ended attempt; the slot is free afterwards. */
void slot_finish(struct slot *s);
void slot_release_io(struct slot *s);
/* An empty slot `id` of b, its child idle. Cannot fail. */
void slot_init(struct batch *b, struct slot *s, unsigned id);
/* A new empty slot, or NULL (no memory). */
struct slot *slot_new(struct batch *b, unsigned id);
/* The errors of exec that say the program cannot run (not a lack of resources). */
bool batch_is_exec_error(int r);
/* The command cannot run at all: say so once, end with exit 2. */
void batch_fatal(struct batch *b, int error);
/* Keeps the lowest failed Seqs, sorted, for the summary. */
void batch_note_failed(struct batch *b, uint64_t seq);

/* task_input.c */
int batch_open_input(struct batch *b);
void batch_fill_queue(struct batch *b);
/* Adds one line to the invocation being gathered (queued at tasks.batch
 * lines); batch_push_gathered() queues a shorter one. 0 or -ENOMEM. */
int batch_gather(struct batch *b, uint64_t seq, const char *line, size_t len);
int batch_push_gathered(struct batch *b);
/* The input cannot go on: the batch stops with exit 2. */
void batch_input_failed(struct batch *b, int r);
/* The source's side of the task's life and of the end (struct task_source_ops). */
const char *batch_input_task_id_var(struct batch *b, const struct pending *t);
void batch_input_capture(struct batch *b, const struct spool *out);
void batch_input_done(struct batch *b, const struct pending *t, const struct task_report *r);
void batch_input_stop(struct batch *b);
bool batch_input_settled(struct batch *b);
int batch_input_status(struct batch *b, int status);
bool batch_input_summarize(struct batch *b, int status);
bool batch_input_backlog(const struct batch *b, uint64_t *ret);
void batch_input_fill_snapshot(const struct batch *b, struct metrics_snapshot *s);
void batch_input_fill_signals(const struct batch *b, struct signals *s);
void batch_input_free(struct batch *b);

/* task_output.c */
/* What an ended task leaves for the order buffer: its output and its joblog
 * line, which is written once the output is. */
struct task_result {
        struct spool out;
        struct joblog_pending *line;
};
void task_result_free(void *item);
/* Queues an ended task's output (taking it), then its joblog line. */
void batch_deliver(struct batch *b, struct spool *out, struct joblog_pending *line);
/* --results: opens tasks.results; writes the record of a task that ended
 * for good (not retried), or of a line that never ran (why says why). */
int batch_open_results(struct batch *b);
void batch_write_result(struct slot *s, int exitval, int sig, double runtime);
void batch_write_not_run(struct batch *b, uint64_t seq, const char *why);
void slot_keep_stderr(struct slot *s, const char *data, size_t len);
/* The sink wrote, drained or failed: resume reading output, dispatch, maybe end. */
void batch_on_sink(void *userdata);
void batch_emit(struct batch *b, const char *data, size_t len);
void batch_emit_in_order(struct batch *b);
void batch_emit_rest(struct batch *b);
void batch_order_head_goes_live(struct batch *b);
void slot_pass_on(struct slot *s, bool final);
void slot_read_stderr(struct slot *s, bool final);
void slot_read(struct slot *s, bool until_empty);
int slot_on_output(sd_event_source *src, int fd, uint32_t revents, void *userdata);
int slot_on_stderr(sd_event_source *src, int fd, uint32_t revents, void *userdata);

/* batch_joblog.c */
int batch_open_joblog(struct batch *b);
/* An attempt's joblog line, to be written once its output is: NULL without
 * a joblog (or when it cannot be formatted, logged). */
struct joblog_pending *batch_joblog_line(struct batch *b, const struct pending *t, double start, double runtime,
                                         uint64_t received, int exitval, int sig);
/* Writes line once everything queued on stdout before now is written; if
 * that never happens the task is left undone (not in the joblog). Takes line;
 * accepts NULL. */
void batch_joblog_after_output(struct batch *b, struct joblog_pending *line);
void batch_joblog_pending_free(struct joblog_pending *line);

/* progress_bar.c */
int batch_bar_open(const struct batch_options *o);
bool batch_bar_shares_stdout(int bar_fd);
void batch_bar_draw(struct batch *b, bool last);
bool batch_bar_step_aside(struct batch *b, bool output_on_stdout);
int batch_on_bar_timer(sd_event_source *s, uint64_t usec, void *userdata);

/* task_env.c */
/* command[0] as execvpe would find it; NULL only on ENOMEM. */
char *task_resolve_command(const char *name);
int batch_build_env(struct batch *b);
