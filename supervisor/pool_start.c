/* SPDX-License-Identifier: MIT */
/*
 * Starting one of the pool's workers: its environment (corral's, workers.env,
 * CORRAL_WORKER_ID and the rest, the listening sockets' LISTEN_* and the
 * shared segments'), its notify socket when it speaks the notify protocol,
 * its CPU, and the spawn through its child (child.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conf/units.h"
#include "supervisor/identity.h"
#include "supervisor/log.h"
#include "supervisor/pool_start.h"
#include "supervisor/spawn.h"

extern char **environ;

/* The environment: corral's, workers.env, then ours (later entries win).
 * The strings are shared: the ones of `ours` must outlive the result. */
static char **worker_env(struct pool *p, char *const *ours) {
        const struct workers_config *wc = &p->config->workers;
        size_t n_user = strv_length(wc->env), n_shm = p->shm ? strv_length(p->shm->env) : 0, n = 0;
        _cleanup_free_ char **extra = calloc(n_user + n_shm + strv_length(ours) + 1, sizeof(char *));
        if (!extra)
                return NULL;
        for (size_t i = 0; i < n_user; i++)
                extra[n++] = wc->env[i];
        for (size_t i = 0; ours[i]; i++)
                extra[n++] = ours[i];
        for (size_t i = 0; i < n_shm; i++)
                extra[n++] = p->shm->env[i];
        return env_merge(environ, extra);
}

/* The listening sockets' variables; LISTEN_PID is the worker's own pid,
 * which the spawn writes into pid_var. */
static size_t listen_env(const struct pool *p, char *pid_var, char **ours) {
        if (!p->listen)
                return 0;
        ours[0] = p->listen->fds_env;
        ours[1] = p->listen->names_env;
        ours[2] = pid_var;
        return 3;
}

/* ---- the notify protocol ---- */

/* Stream workers are the ones with hooks. */
bool pool_notify(const struct pool *p) {
        const struct workers_config *wc = &p->config->workers;
        return wc->notify || (!wc->notify_given && p->listen && !p->hooks);
}

static void worker_notified(struct notify_endpoint *e, const struct notify_message *m, void *userdata) {
        struct worker *w = userdata;
        (void) e;
        if (m->has_status)
                snprintf(w->status, sizeof(w->status), "%s", m->status);
        if (m->ready && child_is_unready(&w->child)) {
                log_info("worker %u (pid %d) is ready", w->id, w->child.pid);
                child_dispatch(&w->child, CHILD_EVENT_READY);   /* the pool hears of it: worker_changed */
        }
}

static void worker_silent(struct notify_endpoint *e, void *userdata) {
        struct worker *w = userdata;
        char t[32];
        (void) e;
        if (!child_is_live(&w->child))
                return;
        log_warning("worker %u (pid %d) sent no WATCHDOG=1 for %s, killing it", w->id, w->child.pid,
                    format_duration(w->pool->config->workers.watchdog, t));
        child_dispatch(&w->child, CHILD_EVENT_HUNG);
}

/* Debug only: any process may write to an abstract socket, and a flood
 * must not flood the log too. */
static void worker_notify_refused(struct notify_endpoint *e, pid_t sender, void *userdata) {
        struct worker *w = userdata;
        (void) e;
        log_debug("notify: ignoring a message from pid %d, which is not worker %u (pid %d)", (int) sender, w->id,
                  w->child.pid);
}

/* The worker's notify socket, made at its first start and kept: 0 or a negative errno. */
static int worker_notify_open(struct worker *w) {
        static const struct notify_handler handler = {
                .message = worker_notified, .silent = worker_silent, .refused = worker_notify_refused,
        };
        if (w->notify)
                return 0;
        /* The handler's userdata is the worker: each endpoint needs its own copy. */
        struct notify_handler *h = malloc(sizeof(*h));
        if (!h)
                return -ENOMEM;
        *h = handler;
        h->userdata = w;
        int r = notify_endpoint_new(w->pool->event, h, &w->notify);
        if (r < 0) {
                free(h);
                return r;
        }
        w->notify_handler = h;
        return 0;
}

int worker_start(struct pool *p, struct worker *w) {
        const struct workers_config *wc = &p->config->workers;
        char id_var[40], max_var[40], pid_var[sizeof("LISTEN_PID=") + SPAWN_PID_DIGITS] = "LISTEN_PID=";
        char *ours[8] = { id_var, max_var };
        snprintf(id_var, sizeof(id_var), "CORRAL_WORKER_ID=%u", w->id);
        snprintf(max_var, sizeof(max_var), "CORRAL_WORKERS_MAX=%u", p->max);
        size_t n_ours = 2 + listen_env(p, pid_var, ours + 2);
        bool notify = pool_notify(p);
        int r = notify ? worker_notify_open(w) : 0;
        if (r >= 0 && notify)
                ours[n_ours++] = (char *) notify_endpoint_env(w->notify);
        _cleanup_free_ char **envp = r >= 0 ? worker_env(p, ours) : NULL;
        int stdio[3] = { -EBADF, -EBADF, -EBADF };   /* the hook sets stdin and stdout */
        if (r >= 0 && !envp)
                r = -ENOMEM;

        if (r >= 0 && p->hooks)
                r = p->hooks->open_stdio(p, w, stdio, p->hooks->userdata);
        struct spawn_request req = {
                .argv = p->config->command,
                .envp = envp,
                .cwd = wc->cwd,
                .identity = &wc->identity,
                .keep_fds = p->shm ? p->shm->fds : NULL,
                .n_keep_fds = p->shm ? p->shm->n_segments : 0,
                .stdio = p->hooks ? stdio : NULL,
                .listen_fds = p->listen ? p->listen->fds : NULL,
                .n_listen_fds = p->listen ? p->listen->n : 0,
                .pid_env = p->listen ? pid_var : NULL,
        };
        cpu_set_t cpus;
        int cpu = r >= 0 && p->owner && p->owner->place ? p->owner->place(w->id, p->owner->userdata) : -1;
        if (cpu >= 0) {
                CPU_ZERO(&cpus);
                CPU_SET(cpu, &cpus);
                req.affinity = &cpus;
        }
        w->shm = p->shm ? shm_set_ref(p->shm) : NULL;
        recycle_draw(wc, &p->rng, &w->recycle);

        w->status[0] = '\0';
        w->child.ready_timeout = notify ? wc->start_timeout : 0;
        if (notify)
                notify_endpoint_expect(w->notify, 0, 0);   /* no one speaks for a worker being started */
        if (r < 0)
                child_fail_start(&w->child, r);
        else
                r = child_start(&w->child, &req, w->recycle.age);
        if (notify && w->child.pid > 0)
                notify_endpoint_expect(w->notify, w->child.pid, wc->watchdog);
        safe_close(stdio[0]);
        safe_close(stdio[1]);
        if (r < 0)
                return r;
        if (cpu >= 0)
                log_info("worker %u started (pid %d) on CPU %d", w->id, w->child.pid, cpu);
        else
                log_info("worker %u started (pid %d)", w->id, w->child.pid);
        return 0;
}
