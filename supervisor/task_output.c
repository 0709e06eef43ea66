/* SPDX-License-Identifier: MIT */
/*
 * What tasks write: stdout collected through a pipe and written whole when
 * the task ends (group), passed on in whole lines as it comes (line-buffer),
 * or put back in input order (keep_order); stderr prefixed with the task's
 * number when it goes to a terminal (read by corral then, or for --results).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/uio.h>

#include "supervisor/batch_joblog.h"
#include "supervisor/batch_results.h"
#include "supervisor/log.h"
#include "supervisor/progress_bar.h"
#include "supervisor/task_output.h"

/* Queues output on corral's stdout; the bar steps aside first when they share
 * a terminal (and comes back once the output is out). A failed write is seen
 * by the batch's next progress, which stops it. */
void batch_emit(struct batch *b, const char *data, size_t len) {
        if (len == 0)
                return;
        bool redraw = progress_bar_step_aside(b->bar, true);
        (void) sink_write(b->sink, data, len);
        if (redraw && sink_idle(b->sink))
                progress_bar_draw(b->bar);
}

static void emit_spool(struct batch *b, struct spool *o) {
        if (spool_len(o) > 0) {
                bool redraw = progress_bar_step_aside(b->bar, true);
                (void) spool_to_sink(o, b->sink);
                if (redraw && sink_idle(b->sink))
                        progress_bar_draw(b->bar);
        }
        spool_done(o);
}

void batch_deliver(struct batch *b, struct spool *out, struct joblog_pending *line) {
        emit_spool(b, out);
        batch_joblog_after_output(b, line);
}

void task_result_free(void *item) {
        struct task_result *r = item;
        spool_done(&r->out);
        batch_joblog_pending_free(r->line);
        free(r);
}

void batch_emit_in_order(struct batch *b) {
        void *item;
        size_t len;
        while (order_buffer_pop(&b->order, &item, &len)) {
                struct task_result *r = item;
                b->order_held--;
                b->order_memory -= r->out.mem.len;
                batch_deliver(b, &r->out, r->line);
                free(r);
        }
}

/* At the end, outputs behind tasks that never ran (a stop) still come out. */
void batch_emit_rest(struct batch *b) {
        while (b->order_held > 0) {
                batch_emit_in_order(b);
                if (b->order_held > 0)
                        b->order.next++;   /* a hole: that task never ended */
        }
}


/* Passes on a task's stderr line by line, each prefixed with the task's
 * number, so that the lines of concurrent tasks can be told apart on a
 * terminal. final: the task has ended; what is left is flushed. */
void slot_read_stderr(struct slot *s, bool final) {
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
                slot_keep_stderr(s, l->data + l->len, (size_t) n);
                l->len += (size_t) n;
                if (!final)
                        break;
        }

        if (!s->batch->prefix_stderr) {
                /* read only for --results: passed on untouched */
                if (l->len > 0)
                        (void) !write(STDERR_FILENO, l->data, l->len);
                l->len = 0;
                return;
        }
        /* Complete lines go out now, one write() each; a partial one waits for
         * its end, unless the task is gone. */
        char prefix[32];
        int np = snprintf(prefix, sizeof(prefix), "[%llu] ", (unsigned long long) s->task.seq);
        size_t start = 0;
        bool redraw = false;
        while (start < l->len) {
                char *nl = memchr(l->data + start, '\n', l->len - start);
                /* A line longer than the cap goes out in pieces, each its own line. */
                if (!nl && !final && l->len - start < TASK_LINE_BUFFER_MAX)
                        break;
                size_t end = nl ? (size_t) (nl - l->data) + 1 : l->len;
                struct iovec iov[3] = {
                        { prefix, (size_t) np },
                        { l->data + start, end - start },
                        { (char *) "\n", nl ? 0 : 1 },
                };
                if (!redraw && progress_bar_on_stderr(s->batch->bar))
                        redraw = progress_bar_step_aside(s->batch->bar, false);
                (void) !writev(STDERR_FILENO, iov, 3);
                start = end;
        }
        memmove(l->data, l->data + start, l->len - start);
        l->len -= start;
        if (redraw)
                progress_bar_draw(s->batch->bar);
}


/* Writes what a live task's output holds that may go now: whole lines
 * (line-buffer) or everything (ungroup); final: the task ended, the rest goes. */
void slot_pass_on(struct slot *s, bool final) {
        struct strbuf *o = &s->output;
        size_t n = s->batch->output == TASK_OUTPUT_LINE ?
                   task_output_cut(o->data, o->len, TASK_LINE_BUFFER_MAX, final) : o->len;
        if (n == 0)
                return;
        batch_emit(s->batch, o->data, n);
        memmove(o->data, o->data + n, o->len - n);
        o->len -= n;
}

/* keep_order with line-buffer, as GNU parallel: the oldest task still to be
 * printed is live, the others are collected. Once the order moved on, the
 * task now first goes live with what it wrote so far, if it is running. */
void batch_order_head_goes_live(struct batch *b) {
        if (b->output != TASK_OUTPUT_LINE)
                return;
        for (unsigned i = 0; i < b->n_slots; i++) {
                struct slot *s = b->slots[i];
                if (s->busy && !s->live && s->task.ord == b->order.next) {
                        s->live = true;
                        emit_spool(b, &s->spool);
                        return;
                }
        }
}

/* Reads what the task wrote: a live task's output is passed on, another's
 * collected in its spool. until_empty: drain (at exit) rather than one read
 * (from the event loop, which calls again while there is more). */
void slot_read(struct slot *s, bool until_empty) {
        struct batch *b = s->batch;
        char buf[READ_CHUNK];
        for (;;) {
                char *p = buf;
                size_t room = sizeof(buf);
                if (s->live) {
                        if (strbuf_reserve(&s->output, READ_CHUNK) < 0) {
                                log_warning_errno(ENOMEM, "Failed to pass on the output of task %llu, "
                                                  "dropping part of it: %m", (unsigned long long) s->task.seq);
                                s->output.len = 0;
                        } else {
                                p = s->output.data + s->output.len;
                                room = s->output.cap - s->output.len;
                        }
                }
                ssize_t n = read(s->out_fd, p, room);
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
                if (b->output != TASK_OUTPUT_UNGROUP)
                        s->received += (uint64_t) n;
                if (s->live && p != buf) {
                        s->output.len += (size_t) n;
                        slot_pass_on(s, false);
                } else if (!s->live && !s->output_lost) {
                        int r = spool_append(&s->spool, p, (size_t) n, SPOOL_MEMORY_MAX);
                        if (r < 0) {
                                log_error_errno(r, "Failed to keep the output of task %llu (in $TMPDIR): %m; "
                                                "it is left undone", (unsigned long long) s->task.seq);
                                s->output_lost = true;
                                spool_done(&s->spool);
                        }
                }
                if (!until_empty)
                        return;
        }
}

