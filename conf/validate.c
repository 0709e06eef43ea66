/* SPDX-License-Identifier: MIT */
/*
 * conf_validate(): the rules that relate values to each other, over the
 * configuration as it will run. conf_load() runs it on the file alone, and
 * `corral run` again once its flags apply (and on the flags alone, to answer
 * a contradictory command line with the usage), so each rule lives here
 * once. Each error points where the user can fix it: at the value in the
 * file (FILE:LINE:COL, the later one when both are there, as a reader meets
 * the contradiction), or it names the flags.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/queue_url.h"
#include "conf/units.h"
#include "policy/condition.h"

/* The value set last by a flag overrides the file's, and its origin says so. */
static bool in_file(const struct config_origin *o) {
        return o->line > 0 && !o->flag;
}

static bool is_set(const struct config_origin *o) {
        return o->line > 0 || o->flag;
}

/* Is a at or after b in the file? */
static bool later(const struct config_origin *a, const struct config_origin *b) {
        return a->line > b->line || (a->line == b->line && a->column >= b->column);
}

struct validation {
        const char *path;
        struct conf_diagnostics *diag;
        int r;
};

__attribute__((format(printf, 3, 4)))
static void validation_error(struct validation *v, const struct config_origin *at, const char *format, ...) {
        va_list ap;

        if (v->r == -ENOMEM)
                return;
        va_start(ap, format);
        /* Not anchored in the file: about the command line, without a file name. */
        int r = conf_diagnostics_addv(v->diag, CONF_ERROR, at ? v->path : NULL, at ? at->line : 0,
                                      at ? at->column : 0, format, ap);
        va_end(ap);
        v->r = r < 0 ? r : -EINVAL;
}

/* One side of "lo <= hi": its key, its value as text and where it came from. */
struct side {
        const char *key;
        const char *value;
        const struct config_origin *origin;
};

/* "workers.min (4)", "workers.min (1, the default)", or "--min 4". */
static void side_name(const struct side *s, char *buf, size_t size) {
        if (s->origin->flag)
                snprintf(buf, size, "%s %s", s->origin->flag, s->value);
        else
                snprintf(buf, size, "%s (%s%s)", s->key, s->value, in_file(s->origin) ? "" : ", the default");
}

/* Reports lo > hi at the side in the file (the later one when both are), in
 * terms of the other side; between two flags, as the command line said it. */
static void relation_error(struct validation *v, const struct side *lo, const struct side *hi) {
        char other[128];

        if (in_file(hi->origin) && (!in_file(lo->origin) || later(hi->origin, lo->origin))) {
                side_name(lo, other, sizeof(other));
                validation_error(v, hi->origin, "%s: %s is less than %s", hi->key, hi->value, other);
        } else if (in_file(lo->origin)) {
                side_name(hi, other, sizeof(other));
                validation_error(v, lo->origin, "%s: %s is greater than %s", lo->key, lo->value, other);
        } else if (lo->origin->flag && hi->origin->flag)
                validation_error(v, NULL, "%s %s is larger than %s %s", lo->origin->flag, lo->value, hi->origin->flag,
                                 hi->value);
        else {
                side_name(lo, other, sizeof(other));
                char name[128];
                side_name(hi, name, sizeof(name));
                validation_error(v, NULL, "%s is less than %s", name, other);
        }
}

static void check_count(struct validation *v, const char *lo_key, unsigned lo, const struct config_origin *lo_origin,
                        const char *hi_key, unsigned hi, const struct config_origin *hi_origin) {
        char a[16], b[16];

        if (lo <= hi)
                return;
        snprintf(a, sizeof(a), "%u", lo);
        snprintf(b, sizeof(b), "%u", hi);
        relation_error(v, &(struct side) { lo_key, a, lo_origin }, &(struct side) { hi_key, b, hi_origin });
}

/* min <= initial <= max. An unset max or initial (0) is resolved later from
 * the machine, within the bounds: only values someone set are related. */
static void check_workers(struct validation *v, const struct corral_config *c) {
        const struct workers_config *w = &c->workers;
        const struct config_origins *o = &c->origin;

        if (is_set(&o->max))
                check_count(v, "workers.min", w->min, &o->min, "workers.max", w->max, &o->max);
        /* --min and --max move the file's initial with them (it is clamped
         * when the size resolves): a flag is the operator's word for this run. */
        if (is_set(&o->initial) && w->initial != 0) {
                if (!o->min.flag)
                        check_count(v, "workers.min", w->min, &o->min, "workers.initial", w->initial, &o->initial);
                if (is_set(&o->max) && !o->max.flag)
                        check_count(v, "workers.initial", w->initial, &o->initial, "workers.max", w->max, &o->max);
        }
        if (w->backoff_initial > w->backoff_max) {
                char a[FORMAT_MAX], b[FORMAT_MAX];
                relation_error(v,
                               &(struct side) { "workers.restart_backoff.initial",
                                                format_duration(w->backoff_initial, a), &o->backoff_initial },
                               &(struct side) { "workers.restart_backoff.max", format_duration(w->backoff_max, b),
                                                &o->backoff_max });
        }
}

static void check_policy(struct validation *v, const struct corral_config *c) {
        if (is_set(&c->origin.optimize) && c->policy.has_target)
                validation_error(v, in_file(&c->origin.optimize) ? &c->origin.optimize : NULL,
                                 "policy.optimize: replaces policy.target; give only one of them");
}

/* tasks.output is about per-task mode's output; ungroup has no order to keep. */
static void check_output(struct validation *v, const struct corral_config *c) {
        const struct tasks_config *t = &c->tasks;
        const struct config_origins *o = &c->origin;
        const char *output = task_output_to_string(t->output);

        if (t->output == TASK_OUTPUT_GROUP)
                return;
        if (t->mode == TASK_MODE_STREAM) {
                if (in_file(&o->output))
                        validation_error(v, &o->output,
                                         "tasks.output: %s applies to tasks.mode per-task only; stream mode "
                                         "writes one result line per input line (leave tasks.output out)", output);
                else
                        validation_error(v, in_file(&o->mode) ? &o->mode : NULL,
                                         "tasks.output: %s (%s) applies to per-task mode only: stream mode (--stream, "
                                         "tasks.mode: stream) writes one result line per input line", output,
                                         o->output.flag ? o->output.flag : "the default");
                return;
        }
        if (t->output != TASK_OUTPUT_UNGROUP || !t->keep_order)
                return;
        if (!in_file(&o->output) && !in_file(&o->keep_order)) {
                validation_error(v, NULL,
                                 "%s and %s exclude each other: ungroup passes output on as it comes, in no order",
                                 o->output.flag ? o->output.flag : "tasks.output: ungroup",
                                 o->keep_order.flag ? o->keep_order.flag : "tasks.keep_order");
                return;
        }
        const struct config_origin *at = !in_file(&o->output) ? &o->keep_order :
                                         !in_file(&o->keep_order) ? &o->output :
                                         later(&o->keep_order, &o->output) ? &o->keep_order : &o->output;
        char ungroup[64] = "tasks.output: ungroup";
        if (o->output.flag)
                snprintf(ungroup, sizeof(ungroup), "%s (tasks.output: ungroup)", o->output.flag);
        validation_error(v, at,
                         "%s passes output on as it comes, so %s cannot hold it in input order; give only one of them",
                         ungroup, o->keep_order.flag ? o->keep_order.flag : "tasks.keep_order");
}

static void check_resume(struct validation *v, const struct corral_config *c, bool partial) {
        const struct tasks_config *t = &c->tasks;

        /* A file yet to come may name the joblog. */
        if ((t->resume || t->resume_failed) && !t->joblog && !partial)
                validation_error(v, NULL, "%s needs a joblog: --joblog FILE or tasks.joblog",
                                 t->resume ? "--resume" : "--resume-failed");
}

/* A flag that only a batch takes needs one: tasks from --tasks or the file. */
static void check_batch_flags(struct validation *v, const struct corral_config *c, bool partial) {
        const char *flag = c->origin.batch_flag.flag;

        if (flag && !c->tasks.from && !partial)
                validation_error(v, NULL, "%s needs --tasks FILE|-%s", flag,
                                 v->path ? " (or tasks.from in the file)" : "");
}

/* The origin to point at: the file's place, or NULL for a flag (named in the text). */
static const struct config_origin *at_or_flag(const struct config_origin *o) {
        return in_file(o) ? o : NULL;
}

/* Parses url into *ret; false (and an error at o) if it is not a queue URL. */
static bool check_queue_url(struct validation *v, const char *key, const char *url, const struct config_origin *o,
                            struct queue_url *ret) {
        char error[512];
        int r = queue_url_parse(url, ret, error, sizeof(error));
        if (r == -ENOMEM)
                v->r = r;
        else if (r < 0)
                validation_error(v, at_or_flag(o), "%s: %s", o->flag ? o->flag : key, error);
        return r >= 0;
}

/* tasks.results is a JSON-lines file, or (redis://...) a stream next to the
 * queue's: the consumer writes it on its own connection, in the transaction
 * that acknowledges the entry. */
static void check_results(struct validation *v, const struct corral_config *c, const struct queue_url *from) {
        const struct tasks_config *t = &c->tasks;
        const struct config_origin *o = &c->origin.results;
        struct queue_url u;

        if (!queue_url_is(t->results))
                return;
        if (!check_queue_url(v, "tasks.results", t->results, o, &u))
                return;
        if (!from)
                validation_error(v, at_or_flag(o), "tasks.results: a results stream needs a work queue "
                                 "(tasks.from: redis://...)");
        else if (strcmp(u.host, from->host) != 0 || u.port != from->port)
                validation_error(v, at_or_flag(o),
                                 "tasks.results: %s:%u is not the server of tasks.from (%s:%u): the results "
                                 "stream must be on the queue's server", u.host, u.port, from->host, from->port);
        queue_url_done(&u);
}

/* A work queue (tasks.from redis://...) has no input order, no line numbers
 * to shard or resume by; and until/results only mean something with one. */
static void check_queue(struct validation *v, const struct corral_config *c, bool partial) {
        const struct tasks_config *t = &c->tasks;
        const struct config_origins *o = &c->origin;
        const char *from = o->from.flag ? o->from.flag : "tasks.from";

        if (!t->from || !queue_url_is(t->from)) {
                if (t->results)
                        check_results(v, c, NULL);
                /* partial: --stream's "-" stands in for a tasks.from the file may set */
                if (t->from && t->until == TASK_UNTIL_EMPTY && (o->from.flag || !partial))
                        validation_error(v, at_or_flag(&o->until), "%s applies to a work queue (--tasks redis://...), "
                                         "not to %s", o->until.flag ? o->until.flag : "tasks.until: empty", t->from);
                else if (!t->from && t->until == TASK_UNTIL_EMPTY && !partial)
                        validation_error(v, at_or_flag(&o->until), "%s needs a work queue (--tasks redis://...)",
                                         o->until.flag ? o->until.flag : "tasks.until: empty");
                return;
        }
        struct queue_url u;
        if (check_queue_url(v, "tasks.from", t->from, &o->from, &u)) {
                if (t->results)
                        check_results(v, c, &u);
                queue_url_done(&u);
        }
        if (t->keep_order)
                validation_error(v, at_or_flag(&o->keep_order), "a work queue (%s) has no input order to keep "
                                 "(leave out %s)", from, o->keep_order.flag ? o->keep_order.flag : "tasks.keep_order");
        if (t->shard_count > 1)
                validation_error(v, NULL, "a work queue (%s) shares its entries among consumers by itself: leave out "
                                 "--shard / tasks.shard", from);
        if (t->resume || t->resume_failed)
                validation_error(v, NULL, "%s: a work queue (%s) remembers what is done itself",
                                 t->resume ? "--resume" : "--resume-failed", from);
}

int conf_validate(const struct corral_config *c, const char *path, bool partial, struct conf_diagnostics *diag) {
        struct validation v = { .path = path, .diag = diag };

        check_queue(&v, c, partial);

        check_batch_flags(&v, c, partial);
        check_workers(&v, c);
        check_policy(&v, c);
        check_output(&v, c);
        check_resume(&v, c, partial);
        return v.r;
}

/* The signals only a batch provides. */
static const uint32_t task_signals = 1u << SIGNAL_TASKS_BACKLOG | 1u << SIGNAL_TASKS_BUSY |
                                     1u << SIGNAL_TASKS_RATE | 1u << SIGNAL_TASKS_LATENCY |
                                     1u << SIGNAL_QUEUE_LAG | 1u << SIGNAL_QUEUE_PENDING;

/* listen.backlog in a file without listen: only socket activation gives it. */
static int lint_listen(const struct corral_config *c, const char *path, struct conf_diagnostics *diag) {
        const struct policy_config *p = &c->policy;
        if (c->n_listen > 0)
                return 0;
        for (size_t i = 0; i < p->n_rules; i++)
                if (condition_signals(p->rules[i].when) & (1u << SIGNAL_LISTEN_BACKLOG))
                        return conf_diagnostics_add(diag, CONF_WARNING, path, p->rules[i].line, p->rules[i].column,
                                                    "rule '%s' reads listen.backlog, but there is no 'listen': "
                                                    "unless corral is socket-activated it is unavailable, and a "
                                                    "comparison reading it is false", p->rules[i].name);
        return 0;
}

/* Stream mode's own keys in a file whose tasks run per task: `corral run`
 * ignores them (unless --stream makes it a stream, which it checks again). */
static int lint_stream_keys(const struct corral_config *c, const char *path, struct conf_diagnostics *diag) {
        const struct { const char *key; const struct config_origin *at; } keys[] = {
                { "tasks.in_flight", &c->origin.in_flight },
                { "tasks.failed_line", &c->origin.failed_line },
        };
        if (c->tasks.mode == TASK_MODE_STREAM)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                if (!in_file(keys[i].at))
                        continue;
                int r = conf_diagnostics_add(diag, CONF_WARNING, path, keys[i].at->line, keys[i].at->column,
                                             "%s applies to stream mode only (tasks.mode: stream or --stream); "
                                             "these tasks run per task and it is ignored", keys[i].key);
                if (r < 0)
                        return r;
        }
        return 0;
}

int conf_lint(const struct corral_config *c, const char *path, struct conf_diagnostics *diag) {
        const struct policy_config *p = &c->policy;
        int r;

        r = lint_listen(c, path, diag);
        if (r < 0)
                return r;
        r = lint_stream_keys(c, path, diag);
        if (r < 0)
                return r;
        if (c->tasks.from)
                return 0;
        for (size_t i = 0; i < p->n_rules; i++) {
                uint32_t m = condition_signals(p->rules[i].when) & task_signals;
                for (enum signal_id id = 0; m && id < _SIGNAL_MAX; id++) {
                        if (!(m & (1u << id)))
                                continue;
                        r = conf_diagnostics_add(diag, CONF_WARNING, path, p->rules[i].line, p->rules[i].column,
                                                 "rule '%s' reads %s, but a pool without tasks (no --tasks or "
                                                 "tasks.from) has none: it is unavailable, and a comparison "
                                                 "reading it is false", p->rules[i].name, signal_name(id));
                        if (r < 0)
                                return r;
                        break;  /* one warning a rule */
                }
        }
        if (p->has_target && (task_signals & (1u << p->target_signal))) {
                r = conf_diagnostics_add(diag, CONF_WARNING, path, c->origin.target.line, c->origin.target.column,
                                         "policy.target reads %s, but a pool without tasks (no --tasks or "
                                         "tasks.from) has none: the pool stays at its size",
                                         signal_name(p->target_signal));
                if (r < 0)
                        return r;
        }
        return 0;
}
