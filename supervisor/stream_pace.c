/* SPDX-License-Identifier: MIT */
/*
 * Stream mode's pacing (supervisor/stream_pace.h): what each worker may be
 * given (its pace, its recycle budget), its answers measured as the dispatch
 * sees them, and a look at a worker that holds lines and stays silent (is it
 * waiting on its stdin?). When to look next is returned to the dispatch,
 * which owns the timer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/small_file.h"
#include "supervisor/log.h"
#include "supervisor/stream_pace.h"

static bool is_read_call(long nr) {
        return nr == SYS_read || nr == SYS_readv || nr == SYS_pread64 || nr == SYS_preadv;
}

static bool is_busy_call(long nr) {
        switch (nr) {
#ifdef SYS_nanosleep
        case SYS_nanosleep:
#endif
        case SYS_clock_nanosleep:
        case SYS_wait4:
        case SYS_waitid:
                return true;
        default:
                return false;
        }
}

/* What the worker is doing, from /proc/PID/syscall: "running", or the
 * blocking call's number and arguments ("0 0x0 ..." is read() on fd 0).
 * Measured: ~15 us a look; made only at a silence's doubling steps. */
static enum pace_reading pace_probe(int pid) {
        char path[64], buf[128];
        snprintf(path, sizeof(path), "/proc/%d/syscall", pid);
        if (read_small_file(path, buf, sizeof(buf)) <= 0)
                return PACE_UNKNOWN;
        if (strncmp(buf, "running", 7) == 0)
                return PACE_BUSY;
        char *end;
        long nr = strtol(buf, &end, 10);
        if (end == buf || nr < 0)
                return PACE_UNKNOWN;
        unsigned long fd0 = strtoul(end, NULL, 16);
        if (is_read_call(nr))
                return fd0 == 0 ? PACE_WAITING : PACE_BUSY;
        return is_busy_call(nr) ? PACE_BUSY : PACE_UNKNOWN;
}

size_t sworker_room(const struct sworker *sw) {
        size_t limit = stream_pace_limit(&sw->pace, sw->stream->config->tasks.in_flight);
        return sw->lines < limit ? limit - sw->lines : 0;
}

uint64_t sworker_budget(const struct sworker *sw) {
        uint64_t limit = sw->w ? sw->w->recycle.tasks : 0, used = sw->answered + sw->lines;
        if (limit == 0)
                return UINT64_MAX;
        return used < limit ? limit - used : 0;
}

void sworker_pace_busy(struct sworker *sw, usec_t now) {
        if (sw->lines == 0) {
                sw->pace.since = now;
                sw->pace.probed = 0;
        }
}

void stream_pace_update(struct stream *s, usec_t now) {
        for (unsigned i = 0; i < s->n_workers; i++) {
                struct sworker *sw = s->workers[i];
                if (!sw || !sw->w || sw->killed)
                        continue;
                if (sw->pace.pid != sw->w->child.pid) {
                        stream_pace_reset(&sw->pace, sw->w->child.pid);
                        sw->pace.since = now;
                        sw->pace.seen = sw->answered;
                }
                if (sw->answered > sw->pace.seen)
                        stream_pace_answered(&sw->pace, sw->answered - sw->pace.seen, sw->progress);
                sw->pace.seen = sw->answered;
        }
}

usec_t stream_pace_watch(struct stream *s, usec_t now, bool *ret_stalled) {
        usec_t next = USEC_INFINITY;
        bool stalled = false;

        for (unsigned i = 0; i < s->n_workers; i++) {
                struct sworker *sw = s->workers[i];
                if (!sw || !sw->w || sw->killed || sw->pace.pid != sw->w->child.pid || sw->lines == 0)
                        continue;
                usec_t at = sw->pace.since + stream_pace_next_look(&sw->pace);
                /* Only a worker that has all its lines can be waiting for more. */
                bool all_sent = sw->q_sent == sw->q_len && !sw->blocked && sw->in_fd >= 0;
                if (now >= at && all_sent) {
                        enum pace_reading r = pace_probe(sw->w->child.pid);
                        /* Blocked on its stdin with an answer we have not read
                         * yet: it answered, it does not wait for more. */
                        int unread = 0;
                        if (r == PACE_WAITING && sw->out_fd >= 0 && ioctl(sw->out_fd, FIONREAD, &unread) == 0 &&
                            unread > 0)
                                r = PACE_BUSY;
                        if (stream_pace_look(&sw->pace, sw->lines, now, r)) {
                                log_debug("worker %u holds %zu unanswered line%s and waits for more; "
                                          "it may now hold %zu", sw->id, sw->lines, sw->lines == 1 ? "" : "s", sw->pace.floor);
                                stalled = true;
                        }
                        at = sw->pace.since + stream_pace_next_look(&sw->pace);
                }
                if (at <= now)
                        at = now + PACE_PROBE_FIRST;   /* still writing: look again soon */
                if (at < next)
                        next = at;
        }
        *ret_stalled = stalled;
        return next;
}
