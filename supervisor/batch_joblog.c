/* SPDX-License-Identifier: MIT */
/*
 * The batch's joblog: opening it (reading it first for --resume, and
 * refusing a resume whose --batch/--shard cuts differ), and one line per
 * attempt, written once the attempt's output is (so that the joblog never
 * says "done" for output that was lost); a line that cannot be written stops
 * the batch.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "supervisor/batch_joblog.h"
#include "supervisor/log.h"
#include "supervisor/task_input.h"

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
                b->hooks.stop(b);
        b->undone = true;
}

/* A formatted line waiting for its task's output to be written. */
struct joblog_pending {
        struct batch *batch;
        uint64_t seq;
        size_t len;
        char text[];
};

struct joblog_pending *batch_joblog_line(struct batch *b, const struct pending *t, double start, double runtime,
                                         uint64_t received, int exitval, int sig) {
        if (b->joblog_fd < 0)
                return NULL;
        b->joblog_line.len = 0;
        b->command_line.len = 0;
        struct joblog_entry e = {
                .seq = t->seq, .start = start, .runtime = runtime, .receive = received,
                .exitval = exitval, .signal = sig,
        };
        struct joblog_pending *l = NULL;
        if (task_argv_build(&b->joblog_argv, b->config->command, t->line, t->len) >= 0 &&
            task_command_line(&b->command_line, b->joblog_argv.argv) >= 0 &&
            (e.command = b->command_line.data, joblog_format(&b->joblog_line, &e) >= 0) &&
            (l = malloc(sizeof(*l) + b->joblog_line.len))) {
                *l = (struct joblog_pending) { .batch = b, .seq = t->seq, .len = b->joblog_line.len };
                memcpy(l->text, b->joblog_line.data, l->len);
                return l;
        }
        log_warning_errno(ENOMEM, "Failed to write the joblog line of task %llu: %m", (unsigned long long) t->seq);
        return NULL;
}

void batch_joblog_pending_free(struct joblog_pending *l) {
        free(l);
}

/* The task's output is out (delivered), or will never be: only then does the
 * joblog say the task ran, so that --resume runs again what was not written. */
static void joblog_output_done(void *data, bool delivered) {
        struct joblog_pending *l = data;
        struct batch *b = l->batch;

        if (!delivered || b->joblog_fd < 0) {
                b->undone = true;
                free(l);
                return;
        }
        /* One write per line (O_APPEND): a SIGKILL of corral loses no line and
         * never leaves half of one. */
        off_t end = lseek(b->joblog_fd, 0, SEEK_END);
        errno = 0;
        ssize_t n = write(b->joblog_fd, l->text, l->len);
        if (n != (ssize_t) l->len)
                joblog_failed(b, l->seq, n, end, n < 0 ? errno : ENOSPC);
        free(l);
}

void batch_joblog_after_output(struct batch *b, struct joblog_pending *line) {
        if (line)
                (void) sink_mark(b->sink, joblog_output_done, line);
}

/* With tasks.batch, a joblog Seq stands for the invocation that starts at
 * that line, so resuming needs the cuts of the run that wrote it: the same
 * --batch and --shard. A Seq of this shard that starts no invocation here
 * shows they differ (unless the cell it is in started in the joblog too: an
 * invocation cut early for execve()'s limits, which the input follows); the
 * run is refused rather than redoing or skipping lines.
 * Seqs of other shards are fine (the joblogs of all shards concatenated). */
static int check_resume_cuts(const struct batch *b) {
        const struct tasks_config *t = &b->config->tasks;
        const struct joblog_state *st = &b->done_before;

        if (t->batch <= 1)
                return 0;
        uint64_t first = 0;   /* the lowest, so the message does not depend on the hash */
        for (size_t i = 0; i < st->cap; i++) {
                uint64_t seq = st->table[i].seq;
                if (seq == 0 || !batch_in_shard(t, seq) || ((seq - 1) / t->shard_count) % t->batch == 0)
                        continue;
                /* Cut early for execve()'s limits: its cell started in the joblog too. */
                uint64_t cell = seq - ((seq - 1) / t->shard_count) % t->batch * t->shard_count;
                if (joblog_state_done(st, cell, false, 0))
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

int batch_open_joblog(struct batch *b) {
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
