/* SPDX-License-Identifier: MIT */
/*
 * The progress bar: one line redrawn on a terminal (stderr, or /dev/tty with
 * --bar), stepped aside when output lines would land on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "supervisor/batch_internal.h"
#include "supervisor/log.h"

/* Output lines would land on the bar's line: wipe it first (the caller draws
 * it again after writing). Returns whether it did. */
bool batch_bar_step_aside(struct batch *b, bool output_on_stdout) {
        if (!b->bar_drawn || (output_on_stdout && !b->bar_over_output))
                return false;
        (void) !write(b->bar_fd, "\r\033[K", 4);
        b->bar_drawn = false;
        return true;
}

void batch_bar_draw(struct batch *b, bool last) {
        char line[512], out[600];
        struct winsize ws;
        unsigned width = 80;
        double elapsed = (double) (batch_now(b) - b->start_time) / (double) USEC_PER_SEC;
        uint64_t done = b->ok + b->failed + b->skipped;

        /* Output queued for the bar's terminal goes first: a bar drawn now
         * would have it glued on. The next tick draws it. */
        if (!last && b->bar_over_output && !sink_idle(b->sink))
                return;

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

int batch_on_bar_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct batch *b = userdata;
        batch_bar_draw(b, false);
        if (sd_event_source_set_time(s, usec + BAR_INTERVAL) >= 0)
                (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        return 0;
}

/* The bar goes to a terminal only: stderr when it is one; with --bar also the
 * controlling terminal when stderr is redirected; never into a pipe or file. */
int batch_bar_open(const struct batch_options *o) {
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
bool batch_bar_shares_stdout(int bar_fd) {
        struct stat a, o;
        return bar_fd >= 0 && isatty(STDOUT_FILENO) && fstat(bar_fd, &a) >= 0 && fstat(STDOUT_FILENO, &o) >= 0 &&
               a.st_rdev == o.st_rdev;
}
