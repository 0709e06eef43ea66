/* SPDX-License-Identifier: MIT */
/*
 * The pool as the controller sees it: the workload operations (workload.h)
 * of a plain pool of long-lived workers, and what the pool gives every
 * workload built on it (the stream too): the hooks that let the stream see
 * the workers' lives, its part of a snapshot and the recycle of workers over
 * their memory limit, both read at a sample.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>

#include "common/exit_status.h"
#include "conf/units.h"
#include "supervisor/log.h"
#include "supervisor/pool.h"
#include "supervisor/sampler.h"

void pool_set_hooks(struct pool *p, const struct pool_hooks *hooks) {
        p->hooks = hooks;
}

void pool_unset_hooks(struct pool *p, const struct pool_hooks *hooks) {
        if (p->hooks == hooks)
                p->hooks = NULL;
}

bool pool_worker_running(const struct worker *w) {
        return w->state == WORKER_RUNNING;
}

static enum metrics_worker_state worker_metrics_state(const struct worker *w) {
        return w->state == WORKER_RUNNING ? METRICS_WORKER_RUNNING :
               w->state == WORKER_STARTING ? METRICS_WORKER_STARTING : METRICS_WORKER_STOPPING;
}

void pool_fill_snapshot(const struct pool *p, struct metrics_snapshot *s, const struct workload_view *v) {
        size_t n_rows = 0;

        s->desired = p->desired;
        s->max = p->max;
        s->stopping = p->stopping;
        s->crash_loop = p->crash_loop;
        s->restarts = p->restarts;
        s->workers[METRICS_WORKER_RUNNING] = pool_count(p, WORKER_RUNNING);
        s->workers[METRICS_WORKER_STOPPING] = pool_count(p, WORKER_STOPPING);
        s->workers[METRICS_WORKER_STARTING] = pool_count(p, WORKER_STARTING);
        for (int i = 0; i < _OUTCOME_MAX; i++)
                s->exits[i] = p->exits[i];
        for (int i = 0; i < _RECYCLE_MAX; i++)
                s->recycles[i] = p->recycles[i];

        for (unsigned i = 0; i < p->n_alloc; i++) {
                const struct worker *w = p->workers[i];
                double cpu = NAN;
                uint64_t rss = 0;
                if (w->state == WORKER_EMPTY)
                        continue;
                if (sampler_worker(v->sampler, w->child.pid, &cpu, &rss) < 0 || cpu < 0)
                        cpu = NAN;
                v->rows[n_rows++] = (struct metrics_worker) {
                        .id = w->id,
                        .pid = w->child.pid,
                        .state = worker_metrics_state(w),
                        .uptime = (double) (v->now - w->child.started) / (double) USEC_PER_SEC,
                        .cpu = cpu,
                        .rss = rss,
                        .restarts = w->restarts,
                        .status = w->status,
                };
        }
        s->worker_rows = v->rows;
        s->n_worker_rows = n_rows;
}

void pool_recycle_over_rss(struct pool *p, const struct sampler *sampler) {
        char why[96], rss_text[32], limit_text[32];

        for (unsigned i = 0; i < p->n_alloc; i++) {
                struct worker *w = p->workers[i];
                double cpu;
                uint64_t rss = 0;
                if (w->child.state != CHILD_RUNNING || w->recycle.rss == 0)
                        continue;
                if (sampler_worker(sampler, w->child.pid, &cpu, &rss) < 0 || rss <= w->recycle.rss)
                        continue;
                snprintf(why, sizeof(why), "rss %s over %s", format_size(rss, rss_text),
                         format_size(w->recycle.rss, limit_text));
                pool_worker_recycle(w, RECYCLE_RSS, why);
        }
}

/* ---- a plain pool as a workload ---- */

static int pw_start(void *w, unsigned size) {
        struct pool *p = w;
        log_info("pool of %u-%u workers: starting %u", p->config->workers.min, p->max, size);
        return pool_set_desired(p, size);
}

static unsigned pw_size(const void *w) {
        return ((const struct pool *) w)->desired;
}

static unsigned pw_max(const void *w) {
        return ((const struct pool *) w)->max;
}

static void pw_resize(void *w, unsigned n) {
        (void) pool_set_desired(w, n);
}

static void pw_stop(void *w) {
        pool_stop(w, EXIT_OK);
}

static bool pw_stopping(const void *w) {
        return ((const struct pool *) w)->stopping;
}

static int pw_reconfigure(void *w, const struct corral_config *config) {
        return pool_reconfigure(w, config);
}

static int pw_set_shm(void *w, struct shm_set *shm) {
        pool_set_shm(w, shm);
        return 0;
}

static size_t pw_slots(const void *w) {
        return ((const struct pool *) w)->n_alloc;
}

static size_t pw_running_pids(const void *w, pid_t *pids, size_t n) {
        return pool_running_pids(w, pids, n);
}

static void pw_check_limits(void *w, const struct sampler *sampler) {
        pool_recycle_over_rss(w, sampler);
}

/* Without tasks, the pool's busy share is its CPU use. */
static void pw_fill_snapshot(const void *w, struct metrics_snapshot *s, const struct workload_view *v) {
        pool_fill_snapshot(w, s, v);
        if (signals_has(&s->signals, SIGNAL_POOL_CPU))
                s->utilization = fmin(fmax(s->signals.value[SIGNAL_POOL_CPU] / 100.0, 0), 1);
}

void pool_describe(const struct pool *p, char *buf, size_t size) {
        snprintf(buf, size, "workers %u/%u", pool_count(p, WORKER_RUNNING), p->max);
}

static void pw_describe(const void *w, char *buf, size_t size) {
        pool_describe(w, buf, size);
}

static void pw_free(void *w) {
        pool_free(w);
}

static const struct workload_ops pool_workload_ops = {
        .kind = "pool",
        .start = pw_start,
        .size = pw_size,
        .max = pw_max,
        .resize = pw_resize,
        .stop = pw_stop,
        .stopping = pw_stopping,
        .reconfigure = pw_reconfigure,
        .set_shm = pw_set_shm,
        .slots = pw_slots,
        .running_pids = pw_running_pids,
        .check_limits = pw_check_limits,
        .fill_snapshot = pw_fill_snapshot,
        .describe = pw_describe,
        .free = pw_free,
};

void pool_workload_init(struct pool *p, const struct workload_owner *owner, struct workload *ret) {
        p->owner = owner;
        *ret = (struct workload) { .ops = &pool_workload_ops, .impl = p };
}

int pool_workload_new(sd_event *e, const struct corral_config *config, const struct workload_options *o,
                      const struct workload_owner *owner, struct workload *ret) {
        struct pool *p;
        int r = pool_new(e, config, &p);
        if (r < 0)
                return log_error_errno(r, "Failed to create the pool: %m");
        p->listen = o->listen;
        if (config->workers.recycle_tasks > 0)
                log_warning("workers.recycle.tasks counts stream-mode lines only: "
                            "a pool without tasks has none to count; ignoring it");
        pool_workload_init(p, owner, ret);
        return 0;
}
