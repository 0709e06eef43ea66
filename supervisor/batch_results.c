/* SPDX-License-Identifier: MIT */
/*
 * --results FILE in per-task mode: the record of each task that ended for
 * good (its last attempt), taken from the slot before its output is handed
 * on: the line(s), how it ended, how long it ran, the start of its stdout
 * (grouped output only: live output is gone by then) and of its stderr.
 * And what the run's end says of the tasks: the lowest failed Seqs, the
 * first one's line, and the summary line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "common/lowest.h"
#include "supervisor/batch_results.h"
#include "supervisor/log.h"

int batch_open_results(struct batch *b) {
        return results_file_open_config(b->config->tasks.results, b->config->tasks.from,
                                        b->opts.resume || b->opts.resume_failed, &b->results);
}

/* Writing results failed: as for the joblog, the batch stops (exit 1). */
static void batch_results_failed(struct batch *b, uint64_t seq, int r) {
        log_error_errno(r, "Failed to write the result of task %llu to %s: %m; stopping the batch",
                        (unsigned long long) seq, b->config->tasks.results);
        b->results = results_file_free(b->results);
        b->undone = true;
        b->hooks.stop(b);
}

/* The start of a line for a log line: up to its first newline and
 * FIRST_FAILED_SHOWN bytes (not cutting a UTF-8 character), control
 * characters as '?', "..." when cut. */
static void line_excerpt(const char *line, size_t len, char *buf) {
        const char *nl = memchr(line, '\n', len);
        size_t n = nl ? (size_t) (nl - line) : len;
        bool cut = n > FIRST_FAILED_SHOWN;

        if (cut) {
                n = FIRST_FAILED_SHOWN;
                while (n > 0 && ((unsigned char) line[n] & 0xC0) == 0x80)
                        n--;
        }
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) line[i];
                buf[i] = c < 0x20 || c == 0x7F ? '?' : (char) c;
        }
        strcpy(buf + n, cut ? "..." : "");
}

void batch_note_failed(struct batch *b, uint64_t seq, const char *line, size_t len) {
        lowest_keep(b->first_failed, &b->n_first_failed, FIRST_FAILED_MAX, seq);
        if (line && (b->first_failed_line_seq == 0 || seq < b->first_failed_line_seq)) {
                line_excerpt(line, len, b->first_failed_line);
                b->first_failed_line_seq = seq;
        }
}

/* The first RESULTS_OUTPUT_MAX bytes of a spool, in memory or in its file;
 * *ret_more when there is more. NULL with nothing to free when in memory. */
static const char *spool_head(const struct spool *o, char **ret_buf, size_t *ret_len, bool *ret_more) {
        *ret_buf = NULL;
        if (o->fd < 0) {
                *ret_len = o->mem.len;
                *ret_more = false;
                return o->mem.data ? o->mem.data : "";
        }
        size_t want = o->file_len < RESULTS_OUTPUT_MAX ? (size_t) o->file_len : RESULTS_OUTPUT_MAX;
        char *buf = malloc(want + 1);
        ssize_t n = buf ? pread(o->fd, buf, want, 0) : -1;
        if (n < 0) {
                free(buf);
                *ret_len = 0;
                *ret_more = o->file_len > 0;
                return "";
        }
        *ret_buf = buf;
        *ret_len = (size_t) n;
        *ret_more = o->file_len > (uint64_t) n;
        return buf;
}

void batch_write_result(struct slot *s, int exitval, int sig, double runtime) {
        struct batch *b = s->batch;
        if (!b->results)
                return;
        _cleanup_free_ char *buf = NULL;
        struct result_record rec = {
                .seq = s->task.seq,
                .task = s->task.line,
                .task_len = s->task.len,
                /* stopped by its timeout: the signal says how, not an exit status */
                .exited = s->end.outcome != CHILD_SIGNAL && !s->timed_out,
                .exit = exitval,
                .signal = sig,
                .duration = runtime,
                .err = s->err_kept.data ? s->err_kept.data : "",
                .err_len = s->err_kept.len,
                .err_truncated = s->err_more,
        };
        if (b->output == TASK_OUTPUT_GROUP)
                rec.out = spool_head(&s->spool, &buf, &rec.out_len, &rec.out_truncated);
        int r = results_file_write(b->results, &rec);
        if (r < 0)
                batch_results_failed(b, s->task.seq, r);
}

void batch_write_not_run(struct batch *b, uint64_t seq, const char *why) {
        if (!b->results)
                return;
        struct result_record rec = { .seq = seq, .error = why };
        int r = results_file_write(b->results, &rec);
        if (r < 0)
                batch_results_failed(b, seq, r);
}

/* Keeps the start of a task's stderr for its record (the caller passes it on). */
void slot_keep_stderr(struct slot *s, const char *data, size_t len) {
        size_t room = RESULTS_OUTPUT_MAX - s->err_kept.len;
        if (!s->batch->results)
                return;
        if (len > room)
                s->err_more = true;
        if (strbuf_append(&s->err_kept, data, len < room ? len : room) < 0)
                s->err_more = true;
}

/* "N ok, M failed; first failed: seq 3 (bad.jpg), 7, ..." */
void batch_log_summary(const struct batch *b, int status) {
        char first[FIRST_FAILED_MAX * 24 + sizeof(b->first_failed_line) + 8] = "";
        size_t n = 0;

        for (size_t i = 0; i < b->n_first_failed; i++) {
                n += (size_t) snprintf(first + n, sizeof(first) - n, "%s%llu", i ? ", " : "",
                                       (unsigned long long) b->first_failed[i]);
                if (b->first_failed[i] == b->first_failed_line_seq)
                        n += (size_t) snprintf(first + n, sizeof(first) - n, " (%s)", b->first_failed_line);
        }
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
