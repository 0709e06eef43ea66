/* SPDX-License-Identifier: MIT */
/*
 * A shared segment loaded from a command's stdout: the command runs on the
 * one child lifecycle (child.h) while its output is spliced into the memfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "conf/units.h"
#include "supervisor/child.h"
#include "supervisor/shm_command.h"
#include "supervisor/shm_sink.h"

extern char **environ;

/* "zcat /srv/ref.gz" for messages, shortened if long. */
static const char *command_text(char *const *argv, char *buf, size_t size) {
        size_t n = 0;
        buf[0] = '\0';
        for (size_t i = 0; argv[i] && n + 1 < size; i++) {
                int k = snprintf(buf + n, size - n, "%s%s", i ? " " : "", argv[i]);
                if (k < 0)
                        break;
                n += (size_t) k;
        }
        return buf;
}


/* A command source runs on the one child lifecycle (child.h), on a loop of
 * its own: corral waits for the data (at startup, in a reload) as it always
 * did, while the command is spawned, watched and killed like any worker,
 * its whole process group with it. The loop also watches for TERM and INT
 * through a signalfd it only polls, so that the signal stays pending for
 * corral's own loop (or the exit at startup). */
struct command_run {
        const struct shared_config *sc;
        struct shm_sink *k;
        struct shm_error *err;
        const char *text;        /* the command line, for messages */
        struct child child;
        sd_event_source *out_src;
        int result;              /* 0, or why it was cut short: err is filled */
        bool output_done;
        bool ended;
        struct child_end end;
};

/* Stops the command for good (SIGKILL to its group) with `r` as the result. */
static void run_abort(struct command_run *run, int r) {
        if (run->result == 0)
                run->result = r;
        run->out_src = sd_event_source_disable_unref(run->out_src);
        child_dispatch(&run->child, CHILD_EVENT_KILL);
}

static int on_command_output(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct command_run *run = userdata;
        struct shm_sink *k = run->k;
        int window_error = 0;
        (void) s;
        (void) revents;

        ssize_t n = shm_sink_step(k, fd, run->err, &window_error);
        if (n < 0 && window_error < 0)
                run_abort(run, window_error);
        else if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        else if (n < 0 && (errno == EINVAL || errno == ENOSYS) && k->mode == COPY_SPLICE)
                k->mode = COPY_READ_WRITE;   /* the kernel refused splice here: the slow way */
        else if (n < 0)
                run_abort(run, shm_fail(run->err, -errno, k->name, "cannot read the command's output: %s",
                                    strerror(errno)));
        else if (n == 0) {
                run->output_done = true;
                run->out_src = sd_event_source_disable_unref(run->out_src);
        } else if ((k->size += (uint64_t) n) > k->limit)
                run_abort(run, shm_fail(run->err, -EFBIG, k->name, "'%s' wrote more than max_size (%" PRIu64
                                    " bytes); stopped it", run->text, k->limit));
        return 0;
}

static int on_command_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct command_run *run = userdata;
        char limit[32];
        (void) s;
        (void) usec;
        run_abort(run, shm_fail(run->err, -ETIME, run->sc->name, "'%s' did not finish within its timeout of %s; stopped it",
                            run->text, format_duration(run->sc->timeout, limit)));
        return 0;
}

static int on_stop_request(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct command_run *run = userdata;
        (void) fd;
        (void) revents;
        /* Polled, never read: the signal stays pending for corral's loop. */
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (run->output_done)
                run_abort(run, shm_fail(run->err, -EINTR, run->sc->name,
                                    "stopped while waiting for '%s' to exit: TERM or INT arrived", run->text));
        else
                run_abort(run, shm_fail(run->err, -EINTR, run->sc->name,
                                    "stopped while loading the command's output: TERM or INT arrived"));
        return 0;
}

static void command_started(struct child *c, void *userdata) {
        (void) c;
        (void) userdata;
}

static usec_t command_ended(struct child *c, const struct child_end *end, void *userdata) {
        struct command_run *run = userdata;
        (void) c;
        run->ended = true;
        run->end = *end;
        return CHILD_NO_RESTART;
}

static void command_nothing(struct child *c, void *userdata) {
        (void) c;
        (void) userdata;
}

static const struct child_owner command_owner = {
        .started = command_started,
        .ended = command_ended,
        .recycle = command_nothing,
        .ready = command_nothing,
        .killed = command_nothing,
};

/* A signalfd for TERM and INT, or -EBADF if none can be made (then a hanging
 * command is waited for, as before). */
static int stop_signalfd(void) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
        return fd < 0 ? -EBADF : fd;
}

/* Runs the command to its end on `e`, its output into the sink. 0, or a
 * negative errno with run->err filled. */
static int command_run(struct command_run *run, sd_event *e, int out_read, int out_write) {
        static const struct child_stop stop = { .signal = SIGKILL };
        _cleanup_(closep) int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        _cleanup_(closep) int stop_fd = stop_signalfd();
        const struct shared_config *sc = run->sc;
        char sig[16];
        int r;

        if (devnull < 0)
                return shm_fail(run->err, -errno, sc->name, "cannot open /dev/null: %s", strerror(errno));
        /* stdin /dev/null, stdout the pipe, stderr corral's; corral's own ids. */
        int stdio[3] = { devnull, out_write, -EBADF };
        struct spawn_request req = { .argv = sc->command, .envp = environ, .stdio = stdio };

        r = sd_event_add_io(e, &run->out_src, out_read, EPOLLIN, on_command_output, run);
        if (r >= 0 && stop_fd >= 0)
                r = sd_event_add_io(e, NULL, stop_fd, EPOLLIN, on_stop_request, run);
        if (r >= 0 && sc->timeout)
                r = sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, sc->timeout, 1, on_command_timeout, run);
        if (r < 0)
                return shm_fail(run->err, r, sc->name, "cannot watch '%s': %s", run->text, strerror(-r));

        child_init(&run->child, &child_os_sd_event, e, &stop, &command_owner, run);
        r = child_start(&run->child, &req, 0);
        safe_close(out_write);    /* ours: the output ends when the command's copy closes */
        if (r < 0)
                return shm_fail(run->err, r, sc->name, "cannot run '%s': %s", run->text, strerror(-r));

        while (!run->ended || (!run->output_done && run->result == 0)) {
                r = sd_event_run(e, UINT64_MAX);
                if (r < 0) {
                        run_abort(run, shm_fail(run->err, r, sc->name, "cannot wait for '%s': %s", run->text,
                                            strerror(-r)));
                        break;
                }
        }
        if (run->result < 0)
                return run->result;
        if (run->end.outcome == CHILD_FAILURE)
                return shm_fail(run->err, -EIO, sc->name, "'%s' exited with status %d", run->text, run->end.status);
        if (run->end.outcome == CHILD_SIGNAL)
                return shm_fail(run->err, -EIO, sc->name, "'%s' was killed by signal %s", run->text,
                            signal_to_string(run->end.status, sig));
        return 0;
}

int shm_load_command(const struct shared_config *sc, struct shm_sink *k, struct shm_error *err) {
        _cleanup_(closep) int out_read = -EBADF;
        char text[256];
        struct command_run run = { .sc = sc, .k = k, .err = err, .text = text };
        sigset_t chld, saved;
        int fds[2], r;

        command_text(sc->command, text, sizeof(text));
        if (pipe2(fds, O_CLOEXEC) < 0)
                return shm_fail(err, -errno, sc->name, "cannot create a pipe: %s", strerror(errno));
        out_read = fds[0];
        (void) fcntl(out_read, F_SETFL, O_NONBLOCK);   /* ours only: the command's end blocks */
        if (k->mode != COPY_HUGE)
                k->mode = COPY_SPLICE;

        /* sd-event watches children only with SIGCHLD blocked (corral's loop
         * has it blocked already; a test may not). */
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        (void) pthread_sigmask(SIG_BLOCK, &chld, &saved);
        sd_event *e = NULL;
        r = sd_event_new(&e);
        if (r < 0) {
                safe_close(fds[1]);
                r = shm_fail(err, r, sc->name, "cannot create an event loop: %s", strerror(-r));
        } else
                r = command_run(&run, e, out_read, fds[1]);
        /* The child is gone (ended) or was never there; this frees its sources. */
        child_done(&run.child);
        run.out_src = sd_event_source_disable_unref(run.out_src);
        sd_event_unref(e);
        (void) pthread_sigmask(SIG_SETMASK, &saved, NULL);
        if (r < 0)
                return r;
        if (k->size == 0)
                return shm_fail(err, -ENODATA, sc->name, "'%s' wrote nothing", text);
        return 0;
}

