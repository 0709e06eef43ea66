/* SPDX-License-Identifier: MIT */
/*
 * The pool's life cycle: start workers into free slots, notice each exit
 * through its child event source, replace it after the restart backoff (or
 * give up on a crash loop), and stop everything gracefully, SIGKILL after
 * stop_timeout. A worker's process group goes with it: corral signals the
 * group, and kills what is left of it when the worker itself has exited.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conf/units.h"
#include "supervisor/log.h"
#include "supervisor/pool.h"
#include "supervisor/spawn.h"

extern char **environ;

static usec_t pool_now(struct pool *p) {
        usec_t now;
        if (sd_event_now(p->event, CLOCK_MONOTONIC, &now) < 0)
                return 0;
        return now;
}

int pool_free_slot(const struct worker *workers, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                if (workers[i].state == WORKER_EMPTY)
                        return (int) i;
        return -ENOSPC;
}

unsigned pool_count(const struct pool *p, enum worker_state state) {
        unsigned n = 0;
        for (unsigned i = 0; i < p->n_slots; i++)
                n += p->workers[i].state == state;
        return n;
}

static unsigned pool_alive(const struct pool *p) {
        return p->n_slots - pool_count(p, WORKER_EMPTY);
}

/* Once stopping and the last worker is gone, the loop is done. */
static void pool_maybe_finish(struct pool *p) {
        if (pool_alive(p) > 0)
                return;
        /* Without a stop, the pool ends only once workers ended for good. */
        if (p->stopping || (p->done > 0 && p->done >= p->desired)) {
                p->restart_timer = sd_event_source_disable_unref(p->restart_timer);
                (void) sd_event_exit(p->event, p->exit_status);
        }
}

static const char *describe_exit(const siginfo_t *si, char *buf, size_t size) {
        char sig[16];
        if (si->si_code == CLD_EXITED)
                snprintf(buf, size, "exited with status %d", si->si_status);
        else
                snprintf(buf, size, "was killed by signal %s%s", signal_to_string(si->si_status, sig),
                         si->si_code == CLD_DUMPED ? " (core dumped)" : "");
        return buf;
}

static char *command_line(char *const *argv, char *buf, size_t size) {
        size_t n = 0;
        buf[0] = '\0';
        for (size_t i = 0; argv[i] && n < size; i++)
                n += snprintf(buf + n, size - n, "%s%s", i ? " " : "", argv[i]);
        return buf;
}

static int on_restart_timer(sd_event_source *s, uint64_t usec, void *userdata);
static int on_worker_exit(sd_event_source *s, const siginfo_t *si, void *userdata);

static int worker_start(struct pool *p, struct worker *w) {
        const struct workers_config *wc = &p->config->workers;
        char id_var[40], max_var[40];
        snprintf(id_var, sizeof(id_var), "CORRAL_WORKER_ID=%u", w->id);
        snprintf(max_var, sizeof(max_var), "CORRAL_WORKERS_MAX=%u", p->n_slots);

        /* The user's env comes last so that it may override nothing of ours
         * only by accident: env_merge lets later entries win. */
        size_t n_user = strv_length(wc->env);
        _cleanup_free_ char **extra = calloc(n_user + 3, sizeof(char *));
        if (!extra)
                return log_error_errno(ENOMEM, "Failed to allocate the worker environment: %m");
        for (size_t i = 0; i < n_user; i++)
                extra[i] = wc->env[i];
        extra[n_user] = id_var;
        extra[n_user + 1] = max_var;

        _cleanup_free_ char **envp = env_merge(environ, extra);
        if (!envp)
                return log_error_errno(ENOMEM, "Failed to allocate the worker environment: %m");

        struct spawn_request req = {
                .argv = p->config->command,
                .envp = envp,
                .cwd = wc->cwd,
        };
        pid_t pid = spawn_worker(&req);
        if (pid < 0)
                return (int) pid;

        int r = sd_event_add_child(p->event, &w->child, pid, WEXITED, on_worker_exit, w);
        if (r < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return log_error_errno(r, "Failed to watch worker %u (pid %d): %m", w->id, pid);
        }
        /* Should the pool be freed with the worker alive, sd-event kills and reaps it. */
        (void) sd_event_source_set_child_process_own(w->child, true);

        w->pid = pid;
        w->state = WORKER_RUNNING;
        w->started = pool_now(p);
        log_info("worker %u started (pid %d)", w->id, pid);
        return 0;
}

static int on_kill_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct worker *w = userdata;
        char t[32];
        (void) s;
        (void) usec;
        log_warning("worker %u (pid %d) still running %s after the stop signal, killing",
                    w->id, w->pid, format_duration(w->pool->config->workers.stop_timeout, t));
        (void) kill(-w->pid, SIGKILL);
        return 0;
}

/* Sends stop_signal to the worker's process group; SIGKILL follows after stop_timeout. */
static void worker_stop(struct worker *w) {
        struct pool *p = w->pool;
        int r;

        if (w->state != WORKER_RUNNING)
                return;
        w->state = WORKER_STOPPING;
        (void) kill(-w->pid, p->config->workers.stop_signal);
        r = sd_event_add_time_relative(p->event, &w->kill_timer, CLOCK_MONOTONIC,
                                       p->config->workers.stop_timeout, 0, on_kill_timer, w);
        if (r < 0) {
                log_error_errno(r, "Failed to arm the stop timer of worker %u, killing it now: %m", w->id);
                (void) kill(-w->pid, SIGKILL);
        }
}

/* The running worker started last: the one with the least work invested in it. */
static struct worker *pool_newest_running(struct pool *p) {
        struct worker *newest = NULL;
        for (unsigned i = 0; i < p->n_slots; i++) {
                struct worker *w = &p->workers[i];
                if (w->state == WORKER_RUNNING && (!newest || w->started >= newest->started))
                        newest = w;
        }
        return newest;
}

/* Moves the pool toward `desired`: stops the surplus at once, and starts the
 * missing workers unless a restart is being held back by the backoff. */
static int pool_reconcile(struct pool *p) {
        int enabled = 0;

        if (p->stopping)
                return 0;

        unsigned want = p->desired > p->done ? p->desired - p->done : 0;
        while (pool_count(p, WORKER_RUNNING) > want)
                worker_stop(pool_newest_running(p));

        if (p->restart_timer)
                (void) sd_event_source_get_enabled(p->restart_timer, &enabled);
        if (enabled)
                return 0;

        /* Workers still stopping count as gone: their slots are not free yet. */
        while (pool_count(p, WORKER_RUNNING) < want) {
                int slot = pool_free_slot(p->workers, p->n_slots);
                if (slot < 0)
                        break;
                struct worker *w = &p->workers[slot];
                int r = worker_start(p, w);
                if (r == -ENOENT || r == -EACCES || r == -ENOEXEC || r == -ENOTDIR ||
                    r == -ELOOP || r == -ENAMETOOLONG || r == -EISDIR || r == -ETXTBSY) {
                        /* The command cannot run and never will: say so once. */
                        log_error_errno(r, "cannot run '%s': %m", p->config->command[0]);
                        pool_stop(p, 2);
                        return r;
                }
                if (r < 0) {
                        log_warning_errno(r, "Failed to start worker %u: %m", w->id);
                        break;
                }
        }
        return 0;
}

static void pool_schedule_restart(struct pool *p, usec_t delay) {
        usec_t when = pool_now(p) + delay;
        int r;

        if (p->restart_timer) {
                usec_t current;
                int enabled = 0;
                (void) sd_event_source_get_enabled(p->restart_timer, &enabled);
                if (enabled && sd_event_source_get_time(p->restart_timer, &current) >= 0 && current < when)
                        return;
                r = sd_event_source_set_time(p->restart_timer, when);
                if (r >= 0)
                        r = sd_event_source_set_enabled(p->restart_timer, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time(p->event, &p->restart_timer, CLOCK_MONOTONIC, when, 0,
                                      on_restart_timer, p);
        if (r < 0) {
                log_error_errno(r, "Failed to arm the restart timer: %m");
                pool_stop(p, 3);
        }
}

static int on_restart_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct pool *p = userdata;
        (void) s;
        (void) usec;
        /* A oneshot timer is disabled once it fired, so reconcile may start workers. */
        (void) pool_reconcile(p);
        return 0;
}

static void worker_released(struct worker *w) {
        w->child = sd_event_source_unref(w->child);
        w->kill_timer = sd_event_source_disable_unref(w->kill_timer);
        w->pid = 0;
        w->state = WORKER_EMPTY;
}

static int on_worker_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        struct worker *w = userdata;
        struct pool *p = w->pool;
        const struct workers_config *wc = &p->config->workers;
        usec_t uptime = pool_now(p) - w->started;
        char how[80], up[32];
        (void) s;

        /* The worker is a zombie until we return, so its pid cannot have been
         * reused: whatever is left of its process group goes with it. */
        (void) kill(-w->pid, SIGKILL);

        enum worker_outcome outcome = si->si_code != CLD_EXITED ? OUTCOME_SIGNAL :
                                      si->si_status == 0 ? OUTCOME_SUCCESS : OUTCOME_FAILURE;
        p->exits[outcome]++;
        bool asked_to_stop = w->state == WORKER_STOPPING;
        describe_exit(si, how, sizeof(how));
        snprintf(p->last_exit, sizeof(p->last_exit), "%s", how);
        log_full(outcome == OUTCOME_SUCCESS || asked_to_stop ? LOG_INFO : LOG_WARNING, 0,
                 "worker %u (pid %d) %s after %s", w->id, w->pid, how, format_duration(uptime, up));
        worker_released(w);

        if (p->stopping) {
                pool_maybe_finish(p);
                return 0;
        }
        if (asked_to_stop) {
                /* Scaled down: its slot may be wanted again. */
                (void) pool_reconcile(p);
                return 0;
        }

        bool failed = outcome != OUTCOME_SUCCESS;
        bool replace = wc->restart == RESTART_ALWAYS || (wc->restart == RESTART_ON_FAILURE && failed);
        if (!replace) {
                p->done++;
                pool_maybe_finish(p);
                return 0;
        }

        usec_t delay = restart_record_exit(&p->restart, &p->limits, uptime, failed);
        if (restart_is_crash_loop(&p->restart, &p->limits)) {
                char cmd[512];
                log_error("crash loop: '%s' failed %u times in a row, the last one %s; giving up",
                          command_line(p->config->command, cmd, sizeof(cmd)),
                          p->restart.quick_failures, p->last_exit);
                pool_stop(p, 3);
                return 0;
        }
        p->restarts++;
        log_info("restarting worker %u in %s", w->id, format_duration(delay, up));
        pool_schedule_restart(p, delay);
        return 0;
}

void pool_stop(struct pool *p, int status) {
        char sig[16];

        if (p->stopping) {
                log_notice("stopping at once");
                for (unsigned i = 0; i < p->n_slots; i++)
                        if (p->workers[i].state != WORKER_EMPTY)
                                (void) kill(-p->workers[i].pid, SIGKILL);
                return;
        }
        p->stopping = true;
        p->exit_status = status;
        p->restart_timer = sd_event_source_disable_unref(p->restart_timer);

        unsigned n = pool_alive(p);
        if (n == 0) {
                pool_maybe_finish(p);
                return;
        }
        log_info("stopping %u worker%s with SIG%s", n, n == 1 ? "" : "s",
                 signal_to_string(p->config->workers.stop_signal, sig));
        for (unsigned i = 0; i < p->n_slots; i++)
                worker_stop(&p->workers[i]);
}

int pool_set_desired(struct pool *p, unsigned n) {
        p->desired = n < p->n_slots ? n : p->n_slots;
        return pool_reconcile(p);
}

int pool_new(sd_event *e, const struct corral_config *config, struct pool **ret) {
        const struct workers_config *wc = &config->workers;
        _cleanup_free_ struct pool *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->workers = calloc(wc->max, sizeof(struct worker));
        if (!p->workers)
                return -ENOMEM;
        for (unsigned i = 0; i < wc->max; i++)
                p->workers[i] = (struct worker) { .pool = p, .id = i };

        p->event = sd_event_ref(e);
        p->config = config;
        p->n_slots = wc->max;
        p->limits = (struct restart_limits) {
                .initial = wc->backoff_initial,
                .max = wc->backoff_max,
                .reset_after = wc->backoff_reset_after,
                .burst = wc->crash_burst,
        };
        restart_state_init(&p->restart, &p->limits);
        *ret = TAKE_PTR(p);
        return 0;
}

struct pool *pool_free(struct pool *p) {
        if (!p)
                return NULL;
        for (unsigned i = 0; i < p->n_slots; i++)
                if (p->workers[i].state != WORKER_EMPTY) {
                        (void) kill(-p->workers[i].pid, SIGKILL);
                        worker_released(&p->workers[i]);   /* the source kills and reaps */
                }
        sd_event_source_disable_unref(p->restart_timer);
        sd_event_unref(p->event);
        free(p->workers);
        free(p);
        return NULL;
}
