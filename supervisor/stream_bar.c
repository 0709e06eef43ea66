/* SPDX-License-Identifier: MIT */
/*
 * Stream mode's progress bar: lines answered (and given up) over the lines
 * of the input when it is a file, with the lines the workers hold as
 * "running". Drawn by progress_bar.c.
 */
#include "supervisor/log.h"
#include "supervisor/progress_bar.h"
#include "supervisor/stream_bar.h"
#include "supervisor/stream_types.h"

static void stream_bar_counts(void *userdata, struct progress_counts *ret) {
        struct stream *s = userdata;
        unsigned running = 0;

        for (unsigned i = 0; i < s->n_workers; i++)
                if (s->workers[i])
                        running += (unsigned) s->workers[i]->lines;
        *ret = (struct progress_counts) {
                .done = s->ok + s->given_up,
                .failed = s->given_up,
                .total = s->bar_total,
                .running = running,
                .output_pending = !sink_idle(s->sink),
        };
}

void stream_set_bar(struct stream *s, enum batch_bar mode) {
        s->bar = progress_bar_free(s->bar);
        s->bar_total = progress_count_lines(s->in_fd);
        int r = progress_bar_new(s->event, mode, stream_bar_counts, s, &s->bar);
        if (r < 0)
                log_warning_errno(r, "Failed to arm the progress bar, going without: %m");
}
