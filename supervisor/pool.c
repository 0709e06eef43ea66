/* SPDX-License-Identifier: MIT */
/*
 * The pool's life cycle: start workers into free slots, notice each exit
 * through its child event source, replace it after the restart backoff (or
 * give up on a crash loop), roll workers over to a new command, and stop
 * everything gracefully, SIGKILL after stop_timeout. A worker's process group
 * goes with it: corral signals the group, and kills what is left of it when
 * the worker itself has exited.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include "conf/units.h"
#include "supervisor/identity.h"
#include "supervisor/log.h"
#include "supervisor/pool.h"
#include "supervisor/spawn.h"

extern char **environ;

static int on_restart_timer(sd_event_source *s, uint64_t usec, void *userdata);
static int on_age_timer(sd_event_source *s, uint64_t usec, void *userdata);
static int on_worker_exit(sd_event_source *s, const siginfo_t *si, void *userdata);
static int pool_reconcile(struct pool *p);

static usec_t pool_now(struct pool *p) {
        usec_t now;
        if (sd_event_now(p->event, CLOCK_MONOTONIC, &now) < 0)
                return 0;
        return now;
}

int pool_free_slot(struct worker *const *workers, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                if (workers[i]->state == WORKER_EMPTY)
                        return (int) i;
        return -ENOSPC;
}

unsigned pool_count(const struct pool *p, enum worker_state state) {
        unsigned n = 0;
        for (unsigned i = 0; i < p->n_alloc; i++)
                n += p->workers[i]->state == state;
        return n;
}

size_t pool_running_pids(const struct pool *p, pid_t *pids, size_t n) {
        size_t k = 0;
        for (unsigned i = 0; i < p->n_alloc && k < n; i++)
                if (p->workers[i]->state == WORKER_RUNNING)
                        pids[k++] = p->workers[i]->pid;
        return k;
}

static unsigned pool_alive(const struct pool *p) {
        return p->n_alloc - pool_count(p, WORKER_EMPTY);
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

static bool is_exec_error(int r) {
        /* Errors of execve() that no retry can cure (EPERM: also corral
         * lacking the privilege to become workers.user/group). */
        switch (-r) {
        case ENOENT: case EACCES: case ENOEXEC: case ENOTDIR: case ELOOP:
        case ENAMETOOLONG: case EISDIR: case ETXTBSY: case EPERM:
                return true;
        default:
                return false;
        }
}

static int worker_start(struct pool *p, struct worker *w) {
        const struct workers_config *wc = &p->config->workers;
        char id_var[40], max_var[40];
        snprintf(id_var, sizeof(id_var), "CORRAL_WORKER_ID=%u", w->id);
        snprintf(max_var, sizeof(max_var), "CORRAL_WORKERS_MAX=%u", p->max);

        /* Ours come last: env_merge lets later entries win over earlier ones. */
        size_t n_user = strv_length(wc->env), n_shm = p->shm ? strv_length(p->shm->env) : 0, n = 0;
        _cleanup_free_ char **extra = calloc(n_user + n_shm + 3, sizeof(char *));
        if (!extra)
                return -ENOMEM;
        for (size_t i = 0; i < n_user; i++)
                extra[n++] = wc->env[i];
        extra[n++] = id_var;
        extra[n++] = max_var;
        for (size_t i = 0; i < n_shm; i++)
                extra[n++] = p->shm->env[i];

        _cleanup_free_ char **envp = env_merge(environ, extra);
        if (!envp)
                return -ENOMEM;

        struct spawn_request req = {
                .argv = p->config->command,
                .envp = envp,
                .cwd = wc->cwd,
                .identity = &wc->identity,
                .keep_fds = p->shm ? p->shm->fds : NULL,
                .n_keep_fds = p->shm ? p->shm->n_segments : 0,
        };
        int stdio[3] = { -EBADF, -EBADF, -EBADF };   /* the hook sets stdin and stdout */
        if (p->hooks) {
                int r = p->hooks->open_stdio(p, w, stdio, p->hooks->userdata);
                if (r < 0)
                        return r;
                req.stdio = stdio;
        }
        cpu_set_t cpus;
        int cpu = p->place ? p->place(p, w->id, p->userdata) : -1;
        if (cpu >= 0) {
                CPU_ZERO(&cpus);
                CPU_SET(cpu, &cpus);
                req.affinity = &cpus;
        }
        pid_t pid = spawn_worker(&req);
        safe_close(stdio[0]);
        safe_close(stdio[1]);
        int r = pid < 0 ? (int) pid : sd_event_add_child(p->event, &w->child, pid, WEXITED, on_worker_exit, w);
        if (r < 0 && pid > 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
        }
        if (r < 0) {
                if (p->hooks)
                        p->hooks->started(p, w, r, p->hooks->userdata);
                return r;
        }
        /* Should the pool be freed with the worker alive, sd-event kills and reaps it. */
        (void) sd_event_source_set_child_process_own(w->child, true);

        w->pid = pid;
        w->state = WORKER_RUNNING;
        w->started = pool_now(p);
        w->generation = p->generation;
        w->shm = p->shm ? shm_set_ref(p->shm) : NULL;
        recycle_draw(wc, &p->rng, &w->recycle);
        if (w->recycle.age > 0) {
                r = sd_event_add_time(p->event, &w->age_timer, CLOCK_MONOTONIC, w->started + w->recycle.age,
                                      TIMER_ACCURACY_USEC, on_age_timer, w);
                if (r < 0)
                        log_warning_errno(r, "Failed to arm the age limit of worker %u, ignoring: %m", w->id);
        }
        if (cpu >= 0)
                log_info("worker %u started (pid %d) on CPU %d", w->id, pid, cpu);
        else
                log_info("worker %u started (pid %d)", w->id, pid);
        if (p->hooks)
                p->hooks->started(p, w, 0, p->hooks->userdata);
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

/* Sends stop_signal, then SIGCONT, to the worker's process group; SIGKILL
 * follows after stop_timeout. */
static void worker_stop(struct worker *w) {
        struct pool *p = w->pool;
        int r;

        if (w->state != WORKER_RUNNING)
                return;
        w->state = WORKER_STOPPING;
        (void) kill(-w->pid, p->config->workers.stop_signal);
        /* A stopped (SIGSTOP'd) worker would sit on a signal it handles until
         * SIGKILL: continue it so that it can stop gracefully, as systemd does. */
        (void) kill(-w->pid, SIGCONT);
        r = sd_event_add_time_relative(p->event, &w->kill_timer, CLOCK_MONOTONIC,
                                       p->config->workers.stop_timeout, TIMER_ACCURACY_USEC,
                                       on_kill_timer, w);
        if (r < 0) {
                log_error_errno(r, "Failed to arm the stop timer of worker %u, killing it now: %m", w->id);
                (void) kill(-w->pid, SIGKILL);
        }
}

void pool_worker_stop(struct worker *w) {
        worker_stop(w);
}

static void worker_released(struct worker *w) {
        w->child = sd_event_source_unref(w->child);
        w->kill_timer = sd_event_source_disable_unref(w->kill_timer);
        w->age_timer = sd_event_source_disable_unref(w->age_timer);
        w->recycle_due = w->recycle_ready = false;
        w->pid = 0;
        w->state = WORKER_EMPTY;
        /* The last worker of an old generation frees its segments. */
        w->shm = shm_set_unref(w->shm);
}

/* A worker to replace: on an old command, or recycled and free to go. */
static bool worker_is_stale(const struct pool *p, const struct worker *w) {
        return w->generation != p->generation || (w->recycle_due && w->recycle_ready);
}

/* Which running worker to stop when there are too many: a stale one first,
 * else the newest, which has the least work invested in it. */
static struct worker *pool_pick_surplus(struct pool *p) {
        struct worker *pick = NULL;
        for (unsigned i = 0; i < p->n_alloc; i++) {
                struct worker *w = p->workers[i];
                if (w->state != WORKER_RUNNING)
                        continue;
                bool stale = worker_is_stale(p, w);
                bool pick_stale = pick && worker_is_stale(p, pick);
                if (!pick || (stale && !pick_stale) ||
                    (stale == pick_stale && w->started >= pick->started))
                        pick = w;
        }
        return pick;
}

static unsigned pool_count_stale(const struct pool *p) {
        unsigned n = 0;
        for (unsigned i = 0; i < p->n_alloc; i++)
                n += p->workers[i]->state == WORKER_RUNNING && worker_is_stale(p, p->workers[i]);
        return n;
}

/* Starts a worker in the lowest free slot. Returns 0, -ENOSPC, or an error
 * after which the pool is already stopping. */
static int pool_start_one(struct pool *p) {
        int slot = pool_free_slot(p->workers, p->max);
        if (slot < 0)
                return slot;
        struct worker *w = p->workers[slot];
        int r = worker_start(p, w);
        if (r < 0 && is_exec_error(r)) {
                /* The command cannot run and never will: say so once. */
                char as[256];
                log_error_errno(r, "cannot run '%s'%s: %m", p->config->command[0],
                                identity_describe(&p->config->workers, as, sizeof(as)));
                pool_stop(p, 2);
                return r;
        }
        if (r < 0) {
                /* fork() failed (out of processes or memory): retry after the backoff. */
                char as[256];
                log_warning_errno(r, "Failed to start worker %u%s: %m", w->id,
                                  identity_describe(&p->config->workers, as, sizeof(as)));
                return r;
        }
        return 0;
}

/* Moves the pool toward `desired`: stops the surplus at once, starts the
 * missing workers unless a restart is being held back by the backoff, and
 * replaces one worker on an old command at a time. */
static int pool_reconcile(struct pool *p) {
        int enabled = 0, r;

        if (p->stopping)
                return 0;

        unsigned want = p->desired > p->done ? p->desired - p->done : 0;
        while (pool_count(p, WORKER_RUNNING) > want)
                worker_stop(pool_pick_surplus(p));

        if (p->restart_timer)
                (void) sd_event_source_get_enabled(p->restart_timer, &enabled);
        if (enabled)
                return 0;

        /* Workers still stopping count as gone: their slots are not free yet. */
        while (pool_count(p, WORKER_RUNNING) < want) {
                r = pool_start_one(p);
                if (r == -ENOSPC)
                        break;
                if (r < 0)
                        return r;
        }

        /* A rolling restart (or a recycle): one step at a time, the next when
         * this one's old worker has gone. Start the new worker first where a
         * slot is free, so the pool never drops below what it had. */
        if (pool_count_stale(p) > 0 && pool_count(p, WORKER_STOPPING) == 0 && want > 0) {
                struct worker *old = pool_pick_surplus(p);
                r = pool_start_one(p);
                if (r < 0 && r != -ENOSPC)
                        return r;
                if (old->recycle_due && old->recycle_ready) {
                        log_info("recycling worker %u (pid %d): %s", old->id, old->pid, old->recycle_why);
                        p->recycles[old->recycle_reason]++;
                }
                worker_stop(old);
        }
        return 0;
}

void pool_worker_recycle(struct worker *w, enum recycle_reason reason, const char *why) {
        struct pool *p = w->pool;

        if (w->state != WORKER_RUNNING || w->recycle_due || p->stopping)
                return;
        w->recycle_due = true;
        w->recycle_reason = reason;
        snprintf(w->recycle_why, sizeof(w->recycle_why), "%s", why);
        if (p->hooks && p->hooks->recycle) {
                p->hooks->recycle(p, w, p->hooks->userdata);
                return;
        }
        pool_worker_recycle_ready(w);
}

void pool_worker_recycle_ready(struct worker *w) {
        if (w->state != WORKER_RUNNING || !w->recycle_due || w->recycle_ready)
                return;
        w->recycle_ready = true;
        (void) pool_reconcile(w->pool);
}

static int on_age_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct worker *w = userdata;
        char why[96], age[32];
        (void) s;
        (void) usec;
        snprintf(why, sizeof(why), "age %s reached", format_duration(w->recycle.age, age));
        pool_worker_recycle(w, RECYCLE_AGE, why);
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
                r = sd_event_add_time(p->event, &p->restart_timer, CLOCK_MONOTONIC, when, TIMER_ACCURACY_USEC,
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
        bool asked_to_stop = w->state == WORKER_STOPPING;
        p->exits[outcome]++;
        describe_exit(si, how, sizeof(how));
        snprintf(p->last_exit, sizeof(p->last_exit), "%s", how);
        log_full(outcome == OUTCOME_SUCCESS || asked_to_stop ? LOG_INFO : LOG_WARNING, 0,
                 "worker %u (pid %d) %s after %s", w->id, w->pid, how, format_duration(uptime, up));
        bool expected = p->hooks && p->hooks->ended(p, w, asked_to_stop, p->hooks->userdata);
        worker_released(w);
        if (expected && !p->stopping)
                return 0;

        if (p->stopping) {
                pool_maybe_finish(p);
                return 0;
        }
        if (asked_to_stop) {
                /* Scaled down or rolled over: its slot may be wanted again. */
                (void) pool_reconcile(p);
                return 0;
        }

        bool failed = outcome != OUTCOME_SUCCESS;
        bool replace = p->hooks || wc->restart == RESTART_ALWAYS || (wc->restart == RESTART_ON_FAILURE && failed);
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
                p->crash_loop = true;
                pool_stop(p, 3);
                return 0;
        }
        p->restarts++;
        w->restarts++;
        log_info("restarting worker %u in %s", w->id, format_duration(delay, up));
        pool_schedule_restart(p, delay);
        return 0;
}

void pool_stop(struct pool *p, int status) {
        char sig[16];

        if (p->stopping) {
                log_notice("stopping at once");
                for (unsigned i = 0; i < p->n_alloc; i++)
                        if (p->workers[i]->state != WORKER_EMPTY)
                                (void) kill(-p->workers[i]->pid, SIGKILL);
                return;
        }
        p->stopping = true;
        p->exit_status = status;
        p->restart_timer = sd_event_source_disable_unref(p->restart_timer);
        if (p->on_stopping)
                p->on_stopping(p, p->userdata);

        unsigned n = pool_alive(p);
        if (n == 0) {
                pool_maybe_finish(p);
                return;
        }
        log_info("stopping %u worker%s with SIG%s", n, n == 1 ? "" : "s",
                 signal_to_string(p->config->workers.stop_signal, sig));
        for (unsigned i = 0; i < p->n_alloc; i++)
                worker_stop(p->workers[i]);
}

void pool_set_shm(struct pool *p, struct shm_set *shm) {
        if (shm == p->shm)
                return;
        shm_set_unref(p->shm);
        p->shm = shm_set_ref(shm);
        if (pool_count(p, WORKER_RUNNING) > 0) {
                p->generation++;
                log_info("shared segments changed: replacing workers one at a time");
        }
        (void) pool_reconcile(p);
}

int pool_set_desired(struct pool *p, unsigned n) {
        p->desired = n < p->max ? n : p->max;
        return pool_reconcile(p);
}

/* Makes sure there are at least n slots; existing workers keep their place. */
static int pool_grow_slots(struct pool *p, unsigned n) {
        if (n <= p->n_alloc)
                return 0;
        struct worker **a = reallocarray(p->workers, n, sizeof(struct worker *));
        if (!a)
                return -ENOMEM;
        p->workers = a;
        for (; p->n_alloc < n; p->n_alloc++) {
                struct worker *w = calloc(1, sizeof(*w));
                if (!w)
                        return -ENOMEM;
                *w = (struct worker) { .pool = p, .id = p->n_alloc };
                p->workers[p->n_alloc] = w;
        }
        return 0;
}

static bool strv_equal(char *const *a, char *const *b) {
        size_t n = strv_length(a);
        if (n != strv_length(b))
                return false;
        for (size_t i = 0; i < n; i++)
                if (strcmp(a[i], b[i]) != 0)
                        return false;
        return true;
}

static bool streq_null(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

static void pool_set_limits(struct pool *p, const struct workers_config *wc) {
        p->limits = (struct restart_limits) {
                .initial = wc->backoff_initial,
                .max = wc->backoff_max,
                .reset_after = wc->backoff_reset_after,
                .burst = wc->crash_burst,
        };
}

int pool_reconfigure(struct pool *p, const struct corral_config *config) {
        const struct corral_config *old = p->config;
        int r = pool_grow_slots(p, config->workers.max);
        if (r < 0)
                return r;

        if (!strv_equal(old->command, config->command) || !strv_equal(old->workers.env, config->workers.env) ||
            !streq_null(old->workers.cwd, config->workers.cwd) ||
            !identity_equal(&old->workers.identity, &config->workers.identity)) {
                p->generation++;
                log_info("the command, its environment or its user changed: replacing workers one at a time");
        }
        p->config = config;
        p->max = config->workers.max;
        pool_set_limits(p, &config->workers);
        if (p->restart.delay > p->limits.max)
                p->restart.delay = p->limits.max;
        return pool_set_desired(p, p->desired);
}

int pool_new(sd_event *e, const struct corral_config *config, struct pool **ret) {
        struct pool *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->event = sd_event_ref(e);
        p->config = config;
        p->max = config->workers.max;
        int r = pool_grow_slots(p, p->max);
        if (r < 0) {
                pool_free(p);
                return r;
        }
        pool_set_limits(p, &config->workers);
        restart_state_init(&p->restart, &p->limits);
        /* Jitter needs no strong randomness, only different draws per run. */
        if (getrandom(&p->rng, sizeof(p->rng), GRND_NONBLOCK) != sizeof(p->rng))
                p->rng = (uint64_t) pool_now(p) ^ ((uint64_t) getpid() << 32);
        *ret = p;
        return 0;
}

struct pool *pool_free(struct pool *p) {
        if (!p)
                return NULL;
        for (unsigned i = 0; i < p->n_alloc; i++) {
                struct worker *w = p->workers[i];
                if (w && w->state != WORKER_EMPTY) {
                        (void) kill(-w->pid, SIGKILL);
                        worker_released(w);   /* the child source kills and reaps it */
                }
                free(w);
        }
        sd_event_source_disable_unref(p->restart_timer);
        shm_set_unref(p->shm);
        sd_event_unref(p->event);
        free(p->workers);
        free(p);
        return NULL;
}
