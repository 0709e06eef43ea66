/* SPDX-License-Identifier: MIT */
/*
 * The YAML schema: every key of DESIGN.md "Configuration" as a table of
 * fields (type, range, destination in struct corral_config), the values that
 * need a parser of their own (a rule's `when:` and `scale:`, the target
 * value, shared segments), and the checks of the file's own structure. The
 * relations between values (min <= max, ...) are conf_validate's, in
 * validate.c, because command-line flags take part in them too.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/loader.h"
#include "conf/units.h"
#include "policy/condition.h"

/* ---- values with parsers of their own: rules, the target value, shared segments ---- */

/* A valid condition that probably does not mean what it says (a ratio for a
 * percentage, a bound no percentage reaches, a contradiction) runs as
 * written; the warning points at the comparison. */
static void warn_when(struct loader *l, const yaml_node_t *n, const struct condition *c, const char *path) {
        struct condition_warning w[8];
        size_t found = condition_lint(c, w, ELEMENTSOF(w));

        for (size_t i = 0; i < found; i++) {
                unsigned line, column;
                scalar_position(l, n, w[i].offset, &line, &column);
                if (conf_diagnostics_add(l->diag, CONF_WARNING, l->path, line, column, "%s: %s", path,
                                         w[i].message) < 0)
                        l->oom = -ENOMEM;
        }
}

static void parse_when(struct loader *l, const yaml_node_t *n, void *base, const char *path) {
        struct rule_config *rule = base;
        char error[256];
        size_t offset;

        const char *s = value_text(l, n, path, "a condition such as 'pool.cpu > 80%'");
        if (!s)
                return;
        _cleanup_(condition_freep) struct condition *c = NULL;
        int r = condition_parse(s, &c, &offset, error, sizeof(error));
        if (r == -ENOMEM) {
                l->oom = r;
                return;
        }
        if (r < 0) {
                unsigned line, column;
                scalar_position(l, n, offset, &line, &column);
                return loader_error_at(l, line, column, "%s: %s", path, error);
        }
        warn_when(l, n, c, path);
        char *text = strdup(s);
        if (!text) {
                l->oom = -ENOMEM;
                return;
        }
        free(rule->when_text);
        rule->when_text = text;
        condition_free(rule->when);
        rule->when = TAKE_PTR(c);
        rule->line = (unsigned) n->start_mark.line + 1;
        rule->column = (unsigned) n->start_mark.column + 1;
        mark_seen(l, &rule->when, n);
}

static void parse_scale(struct loader *l, const yaml_node_t *n, void *base, const char *path) {
        static const char what[] = "+N, -N, +P% or -P%";
        struct rule_config *rule = base;
        char digits[16];
        unsigned v;

        const char *s = value_text(l, n, path, what);
        if (!s)
                return;
        size_t len = strlen(s);
        bool percent = len > 0 && s[len - 1] == '%';
        if ((s[0] != '+' && s[0] != '-') || len - 1 - percent == 0 || len - 1 - percent >= sizeof(digits))
                return type_error(l, n, path, what);
        memcpy(digits, s + 1, len - 1 - percent);
        digits[len - 1 - percent] = '\0';
        int r = parse_unsigned(digits, percent ? 1000 : WORKERS_LIMIT, &v);
        if (r == -EINVAL)
                return type_error(l, n, path, what);
        if (v == 0)
                return error_at(l, n, "%s: a scale of 0 does nothing (use +N or -N)", path);
        if (r < 0 && !percent)
                return error_at(l, n, "%s: %s is out of range (1-%u workers)", path, s, WORKERS_LIMIT);
        if (r < 0 || (percent && s[0] == '-' && v > 100))
                return error_at(l, n, "%s: %s is out of range (%s)", path, s, s[0] == '-' ? "1-100%" : "1-1000%");
        rule->scale = s[0] == '-' ? -(int) v : (int) v;
        rule->scale_percent = percent;
        mark_seen(l, &rule->scale, n);
}

static const struct field rule_fields[] = {
        { "name",  F_STRING,   offsetof(struct rule_config, name) },
        { "when",  F_CUSTOM,   offsetof(struct rule_config, when), .custom = parse_when },
        { "for",   F_DURATION, offsetof(struct rule_config, hold) },
        { "scale", F_CUSTOM,   offsetof(struct rule_config, scale), .custom = parse_scale },
        {}
};

static void parse_rules(struct loader *l, const yaml_node_t *n, void *base, const char *path) {
        struct policy_config *p = &((struct corral_config *) base)->policy;

        if (n->type != YAML_SEQUENCE_NODE)
                return type_error(l, n, path, "a list of rules");
        size_t count = (size_t) (n->data.sequence.items.top - n->data.sequence.items.start);
        p->rules = calloc(count + 1, sizeof(struct rule_config));
        if (!p->rules) {
                l->oom = -ENOMEM;
                return;
        }
        for (size_t i = 0; i < count && !l->oom; i++) {
                const yaml_node_t *item = node_get(l, n->data.sequence.items.start[i]);
                struct rule_config *rule = &p->rules[p->n_rules++];
                char rule_path[64];
                snprintf(rule_path, sizeof(rule_path), "%s[%zu]", path, i);
                if (item->type != YAML_MAPPING_NODE) {
                        type_error(l, item, rule_path, "a rule (a mapping with name, when, for and scale)");
                        continue;
                }
                walk_mapping(l, item, rule_fields, rule, rule_path);
                static const char *const required[] = { "name", "when", "scale" };
                for (size_t k = 0; k < ELEMENTSOF(required); k++)
                        if (!mapping_has_key(l, item, required[k]))
                                error_at(l, item, "%s: missing '%s'", rule_path, required[k]);
                const yaml_node_t *name = seen_node(l, &rule->name);
                for (size_t j = 0; name && j + 1 < p->n_rules; j++)
                        if (p->rules[j].name && strcmp(p->rules[j].name, rule->name) == 0) {
                                error_at(l, name, "%s.name: '%s' is already the name of the rule at line %zu", rule_path,
                                         rule->name, seen_node(l, &p->rules[j].name)->start_mark.line + 1);
                                break;
                        }
        }
}

static void parse_target_value(struct loader *l, const yaml_node_t *n, void *base, const char *path) {
        struct policy_config *p = &((struct corral_config *) base)->policy;
        static const char what[] = "a number, or a percentage such as 70%";
        const char *s = value_text(l, n, path, what);
        if (!s)
                return;
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        bool percent = *end == '%';
        if (!(isdigit((unsigned char) s[0]) || s[0] == '.') || errno == ERANGE || end[percent] != '\0' ||
            strpbrk(s, "eExX"))
                return type_error(l, n, path, what);
        if (v <= 0)
                return error_at(l, n, "%s: must be greater than 0", path);
        p->target_value = v;
        mark_seen(l, &p->target_value, n);
        l->target_percent = percent;   /* checked against the signal once both are known */
}

static bool segment_name_valid(const char *s) {
        if (!*s || strlen(s) > 64)
                return false;
        for (; *s; s++)
                if (!(isalnum((unsigned char) *s) || *s == '_'))
                        return false;
        return true;
}

static const struct field shared_fields[] = {
        { "path",     F_STRING, offsetof(struct shared_config, path) },
        { "command",  F_ARGV,   offsetof(struct shared_config, command) },
        { "huge",     F_BOOL,   offsetof(struct shared_config, huge) },
        { "max_size", F_SIZE,   offsetof(struct shared_config, max_size) },
        { "timeout",  F_DURATION, offsetof(struct shared_config, timeout) },
        {}
};

static void parse_shared(struct loader *l, const yaml_node_t *n, void *base, const char *path) {
        struct corral_config *c = base;

        if (n->type != YAML_MAPPING_NODE)
                return type_error(l, n, path, "a mapping of segment names, e.g. {refdata: {path: /srv/ref.bin}}");
        size_t count = (size_t) (n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        _cleanup_free_ bool *dup = calloc(count + 1, sizeof(bool));
        c->shared = calloc(count + 1, sizeof(struct shared_config));
        if (!dup || !c->shared) {
                l->oom = -ENOMEM;
                return;
        }
        check_duplicates(l, n, dup, path);
        for (size_t i = 0; i < count && !l->oom; i++) {
                const yaml_node_t *key = node_get(l, n->data.mapping.pairs.start[i].key);
                const yaml_node_t *value = node_get(l, n->data.mapping.pairs.start[i].value);
                if (dup[i])
                        continue;
                if (key->type != YAML_SCALAR_NODE || !segment_name_valid(scalar_text(key))) {
                        char got[64];
                        yaml_node_describe(key, got, sizeof(got));
                        error_at(l, key, "%s: invalid segment name %s (letters, digits and '_', at most 64)", path, got);
                        continue;
                }
                struct shared_config *seg = &c->shared[c->n_shared++];
                if (!(seg->name = strdup(scalar_text(key)))) {
                        l->oom = -ENOMEM;
                        return;
                }
                /* Names become CORRAL_SHM_<NAME>: two that differ only in case would clash. */
                for (size_t j = 0; j + 1 < c->n_shared; j++)
                        if (strcasecmp(c->shared[j].name, seg->name) == 0)
                                error_at(l, key, "%s: segment '%s' clashes with '%s' (both are CORRAL_SHM_ in upper case)",
                                         path, seg->name, c->shared[j].name);
                _cleanup_free_ char *p = path_join(path, seg->name);
                if (!p) {
                        l->oom = -ENOMEM;
                        return;
                }
                if (value->type != YAML_MAPPING_NODE) {
                        type_error(l, value, p, "a mapping with path or command");
                        continue;
                }
                walk_mapping(l, value, shared_fields, seg, p);
                bool has_path = seen_node(l, &seg->path), has_command = seen_node(l, &seg->command);
                if (has_path && has_command)
                        error_at(l, value, "%s: give one of 'path' and 'command', not both", p);
                else if (!has_path && !has_command && l->n_errors == 0)
                        error_at(l, value, "%s: missing 'path' or 'command'", p);
                else if (has_path && seen_node(l, &seg->timeout))
                        error_at(l, seen_node(l, &seg->timeout), "%s.timeout: limits a 'command' only", p);
        }
}

/* `listen:` one address or a list of them, each checked here so that
 * `corral check` finds a bad one at its place. */
static void parse_listen_one(struct loader *l, const yaml_node_t *n, struct listen_config *ret, const char *path) {
        static const char what[] = "an address such as 127.0.0.1:8080, [::]:8080 or unix:/run/app.sock";
        const char *s = value_text(l, n, path, what);
        if (!s)
                return;
        int r = parse_listen_address(s);
        if (r == -ENAMETOOLONG)
                return error_at(l, n, "%s: the socket path in '%s' is too long (at most 107 bytes)", path, s);
        if (r < 0)
                return type_error(l, n, path, what);
        if (!(ret->address = strdup(s))) {
                l->oom = -ENOMEM;
                return;
        }
        ret->line = (unsigned) n->start_mark.line + 1;
        ret->column = (unsigned) n->start_mark.column + 1;
}

static void parse_listen_list(struct loader *l, const yaml_node_t *n, void *base, const char *path) {
        struct corral_config *c = base;
        bool list = n->type == YAML_SEQUENCE_NODE;
        size_t count = list ? (size_t) (n->data.sequence.items.top - n->data.sequence.items.start) : 1;

        if (list && count == 0)
                return error_at(l, n, "%s: expected a list of addresses, got an empty list", path);
        c->listen = calloc(count, sizeof(struct listen_config));
        if (!c->listen) {
                l->oom = -ENOMEM;
                return;
        }
        for (size_t i = 0; i < count && !l->oom; i++) {
                const yaml_node_t *item = list ? node_get(l, n->data.sequence.items.start[i]) : n;
                char item_path[64];
                snprintf(item_path, sizeof(item_path), list ? "%s[%zu]" : "%s", path, i);
                struct listen_config *one = &c->listen[c->n_listen];
                parse_listen_one(l, item, one, item_path);
                if (!one->address)
                        continue;
                for (size_t j = 0; j < c->n_listen; j++)
                        if (strcmp(c->listen[j].address, one->address) == 0) {
                                error_at(l, item, "%s: '%s' is already in the list at line %u", item_path,
                                         one->address, c->listen[j].line);
                                free(one->address);
                                one->address = NULL;
                                break;
                        }
                if (one->address)
                        c->n_listen++;
        }
        mark_seen(l, &c->listen, n);
}

/* ---- the tables ---- */

#define C(member) offsetof(struct corral_config, member)

static const char *const restart_names[] = { "always", "on-failure", "never", NULL };
static const char *const placement_names[] = { "none", "spread", "least-loaded", NULL };
static const char *const mode_names[] = { "per-task", "stream", NULL };
static const char *const until_names[] = { "forever", "empty", NULL };

static const struct field backoff_fields[] = {
        { "initial",     F_DURATION, C(workers.backoff_initial) },
        { "max",         F_DURATION, C(workers.backoff_max) },
        { "reset_after", F_DURATION, C(workers.backoff_reset_after) },
        {}
};

static const struct field crash_fields[] = {
        { "burst", F_UINT, C(workers.crash_burst), 1, COUNT_LIMIT },
        {}
};

static const struct field recycle_fields[] = {
        { "tasks",  F_U64,      C(workers.recycle_tasks) },
        { "rss",    F_SIZE,     C(workers.recycle_rss) },
        { "age",    F_DURATION, C(workers.recycle_age) },
        { "jitter", F_PERCENT,  C(workers.recycle_jitter) },
        {}
};

static const struct field workers_fields[] = {
        { "min",             F_UINT,     C(workers.min), 0, WORKERS_LIMIT },
        { "max",             F_UINT,     C(workers.max), 1, WORKERS_LIMIT },
        { "initial",         F_UINT,     C(workers.initial), 0, WORKERS_LIMIT },
        { "stop_signal",     F_SIGNAL,   C(workers.stop_signal) },
        { "stop_timeout",    F_DURATION, C(workers.stop_timeout) },
        { "restart",         F_ENUM,     C(workers.restart), .names = restart_names },
        { "restart_backoff", F_MAP,       0, .sub = backoff_fields },
        { "crash_limit",     F_MAP,       0, .sub = crash_fields },
        { "placement",       F_ENUM,     C(workers.placement), .names = placement_names },
        { "recycle",         F_MAP,       0, .sub = recycle_fields },
        { "user",            F_STRING,   C(workers.user) },
        { "group",           F_STRING,   C(workers.group) },
        { "env",             F_ENV,      C(workers.env) },
        { "cwd",             F_STRING,   C(workers.cwd) },
        { "notify",          F_BOOL,     C(workers.notify) },
        { "start_timeout",   F_DURATION, C(workers.start_timeout) },
        { "watchdog",        F_DURATION, C(workers.watchdog) },
        {}
};

static const struct field sample_fields[] = {
        { "interval", F_DURATION, C(sample_interval) },
        {}
};

static const struct field target_fields[] = {
        { "signal",    F_POLICY_SIGNAL, C(policy.target_signal) },
        { "value",     F_CUSTOM,        C(policy.target_value), .custom = parse_target_value },
        { "tolerance", F_PERCENT,       C(policy.target_tolerance) },
        {}
};

static const struct field optimize_fields[] = {
        { "signal", F_POLICY_SIGNAL, C(policy.optimize_signal) },
        { "bias",   F_PERCENT,       C(policy.optimize_bias) },
        {}
};

static const struct field stabilization_fields[] = {
        { "down", F_DURATION, C(policy.stabilization_down) },
        {}
};

static const struct field cooldown_fields[] = {
        { "up",   F_DURATION, C(policy.cooldown_up) },
        { "down", F_DURATION, C(policy.cooldown_down) },
        {}
};

static const struct field policy_fields[] = {
        { "target",        F_MAP,    C(policy.has_target), .sub = target_fields, .presence = true },
        { "optimize",      F_MAP,    C(policy.has_optimize), .sub = optimize_fields, .presence = true },
        { "stabilization", F_MAP,     0, .sub = stabilization_fields },
        { "cooldown",      F_MAP,     0, .sub = cooldown_fields },
        { "rules",         F_CUSTOM, C(policy.rules), .custom = parse_rules },
        {}
};

static const struct field metrics_fields[] = {
        { "listen",   F_LISTEN, C(metrics.listen) },
        { "textfile", F_STRING, C(metrics.textfile) },
        {}
};

static const struct field tasks_fields[] = {
        { "from",       F_STRING,   C(tasks.from) },
        { "mode",       F_ENUM,     C(tasks.mode), .names = mode_names },
        { "joblog",     F_STRING,   C(tasks.joblog) },
        { "results",    F_STRING,   C(tasks.results) },
        { "retries",    F_UINT,     C(tasks.retries), 0, COUNT_LIMIT },
        { "keep_order", F_BOOL,     C(tasks.keep_order) },
        { "output",     F_ENUM,     C(tasks.output), .names = task_output_names },
        { "timeout",    F_DURATION, C(tasks.timeout) },
        { "batch",      F_UINT,     C(tasks.batch), 1, TASKS_BATCH_LIMIT },
        { "shard",      F_SHARD,    C(tasks.shard_index) },
        { "lease",      F_DURATION, C(tasks.lease) },
        { "max_deliveries", F_UINT, C(tasks.max_deliveries), 1, COUNT_LIMIT },
        { "until",      F_ENUM,     C(tasks.until), .names = until_names },
        { "failed_line", F_STRING,  C(tasks.failed_line) },
        { "in_flight",  F_UINT,     C(tasks.in_flight), 1, IN_FLIGHT_LIMIT },
        {}
};

static const struct field top_fields[] = {
        { "command",  F_ARGV,   C(command) },
        { "workers",  F_MAP,    0, .sub = workers_fields },
        { "sample",   F_MAP,     0, .sub = sample_fields },
        { "policy",   F_MAP,     0, .sub = policy_fields },
        { "shared",   F_CUSTOM, C(shared), .custom = parse_shared },
        { "metrics",  F_MAP,     0, .sub = metrics_fields },
        { "tasks",    F_MAP,     0, .sub = tasks_fields },
        { "listen",   F_CUSTOM, C(listen), .custom = parse_listen_list },
        { "listen_backlog", F_UINT, C(listen_backlog), 1, 65535 },
        {}
};

/* ---- the file's own structure ---- */

static void check_missing(struct loader *l, const bool *present, const char *path, const char *key) {
        const yaml_node_t *n = seen_node(l, present);
        if (n && !mapping_has_key(l, n, key))
                error_at(l, n, "%s: missing '%s'", path, key);
}

static void record_origin(struct loader *l, const void *value, struct config_origin *ret) {
        const yaml_node_t *n = seen_node(l, value);
        if (n)
                *ret = (struct config_origin) {
                        .line = (unsigned) n->start_mark.line + 1,
                        .column = (unsigned) n->start_mark.column + 1,
                };
}

/* Where the values conf_validate relates are in the file; and the command,
 * workers.cwd, user and group, whether they work being the machine's
 * business (`corral run` and `corral check` find out later and need the
 * positions for their errors). */
static void record_origins(struct loader *l) {
        struct corral_config *c = l->c;
        struct config_origins *o = &c->origin;
        struct config_origin user = {}, group = {}, cwd = {}, command = {};

        record_origin(l, &c->workers.min, &o->min);
        record_origin(l, &c->workers.max, &o->max);
        record_origin(l, &c->workers.initial, &o->initial);
        record_origin(l, &c->workers.backoff_initial, &o->backoff_initial);
        record_origin(l, &c->workers.backoff_max, &o->backoff_max);
        record_origin(l, &c->policy.has_target, &o->target);
        record_origin(l, &c->policy.has_optimize, &o->optimize);
        record_origin(l, &c->tasks.mode, &o->mode);
        record_origin(l, &c->tasks.output, &o->output);
        record_origin(l, &c->tasks.keep_order, &o->keep_order);
        record_origin(l, &c->tasks.from, &o->from);
        record_origin(l, &c->tasks.until, &o->until);
        record_origin(l, &c->tasks.results, &o->results);
        record_origin(l, &c->tasks.in_flight, &o->in_flight);
        record_origin(l, &c->tasks.failed_line, &o->failed_line);
        record_origin(l, &c->workers.user, &user);
        record_origin(l, &c->workers.group, &group);
        c->workers.user_line = user.line;
        c->workers.user_column = user.column;
        c->workers.group_line = group.line;
        c->workers.group_column = group.column;
        record_origin(l, &c->workers.cwd, &cwd);
        c->workers.cwd_line = cwd.line;
        c->workers.cwd_column = cwd.column;
        record_origin(l, &c->command, &command);
        c->command_line = command.line;
        c->command_column = command.column;
}

void schema_walk(struct loader *l) {
        walk_mapping(l, yaml_document_get_root_node(&l->doc), top_fields, l->c, NULL);
}

void schema_check(struct loader *l) {
        struct corral_config *c = l->c;
        struct policy_config *p = &c->policy;
        const yaml_node_t *n;

        n = seen_node(l, &c->tasks.lease);
        if (n && c->tasks.lease < QUEUE_LEASE_MIN)
                error_at(l, n, "tasks.lease: %s is too short (at least 100ms)", scalar_text(n));
        n = seen_node(l, &c->sample_interval);
        if (n && c->sample_interval < 10 * USEC_PER_MSEC)
                error_at(l, n, "sample.interval: %s is too short (at least 10ms)", scalar_text(n));
        /* One line: output line N answers input line N. */
        n = seen_node(l, &c->tasks.failed_line);
        if (n && c->tasks.failed_line && strpbrk(c->tasks.failed_line, "\r\n"))
                error_at(l, n, "tasks.failed_line: must be one line (no line break)");
        check_missing(l, &p->has_target, "policy.target", "signal");
        check_missing(l, &p->has_target, "policy.target", "value");
        check_missing(l, &p->has_optimize, "policy.optimize", "signal");
        n = seen_node(l, &p->target_value);
        if (n && l->target_percent && seen_node(l, &p->target_signal) && !signal_is_percent(p->target_signal))
                error_at(l, n, "policy.target.value: '%%' does not apply to %s, which is not a percentage",
                         signal_name(p->target_signal));
        n = seen_node(l, &c->workers.start_timeout);
        if (n && c->workers.start_timeout == 0)
                error_at(l, n, "workers.start_timeout: must be more than 0");
        n = seen_node(l, &c->listen_backlog);
        if (n && c->n_listen == 0)
                error_at(l, n, "listen_backlog: applies to the sockets of 'listen', which is not given");
        /* A pool behind a socket wants to know when a worker can take requests. */
        c->workers.notify_given = seen_node(l, &c->workers.notify) != NULL;
        if (!c->workers.notify_given && c->n_listen > 0)
                c->workers.notify = true;
        record_origins(l);
}
