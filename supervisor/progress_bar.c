/* SPDX-License-Identifier: MIT */
/*
 * The progress bar: one line redrawn on a terminal (stderr, or /dev/tty with
 * --bar), stepped aside when output lines would land on it, drawn from the
 * counts its owner (the batch, the stream) gives when asked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "common/util.h"
#include "supervisor/log.h"
#include "supervisor/progress_bar.h"
#include "supervisor/task.h"

#define BAR_INTERVAL (200 * USEC_PER_MSEC)

/* The bar goes to a terminal only: stderr when it is one; with --bar also the
 * controlling terminal when stderr is redirected; never into a pipe or file. */
static int bar_open(enum batch_bar mode) {
        if (mode == BATCH_BAR_NEVER)
                return -EBADF;
        if (isatty(STDERR_FILENO))
                return STDERR_FILENO;
        if (mode == BATCH_BAR_ALWAYS) {
                int fd = open("/dev/tty", O_WRONLY | O_NOCTTY | O_CLOEXEC);
                if (fd >= 0)
                        return fd;
        }
        return -EBADF;
}

/* True when the bar and corral's stdout are the same terminal, so that output
 * written while the bar shows would be glued to it. */
static bool shares_stdout(int bar_fd) {
        struct stat a, o;
        return bar_fd >= 0 && isatty(STDOUT_FILENO) && fstat(bar_fd, &a) >= 0 && fstat(STDOUT_FILENO, &o) >= 0 &&
               a.st_rdev == o.st_rdev;
}

struct progress_bar {
        int fd;
        bool drawn, over_output, finished;
        usec_t start;
        sd_event *event;
        sd_event_source *timer;
        progress_count_fn counts;
        void *userdata;
};

static usec_t bar_now(const struct progress_bar *bar) {
        usec_t now = 0;
        (void) sd_event_now(bar->event, CLOCK_MONOTONIC, &now);
        return now;
}

static void bar_draw(struct progress_bar *bar, bool last) {
        char line[512], out[600];
        struct winsize ws;
        unsigned width = 80;
        struct progress_counts c = {};
        double elapsed = (double) (bar_now(bar) - bar->start) / (double) USEC_PER_SEC;

        bar->counts(bar->userdata, &c);
        /* Output queued for the bar's terminal goes first: a bar drawn now
         * would have it glued on. The next tick draws it. */
        if (!last && bar->over_output && c.output_pending)
                return;
        if (ioctl(bar->fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
                width = ws.ws_col - 1;
        if (width > sizeof(line) - 1)
                width = sizeof(line) - 1;
        task_bar_format(line, sizeof(line), width, c.done, c.total, c.failed, c.running,
                        elapsed > 0.2 ? (double) (c.done - c.skipped) / elapsed : -1);
        int n = snprintf(out, sizeof(out), "\r%s\033[K%s", line, last ? "\n" : "");
        if (n > 0)
                (void) !write(bar->fd, out, (size_t) n < sizeof(out) ? (size_t) n : sizeof(out) - 1);
        bar->drawn = !last;
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        struct progress_bar *bar = userdata;
        bar_draw(bar, false);
        if (sd_event_source_set_time(s, usec + BAR_INTERVAL) >= 0)
                (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        return 0;
}

int progress_bar_new(sd_event *e, enum batch_bar mode, progress_count_fn counts, void *userdata,
                     struct progress_bar **ret) {
        int fd = bar_open(mode);
        if (fd < 0) {
                *ret = NULL;
                return 0;
        }
        struct progress_bar *bar = calloc(1, sizeof(*bar));
        if (!bar) {
                if (fd > STDERR_FILENO)
                        safe_close(fd);
                return -ENOMEM;
        }
        *bar = (struct progress_bar) { .fd = fd, .over_output = shares_stdout(fd), .event = sd_event_ref(e),
                                       .counts = counts, .userdata = userdata };
        bar->start = bar_now(bar);
        int r = sd_event_add_time_relative(e, &bar->timer, CLOCK_MONOTONIC, BAR_INTERVAL, 0, on_tick, bar);
        if (r < 0) {
                progress_bar_free(bar);
                return r;
        }
        *ret = bar;
        return 0;
}

bool progress_bar_step_aside(struct progress_bar *bar, bool output_on_stdout) {
        if (!bar || !bar->drawn || (output_on_stdout && !bar->over_output))
                return false;
        (void) !write(bar->fd, "\r\033[K", 4);
        bar->drawn = false;
        return true;
}

void progress_bar_draw(struct progress_bar *bar) {
        if (bar && !bar->finished)
                bar_draw(bar, false);
}

bool progress_bar_shares_stdout(const struct progress_bar *bar) {
        return bar && bar->over_output;
}

bool progress_bar_on_stderr(const struct progress_bar *bar) {
        return bar && bar->fd == STDERR_FILENO;
}

void progress_bar_finish(struct progress_bar *bar) {
        if (!bar || bar->finished)
                return;
        bar->finished = true;
        bar->timer = sd_event_source_disable_unref(bar->timer);
        bar_draw(bar, true);
}

struct progress_bar *progress_bar_free(struct progress_bar *bar) {
        if (!bar)
                return NULL;
        sd_event_source_disable_unref(bar->timer);
        if (bar->fd > STDERR_FILENO)
                safe_close(bar->fd);
        sd_event_unref(bar->event);
        free(bar);
        return NULL;
}

uint64_t progress_count_lines(int fd) {
        char buf[64 * 1024];
        struct stat st;
        off_t off = lseek(fd, 0, SEEK_CUR);
        uint64_t lines = 0;
        bool partial = false;
        ssize_t n;

        if (off < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return 0;
        while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
                for (char *p = buf, *end = buf + n; (p = memchr(p, '\n', (size_t) (end - p))); p++)
                        lines++;
                partial = buf[n - 1] != '\n';
                off += n;
        }
        return lines + partial;
}
