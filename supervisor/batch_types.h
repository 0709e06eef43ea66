/* SPDX-License-Identifier: MIT */
/*
 * The types of per-task batch mode, shared by the files that make it up,
 * from the top down:
 *   batch.c         the batch: set-up, dispatch, the stop, the end, the
 *                   controller's API
 *   task_slot.c     one task's life: start, exit, timeout
 *   task_output.c   what tasks write: collected, passed on, put in order
 *   task_input.c    the input: the file/stdin source (reading, sharding),
 *                   --batch invocations, the batch as a consumer of a task
 *                   source (task_source.h: a work queue)
 *   batch_joblog.c  the joblog: opening (and resume checks), one line per attempt
 *   batch_results.c --results records, and the failed tasks' Seqs
 *   task_env.c      what a task is started with: its program and environment
 * Each has a header of its own; the parts below batch.c reach it only
 * through struct batch_hooks. Types only: no functions here.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "common/util.h"
#include "conf/config.h"
#include "metrics/corral_metrics.h"
#include "policy/signals.h"
#include "supervisor/arg_limits.h"
#include "supervisor/child.h"
#include "supervisor/joblog.h"
#include "supervisor/output_sink.h"
#include "supervisor/progress_bar.h"
#include "supervisor/results_file.h"
#include "supervisor/shm.h"
#include "supervisor/spool.h"
#include "supervisor/task.h"
#include "supervisor/task_queue.h"
#include "supervisor/task_source.h"

struct joblog_pending;
struct batch;

/* batch_new()'s options. */
struct batch_options {
        bool resume;             /* skip the tasks the joblog has as done */
        bool resume_failed;      /* ... and rerun the ones that failed */
        enum batch_bar bar;
};

/* With keep_order, a task starts only while its output is at most this many
 * places ahead of the next one to print: a stuck task holds up the output
 * anyway, and this bounds what is buffered behind it. */
#define ORDER_WINDOW 4096u
#define FIRST_FAILED_MAX 5
/* Bytes of the first failed task's line that the summary shows. */
#define FIRST_FAILED_SHOWN 48
#define READ_CHUNK (64u * 1024u)
/* With keep_order, outputs waiting for their turn beyond this much memory
 * go to files (each task's own spool is capped by SPOOL_MEMORY_MAX). */
#define ORDER_MEMORY_MAX (16u * 1024u * 1024u)
/* sd-event's default slack is 250ms, which would stretch a short timeout by
 * most of itself. */
#define TIMEOUT_ACCURACY (1 * USEC_PER_MSEC)

/* How the parts below batch.c reach it (set by batch_new()): they never
 * call it by name. */
struct batch_hooks {
        /* After anything changed: start what can start, read ahead, maybe end. */
        void (*progress)(struct batch *b);
        /* The run cannot go on as it is (a joblog or results write failed,
         * the input failed): stop as on TERM. */
        void (*stop)(struct batch *b);
};

/* What an ended task leaves for the order buffer: its output and its joblog
 * line, which is written once the output is. */
struct task_result {
        struct spool out;
        struct joblog_pending *line;
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
        /* The start of the lowest failed Seq's line, printable; first_failed_line_seq 0: none. */
        char first_failed_line[FIRST_FAILED_SHOWN + sizeof("...")];
        uint64_t first_failed_line_seq;
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
        sd_event_source *stop_timer, *retry_timer;
        struct progress_bar *bar;    /* NULL: none (not a terminal, -q) */
        void (*on_stopping)(void *userdata);
        void *userdata;
        struct batch_hooks hooks;
};
