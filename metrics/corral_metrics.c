/* SPDX-License-Identifier: MIT */
/*
 * corral's snapshot rendered to the names of DESIGN.md "Metrics" (through the
 * registry), and the /healthz verdict. The /status JSON is status_json.c's.
 * Pure.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "metrics/corral_metrics.h"
#include "metrics/registry.h"

/* From 1 ms (a `true`) to 5 minutes (a real batch job); +Inf catches the rest. */
const double metrics_duration_bounds[METRICS_DURATION_BUCKETS] = {
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 300,
};

static const char *const worker_state_names[_METRICS_WORKER_STATE_MAX] = {
        [METRICS_WORKER_STARTING] = "starting",
        [METRICS_WORKER_RUNNING]  = "running",
        [METRICS_WORKER_STOPPING] = "stopping",
};

static const char *const outcome_names[_METRICS_OUTCOME_MAX] = {
        [METRICS_OUTCOME_SUCCESS] = "success",
        [METRICS_OUTCOME_FAILURE] = "failure",
        [METRICS_OUTCOME_SIGNAL]  = "signal",
};

static const char *const recycle_names[_METRICS_RECYCLE_MAX] = {
        [METRICS_RECYCLE_TASKS] = "tasks",
        [METRICS_RECYCLE_RSS]   = "rss",
        [METRICS_RECYCLE_AGE]   = "age",
};

static const char *const direction_names[_METRICS_DIRECTION_MAX] = {
        [METRICS_SCALE_UP]   = "up",
        [METRICS_SCALE_DOWN] = "down",
};

void metrics_histogram_observe(struct metrics_histogram *h, double seconds) {
        size_t i = 0;

        /* 14 buckets: a linear scan is as fast as a bisection here. */
        while (i < METRICS_DURATION_BUCKETS && seconds > metrics_duration_bounds[i])
                i++;
        h->counts[i]++;
        h->sum += seconds;
}

const char *metrics_worker_state_name(enum metrics_worker_state s) {
        if (s < 0 || s >= _METRICS_WORKER_STATE_MAX)
                return "unknown";
        return worker_state_names[s];
}

const char *metrics_outcome_name(enum metrics_outcome o) {
        if (o < 0 || o >= _METRICS_OUTCOME_MAX)
                return "unknown";
        return outcome_names[o];
}

const char *metrics_recycle_name(enum metrics_recycle_reason r) {
        if (r < 0 || r >= _METRICS_RECYCLE_MAX)
                return "unknown";
        return recycle_names[r];
}

bool metrics_snapshot_health(const struct metrics_snapshot *s, char *reason, size_t size) {
        unsigned running = s->workers[METRICS_WORKER_RUNNING];

        if (s->crash_loop) {
                snprintf(reason, size, "crash loop: gave up after repeated worker failures");
                return false;
        }
        if (s->stopping) {
                snprintf(reason, size, "stopping");
                return false;
        }
        if (running < s->min) {
                snprintf(reason, size, "%u of at least %u worker%s running (%u starting)",
                         running, s->min, s->min == 1 ? "" : "s", s->workers[METRICS_WORKER_STARTING]);
                return false;
        }
        snprintf(reason, size, "ok: %u worker%s running (min %u, max %u)", running, running == 1 ? "" : "s",
                 s->min, s->max);
        return true;
}

/* A family with one unlabelled sample. */
static int add_single(struct metrics_registry *reg, const char *name, const char *help,
                      enum metric_type type, double value) {
        struct metric_family *f;
        int r;

        r = metrics_family_add(reg, name, help, type, NULL, &f);
        if (r < 0)
                return r;
        return metrics_set(f, NULL, value);
}

/* A family with one label and a sample per value of it. */
static int add_by_label(struct metrics_registry *reg, const char *name, const char *help,
                        enum metric_type type, const char *label,
                        const char *const *values, const double *numbers, size_t n) {
        struct metric_family *f;
        int r;

        r = metrics_family_add(reg, name, help, type, (const char *const[]) { label, NULL }, &f);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (!values[i])
                        return -EINVAL;
                r = metrics_set(f, (const char *const[]) { values[i] }, numbers[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int add_pool(struct metrics_registry *reg, const struct metrics_snapshot *s) {
        double workers[_METRICS_WORKER_STATE_MAX];
        int r;

        r = add_by_label(reg, "corral_build_info", "corral's version; the value is always 1",
                         METRIC_GAUGE, "version",
                         (const char *const[]) { s->version ? s->version : "unknown" }, (double[]) { 1 }, 1);
        if (r < 0)
                return r;
        for (size_t i = 0; i < _METRICS_WORKER_STATE_MAX; i++)
                workers[i] = s->workers[i];
        r = add_by_label(reg, "corral_workers", "Workers by state", METRIC_GAUGE, "state",
                         worker_state_names, workers, _METRICS_WORKER_STATE_MAX);
        if (r < 0)
                return r;
        r = add_single(reg, "corral_workers_desired", "Workers the controller asks for",
                       METRIC_GAUGE, s->desired);
        if (r < 0)
                return r;
        r = add_single(reg, "corral_workers_min", "The pool's minimum size", METRIC_GAUGE, s->min);
        if (r < 0)
                return r;
        r = add_single(reg, "corral_workers_max", "The pool's maximum size", METRIC_GAUGE, s->max);
        if (r < 0)
                return r;
        r = add_single(reg, "corral_restarts_total", "Workers replaced after they ended",
                       METRIC_COUNTER, s->restarts);
        if (r < 0)
                return r;
        r = add_single(reg, "corral_crash_loop", "1 once the pool gave up in a crash loop",
                       METRIC_GAUGE, s->crash_loop);
        if (r < 0)
                return r;
        if (signals_has(&s->signals, SIGNAL_LISTEN_BACKLOG)) {
                r = add_single(reg, "corral_listen_backlog", "Connections waiting in the accept queues of listen",
                               METRIC_GAUGE, s->signals.value[SIGNAL_LISTEN_BACKLOG]);
                if (r < 0)
                        return r;
        }
        double recycles[_METRICS_RECYCLE_MAX];
        for (size_t i = 0; i < _METRICS_RECYCLE_MAX; i++)
                recycles[i] = s->recycles[i];
        r = add_by_label(reg, "corral_worker_recycles_total",
                         "Workers replaced for reaching a workers.recycle limit, by which one",
                         METRIC_COUNTER, "reason", recycle_names, recycles, _METRICS_RECYCLE_MAX);
        if (r < 0)
                return r;
        double exits[_METRICS_OUTCOME_MAX];
        for (size_t i = 0; i < _METRICS_OUTCOME_MAX; i++)
                exits[i] = s->exits[i];
        return add_by_label(reg, "corral_worker_exits_total", "Workers that ended, by how",
                            METRIC_COUNTER, "outcome", outcome_names, exits, _METRICS_OUTCOME_MAX);
}

static int add_signals(struct metrics_registry *reg, const struct metrics_snapshot *s) {
        struct metric_family *f;
        char id[16];
        int r;

        r = metrics_family_add(reg, "corral_cpu_busy_ratio", "Utilisation of the usable CPUs (0-1)",
                               METRIC_GAUGE, NULL, &f);
        if (r < 0)
                return r;
        if (signals_has(&s->signals, SIGNAL_CPU_BUSY)) {
                r = metrics_set(f, NULL, s->signals.value[SIGNAL_CPU_BUSY] / 100);
                if (r < 0)
                        return r;
        }

        r = metrics_family_add(reg, "corral_core_busy_ratio", "Utilisation of each usable core (0-1)",
                               METRIC_GAUGE, (const char *const[]) { "core", NULL }, &f);
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->n_cores; i++) {
                snprintf(id, sizeof(id), "%u", s->cores[i].id);
                r = metrics_set(f, (const char *const[]) { id }, s->cores[i].busy / 100);
                if (r < 0)
                        return r;
        }

        /* Percent signals become ratios like every other ratio here; unavailable ones are absent. */
        r = metrics_family_add(reg, "corral_signal",
                               "Each available policy signal as the controller last saw it "
                               "(percentages as ratios 0-1, latency in seconds)",
                               METRIC_GAUGE, (const char *const[]) { "name", NULL }, &f);
        if (r < 0)
                return r;
        for (enum signal_id i = 0; i < _SIGNAL_MAX; i++) {
                if (!signals_has(&s->signals, i))
                        continue;
                double v = s->signals.value[i];
                r = metrics_set(f, (const char *const[]) { signal_name(i) }, signal_is_percent(i) ? v / 100 : v);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Every label set the configuration names starts at 0 (DESIGN.md): a rule in
 * the direction of its scale, target and optimize both ways. A rate() over a
 * series that appears only at its first event misses that event. */
static int add_scale_zeros(struct metric_family *f, const struct metrics_snapshot *s) {
        static const char *const both[] = { "target", "optimize" };
        int r;

        for (size_t i = 0; i < s->n_rules; i++) {
                if (!s->rules[i].name || s->rules[i].scale == 0)
                        continue;
                enum metrics_direction d = s->rules[i].scale > 0 ? METRICS_SCALE_UP : METRICS_SCALE_DOWN;
                r = metrics_set(f, (const char *const[]) { direction_names[d], s->rules[i].name }, 0);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(both); i++) {
                if (!(i == 0 ? s->target : s->optimize))
                        continue;
                for (int d = 0; d < _METRICS_DIRECTION_MAX; d++) {
                        r = metrics_set(f, (const char *const[]) { direction_names[d], both[i] }, 0);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int add_policy(struct metrics_registry *reg, const struct metrics_snapshot *s) {
        struct metric_family *f;
        int r;

        r = metrics_family_add(reg, "corral_scale_events_total",
                               "Pool size changes, by direction and the rule that made them",
                               METRIC_COUNTER, (const char *const[]) { "direction", "rule", NULL }, &f);
        if (r < 0)
                return r;
        r = add_scale_zeros(f, s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->n_scale_events; i++) {
                const struct metrics_scale_count *e = &s->scale_events[i];
                if (!e->rule || e->direction < 0 || e->direction >= _METRICS_DIRECTION_MAX)
                        return -EINVAL;
                r = metrics_set(f, (const char *const[]) { direction_names[e->direction], e->rule }, e->count);
                if (r < 0)
                        return r;
        }

        r = metrics_family_add(reg, "corral_rule_condition_held_seconds",
                               "How long each rule's condition has been true (0 when it is not)",
                               METRIC_GAUGE, (const char *const[]) { "rule", NULL }, &f);
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->n_rules; i++) {
                if (!s->rules[i].name)
                        return -EINVAL;
                r = metrics_set(f, (const char *const[]) { s->rules[i].name },
                                s->rules[i].holding ? s->rules[i].held : 0);
                if (r < 0)
                        return r;
        }

        return add_by_label(reg, "corral_config_reloads_total", "Configuration reloads (SIGHUP), by result",
                            METRIC_COUNTER, "result", (const char *const[]) { "ok", "failed" },
                            (double[]) { s->reloads_ok, s->reloads_failed }, 2);
}

static int add_tasks(struct metrics_registry *reg, const struct metrics_snapshot *s) {
        struct metric_family *f;
        int r;

        r = add_by_label(reg, "corral_tasks_total", "Tasks (or stream lines) finished, by result",
                         METRIC_COUNTER, "result", (const char *const[]) { "ok", "failed" },
                         (double[]) { s->tasks_ok, s->tasks_failed }, 2);
        if (r < 0)
                return r;
        r = add_single(reg, "corral_tasks_pending", "Tasks waiting for a worker", METRIC_GAUGE, s->tasks_pending);
        if (r < 0)
                return r;
        r = add_single(reg, "corral_worker_utilization_ratio", "Share of worker time spent busy (0-1)",
                       METRIC_GAUGE, s->utilization);
        if (r < 0)
                return r;
        r = metrics_histogram_add(reg, "corral_task_duration_seconds", "How long tasks ran", NULL,
                                  metrics_duration_bounds, METRICS_DURATION_BUCKETS, &f);
        if (r < 0)
                return r;
        r = metrics_histogram_set(f, NULL, s->task_duration.counts, s->task_duration.sum);
        if (r < 0)
                return r;

        r = metrics_family_add(reg, "corral_shared_bytes", "Size of each shared memory segment",
                               METRIC_GAUGE, (const char *const[]) { "segment", NULL }, &f);
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->n_segments; i++) {
                if (!s->segments[i].name)
                        return -EINVAL;
                r = metrics_set(f, (const char *const[]) { s->segments[i].name }, s->segments[i].bytes);
                if (r < 0)
                        return r;
        }
        r = metrics_family_add(reg, "corral_shared_load_seconds", "How long loading each shared segment took",
                               METRIC_GAUGE, (const char *const[]) { "segment", NULL }, &f);
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->n_segments; i++) {
                r = metrics_set(f, (const char *const[]) { s->segments[i].name }, s->segments[i].load_seconds);
                if (r < 0)
                        return r;
        }
        /* A reload that found the source changed loads a new generation:
         * a dashboard sees when the data workers use was replaced. */
        r = metrics_family_add(reg, "corral_shared_generation", "Generation that loaded each shared segment "
                               "(grows when a reload loads it anew)", METRIC_GAUGE, (const char *const[]) { "segment", NULL }, &f);
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->n_segments; i++) {
                r = metrics_set(f, (const char *const[]) { s->segments[i].name }, (double) s->segments[i].generation);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* corral_queue_*: only for a work queue; lag and pending once read. */
static int add_queue(struct metrics_registry *reg, const struct metrics_queue *q) {
        int r = 0;
        if (!q->present)
                return 0;
        if (q->lag >= 0)
                r = add_single(reg, "corral_queue_lag", "Entries of the work queue not yet delivered to the group",
                               METRIC_GAUGE, (double) q->lag);
        if (r >= 0 && q->pending >= 0)
                r = add_single(reg, "corral_queue_pending", "Entries of the work queue delivered and not acknowledged",
                               METRIC_GAUGE, (double) q->pending);
        if (r >= 0)
                r = add_single(reg, "corral_queue_dead_total", "Entries this consumer moved to the dead stream",
                               METRIC_COUNTER, (double) q->dead);
        if (r >= 0)
                r = add_single(reg, "corral_queue_reclaimed_total",
                               "Entries this consumer claimed from consumers silent past the lease",
                               METRIC_COUNTER, (double) q->reclaimed);
        return r;
}

static int add_process(struct metrics_registry *reg, const struct metrics_process *p) {
        int r;

        if (!p->valid)
                return 0;
        r = add_single(reg, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds",
                       METRIC_COUNTER, p->cpu_seconds);
        if (r < 0)
                return r;
        r = add_single(reg, "process_resident_memory_bytes", "Resident memory size in bytes",
                       METRIC_GAUGE, p->resident_bytes);
        if (r < 0)
                return r;
        r = add_single(reg, "process_start_time_seconds",
                       "Start time of the process since unix epoch in seconds", METRIC_GAUGE, p->start_time);
        if (r < 0)
                return r;
        r = add_single(reg, "process_open_fds", "Number of open file descriptors", METRIC_GAUGE, p->open_fds);
        if (r < 0)
                return r;
        return add_single(reg, "process_max_fds", "Maximum number of open file descriptors",
                          METRIC_GAUGE, p->max_fds);
}

int metrics_snapshot_render(const struct metrics_snapshot *s, char **ret_text, size_t *ret_len) {
        _cleanup_(metrics_registry_freep) struct metrics_registry *reg = NULL;
        int r;

        r = metrics_registry_new(&reg);
        if (r < 0)
                return r;
        r = add_pool(reg, s);
        if (r < 0)
                return r;
        r = add_signals(reg, s);
        if (r < 0)
                return r;
        r = add_policy(reg, s);
        if (r < 0)
                return r;
        r = add_tasks(reg, s);
        if (r < 0)
                return r;
        r = add_process(reg, &s->process);
        if (r < 0)
                return r;
        r = add_queue(reg, &s->queue);
        if (r < 0)
                return r;
        return metrics_render(reg, ret_text, ret_len);
}
