/* SPDX-License-Identifier: MIT */
/*
 * The pool: slots of workers, each a child (child.h) that goes through the
 * one lifecycle. The pool decides what the children cannot: how many run
 * (desired, clamped to max), which to stop when there are too many
 * (pool_scale_in.c), how long a slot waits before it is refilled (the
 * restart backoff, pool-wide, and the crash loop), and the rolling
 * replacement of workers on an old command (pool_reload.c) or past a recycle
 * limit, one at a time, a new one started before the old one is stopped.
 *
 * A child's callbacks only record and kick: the reconcile runs from a defer
 * source, once the children have settled, never in the middle of a
 * transition.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/exit_status.h"
#include "conf/units.h"
#include "supervisor/identity.h"
#include "supervisor/log.h"
#include "supervisor/pool.h"
#include "supervisor/pool_reload.h"
#include "supervisor/pool_scale_in.h"
#include "supervisor/pool_start.h"
#include "supervisor/slots.h"
#include "supervisor/spawn.h"

static const struct child_owner worker_owner;

static usec_t pool_now(struct pool *p) {
        usec_t now;
        if (sd_event_now(p->event, CLOCK_MONOTONIC, &now) < 0)
                return 0;
        return now;
}

int pool_free_slot(struct worker *const *workers, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                if (workers[i]->child.state == CHILD_IDLE)
                        return (int) i;
        return -ENOSPC;
}

unsigned pool_count(const struct pool *p, enum worker_state state) {
        unsigned n = 0;
        for (unsigned i = 0; i < p->n_alloc; i++)
                n += p->workers[i]->state == state;
        return n;
}

static unsigned pool_count_child(const struct pool *p, bool (*test)(const struct child *c)) {
        unsigned n = 0;
        for (unsigned i = 0; i < p->n_alloc; i++)
                n += test(&p->workers[i]->child);
        return n;
}

static bool child_in_backoff(const struct child *c) {
        return c->state == CHILD_BACKOFF;
}

static bool child_is_stopping(const struct child *c) {
        return c->state == CHILD_STOPPING;
}

size_t pool_running_pids(const struct pool *p, pid_t *pids, size_t n) {
        size_t k = 0;
        for (unsigned i = 0; i < p->n_alloc && k < n; i++)
                if (child_is_live(&p->workers[i]->child))
                        pids[k++] = p->workers[i]->child.pid;
        return k;
}

static void pool_reconcile(struct pool *p);

/* Once stopping and the last worker is gone, the loop is done. */
static void pool_maybe_finish(struct pool *p) {
        if (pool_count_child(p, child_has_process) > 0)
                return;
        /* Without a stop, the pool ends only once workers ended for good. */
        if (p->stopping || (p->done > 0 && p->done >= p->desired))
                (void) sd_event_exit(p->event, p->exit_status);
}

static int on_pool_kick(sd_event_source *s, void *userdata) {
        struct pool *p = userdata;
        (void) s;
        pool_reconcile(p);
        pool_maybe_finish(p);
        return 0;
}

/* Runs the reconcile once the current event is over. */
static void pool_kick(struct pool *p) {
        int r = 0;
        if (!p->kick)
                r = sd_event_add_defer(p->event, &p->kick, on_pool_kick, p);
        if (r >= 0)
                r = sd_event_source_set_enabled(p->kick, SD_EVENT_ONESHOT);
        if (r < 0 && r != -ESTALE)
                log_warning_errno(r, "Failed to schedule the pool's next step, ignoring: %m");
}

static char *command_line(char *const *argv, char *buf, size_t size) {
        size_t n = 0;
        buf[0] = '\0';
        for (size_t i = 0; argv[i] && n < size; i++)
                n += snprintf(buf + n, size - n, "%s%s", i ? " " : "", argv[i]);
        return buf;
}

/* Starts a worker in the lowest idle slot: 0, -ENOSPC, or the start's error. */
static int pool_start_one(struct pool *p) {
        int slot = pool_free_slot(p->workers, p->max);
        if (slot < 0)
                return slot;
        return worker_start(p, p->workers[slot]);
}

static int pool_grow_slots(struct pool *p, unsigned n);

/* A full pool whose replacements must be ready before an old worker stops
 * runs one worker over max meanwhile, in slot `max` (its CORRAL_WORKER_ID):
 * without it, every step of a rolling replacement would cost a worker's
 * capacity for the time a new one takes to get ready. */
static int pool_start_surge(struct pool *p) {
        int r = pool_grow_slots(p, p->max + 1);
        if (r < 0)
                return r;
        int slot = pool_free_slot(p->workers, p->max + 1);
        if (slot < 0)
                return slot;
        return worker_start(p, p->workers[slot]);
}

/* ---- the reconcile ---- */

/* Stops w, the reconcile's choice; a recycled worker is logged and counted here. */
static void pool_stop_worker(struct pool *p, struct worker *w) {
        if (w->child.state == CHILD_RECYCLED) {
                log_info("recycling worker %u (pid %d): %s", w->id, w->child.pid, w->child.recycle_why);
                p->recycles[w->child.recycle_reason]++;
        }
        child_dispatch(&w->child, CHILD_EVENT_STOP);
}

/* One step of a rolling replacement (a reload, new segments, a recycle):
 * a new worker first where a slot is free, then the old one stopped. When
 * the new one cannot start, the old one keeps running. A new worker that
 * speaks the notify protocol must say READY=1 first: the reconcile stops
 * the old one as a surplus then. */
static void pool_replace_one(struct pool *p) {
        struct worker *old = pool_pick_surplus(p);
        int r = pool_start_one(p);
        if (r == -ENOSPC && pool_notify(p))
                r = pool_start_surge(p);
        if (r < 0 && r != -ENOSPC)
                return;
        if (r >= 0 && pool_count_child(p, child_is_unready) > 0)
                return;
        pool_stop_worker(p, old);
}

/* Moves the pool toward `desired`: stops the surplus at once, starts the
 * missing workers (a slot in its restart backoff counts as one that will
 * start), and replaces one stale worker at a time. */
static void pool_reconcile(struct pool *p) {
        if (p->stopping)
                return;

        unsigned want = p->desired > p->done ? p->desired - p->done : 0;
        unsigned stale = pool_count_child(p, child_is_stale);
        /* A replacement waiting out its backoff while stale workers remain
         * is a rolling step: it is one more than `want` on purpose. */
        unsigned spare = stale > 0 ? 1 : 0;
        while (pool_count_child(p, child_in_backoff) > 0 &&
               pool_count_child(p, child_is_live) + pool_count_child(p, child_in_backoff) > want + spare)
                pool_cancel_backoff(p);
        while (pool_count_child(p, child_is_live) > want) {
                struct worker *surplus = pool_pick_surplus(p);
                /* A stale worker stays until its replacement is ready. */
                if (child_is_stale(&surplus->child) && pool_count_child(p, child_is_unready) > 0)
                        break;
                pool_stop_worker(p, surplus);
        }

        while (!p->stopping && pool_count_child(p, child_is_live) + pool_count_child(p, child_in_backoff) < want)
                if (pool_start_one(p) == -ENOSPC)
                        break;

        if (!p->stopping && want > 0 && pool_count_child(p, child_is_stale) > 0 &&
            pool_count_child(p, child_is_stopping) == 0 && pool_count_child(p, child_in_backoff) == 0 &&
            pool_count_child(p, child_is_unready) == 0)
                pool_replace_one(p);
}

/* ---- the children's events ---- */

/* When the slot of an ended worker may be refilled. Restarts already pending
 * at an earlier time take this one along: the pool restarts at the earliest
 * of them, as when it had one restart timer, so that many workers killed
 * together are not spread over ever longer waits. */
static usec_t pool_restart_wait(struct pool *p, usec_t delay) {
        usec_t now = pool_now(p);
        if (pool_count_child(p, child_in_backoff) > 0 && p->restart_at > now && p->restart_at - now < delay)
                return p->restart_at - now;
        p->restart_at = now + delay;
        return delay;
}

/* The view of the child's state that stream.c and the snapshot read. */
static void worker_sync_state(struct worker *w) {
        const struct child *c = &w->child;
        w->state = child_is_unready(c) ? WORKER_STARTING : child_is_live(c) ? WORKER_RUNNING :
                   c->state == CHILD_STOPPING ? WORKER_STOPPING : WORKER_EMPTY;
}

static void worker_started(struct child *c, void *userdata) {
        struct worker *w = userdata;
        struct pool *p = w->pool;
        (void) c;
        p->started_once = true;
        worker_sync_state(w);   /* before the hook, which may look */
        if (p->hooks)
                p->hooks->started(p, w, 0, p->hooks->userdata);
}

/* What a start that failed for good could not do: "run '/srv/app'", or
 * "use workers.cwd '/srv'" when the directory is the one at fault. */
static const char *start_failure_what(const struct corral_config *c, char *buf, size_t size) {
        enum spawn_check_what what = SPAWN_CHECK_COMMAND;
        if (c->workers.cwd && spawn_check(c->command, c->workers.cwd, &c->workers.identity, &what) < 0 &&
            what == SPAWN_CHECK_CWD)
                snprintf(buf, size, "use workers.cwd '%s'", c->workers.cwd);
        else
                snprintf(buf, size, "run '%s'", c->command[0]);
        return buf;
}

/* The crash loop: say what ran and how the last one ended, stop with exit 3. */
static usec_t pool_give_up(struct pool *p) {
        char cmd[512];
        log_error("crash loop: '%s' failed %u times in a row, the last one %s; giving up",
                  command_line(p->config->command, cmd, sizeof(cmd)), p->restart.quick_failures, p->last_exit);
        p->crash_loop = true;
        pool_stop(p, EXIT_CRASH_LOOP);
        return CHILD_NO_RESTART;
}

/* A worker could not start. At startup a command that cannot run is exit 2,
 * as ever; after that it is that worker's failure (backoff, crash loop, which
 * gives up only when no other worker runs). A
 * lack of resources, or a rolling replacement while the old workers still
 * run, is retried after the backoff without counting toward a crash loop. */
static usec_t worker_start_failed(struct pool *p, struct worker *w, const struct child_end *end) {
        char as[256], what[512], cmd[512], t[32];
        identity_describe(&p->config->workers, as, sizeof(as));
        start_failure_what(p->config, what, sizeof(what));

        if (p->hooks)
                p->hooks->started(p, w, end->error, p->hooks->userdata);
        if (p->stopping)
                return CHILD_NO_RESTART;
        if (!end->transient && !p->started_once) {
                log_error_errno(end->error, "cannot %s%s: %m", what, as);
                pool_stop(p, EXIT_USAGE);
                return CHILD_NO_RESTART;
        }
        snprintf(p->last_exit, sizeof(p->last_exit), "could not start: %s", strerror(-end->error));
        usec_t delay;
        if (end->transient) {
                delay = restart_record_transient(&p->restart, &p->limits);
                log_warning_errno(end->error, "Failed to start worker %u%s: %m; retrying in %s", w->id, as,
                                  format_duration(delay, t));
                return pool_restart_wait(p, delay);
        }
        if (pool_count_child(p, child_is_stale) > 0) {
                delay = restart_record_transient(&p->restart, &p->limits);
                log_error_errno(end->error, "Failed to start worker %u: cannot %s%s: %m; the workers on the "
                                "previous command keep running, retrying in %s", w->id, what, as,
                                format_duration(delay, t));
                return pool_restart_wait(p, delay);
        }
        log_error_errno(end->error, "Failed to start worker %u: cannot %s%s: %m", w->id, what, as);
        delay = restart_record_exit(&p->restart, &p->limits, 0, true);
        unsigned running = pool_count_child(p, child_is_live);
        if (restart_is_crash_loop(&p->restart, &p->limits) && running > 0) {
                /* A restart that cannot start never stops the workers that
                 * run: giving up would turn one missing binary into an outage. */
                log_error("'%s' could not start %u times in a row; the %u running worker%s keep%s running, "
                          "retrying in %s", command_line(p->config->command, cmd, sizeof(cmd)),
                          p->restart.quick_failures, running, running == 1 ? "" : "s", running == 1 ? "s" : "",
                          format_duration(delay, t));
                return pool_restart_wait(p, delay);
        }
        if (restart_is_crash_loop(&p->restart, &p->limits))
                return pool_give_up(p);
        log_info("restarting worker %u in %s", w->id, format_duration(delay, t));
        return pool_restart_wait(p, delay);
}

static usec_t worker_exited(struct pool *p, struct worker *w, const struct child_end *end) {
        const struct workers_config *wc = &p->config->workers;
        char how[80], up[32];

        p->exits[end->outcome]++;
        child_end_describe(end, how, sizeof(how));
        snprintf(p->last_exit, sizeof(p->last_exit), "%s", how);
        log_full(end->outcome == CHILD_SUCCESS || end->asked_to_stop ? LOG_INFO : LOG_WARNING, 0,
                 "worker %u (pid %d) %s after %s", w->id, w->child.pid, how, format_duration(end->uptime, up));
        bool expected = p->hooks && p->hooks->ended(p, w, end->asked_to_stop, p->hooks->userdata);
        if (expected && !p->stopping)
                return CHILD_NO_RESTART;   /* nothing to do: not even a reconcile */

        pool_kick(p);
        /* Stopping, or scaled down or rolled over: its slot may be wanted again. */
        if (p->stopping || end->asked_to_stop)
                return CHILD_NO_RESTART;

        bool failed = end->outcome != CHILD_SUCCESS;
        bool replace = p->hooks || wc->restart == RESTART_ALWAYS || (wc->restart == RESTART_ON_FAILURE && failed);
        if (!replace) {
                p->done++;
                return CHILD_NO_RESTART;
        }

        usec_t delay = restart_record_exit(&p->restart, &p->limits, end->uptime, failed);
        if (restart_is_crash_loop(&p->restart, &p->limits))
                return pool_give_up(p);
        p->restarts++;
        w->restarts++;
        log_info("restarting worker %u in %s", w->id, format_duration(delay, up));
        return pool_restart_wait(p, delay);
}

static usec_t worker_ended(struct child *c, const struct child_end *end, void *userdata) {
        struct worker *w = userdata;
        struct pool *p = w->pool;
        (void) c;
        usec_t next = end->outcome == CHILD_START_FAILED ? worker_start_failed(p, w, end) : worker_exited(p, w, end);
        /* The last worker of an old generation frees its segments. */
        w->shm = shm_set_unref(w->shm);
        return next;
}

static void worker_recycle(struct child *c, void *userdata) {
        struct worker *w = userdata;
        struct pool *p = w->pool;
        if (p->hooks && p->hooks->recycle) {
                p->hooks->recycle(p, w, p->hooks->userdata);
                return;
        }
        child_dispatch(c, CHILD_EVENT_RECYCLE_READY);
        pool_kick(p);
}

static void worker_ready(struct child *c, void *userdata) {
        (void) c;
        pool_kick(((struct worker *) userdata)->pool);
}

static void worker_killed(struct child *c, void *userdata) {
        struct worker *w = userdata;
        char t[32];
        log_warning("worker %u (pid %d) still running %s after the stop signal, killing",
                    w->id, c->pid, format_duration(w->pool->stop.timeout, t));
}

/* workers.notify: true asks for READY=1, and a worker without it failed to
 * start. Implied by listen:, it only expects it: a server that does not
 * speak the protocol is taken as ready once start_timeout has passed. */
static bool worker_not_ready(struct child *c, void *userdata) {
        struct worker *w = userdata;
        const struct workers_config *wc = &w->pool->config->workers;
        char t[32];
        format_duration(c->ready_timeout, t);
        if (wc->notify_given) {
                log_warning("worker %u (pid %d) did not send READY=1 within %s (workers.start_timeout), killing it",
                            w->id, c->pid, t);
                return true;
        }
        log_info("worker %u (pid %d) sent no READY=1 within %s: taking it as ready (set workers.notify to "
                 "false for servers that do not speak the notify protocol)", w->id, c->pid, t);
        pool_kick(w->pool);
        return false;
}

static void worker_changed(struct child *c, enum child_state old, void *userdata) {
        struct worker *w = userdata;
        const struct workload_owner *o = w->pool->owner;
        worker_sync_state(w);
        if (old != CHILD_UNREADY || c->state != CHILD_RUNNING)
                return;
        pool_kick(w->pool);   /* a rolling replacement may go on */
        /* /healthz counts it from now, not from the next sample. */
        if (o && o->ready)
                o->ready(o->userdata);
}

static const struct child_owner worker_owner = {
        .started = worker_started,
        .ended = worker_ended,
        .recycle = worker_recycle,
        .ready = worker_ready,
        .killed = worker_killed,
        .changed = worker_changed,
        .not_ready = worker_not_ready,
};

/* ---- the public side ---- */

void pool_worker_stop(struct worker *w) {
        child_dispatch(&w->child, CHILD_EVENT_STOP);
}

void pool_worker_recycle(struct worker *w, enum recycle_reason reason, const char *why) {
        if (w->pool->stopping)
                return;
        child_recycle(&w->child, reason, why);
}

void pool_worker_recycle_ready(struct worker *w) {
        if (w->child.state != CHILD_DRAINING)
                return;
        child_dispatch(&w->child, CHILD_EVENT_RECYCLE_READY);
        pool_kick(w->pool);
}

void pool_stop(struct pool *p, int status) {
        char sig[16];

        if (p->stopping) {
                log_notice("stopping at once");
                for (unsigned i = 0; i < p->n_alloc; i++)
                        child_dispatch(&p->workers[i]->child, CHILD_EVENT_KILL);
                return;
        }
        p->stopping = true;
        p->exit_status = status;
        if (p->owner && p->owner->stopping)
                p->owner->stopping(p->owner->userdata);

        /* STOP also leaves slots waiting out their backoff empty. */
        unsigned n = pool_count_child(p, child_is_live);
        if (n > 0)
                log_info("stopping %u worker%s with SIG%s", n, n == 1 ? "" : "s", signal_to_string(p->stop.signal, sig));
        for (unsigned i = 0; i < p->n_alloc; i++)
                child_dispatch(&p->workers[i]->child, CHILD_EVENT_STOP);
        pool_maybe_finish(p);
}

/* Every live worker is to be replaced, one at a time. */
static void pool_outdate(struct pool *p) {
        for (unsigned i = 0; i < p->n_alloc; i++)
                child_dispatch(&p->workers[i]->child, CHILD_EVENT_OUTDATE);
}

void pool_set_shm(struct pool *p, struct shm_set *shm) {
        if (shm == p->shm)
                return;
        shm_set_unref(p->shm);
        p->shm = shm_set_ref(shm);
        if (pool_count_child(p, child_is_live) > 0) {
                log_info("shared segments changed: replacing workers one at a time");
                pool_outdate(p);
        }
        pool_reconcile(p);
}

int pool_set_desired(struct pool *p, unsigned n) {
        p->desired = n < p->max ? n : p->max;
        pool_reconcile(p);
        return 0;
}

static int worker_make(void *userdata, unsigned id) {
        struct pool *p = userdata;
        struct worker *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (struct worker) { .pool = p, .id = id };
        child_init(&w->child, p->os, p->os_data, &p->stop, &worker_owner, w);
        p->workers[id] = w;
        return 0;
}

/* Makes sure there are at least n slots; existing workers keep their place. */
static int pool_grow_slots(struct pool *p, unsigned n) {
        return slots_grow(&p->workers, &p->n_alloc, n, worker_make, p);
}


static void pool_set_limits(struct pool *p, const struct workers_config *wc) {
        p->limits = (struct restart_limits) {
                .initial = wc->backoff_initial,
                .max = wc->backoff_max,
                .reset_after = wc->backoff_reset_after,
                .burst = wc->crash_burst,
        };
        p->stop = (struct child_stop) { .signal = wc->stop_signal, .timeout = wc->stop_timeout };
}

int pool_reconfigure(struct pool *p, const struct corral_config *config) {
        const struct corral_config *old = p->config;
        bool changed = pool_config_replaces_workers(old, config);
        int r = changed ? pool_check_command(config) : 0;
        if (r < 0)
                return r;
        r = pool_grow_slots(p, config->workers.max);
        if (r < 0)
                return r;

        p->config = config;
        p->max = config->workers.max;
        pool_set_limits(p, &config->workers);
        if (p->restart.delay > p->limits.max)
                p->restart.delay = p->limits.max;
        if (changed && pool_count_child(p, child_is_live) > 0) {
                log_info("the command, its environment or its user changed: replacing workers one at a time");
                pool_outdate(p);
        }
        return pool_set_desired(p, p->desired);
}

int pool_new_os(sd_event *e, const struct corral_config *config, const struct child_os *os, void *os_data,
                struct pool **ret) {
        struct pool *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->event = sd_event_ref(e);
        p->os = os;
        p->os_data = os_data;
        p->config = config;
        p->max = config->workers.max;
        pool_set_limits(p, &config->workers);
        int r = pool_grow_slots(p, p->max);
        if (r < 0) {
                pool_free(p);
                return r;
        }
        restart_state_init(&p->restart, &p->limits);
        /* Jitter needs no strong randomness, only different draws per run. */
        if (getrandom(&p->rng, sizeof(p->rng), GRND_NONBLOCK) != sizeof(p->rng))
                p->rng = (uint64_t) pool_now(p) ^ ((uint64_t) getpid() << 32);
        *ret = p;
        return 0;
}

int pool_new(sd_event *e, const struct corral_config *config, struct pool **ret) {
        return pool_new_os(e, config, &child_os_sd_event, e, ret);
}

struct pool *pool_free(struct pool *p) {
        if (!p)
                return NULL;
        for (unsigned i = 0; i < p->n_alloc; i++) {
                struct worker *w = p->workers[i];
                if (!w)
                        continue;
                child_done(&w->child);   /* the child source kills and reaps it */
                w->shm = shm_set_unref(w->shm);
                notify_endpoint_free(w->notify);
                free(w->notify_handler);
                free(w);
        }
        sd_event_source_disable_unref(p->kick);
        shm_set_unref(p->shm);
        sd_event_unref(p->event);
        free(p->workers);
        free(p);
        return NULL;
}
