/* SPDX-License-Identifier: MIT */
/*
 * Walking a YAML mapping with a table of fields (struct field): each key is
 * looked up (unknown keys get a "did you mean"), duplicates are reported,
 * and each value is parsed by its type into the place the table names. The
 * walk never stops at the first problem; every error carries its node's
 * position.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/hostport.h"
#include "common/strdist.h"
#include "common/text.h"
#include "conf/loader.h"
#include "conf/units.h"

/* ---- values in general ---- */

void type_error(struct loader *l, const yaml_node_t *n, const char *path, const char *what) {
        char got[64];
        yaml_node_describe(n, got, sizeof(got));
        error_at(l, n, "%s: expected %s, got %s", path, what, got);
}

const char *value_text(struct loader *l, const yaml_node_t *n, const char *path, const char *what) {
        if (n->type != YAML_SCALAR_NODE || scalar_is_null(n)) {
                type_error(l, n, path, what);
                return NULL;
        }
        if (strlen(scalar_text(n)) != n->data.scalar.length) {
                error_at(l, n, "%s: contains a NUL character", path);
                return NULL;
        }
        return scalar_text(n);
}

void mark_seen(struct loader *l, const void *field, const yaml_node_t *n) {
        struct seen *s = realloc(l->seen, (l->n_seen + 1) * sizeof(*s));
        if (!s) {
                l->oom = -ENOMEM;
                return;
        }
        l->seen = s;
        l->seen[l->n_seen++] = (struct seen) { field, n };
}

const yaml_node_t *seen_node(const struct loader *l, const void *field) {
        for (size_t i = l->n_seen; i > 0; i--)
                if (l->seen[i - 1].field == field)
                        return l->seen[i - 1].node;
        return NULL;
}

char *path_join(const char *path, const char *key) {
        char *s;
        if (asprintf(&s, "%s%s%s", path ? path : "", path ? "." : "", key) < 0)
                return NULL;
        return s;
}

bool mapping_has_key(struct loader *l, const yaml_node_t *n, const char *name) {
        for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
                const yaml_node_t *key = node_get(l, pair->key);
                if (key->type == YAML_SCALAR_NODE && strcmp(scalar_text(key), name) == 0)
                        return true;
        }
        return false;
}

/* ---- value parsers, one per field type ---- */

static void *field_ptr(void *base, const struct field *f) {
        return (char *) base + f->offset;
}

static void parse_argv(struct loader *l, const yaml_node_t *n, char ***dst, const char *path) {
        static const char what[] = "a list of arguments, e.g. [./worker, --fast]";
        _cleanup_(strv_freep) char **argv = NULL;

        if (n->type == YAML_SCALAR_NODE) {
                /* One word is an argv of one; more would need a shell to split them. */
                const char *s = value_text(l, n, path, what);
                if (!s)
                        return;
                if (strpbrk(s, " \t\n")) {
                        error_at(l, n, "%s: expected %s (no shell splits a string), got '%s'", path, what, s);
                        return;
                }
                argv = calloc(2, sizeof(char *));
                if (!argv || !(argv[0] = strdup(s))) {
                        l->oom = -ENOMEM;
                        return;
                }
        } else if (n->type == YAML_SEQUENCE_NODE) {
                size_t count = (size_t) (n->data.sequence.items.top - n->data.sequence.items.start);
                if (count == 0) {
                        error_at(l, n, "%s: expected %s, got an empty list", path, what);
                        return;
                }
                argv = calloc(count + 1, sizeof(char *));
                if (!argv) {
                        l->oom = -ENOMEM;
                        return;
                }
                bool ok = true;
                for (size_t i = 0; i < count; i++) {
                        const yaml_node_t *item = node_get(l, n->data.sequence.items.start[i]);
                        char item_path[256];
                        snprintf(item_path, sizeof(item_path), "%s[%zu]", path, i);
                        /* An empty argument is legitimate; an empty program is not. */
                        if (item->type != YAML_SCALAR_NODE || (i == 0 && scalar_is_null(item)) ||
                            (item->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && scalar_is_null(item) &&
                             item->data.scalar.length > 0)) {
                                type_error(l, item, item_path, i == 0 ? "a program name" : "a string");
                                ok = false;
                                continue;
                        }
                        if (strlen(scalar_text(item)) != item->data.scalar.length) {
                                error_at(l, item, "%s: contains a NUL character", item_path);
                                ok = false;
                                continue;
                        }
                        /* After a bad item, only check the rest: argv would have a
                         * hole, and strv_free() stops at the first NULL. */
                        if (ok && !(argv[i] = strdup(scalar_text(item)))) {
                                l->oom = -ENOMEM;
                                return;
                        }
                }
                if (!ok)
                        return;
        } else {
                type_error(l, n, path, what);
                return;
        }
        strv_free(*dst);
        *dst = TAKE_PTR(argv);
        mark_seen(l, dst, n);
}

static bool env_name_valid(const char *s) {
        if (!(isalpha((unsigned char) s[0]) || s[0] == '_'))
                return false;
        for (; *s; s++)
                if (!(isalnum((unsigned char) *s) || *s == '_'))
                        return false;
        return true;
}

static void parse_env(struct loader *l, const yaml_node_t *n, char ***dst, const char *path) {
        if (n->type != YAML_MAPPING_NODE) {
                type_error(l, n, path, "a mapping of variables, e.g. {RUST_LOG: info}");
                return;
        }
        size_t count = (size_t) (n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        _cleanup_free_ bool *dup = calloc(count + 1, sizeof(bool));
        _cleanup_(strv_freep) char **env = calloc(count + 1, sizeof(char *));
        if (!dup || !env) {
                l->oom = -ENOMEM;
                return;
        }
        check_duplicates(l, n, dup, path);
        size_t k = 0;
        bool ok = true;
        for (size_t i = 0; i < count; i++) {
                const yaml_node_t *key = node_get(l, n->data.mapping.pairs.start[i].key);
                const yaml_node_t *value = node_get(l, n->data.mapping.pairs.start[i].value);
                if (dup[i])
                        continue;
                if (key->type != YAML_SCALAR_NODE || !env_name_valid(scalar_text(key))) {
                        char got[64];
                        yaml_node_describe(key, got, sizeof(got));
                        error_at(l, key, "%s: invalid variable name %s (letters, digits and '_')", path, got);
                        ok = false;
                        continue;
                }
                _cleanup_free_ char *p = path_join(path, scalar_text(key));
                if (!p) {
                        l->oom = -ENOMEM;
                        return;
                }
                const char *s = value->type == YAML_SCALAR_NODE && value->data.scalar.length == 0 &&
                                value->data.scalar.style != YAML_PLAIN_SCALAR_STYLE
                        ? "" : value_text(l, value, p, "a string");
                if (!s) {
                        ok = false;
                        continue;
                }
                if (asprintf(&env[k++], "%s=%s", scalar_text(key), s) < 0) {
                        env[--k] = NULL;
                        l->oom = -ENOMEM;
                        return;
                }
        }
        if (!ok)
                return;
        strv_free(*dst);
        *dst = TAKE_PTR(env);
        mark_seen(l, dst, n);
}

/* "'a', 'b' or 'c'" for messages. */
static void list_names(const char *const *names, char *buf, size_t size) {
        struct text t = text_init(buf, size);
        for (size_t i = 0; names[i]; i++)
                text_add(&t, "%s%s", i == 0 ? "" : !names[i + 1] ? " or " : ", ", names[i]);
}

static const char *suggest(const char *typed, const char *const *names) {
        const char *best = NULL;
        size_t best_d = SIZE_MAX, len = strlen(typed);
        for (size_t i = 0; names[i]; i++) {
                size_t d = strdist(typed, len, names[i], strlen(names[i]));
                if (strdist_close(typed, len, names[i]) && d < best_d) {
                        best = names[i];
                        best_d = d;
                }
        }
        return best;
}

static void parse_enum(struct loader *l, const yaml_node_t *n, const struct field *f, void *base, const char *path) {
        char what[256];
        list_names(f->names, what, sizeof(what));
        const char *s = value_text(l, n, path, what);
        if (!s)
                return;
        for (size_t i = 0; f->names[i]; i++)
                if (strcmp(s, f->names[i]) == 0) {
                        *(int *) field_ptr(base, f) = (int) i;
                        mark_seen(l, field_ptr(base, f), n);
                        return;
                }
        const char *hint = suggest(s, f->names);
        if (hint)
                error_at(l, n, "%s: expected %s, got '%s' (did you mean '%s'?)", path, what, s, hint);
        else
                type_error(l, n, path, what);
}

static void parse_listen(struct loader *l, const yaml_node_t *n, char **dst, const char *path) {
        static const char what[] = "HOST:PORT (e.g. 127.0.0.1:9311 or [::1]:9311) or none";
        const char *s = value_text(l, n, path, what);
        if (!s)
                return;
        if (strcmp(s, "none") != 0 && hostport_parse(s, NULL, NULL) < 0) {
                type_error(l, n, path, what);
                return;
        }
        char *copy = strdup(s);
        if (!copy) {
                l->oom = -ENOMEM;
                return;
        }
        free(*dst);
        *dst = copy;
        mark_seen(l, dst, n);
}

static void parse_policy_signal(struct loader *l, const yaml_node_t *n, enum signal_id *dst, const char *path) {
        const char *s = value_text(l, n, path, "a signal name, e.g. pool.cpu");
        if (!s)
                return;
        enum signal_id id = signal_from_name(s, strlen(s));
        if (id == _SIGNAL_INVALID) {
                const char *names[_SIGNAL_MAX + 1] = {};
                for (enum signal_id i = 0; i < _SIGNAL_MAX; i++)
                        names[i] = signal_name(i);
                const char *hint = suggest(s, names);
                if (hint)
                        error_at(l, n, "%s: unknown signal '%s' (did you mean '%s'?)", path, s, hint);
                else
                        error_at(l, n, "%s: unknown signal '%s'", path, s);
                return;
        }
        *dst = id;
        mark_seen(l, dst, n);
}

static void parse_field(struct loader *l, const struct field *f, const yaml_node_t *n, void *base, const char *path) {
        void *dst = field_ptr(base, f);
        const char *s;
        int r;

        switch (f->type) {
        case F_UINT: {
                unsigned v;
                if (!(s = value_text(l, n, path, "a whole number")))
                        return;
                r = parse_unsigned(s, f->max, &v);
                if (r == -EINVAL)
                        return type_error(l, n, path, "a whole number");
                if (r < 0 || v < f->min)
                        return error_at(l, n, "%s: %s is out of range (%u-%u)", path, s, f->min, f->max);
                *(unsigned *) dst = v;
                break;
        }
        case F_U64: {
                uint64_t v;
                if (!(s = value_text(l, n, path, "a whole number")))
                        return;
                /* A count is a size without a unit. */
                if (strspn(s, "0123456789") != strlen(s) || parse_size(s, &v) < 0)
                        return type_error(l, n, path, "a whole number");
                *(uint64_t *) dst = v;
                break;
        }
        case F_DURATION:
                if (!(s = value_text(l, n, path, "a duration such as 250ms, 5s, 2m or 1h")))
                        return;
                if (parse_duration(s, dst) < 0)
                        return type_error(l, n, path, "a duration such as 250ms, 5s, 2m or 1h");
                break;
        case F_PERCENT:
                if (!(s = value_text(l, n, path, "a percentage (80% or a number 0-100)")))
                        return;
                r = parse_percent(s, dst);
                if (r == -ERANGE)
                        return error_at(l, n, "%s: %s is out of range (0-100%%)", path, s);
                if (r < 0)
                        return type_error(l, n, path, "a percentage (80% or a number 0-100)");
                break;
        case F_SIZE:
                if (!(s = value_text(l, n, path, "a size such as 512MiB or 2GiB")))
                        return;
                if (parse_size(s, dst) < 0)
                        return type_error(l, n, path, "a size such as 512MiB or 2GiB");
                break;
        case F_SIGNAL:
                if (!(s = value_text(l, n, path, "a signal name such as TERM")))
                        return;
                if (parse_signal(s, dst) < 0) {
                        const char *hint = signal_suggest(s);
                        if (hint)
                                return error_at(l, n, "%s: unknown signal '%s' (did you mean '%s'?)", path, s, hint);
                        return error_at(l, n, "%s: unknown signal '%s'", path, s);
                }
                break;
        case F_BOOL:
                if (!(s = value_text(l, n, path, "true or false")))
                        return;
                if (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0 || strcasecmp(s, "on") == 0)
                        *(bool *) dst = true;
                else if (strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0 || strcasecmp(s, "off") == 0)
                        *(bool *) dst = false;
                else
                        return type_error(l, n, path, "true or false");
                break;
        case F_STRING: {
                if (!(s = value_text(l, n, path, "a string")))
                        return;
                char *copy = strdup(s);
                if (!copy) {
                        l->oom = -ENOMEM;
                        return;
                }
                free(*(char **) dst);
                *(char **) dst = copy;
                break;
        }
        case F_ARGV:
                return parse_argv(l, n, dst, path);
        case F_ENV:
                return parse_env(l, n, dst, path);
        case F_ENUM:
                return parse_enum(l, n, f, base, path);
        case F_LISTEN:
                return parse_listen(l, n, dst, path);
        case F_SHARD: {
                unsigned k, count;
                if (!(s = value_text(l, n, path, "a shard K/N such as 0/4")))
                        return;
                r = parse_shard(s, &k, &count);
                if (r == -ERANGE)
                        return error_at(l, n, "%s: shard %s does not exist (K/N needs N >= 1 and K < N)", path, s);
                if (r < 0)
                        return type_error(l, n, path, "a shard K/N such as 0/4");
                l->c->tasks.shard_index = k;
                l->c->tasks.shard_count = count;
                break;
        }
        case F_POLICY_SIGNAL:
                return parse_policy_signal(l, n, dst, path);
        case F_MAP:
                if (n->type != YAML_MAPPING_NODE)
                        return type_error(l, n, path, "a mapping");
                if (f->presence) {
                        /* recorded before the children: the relation checks want the mapping's node */
                        *(bool *) dst = true;
                        mark_seen(l, dst, n);
                }
                return walk_mapping(l, n, f->sub, base, path);
        case F_CUSTOM:
                return f->custom(l, n, base, path);
        }
        mark_seen(l, dst, n);
}

/* ---- the mapping ---- */

/* check_duplicates() sorts a copy of the keys, so a big mapping costs
 * O(n log n), not O(n^2). */
struct key_ref {
        const char *text;
        size_t index;
        const yaml_node_t *node;
};

static int compare_keys(const void *a, const void *b) {
        const struct key_ref *x = a, *y = b;
        int r = strcmp(x->text, y->text);
        if (r != 0)
                return r;
        return x->index < y->index ? -1 : x->index > y->index;
}

void check_duplicates(struct loader *l, const yaml_node_t *n, bool *dup, const char *path) {
        size_t count = (size_t) (n->data.mapping.pairs.top - n->data.mapping.pairs.start), k = 0;
        _cleanup_free_ struct key_ref *keys = calloc(count + 1, sizeof(*keys));
        if (!keys) {
                l->oom = -ENOMEM;
                return;
        }
        for (size_t i = 0; i < count; i++) {
                const yaml_node_t *key = node_get(l, n->data.mapping.pairs.start[i].key);
                if (key->type == YAML_SCALAR_NODE)
                        keys[k++] = (struct key_ref) { scalar_text(key), i, key };
        }
        qsort(keys, k, sizeof(*keys), compare_keys);
        for (size_t i = 1; i < k; i++) {
                size_t first = i - 1;
                while (first > 0 && strcmp(keys[first - 1].text, keys[i].text) == 0)
                        first--;
                if (strcmp(keys[first].text, keys[i].text) != 0)
                        continue;
                dup[keys[i].index] = true;
                error_at(l, keys[i].node, "duplicate key '%s%s%s' (first set at line %zu)", path ? path : "",
                         path ? "." : "", keys[i].text, keys[first].node->start_mark.line + 1);
        }
}

void walk_mapping(struct loader *l, const yaml_node_t *n, const struct field *fields, void *base, const char *path) {
        if (n->type != YAML_MAPPING_NODE) {
                if (!path) {
                        char got[64];
                        yaml_node_describe(n, got, sizeof(got));
                        return error_at(l, n, "expected a mapping of settings (command:, workers:, ...), got %s", got);
                }
                return type_error(l, n, path, "a mapping");
        }
        size_t count = (size_t) (n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        _cleanup_free_ bool *dup = calloc(count + 1, sizeof(bool));
        if (!dup) {
                l->oom = -ENOMEM;
                return;
        }
        check_duplicates(l, n, dup, path);

        for (size_t i = 0; i < count && !l->oom && !l->too_many; i++) {
                const yaml_node_t *key = node_get(l, n->data.mapping.pairs.start[i].key);
                const yaml_node_t *value = node_get(l, n->data.mapping.pairs.start[i].value);
                if (dup[i])
                        continue;
                if (key->type != YAML_SCALAR_NODE) {
                        type_error(l, key, path ? path : "the file", "a key name");
                        continue;
                }
                const struct field *f = NULL;
                for (const struct field *g = fields; g->key; g++)
                        if (strcmp(g->key, scalar_text(key)) == 0)
                                f = g;
                if (!f) {
                        const char *names[64] = {};
                        for (size_t j = 0; fields[j].key && j < ELEMENTSOF(names) - 1; j++)
                                names[j] = fields[j].key;
                        const char *hint = suggest(scalar_text(key), names);
                        char where[300] = "";
                        if (path)
                                snprintf(where, sizeof(where), " in '%s'", path);
                        char got[64];
                        yaml_node_describe(key, got, sizeof(got));
                        if (hint)
                                error_at(l, key, "unknown key %s%s (did you mean '%s'?)", got, where, hint);
                        else
                                error_at(l, key, "unknown key %s%s", got, where);
                        continue;
                }
                _cleanup_free_ char *p = path_join(path, f->key);
                if (!p) {
                        l->oom = -ENOMEM;
                        return;
                }
                parse_field(l, f, value, base, p);
        }
}
