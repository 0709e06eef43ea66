/* SPDX-License-Identifier: MIT */
/*
 * What tasks write: stdout collected through a pipe and written whole when
 * the task ends (group), passed on in whole lines as it comes (line-buffer),
 * or put back in input order (keep_order); stderr prefixed with the task's
 * number when it goes to a terminal.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <sys/uio.h>

#include "supervisor/batch_internal.h"
#include "supervisor/log.h"

/* Writes a task's output whole, in one go where the pipe allows. */
void batch_emit(struct batch *b, const char *data, size_t len) {
        bool redraw = len > 0 && batch_bar_step_aside(b, true);
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
                batch_bar_draw(b, false);
}

void batch_emit_in_order(struct batch *b) {
        char *data;
        size_t len;
        while (order_buffer_pop(&b->order, &data, &len)) {
                b->order_held--;
                batch_emit(b, data, len);
                free(data);
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
                        redraw = batch_bar_step_aside(s->batch, false);
                (void) !writev(STDERR_FILENO, iov, 3);
                start = end;
        }
        memmove(l->data, l->data + start, l->len - start);
        l->len -= start;
        if (redraw)
                batch_bar_draw(s->batch, false);
}

int slot_on_stderr(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        (void) src;
        (void) fd;
        (void) revents;
        slot_read_stderr(userdata, false);
        return 0;
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
                        slot_pass_on(s, false);
                        return;
                }
        }
}

/* Reads what the task wrote. until_empty: drain (at exit) rather than one
 * read (from the event loop, which calls again while there is more). */
void slot_read(struct slot *s, bool until_empty) {
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

int slot_on_output(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
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
