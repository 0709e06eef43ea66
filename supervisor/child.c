/* SPDX-License-Identifier: MIT */
/*
 * The child lifecycle's table (see child.h) and its operating system through
 * sd-event. Each action is small and ends by naming the next state; the
 * owner is told last, once the child is in that state, so that an owner may
 * act on the child from inside its callback.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <systemd/sd-event.h>

#include "conf/units.h"
#include "supervisor/child.h"

/* An action: acts on the child and returns its next state. */
typedef enum child_state (*child_action)(struct child *c);

static void child_set_timer(struct child *c, usec_t when) {
        int r = c->os->set_timer(c->os_data, c, when);
        /* Without its timer a stop would never escalate: escalate now. A lost
         * age or backoff timer only comes late (the next event brings it). */
        if (r < 0 && c->state == CHILD_STOPPING && c->pid > 0)
                (void) c->os->kill(c->os_data, -c->pid, SIGKILL);
}

static void child_signal(struct child *c, int sig) {
        if (c->pid > 0)
                (void) c->os->kill(c->os_data, -c->pid, sig);
}

/* ---- the actions ---- */

static enum child_state keep(struct child *c) {
        return c->state;
}

static enum child_state do_start(struct child *c) {
        if (!c->request)
                return CHILD_STARTING;   /* child_fail_start(): c->error is set */
        pid_t pid = c->os->spawn(c->os_data, c->request);
        if (pid < 0) {
                c->error = (int) pid;
                return CHILD_STARTING;   /* child_start() follows with START_FAILED */
        }
        c->pid = pid;
        c->error = c->os->watch(c->os_data, c);
        if (c->error < 0)
                c->pid = 0;              /* the os took it back */
        return CHILD_STARTING;
}

static enum child_state on_started(struct child *c) {
        c->started = c->os->now(c->os_data);
        if (c->ready_timeout > 0) {
                c->state = CHILD_UNREADY;
                child_set_timer(c, c->started + c->ready_timeout);
        } else {
                c->state = CHILD_RUNNING;
                if (c->age > 0)
                        child_set_timer(c, c->started + c->age);
        }
        c->owner->started(c, c->userdata);
        return c->state;
}

/* READY=1: it takes work from now on; its age counts from its start. */
static enum child_state on_ready(struct child *c) {
        (void) c->os->set_timer(c->os_data, c, USEC_INFINITY);
        if (c->age > 0)
                child_set_timer(c, c->started + c->age);
        return CHILD_RUNNING;
}

/* Not ready in time (unless the owner takes it as ready), or silent past its
 * watchdog: SIGKILL, and the exit that follows is a failure like a crash
 * (not asked for: backoff, crash loop). */
static enum child_state on_ready_timeout(struct child *c) {
        if (c->owner->not_ready && !c->owner->not_ready(c, c->userdata))
                return on_ready(c);
        child_signal(c, SIGKILL);
        return c->state;
}

static enum child_state on_hung(struct child *c) {
        child_signal(c, SIGKILL);
        return c->state;
}

/* Asks the owner what follows an end, and goes there. */
static enum child_state after_end(struct child *c, const struct child_end *end) {
        usec_t delay = c->owner->ended(c, end, c->userdata);
        if (delay == CHILD_NO_RESTART || c->state != CHILD_IDLE)
                return c->state;          /* the owner may have started it again already */
        c->state = CHILD_BACKOFF;
        child_set_timer(c, c->os->now(c->os_data) + delay);
        return CHILD_BACKOFF;
}

static enum child_state on_start_failed(struct child *c) {
        struct child_end end = {
                .outcome = CHILD_START_FAILED,
                .error = c->error,
                .transient = child_error_is_transient(c->error),
        };
        c->state = CHILD_IDLE;
        return after_end(c, &end);
}

static enum child_state on_exited(struct child *c) {
        const siginfo_t *si = &c->exit;
        struct child_end end = {
                .outcome = si->si_code != CLD_EXITED ? CHILD_SIGNAL : si->si_status == 0 ? CHILD_SUCCESS : CHILD_FAILURE,
                .status = si->si_status,
                .core_dumped = si->si_code == CLD_DUMPED,
                .asked_to_stop = c->state == CHILD_STOPPING,
                .uptime = c->os->now(c->os_data) - c->started,
        };
        /* The child is a zombie until its source returns, so its pid cannot
         * have been reused: whatever is left of its process group goes too. */
        child_signal(c, SIGKILL);
        c->os->unwatch(c->os_data, c);
        (void) c->os->set_timer(c->os_data, c, USEC_INFINITY);
        c->state = CHILD_IDLE;
        return after_end(c, &end);
}

static enum child_state do_stop(struct child *c) {
        child_signal(c, c->stop->signal);
        /* A stopped (SIGSTOP'd) child would sit on a signal it handles until
         * SIGKILL: continue it so that it can stop gracefully, as systemd does. */
        child_signal(c, SIGCONT);
        c->state = CHILD_STOPPING;
        child_set_timer(c, c->os->now(c->os_data) + c->stop->timeout);
        return CHILD_STOPPING;
}

static enum child_state do_kill(struct child *c) {
        child_signal(c, SIGKILL);
        (void) c->os->set_timer(c->os_data, c, USEC_INFINITY);
        return CHILD_STOPPING;
}

static enum child_state on_kill_timer(struct child *c) {
        child_signal(c, SIGKILL);
        c->owner->killed(c, c->userdata);
        return CHILD_STOPPING;
}

/* The age limit: a recycle like any other. */
static enum child_state on_age_timer(struct child *c) {
        char why[96], age[32];
        snprintf(why, sizeof(why), "age %s reached", format_duration(c->age, age));
        c->recycle_reason = RECYCLE_AGE;
        snprintf(c->recycle_why, sizeof(c->recycle_why), "%s", why);
        c->state = CHILD_DRAINING;
        c->owner->recycle(c, c->userdata);
        return c->state;
}

static enum child_state do_recycle(struct child *c) {
        (void) c->os->set_timer(c->os_data, c, USEC_INFINITY);
        c->state = CHILD_DRAINING;
        c->owner->recycle(c, c->userdata);
        return c->state;
}

static enum child_state to_recycled(struct child *c) {
        (void) c;
        return CHILD_RECYCLED;
}

static enum child_state to_outdated(struct child *c) {
        (void) c->os->set_timer(c->os_data, c, USEC_INFINITY);
        return CHILD_OUTDATED;
}

static enum child_state backoff_over(struct child *c) {
        c->state = CHILD_IDLE;
        c->owner->ready(c, c->userdata);
        return c->state;
}

static enum child_state backoff_cancel(struct child *c) {
        (void) c->os->set_timer(c->os_data, c, USEC_INFINITY);
        return CHILD_IDLE;
}

/* ---- the table ---- */

/* A NULL entry: the state has no use for the event (keep). */
static const child_action actions[_CHILD_STATE_MAX][_CHILD_EVENT_MAX] = {
        [CHILD_IDLE] = {
                [CHILD_EVENT_START] = do_start,
        },
        [CHILD_STARTING] = {
                [CHILD_EVENT_STARTED] = on_started,
                [CHILD_EVENT_START_FAILED] = on_start_failed,
        },
        [CHILD_UNREADY] = {
                [CHILD_EVENT_EXITED] = on_exited,
                [CHILD_EVENT_STOP] = do_stop,
                [CHILD_EVENT_KILL] = do_kill,
                [CHILD_EVENT_TIMER] = on_ready_timeout,
                [CHILD_EVENT_OUTDATE] = to_outdated,
                [CHILD_EVENT_READY] = on_ready,
                [CHILD_EVENT_HUNG] = on_hung,
        },
        [CHILD_RUNNING] = {
                [CHILD_EVENT_EXITED] = on_exited,
                [CHILD_EVENT_HUNG] = on_hung,
                [CHILD_EVENT_STOP] = do_stop,
                [CHILD_EVENT_KILL] = do_kill,
                [CHILD_EVENT_TIMER] = on_age_timer,
                [CHILD_EVENT_RECYCLE] = do_recycle,
                [CHILD_EVENT_OUTDATE] = to_outdated,
        },
        [CHILD_DRAINING] = {
                [CHILD_EVENT_EXITED] = on_exited,
                [CHILD_EVENT_STOP] = do_stop,
                [CHILD_EVENT_KILL] = do_kill,
                [CHILD_EVENT_RECYCLE_READY] = to_recycled,
                [CHILD_EVENT_OUTDATE] = to_outdated,
                [CHILD_EVENT_HUNG] = on_hung,
        },
        [CHILD_RECYCLED] = {
                [CHILD_EVENT_EXITED] = on_exited,
                [CHILD_EVENT_STOP] = do_stop,
                [CHILD_EVENT_KILL] = do_kill,
                [CHILD_EVENT_HUNG] = on_hung,
        },
        [CHILD_OUTDATED] = {
                [CHILD_EVENT_EXITED] = on_exited,
                [CHILD_EVENT_STOP] = do_stop,
                [CHILD_EVENT_KILL] = do_kill,
                [CHILD_EVENT_HUNG] = on_hung,
        },
        [CHILD_STOPPING] = {
                [CHILD_EVENT_EXITED] = on_exited,
                [CHILD_EVENT_KILL] = do_kill,
                [CHILD_EVENT_TIMER] = on_kill_timer,
        },
        [CHILD_BACKOFF] = {
                [CHILD_EVENT_TIMER] = backoff_over,
                [CHILD_EVENT_STOP] = backoff_cancel,
                [CHILD_EVENT_KILL] = backoff_cancel,
        },
};

void child_dispatch(struct child *c, enum child_event event) {
        if ((unsigned) c->state >= _CHILD_STATE_MAX || (unsigned) event >= _CHILD_EVENT_MAX)
                return;
        child_action action = actions[c->state][event] ? actions[c->state][event] : keep;
        enum child_state old = c->state;
        /* An action that tells its owner returns c->state: the owner may
         * have moved the child on from inside its callback. */
        c->state = action(c);
        if (c->state == CHILD_IDLE || c->state == CHILD_BACKOFF)
                c->pid = 0;
        if (c->state != old && c->owner->changed)
                c->owner->changed(c, old, c->userdata);
}

/* ---- the public side ---- */

void child_init(struct child *c, const struct child_os *os, void *os_data, const struct child_stop *stop,
                const struct child_owner *owner, void *userdata) {
        *c = (struct child) {
                .state = CHILD_IDLE,
                .os = os,
                .os_data = os_data,
                .stop = stop,
                .owner = owner,
                .userdata = userdata,
        };
}

void child_done(struct child *c) {
        if (child_has_process(c))
                child_signal(c, SIGKILL);
        if (c->os)
                c->os->release(c->os_data, c);
        c->state = CHILD_IDLE;
        c->pid = 0;
}

int child_start(struct child *c, const struct spawn_request *req, usec_t age) {
        if (c->state != CHILD_IDLE)
                return -EBUSY;
        c->request = req;
        c->error = 0;
        c->age = age;
        child_dispatch(c, CHILD_EVENT_START);
        c->request = NULL;
        if (c->state != CHILD_STARTING)
                return -EBUSY;   /* cannot happen: START always goes to STARTING */
        int error = c->error;
        child_dispatch(c, error < 0 ? CHILD_EVENT_START_FAILED : CHILD_EVENT_STARTED);
        return error;
}

int child_fail_start(struct child *c, int error) {
        if (c->state != CHILD_IDLE)
                return -EBUSY;
        c->request = NULL;
        c->error = error < 0 ? error : -EIO;
        child_dispatch(c, CHILD_EVENT_START);
        child_dispatch(c, CHILD_EVENT_START_FAILED);
        return c->error;
}

void child_recycle(struct child *c, enum recycle_reason reason, const char *why) {
        if (c->state != CHILD_RUNNING)
                return;
        c->recycle_reason = reason;
        snprintf(c->recycle_why, sizeof(c->recycle_why), "%s", why);
        child_dispatch(c, CHILD_EVENT_RECYCLE);
}

void child_exited(struct child *c, const siginfo_t *si) {
        c->exit = *si;
        child_dispatch(c, CHILD_EVENT_EXITED);
}

void child_timer(struct child *c) {
        child_dispatch(c, CHILD_EVENT_TIMER);
}

bool child_is_live(const struct child *c) {
        return c->state == CHILD_RUNNING || c->state == CHILD_DRAINING || c->state == CHILD_UNREADY ||
               child_is_stale(c);
}

bool child_is_unready(const struct child *c) {
        return c->state == CHILD_UNREADY;
}

bool child_is_stale(const struct child *c) {
        return c->state == CHILD_RECYCLED || c->state == CHILD_OUTDATED;
}

bool child_has_process(const struct child *c) {
        return child_is_live(c) || c->state == CHILD_STOPPING;
}

enum child_error_kind child_error_kind(int error) {
        switch (-error) {
        case ENOENT: case EACCES: case ENOEXEC: case ENOTDIR: case ELOOP:
        case ENAMETOOLONG: case EISDIR: case ETXTBSY: case EPERM: case E2BIG:
                return CHILD_ERROR_CANNOT_RUN;   /* EPERM: also corral may not become workers.user/group */
        case EMFILE: case ENFILE: case EAGAIN: case ENOMEM: case ENOBUFS: case EINTR: case ENOSPC:
                return CHILD_ERROR_SHORTAGE;
        default:
                return CHILD_ERROR_OTHER;
        }
}

bool child_error_is_transient(int error) {
        return child_error_kind(error) == CHILD_ERROR_SHORTAGE;
}

static const char *const state_names[_CHILD_STATE_MAX] = {
        [CHILD_IDLE] = "idle",
        [CHILD_STARTING] = "starting",
        [CHILD_RUNNING] = "running",
        [CHILD_DRAINING] = "draining",
        [CHILD_RECYCLED] = "recycled",
        [CHILD_OUTDATED] = "outdated",
        [CHILD_STOPPING] = "stopping",
        [CHILD_BACKOFF] = "backoff",
        [CHILD_UNREADY] = "unready",
};

static const char *const event_names[_CHILD_EVENT_MAX] = {
        [CHILD_EVENT_START] = "start",
        [CHILD_EVENT_STARTED] = "started",
        [CHILD_EVENT_START_FAILED] = "start-failed",
        [CHILD_EVENT_EXITED] = "exited",
        [CHILD_EVENT_STOP] = "stop",
        [CHILD_EVENT_KILL] = "kill",
        [CHILD_EVENT_TIMER] = "timer",
        [CHILD_EVENT_RECYCLE] = "recycle",
        [CHILD_EVENT_RECYCLE_READY] = "recycle-ready",
        [CHILD_EVENT_OUTDATE] = "outdate",
        [CHILD_EVENT_READY] = "ready",
        [CHILD_EVENT_HUNG] = "hung",
};

const char *child_state_name(enum child_state s) {
        return (unsigned) s < _CHILD_STATE_MAX ? state_names[s] : "?";
}

const char *child_event_name(enum child_event e) {
        return (unsigned) e < _CHILD_EVENT_MAX ? event_names[e] : "?";
}

const char *child_end_describe(const struct child_end *end, char *buf, size_t size) {
        char sig[16];
        switch (end->outcome) {
        case CHILD_SUCCESS:
        case CHILD_FAILURE:
                snprintf(buf, size, "exited with status %d", end->status);
                break;
        case CHILD_SIGNAL:
                snprintf(buf, size, "was killed by signal %s%s", signal_to_string(end->status, sig),
                         end->core_dumped ? " (core dumped)" : "");
                break;
        default:
                snprintf(buf, size, "could not start: %s", strerror(-end->error));
        }
        return buf;
}

/* ---- the operating system through sd-event ---- */

static pid_t os_spawn(void *os, const struct spawn_request *req) {
        (void) os;
        return spawn_worker(req);
}

static int on_child_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        (void) s;
        child_exited(userdata, si);
        return 0;
}

static int os_watch(void *os, struct child *c) {
        sd_event_source *s = NULL;
        /* sd-event watches through a pidfd, or SIGCHLD where there is none (valgrind). */
        int r = sd_event_add_child(os, &s, c->pid, WEXITED, on_child_exit, c);
        if (r < 0) {
                /* Unwatched it cannot be supervised: take it back. */
                (void) kill(c->pid, SIGKILL);
                while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                return r;
        }
        /* Should the owner go away with the child alive, sd-event kills and reaps it. */
        (void) sd_event_source_set_child_process_own(s, true);
        c->exit_source = s;
        return 0;
}

static void os_unwatch(void *os, struct child *c) {
        (void) os;
        c->exit_source = sd_event_source_disable_unref(c->exit_source);
}

static void os_release(void *os, struct child *c) {
        (void) os;
        c->exit_source = sd_event_source_disable_unref(c->exit_source);
        c->timer_source = sd_event_source_disable_unref(c->timer_source);
}

static int os_kill(void *os, pid_t pgid, int sig) {
        (void) os;
        return kill(pgid, sig) < 0 ? -errno : 0;
}

static int on_child_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        child_timer(userdata);
        return 0;
}

static int os_set_timer(void *os, struct child *c, usec_t when) {
        sd_event_source *s = c->timer_source;
        int r;
        if (when == USEC_INFINITY)
                return s ? sd_event_source_set_enabled(s, SD_EVENT_OFF) : 0;
        if (!s) {
                r = sd_event_add_time(os, &s, CLOCK_MONOTONIC, when, TIMER_ACCURACY_USEC, on_child_timer, c);
                if (r >= 0)
                        c->timer_source = s;
                return r;
        }
        r = sd_event_source_set_time(s, when);
        if (r >= 0)
                r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return r;
}

static usec_t os_now(void *os) {
        usec_t now;
        if (sd_event_now(os, CLOCK_MONOTONIC, &now) < 0)
                return 0;
        return now;
}

const struct child_os child_os_sd_event = {
        .spawn = os_spawn,
        .watch = os_watch,
        .unwatch = os_unwatch,
        .release = os_release,
        .kill = os_kill,
        .set_timer = os_set_timer,
        .now = os_now,
};
