/* SPDX-License-Identifier: MIT */
/*
 * The /status JSON of corral's snapshot (corral_metrics.h), through json-c:
 * the pool, a row per worker, the signals and cores, the rules and the last
 * decision, tasks, shared segments and reloads. Pure.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "common/util.h"
#include "metrics/registry.h"
#include "metrics/status_json.h"

static void json_putp(struct json_object **o) {
        json_object_put(*o);
}

/* A double written in its shortest exact form (63.5, not 63.500000000000001); NaN/Inf are null. */
static struct json_object *json_number(double v) {
        char buf[32];

        if (!isfinite(v))
                return NULL;
        return json_object_new_double_s(v, metrics_format_value(v, buf));
}

static struct json_object *json_string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

/*
 * Adds key: value to o, taking the value's reference. json-c returns NULL for a
 * leaf it could not allocate, and a NULL value is JSON null: on a status page
 * that degrades one field, which is better than no page. Containers are checked.
 */
static int add(struct json_object *o, const char *key, struct json_object *v) {
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

/* A new object at the end of array, owned by it; NULL when out of memory. */
static struct json_object *array_add_object(struct json_object *array) {
        struct json_object *o = json_object_new_object();
        if (!o || json_object_array_add(array, o) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

#define ADD(o, key, v)                          \
        do {                                    \
                int _r_ = add((o), (key), (v)); \
                if (_r_ < 0)                    \
                        return _r_;             \
        } while (0)

static int status_pool(const struct metrics_snapshot *s, struct json_object *root) {
        _cleanup_(json_putp) struct json_object *pool = json_object_new_object();
        char reason[160];
        if (!pool)
                return -ENOMEM;

        bool healthy = metrics_snapshot_health(s, reason, sizeof(reason));
        for (size_t i = 0; i < _METRICS_WORKER_STATE_MAX; i++)
                ADD(pool, metrics_worker_state_name(i), json_object_new_uint64(s->workers[i]));
        ADD(pool, "desired", json_object_new_uint64(s->desired));
        ADD(pool, "min", json_object_new_uint64(s->min));
        ADD(pool, "max", json_object_new_uint64(s->max));
        ADD(pool, "utilization", json_number(s->utilization));
        ADD(pool, "restarts", json_object_new_uint64(s->restarts));
        ADD(pool, "crash_loop", json_object_new_boolean(s->crash_loop));
        ADD(pool, "shutting_down", json_object_new_boolean(s->stopping));
        ADD(pool, "healthy", json_object_new_boolean(healthy));
        ADD(pool, "health", json_object_new_string(reason));

        struct json_object *exits = json_object_new_object();
        ADD(pool, "exits", exits);
        if (!exits)
                return -ENOMEM;
        for (size_t i = 0; i < _METRICS_OUTCOME_MAX; i++)
                ADD(exits, metrics_outcome_name(i), json_object_new_uint64(s->exits[i]));

        struct json_object *recycles = json_object_new_object();
        ADD(pool, "recycles", recycles);
        if (!recycles)
                return -ENOMEM;
        for (size_t i = 0; i < _METRICS_RECYCLE_MAX; i++)
                ADD(recycles, metrics_recycle_name(i), json_object_new_uint64(s->recycles[i]));

        ADD(root, "pool", TAKE_PTR(pool));
        return 0;
}

static int status_workers(const struct metrics_snapshot *s, struct json_object *root) {
        struct json_object *workers = json_object_new_array();
        ADD(root, "workers", workers);
        if (!workers)
                return -ENOMEM;

        for (size_t i = 0; i < s->n_worker_rows; i++) {
                const struct metrics_worker *w = &s->worker_rows[i];
                struct json_object *o = array_add_object(workers);
                if (!o)
                        return -ENOMEM;
                ADD(o, "id", json_object_new_uint64(w->id));
                ADD(o, "pid", json_object_new_int(w->pid));
                ADD(o, "state", json_object_new_string(metrics_worker_state_name(w->state)));
                ADD(o, "uptime", json_number(w->uptime));
                ADD(o, "cpu", json_number(w->cpu));
                ADD(o, "rss", json_object_new_uint64(w->rss));
                ADD(o, "tasks", json_object_new_uint64(w->tasks));
                ADD(o, "restarts", json_object_new_uint64(w->restarts));
                if (w->status && *w->status)
                        ADD(o, "status", json_object_new_string(w->status));
        }
        return 0;
}

static int status_signals(const struct metrics_snapshot *s, struct json_object *root) {
        struct json_object *signals = json_object_new_object(), *cores;
        ADD(root, "signals", signals);
        if (!signals)
                return -ENOMEM;
        /* Unavailable signals are null: "no PSI here" is not "no pressure". */
        for (enum signal_id i = 0; i < _SIGNAL_MAX; i++)
                ADD(signals, signal_name(i),
                    signals_has(&s->signals, i) ? json_number(s->signals.value[i]) : NULL);

        cores = json_object_new_array();
        ADD(root, "cores", cores);
        if (!cores)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_cores; i++) {
                struct json_object *o = array_add_object(cores);
                if (!o)
                        return -ENOMEM;
                ADD(o, "core", json_object_new_uint64(s->cores[i].id));
                ADD(o, "busy", json_number(s->cores[i].busy));
        }
        return 0;
}

static int status_rules(const struct metrics_snapshot *s, struct json_object *root) {
        struct json_object *rules = json_object_new_array();
        ADD(root, "rules", rules);
        if (!rules)
                return -ENOMEM;

        for (size_t i = 0; i < s->n_rules; i++) {
                const struct metrics_rule *rule = &s->rules[i];
                struct json_object *o = array_add_object(rules);
                if (!o)
                        return -ENOMEM;
                ADD(o, "name", json_string_or_null(rule->name));
                ADD(o, "when", json_string_or_null(rule->when));
                ADD(o, "for", json_number(rule->for_seconds));
                ADD(o, "holding", json_object_new_boolean(rule->holding));
                ADD(o, "held", json_number(rule->holding ? rule->held : 0));
        }

        const struct metrics_decision *d = &s->last_decision;
        if (!d->valid) {
                ADD(root, "last_decision", NULL);
                return 0;
        }
        struct json_object *o = json_object_new_object();
        ADD(root, "last_decision", o);
        if (!o)
                return -ENOMEM;
        ADD(o, "rule", json_string_or_null(d->rule));
        ADD(o, "reason", json_string_or_null(d->reason));
        /* Before the first change of size there is no from, to or age to show. */
        ADD(o, "from", d->changed ? json_object_new_uint64(d->from) : NULL);
        ADD(o, "to", d->changed ? json_object_new_uint64(d->to) : NULL);
        ADD(o, "age", d->changed ? json_number(d->age) : NULL);
        return 0;
}

static int status_tasks(const struct metrics_snapshot *s, struct json_object *root) {
        struct json_object *tasks = json_object_new_object(), *shared, *reloads;
        ADD(root, "tasks", tasks);
        if (!tasks)
                return -ENOMEM;
        ADD(tasks, "ok", json_object_new_uint64(s->tasks_ok));
        ADD(tasks, "failed", json_object_new_uint64(s->tasks_failed));
        ADD(tasks, "pending", json_object_new_uint64(s->tasks_pending));

        shared = json_object_new_array();
        ADD(root, "shared", shared);
        if (!shared)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_segments; i++) {
                struct json_object *o = array_add_object(shared);
                if (!o)
                        return -ENOMEM;
                ADD(o, "segment", json_string_or_null(s->segments[i].name));
                ADD(o, "bytes", json_object_new_uint64(s->segments[i].bytes));
                ADD(o, "load_seconds", json_number(s->segments[i].load_seconds));
                ADD(o, "generation", json_object_new_uint64(s->segments[i].generation));
        }

        reloads = json_object_new_object();
        ADD(root, "reloads", reloads);
        if (!reloads)
                return -ENOMEM;
        ADD(reloads, "ok", json_object_new_uint64(s->reloads_ok));
        ADD(reloads, "failed", json_object_new_uint64(s->reloads_failed));
        return 0;
}

int metrics_snapshot_status(const struct metrics_snapshot *s, struct json_object **ret) {
        _cleanup_(json_putp) struct json_object *root = json_object_new_object();
        int r;

        if (!root)
                return -ENOMEM;
        ADD(root, "version", json_string_or_null(s->version));
        r = status_pool(s, root);
        if (r < 0)
                return r;
        r = status_workers(s, root);
        if (r < 0)
                return r;
        r = status_signals(s, root);
        if (r < 0)
                return r;
        r = status_rules(s, root);
        if (r < 0)
                return r;
        r = status_tasks(s, root);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(root);
        return 0;
}

int metrics_snapshot_status_json(const struct metrics_snapshot *s, char **ret_text, size_t *ret_len) {
        _cleanup_(json_putp) struct json_object *root = NULL;
        size_t len;
        int r;

        r = metrics_snapshot_status(s, &root);
        if (r < 0)
                return r;
        const char *text = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &len);
        if (!text)
                return -ENOMEM;
        char *copy = strndup(text, len);
        if (!copy)
                return -ENOMEM;
        *ret_text = copy;
        *ret_len = len;
        return 0;
}
