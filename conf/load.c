/* SPDX-License-Identifier: MIT */
/*
 * conf_load(): a YAML file into a validated struct corral_config.
 *
 * The file is read whole (it is small, and bounded), checked for what libyaml
 * reports badly (binary data, tabs in indentation), parsed into a libyaml
 * document, and walked with tables that say, for each mapping, which keys
 * exist, what type each value has and where it goes in the config. The walk
 * never stops at the first problem: every error is collected with the
 * position of its node, and the diagnostics are sorted into file order.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "common/strdist.h"
#include "conf/conf.h"
#include "conf/units.h"
#include "policy/condition.h"

#define WORKERS_LIMIT 65536u

struct loader;

enum field_type {
        F_UINT,
        F_U64,
        F_DURATION,
        F_PERCENT,
        F_SIZE,
        F_SIGNAL,
        F_BOOL,
        F_STRING,
        F_ARGV,
        F_ENV,
        F_ENUM,
        F_LISTEN,
        F_SHARD,
        F_POLICY_SIGNAL,
        F_MAP,
        F_CUSTOM,
};

/* One key of a mapping: its type and where its value goes, as an offset from
 * the base the mapping's table describes (a nested mapping shares its parent's base). */
struct field {
        const char *key;
        enum field_type type;
        size_t offset;
        unsigned min, max;                      /* F_UINT */
        const char *const *names;               /* F_ENUM, NULL-terminated */
        const struct field *sub;                /* F_MAP */
        bool presence;                          /* F_MAP: offset is a bool set when present */
        void (*custom)(struct loader *l, const yaml_node_t *n, void *base, const char *path);
};

/* Where a successfully parsed value came from, for relation checks. */
struct seen {
        const void *field;
        const yaml_node_t *node;
};

struct loader {
        const char *path;
        const char *text;
        size_t size;
        size_t *line_start;             /* byte offset of each line */
        size_t n_lines;
        yaml_document_t doc;
        struct conf_diagnostics *diag;
        size_t first_diag;              /* this load's diagnostics start here */
        struct corral_config *c;
        struct seen *seen;
        size_t n_seen, n_errors;
        bool too_many;
        bool target_percent;
        int oom;
};

/* ------------------------------------------------------------------------ */
/* diagnostics */

static int diag_addv(struct conf_diagnostics *d, enum conf_severity severity, const char *path,
                     unsigned line, unsigned column, const char *format, va_list ap) {
        char text[1024];
        char *message = NULL;

        vsnprintf(text, sizeof(text), format, ap);
        int r;
        if (line > 0)
                r = asprintf(&message, "%s:%u:%u: %s%s", path, line, column,
                             severity == CONF_WARNING ? "warning: " : "", text);
        else
                r = asprintf(&message, "%s: %s%s", path, severity == CONF_WARNING ? "warning: " : "", text);
        if (r < 0)
                return -ENOMEM;
        struct conf_diagnostic *items = realloc(d->items, (d->n_items + 1) * sizeof(*items));
        if (!items) {
                free(message);
                return -ENOMEM;
        }
        d->items = items;
        d->items[d->n_items++] = (struct conf_diagnostic) {
                .severity = severity, .line = line, .column = column, .message = message,
        };
        if (severity == CONF_ERROR)
                d->n_errors++;
        else
                d->n_warnings++;
        return 0;
}

int conf_diagnostics_add(struct conf_diagnostics *d, enum conf_severity severity, const char *path,
                         unsigned line, unsigned column, const char *format, ...) {
        va_list ap;
        va_start(ap, format);
        int r = diag_addv(d, severity, path, line, column, format, ap);
        va_end(ap);
        return r;
}

void conf_diagnostics_done(struct conf_diagnostics *d) {
        for (size_t i = 0; i < d->n_items; i++)
                free(d->items[i].message);
        free(d->items);
        *d = (struct conf_diagnostics) {};
}

__attribute__((format(printf, 4, 5)))
static void error_at_pos(struct loader *l, unsigned line, unsigned column, const char *format, ...) {
        if (l->n_errors >= CONF_MAX_ERRORS) {
                l->too_many = true;
                return;
        }
        va_list ap;
        va_start(ap, format);
        if (diag_addv(l->diag, CONF_ERROR, l->path, line, column, format, ap) < 0)
                l->oom = -ENOMEM;
        va_end(ap);
        l->n_errors++;
}

/* libyaml marks are 0-based; messages are 1-based. */
#define error_at(l, node, ...) \
        error_at_pos((l), (unsigned) (node)->start_mark.line + 1, (unsigned) (node)->start_mark.column + 1, __VA_ARGS__)

/* File order reads best; errors about the same node keep their order of discovery. */
static void sort_diagnostics(struct conf_diagnostics *d, size_t first) {
        /* Insertion sort: stable, and a load adds at most CONF_MAX_ERRORS + a few. */
        for (size_t i = first + 1; i < d->n_items; i++) {
                struct conf_diagnostic t = d->items[i];
                size_t j = i;
                while (j > first && (d->items[j - 1].line > t.line ||
                                     (d->items[j - 1].line == t.line && d->items[j - 1].column > t.column))) {
                        d->items[j] = d->items[j - 1];
                        j--;
                }
                d->items[j] = t;
        }
}

/* ------------------------------------------------------------------------ */
/* nodes and scalars */

static const yaml_node_t *node_get(struct loader *l, int index) {
        return yaml_document_get_node(&l->doc, index);
}

static const char *scalar_text(const yaml_node_t *n) {
        return (const char *) n->data.scalar.value;
}

static bool scalar_is_null(const yaml_node_t *n) {
        if (n->type != YAML_SCALAR_NODE)
                return false;
        if (n->data.scalar.length == 0)
                return true;
        if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        const char *s = scalar_text(n);
        return strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/* How a node reads in "expected X, got Y". */
static void describe(const yaml_node_t *n, char *buf, size_t size) {
        if (n->type == YAML_MAPPING_NODE)
                snprintf(buf, size, "a mapping");
        else if (n->type == YAML_SEQUENCE_NODE)
                snprintf(buf, size, "a list");
        else if (scalar_is_null(n))
                snprintf(buf, size, "an empty value");
        else {
                size_t len = n->data.scalar.length;
                snprintf(buf, size, "'%.*s%s'", (int) (len > 40 ? 40 : len), scalar_text(n), len > 40 ? "..." : "");
        }
}

static void type_error(struct loader *l, const yaml_node_t *n, const char *path, const char *what) {
        char got[64];
        describe(n, got, sizeof(got));
        error_at(l, n, "%s: expected %s, got %s", path, what, got);
}

/* The text of a scalar that should hold a value, or NULL after reporting why not. */
static const char *value_text(struct loader *l, const yaml_node_t *n, const char *path, const char *what) {
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

static void mark_seen(struct loader *l, const void *field, const yaml_node_t *n) {
        struct seen *s = realloc(l->seen, (l->n_seen + 1) * sizeof(*s));
        if (!s) {
                l->oom = -ENOMEM;
                return;
        }
        l->seen = s;
        l->seen[l->n_seen++] = (struct seen) { field, n };
}

static const yaml_node_t *seen_node(const struct loader *l, const void *field) {
        for (size_t i = l->n_seen; i > 0; i--)
                if (l->seen[i - 1].field == field)
                        return l->seen[i - 1].node;
        return NULL;
}

static char *path_join(const char *path, const char *key) {
        char *s;
        if (asprintf(&s, "%s%s%s", path ? path : "", path ? "." : "", key) < 0)
                return NULL;
        return s;
}

/* ------------------------------------------------------------------------ */
/* positions inside a scalar (for errors in a `when:` condition) */

/* The byte offset in the file of a 1-based (line, column in characters). */
static size_t file_offset(const struct loader *l, size_t line0, size_t column0) {
        if (line0 >= l->n_lines)
                return l->size;
        size_t i = l->line_start[line0];
        while (column0 > 0 && i < l->size && l->text[i] != '\n') {
                i++;
                while (i < l->size && ((unsigned char) l->text[i] & 0xC0) == 0x80)
                        i++;
                column0--;
        }
        return i;
}

/*
 * Maps a byte offset inside a scalar's value to its line and column in the
 * file, by walking the source text and the value side by side: equal bytes
 * advance both, source whitespace (line folding, indentation) and quoting
 * advance the source only. Exact for plain and quoted single-line scalars and
 * for block scalars; a close approximation inside escape sequences.
 */
static void scalar_position(const struct loader *l, const yaml_node_t *n, size_t offset,
                            unsigned *ret_line, unsigned *ret_column) {
        const char *v = scalar_text(n);
        size_t vi = 0;
        size_t si = file_offset(l, n->start_mark.line, n->start_mark.column);
        size_t start = si;
        yaml_scalar_style_t style = n->data.scalar.style;

        if (style == YAML_SINGLE_QUOTED_SCALAR_STYLE || style == YAML_DOUBLE_QUOTED_SCALAR_STYLE)
                si++;
        else if (style == YAML_LITERAL_SCALAR_STYLE || style == YAML_FOLDED_SCALAR_STYLE) {
                while (si < l->size && l->text[si] != '\n')
                        si++;
        }
        while (vi < offset && si < l->size) {
                char s = l->text[si];
                if (style == YAML_SINGLE_QUOTED_SCALAR_STYLE && s == '\'' && si + 1 < l->size && l->text[si + 1] == '\'') {
                        si += 2;
                        vi++;
                } else if (style == YAML_DOUBLE_QUOTED_SCALAR_STYLE && s == '\\') {
                        si += 2;
                        vi++;
                } else if (s == v[vi]) {
                        si++;
                        vi++;
                } else
                        si++;
        }
        /* Skip source whitespace that stands before the target byte (folded line breaks). */
        while (si < l->size && l->text[si] != v[vi] && isspace((unsigned char) l->text[si]))
                si++;

        unsigned line = (unsigned) n->start_mark.line, column = (unsigned) n->start_mark.column;
        for (size_t i = start; i < si; i++) {
                if (l->text[i] == '\n') {
                        line++;
                        column = 0;
                } else if (((unsigned char) l->text[i] & 0xC0) != 0x80)
                        column++;
        }
        *ret_line = line + 1;
        *ret_column = column + 1;
}

/* ------------------------------------------------------------------------ */
/* value parsers, one per field type */

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

static void check_duplicates(struct loader *l, const yaml_node_t *n, bool *dup, const char *path);

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
                        describe(key, got, sizeof(got));
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
        size_t len = 0;
        buf[0] = '\0';
        for (size_t i = 0; names[i] && len < size; i++)
                len += (size_t) snprintf(buf + len, size - len, "%s%s", i == 0 ? "" : !names[i + 1] ? " or " : ", ",
                                         names[i]);
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

static bool host_valid(const char *h, size_t len) {
        if (len == 0)
                return false;
        if (h[0] == '[')        /* an IPv6 address: hex digits, ':' and '.' between brackets */
                return len > 2 && h[len - 1] == ']' && strspn(h + 1, "0123456789abcdefABCDEF:.") == len - 2 &&
                       memchr(h, ':', len);
        for (size_t i = 0; i < len; i++)
                if (!(isalnum((unsigned char) h[i]) || h[i] == '.' || h[i] == '-'))
                        return false;
        return true;
}

static void parse_listen(struct loader *l, const yaml_node_t *n, char **dst, const char *path) {
        static const char what[] = "HOST:PORT (e.g. 127.0.0.1:9311 or [::1]:9311) or none";
        const char *s = value_text(l, n, path, what);
        if (!s)
                return;
        const char *colon = strrchr(s, ':');
        unsigned port;
        if (strcmp(s, "none") != 0 &&
            (!colon || !host_valid(s, (size_t) (colon - s)) || parse_unsigned(colon + 1, 65535, &port) < 0)) {
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

static void walk_mapping(struct loader *l, const yaml_node_t *n, const struct field *fields, void *base,
                         const char *path);

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

/* Marks each key that repeats an earlier one in dup[] and reports it. Sorts a
 * copy of the keys, so a big mapping costs O(n log n), not O(n^2). */
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

static void check_duplicates(struct loader *l, const yaml_node_t *n, bool *dup, const char *path) {
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

static void walk_mapping(struct loader *l, const yaml_node_t *n, const struct field *fields, void *base,
                         const char *path) {
        if (n->type != YAML_MAPPING_NODE) {
                if (!path) {
                        char got[64];
                        describe(n, got, sizeof(got));
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
                        describe(key, got, sizeof(got));
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

/* ------------------------------------------------------------------------ */
/* custom values: rules, target value, shared segments */

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
                return error_at_pos(l, line, column, "%s: %s", path, error);
        }
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
        if (r < 0 || (percent && s[0] == '-' && v > 100))
                return error_at(l, n, "%s: %s is out of range (%s)", path, s,
                                percent ? (s[0] == '-' ? "1-100%" : "1-1000%") : "1-65536 workers");
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

static bool mapping_has_key(struct loader *l, const yaml_node_t *n, const char *name) {
        for (yaml_node_pair_t *pair = n->data.mapping.pairs.start; pair < n->data.mapping.pairs.top; pair++) {
                const yaml_node_t *key = node_get(l, pair->key);
                if (key->type == YAML_SCALAR_NODE && strcmp(scalar_text(key), name) == 0)
                        return true;
        }
        return false;
}

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
                        describe(key, got, sizeof(got));
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

/* ------------------------------------------------------------------------ */
/* the tables */

#define C(member) offsetof(struct corral_config, member)

static const char *const restart_names[] = { "always", "on-failure", "never", NULL };
static const char *const placement_names[] = { "none", "spread", "least-loaded", NULL };
static const char *const mode_names[] = { "per-task", "stream", NULL };
static const char *const output_names[] = { "group", "line-buffer", "ungroup", NULL };

static const struct field backoff_fields[] = {
        { "initial",     F_DURATION, C(workers.backoff_initial) },
        { "max",         F_DURATION, C(workers.backoff_max) },
        { "reset_after", F_DURATION, C(workers.backoff_reset_after) },
        {}
};

static const struct field crash_fields[] = {
        { "burst", F_UINT, C(workers.crash_burst), 1, 1000000 },
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
        { "retries",    F_UINT,     C(tasks.retries), 0, 1000000 },
        { "keep_order", F_BOOL,     C(tasks.keep_order) },
        { "output",     F_ENUM,     C(tasks.output), .names = output_names },
        { "timeout",    F_DURATION, C(tasks.timeout) },
        { "batch",      F_UINT,     C(tasks.batch), 1, 100000 },
        { "shard",      F_SHARD,    C(tasks.shard_index) },
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
        {}
};

/* ------------------------------------------------------------------------ */
/* relations between values */

/* Reports lo > hi at whichever of the two nodes comes later in the file (the
 * one that made the pair inconsistent, reading top-down). */
static void relation_error(struct loader *l, const void *lo_field, const char *lo_name, const char *lo_value,
                           const void *hi_field, const char *hi_name, const char *hi_value) {
        const yaml_node_t *lo = seen_node(l, lo_field), *hi = seen_node(l, hi_field);
        if (hi && (!lo || hi->start_mark.index > lo->start_mark.index))
                error_at(l, hi, "%s: %s is less than %s (%s%s)", hi_name, hi_value, lo_name, lo_value,
                         lo ? "" : ", the default");
        else if (lo)
                error_at(l, lo, "%s: %s is greater than %s (%s%s)", lo_name, lo_value, hi_name, hi_value,
                         hi ? "" : ", the default");
}

static void check_counts(struct loader *l, const unsigned *lo, const char *lo_name, const unsigned *hi,
                         const char *hi_name) {
        char a[16], b[16];
        if (*lo <= *hi)
                return;
        snprintf(a, sizeof(a), "%u", *lo);
        snprintf(b, sizeof(b), "%u", *hi);
        relation_error(l, lo, lo_name, a, hi, hi_name, b);
}

static void check_missing(struct loader *l, const bool *present, const char *path, const char *key) {
        const yaml_node_t *n = seen_node(l, present);
        if (n && !mapping_has_key(l, n, key))
                error_at(l, n, "%s: missing '%s'", path, key);
}

/* tasks.output is about per-task mode's output; ungroup has no order to keep. */
static void check_output(struct loader *l) {
        const struct tasks_config *t = &l->c->tasks;
        const yaml_node_t *out = seen_node(l, &t->output), *order = seen_node(l, &t->keep_order);

        if (!out || t->output == TASK_OUTPUT_GROUP)
                return;
        if (t->mode == TASK_MODE_STREAM)
                error_at(l, out, "tasks.output: %s applies to tasks.mode per-task only; stream mode writes "
                         "one result line per input line (leave tasks.output out)", output_names[t->output]);
        else if (t->output == TASK_OUTPUT_UNGROUP && t->keep_order)
                error_at(l, order && order->start_mark.index > out->start_mark.index ? order : out,
                         "tasks.output: ungroup passes output on as it comes, so tasks.keep_order cannot "
                         "hold it in input order; give only one of them");
}

static void validate(struct loader *l) {
        struct corral_config *c = l->c;
        struct workers_config *w = &c->workers;
        struct policy_config *p = &c->policy;
        const yaml_node_t *n;

        /* max == 0 and initial == 0 mean "not set, resolved later": only set values are related. */
        if (seen_node(l, &w->max))
                check_counts(l, &w->min, "workers.min", &w->max, "workers.max");
        if (seen_node(l, &w->initial) && w->initial != 0) {
                check_counts(l, &w->min, "workers.min", &w->initial, "workers.initial");
                if (seen_node(l, &w->max))
                        check_counts(l, &w->initial, "workers.initial", &w->max, "workers.max");
        }
        if (w->backoff_initial > w->backoff_max) {
                char a[32], b[32];
                relation_error(l, &w->backoff_initial, "workers.restart_backoff.initial",
                               format_duration(w->backoff_initial, a), &w->backoff_max,
                               "workers.restart_backoff.max", format_duration(w->backoff_max, b));
        }
        /* Whether the names exist is the machine's business, looked up by
         * `corral run` (and `corral check`): they need their positions. */
        if ((n = seen_node(l, &w->user))) {
                w->user_line = (unsigned) n->start_mark.line + 1;
                w->user_column = (unsigned) n->start_mark.column + 1;
        }
        if ((n = seen_node(l, &w->group))) {
                w->group_line = (unsigned) n->start_mark.line + 1;
                w->group_column = (unsigned) n->start_mark.column + 1;
        }
        if ((n = seen_node(l, &w->cwd))) {
                w->cwd_line = (unsigned) n->start_mark.line + 1;
                w->cwd_column = (unsigned) n->start_mark.column + 1;
        }
        if ((n = seen_node(l, &c->command))) {
                c->command_line = (unsigned) n->start_mark.line + 1;
                c->command_column = (unsigned) n->start_mark.column + 1;
        }
        n = seen_node(l, &c->sample_interval);
        if (n && c->sample_interval < 10 * USEC_PER_MSEC)
                error_at(l, n, "sample.interval: %s is too short (at least 10ms)", scalar_text(n));

        check_missing(l, &p->has_target, "policy.target", "signal");
        check_missing(l, &p->has_target, "policy.target", "value");
        check_missing(l, &p->has_optimize, "policy.optimize", "signal");
        n = seen_node(l, &p->has_optimize);
        if (n && p->has_target)
                error_at(l, n, "policy.optimize: replaces policy.target; give only one of them");
        n = seen_node(l, &p->target_value);
        if (n && l->target_percent && seen_node(l, &p->target_signal) && !signal_is_percent(p->target_signal))
                error_at(l, n, "policy.target.value: '%%' does not apply to %s, which is not a percentage",
                         signal_name(p->target_signal));
        check_output(l);
}

/* ------------------------------------------------------------------------ */
/* the file */

static int read_file(const char *path, struct conf_diagnostics *diag, char **ret, size_t *ret_size) {
        _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        int r;

        if (fd < 0) {
                r = -errno;
                if (conf_diagnostics_add(diag, CONF_ERROR, path, 0, 0, "cannot open: %s", strerror(-r)) < 0)
                        return -ENOMEM;
                return r;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode)) {
                if (conf_diagnostics_add(diag, CONF_ERROR, path, 0, 0, "is a directory, not a configuration file") < 0)
                        return -ENOMEM;
                return -EISDIR;
        }
        /* One byte more than the limit tells "too large" from "exactly at the limit". */
        _cleanup_free_ char *buf = malloc(CONF_MAX_FILE_SIZE + 2);
        if (!buf)
                return -ENOMEM;
        size_t size = 0;
        while (size <= CONF_MAX_FILE_SIZE) {
                ssize_t k = read(fd, buf + size, CONF_MAX_FILE_SIZE + 1 - size);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        if (conf_diagnostics_add(diag, CONF_ERROR, path, 0, 0, "cannot read: %s", strerror(-r)) < 0)
                                return -ENOMEM;
                        return r;
                }
                if (k == 0)
                        break;
                size += (size_t) k;
        }
        if (size > CONF_MAX_FILE_SIZE) {
                if (conf_diagnostics_add(diag, CONF_ERROR, path, 0, 0,
                                         "too large (more than %d KiB; a configuration is a few KiB)",
                                         CONF_MAX_FILE_SIZE / 1024) < 0)
                        return -ENOMEM;
                return -EFBIG;
        }
        buf[size] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

/* Length of the UTF-8 sequence at s (at most n bytes), or 0 if it is not valid UTF-8. */
static size_t utf8_length(const unsigned char *s, size_t n) {
        size_t len;
        if (s[0] < 0x80)
                return 1;
        else if (s[0] >= 0xC2 && s[0] <= 0xDF)
                len = 2;
        else if (s[0] >= 0xE0 && s[0] <= 0xEF)
                len = 3;
        else if (s[0] >= 0xF0 && s[0] <= 0xF4)
                len = 4;
        else
                return 0;
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++)
                if ((s[i] & 0xC0) != 0x80)
                        return 0;
        return len;
}

/*
 * Finds the lines, and what libyaml would report obscurely or not at all:
 * binary data, invalid UTF-8, tabs in indentation. Returns false when the file
 * cannot be parsed as YAML (the reason has been reported).
 */
static bool prescan(struct loader *l) {
        size_t lines = 1, tabs = 0;
        for (size_t i = 0; i < l->size; i++)
                lines += l->text[i] == '\n';
        l->line_start = calloc(lines, sizeof(size_t));
        if (!l->line_start) {
                l->oom = -ENOMEM;
                return false;
        }
        l->n_lines = 1;
        unsigned column = 0;
        bool indent = true;
        for (size_t i = 0; i < l->size;) {
                unsigned char ch = (unsigned char) l->text[i];
                unsigned line = (unsigned) l->n_lines;
                if (ch == '\0') {
                        error_at_pos(l, line, column + 1, "binary data (a NUL byte): not a YAML text file");
                        return false;
                }
                size_t len = utf8_length((const unsigned char *) l->text + i, l->size - i);
                if (len == 0) {
                        error_at_pos(l, line, column + 1, "invalid UTF-8 (byte 0x%02x): not a YAML text file", ch);
                        return false;
                }
                if (ch == '\n') {
                        l->line_start[l->n_lines++] = i + 1;
                        column = 0;
                        indent = true;
                        i++;
                        continue;
                }
                if (indent && ch == '\t') {
                        /* Only a tab before content matters: YAML indents with spaces alone. */
                        size_t j = i;
                        while (j < l->size && (l->text[j] == ' ' || l->text[j] == '\t'))
                                j++;
                        if (j < l->size && l->text[j] != '\n' && l->text[j] != '#' && l->text[j] != '\r') {
                                error_at_pos(l, line, column + 1, "tab character in indentation (YAML indents with spaces)");
                                tabs++;
                        }
                        indent = false;
                } else if (ch != ' ')
                        indent = false;
                column++;
                i += len;
        }
        return tabs == 0;
}

static void yaml_error(struct loader *l, const yaml_parser_t *parser) {
        if (parser->error == YAML_MEMORY_ERROR) {
                l->oom = -ENOMEM;
                return;
        }
        size_t line = parser->problem_mark.line, column = parser->problem_mark.column;
        if (parser->error == YAML_READER_ERROR) {
                /* Reader errors carry a byte offset, not a mark. */
                line = 0;
                while (line + 1 < l->n_lines && l->line_start[line + 1] <= parser->problem_offset)
                        line++;
                column = parser->problem_offset - (line < l->n_lines ? l->line_start[line] : 0);
        }
        if (parser->context)
                error_at_pos(l, (unsigned) line + 1, (unsigned) column + 1, "YAML syntax error: %s (%s at line %zu, column %zu)",
                             parser->problem ? parser->problem : "invalid YAML", parser->context,
                             parser->context_mark.line + 1, parser->context_mark.column + 1);
        else
                error_at_pos(l, (unsigned) line + 1, (unsigned) column + 1, "YAML syntax error: %s",
                             parser->problem ? parser->problem : "invalid YAML");
}

/* Parses the text into l->doc; false when it has no usable document (reported). */
static bool parse_yaml(struct loader *l, bool *ret_doc) {
        yaml_parser_t parser;
        yaml_document_t extra;
        bool ok = false;

        if (!yaml_parser_initialize(&parser)) {
                l->oom = -ENOMEM;
                return false;
        }
        yaml_parser_set_input_string(&parser, (const unsigned char *) l->text, l->size);
        if (!yaml_parser_load(&parser, &l->doc)) {
                yaml_error(l, &parser);
                goto finish;
        }
        *ret_doc = true;
        const yaml_node_t *root = yaml_document_get_root_node(&l->doc);
        if (!root || scalar_is_null(root)) {
                error_at_pos(l, 1, 1, "empty configuration (expected settings such as 'command:' and 'workers:')");
                goto finish;
        }
        /* A second document would be silently ignored: refuse it. */
        if (!yaml_parser_load(&parser, &extra)) {
                yaml_error(l, &parser);
                goto finish;
        }
        const yaml_node_t *second = yaml_document_get_root_node(&extra);
        if (second)
                error_at(l, second, "a second YAML document (a configuration is one document)");
        yaml_document_delete(&extra);
        ok = !second;
finish:
        yaml_parser_delete(&parser);
        return ok;
}

/* The loader proper, on text that holds size bytes and a NUL after them. */
static int load_text(const char *path, const char *text, size_t size, struct corral_config *ret,
                     struct conf_diagnostics *diag) {
        _cleanup_(config_done) struct corral_config c;
        bool have_doc = false;

        config_init(&c);
        struct loader l = {
                .path = path, .text = text, .size = size, .diag = diag, .first_diag = diag->n_items, .c = &c,
        };
        if (prescan(&l) && parse_yaml(&l, &have_doc)) {
                walk_mapping(&l, yaml_document_get_root_node(&l.doc), top_fields, &c, NULL);
                if (!l.oom && !l.too_many)
                        validate(&l);
        }
        if (have_doc)
                yaml_document_delete(&l.doc);
        free(l.line_start);
        free(l.seen);

        sort_diagnostics(diag, l.first_diag);
        if (l.too_many && conf_diagnostics_add(diag, CONF_ERROR, path, 0, 0,
                                               "too many errors, stopped after %d", CONF_MAX_ERRORS) < 0)
                return -ENOMEM;
        if (l.oom)
                return l.oom;
        if (l.n_errors > 0)
                return -EINVAL;

        c.path = strdup(path);
        if (!c.path)
                return -ENOMEM;
        *ret = c;
        c = (struct corral_config) {};
        return 0;
}

int conf_load(const char *path, struct corral_config *ret, struct conf_diagnostics *diag) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        int r;

        r = read_file(path, diag, &text, &size);
        if (r < 0)
                return r;
        return load_text(path, text, size, ret, diag);
}

int conf_load_text(const char *path, const void *text, size_t size, struct corral_config *ret,
                   struct conf_diagnostics *diag) {
        if (size > CONF_MAX_FILE_SIZE) {
                if (conf_diagnostics_add(diag, CONF_ERROR, path, 0, 0,
                                         "too large (more than %d KiB; a configuration is a few KiB)",
                                         CONF_MAX_FILE_SIZE / 1024) < 0)
                        return -ENOMEM;
                return -EFBIG;
        }
        /* The loader wants a NUL after the text, as read_file leaves one. */
        _cleanup_free_ char *copy = malloc(size + 1);
        if (!copy)
                return -ENOMEM;
        if (size > 0)
                memcpy(copy, text, size);
        copy[size] = '\0';
        return load_text(path, copy, size, ret, diag);
}

/* ------------------------------------------------------------------------ */
/* the built-in default policy */

static void free_rules(struct policy_config *p) {
        for (size_t i = 0; i < p->n_rules; i++) {
                free(p->rules[i].name);
                free(p->rules[i].when_text);
                condition_free(p->rules[i].when);
        }
        free(p->rules);
        p->rules = NULL;
        p->n_rules = 0;
}

int config_default_policy(struct corral_config *c, bool batch) {
        static const struct {
                const char *name, *when;
                usec_t hold;
                int scale;
                bool batch;     /* also in batch mode */
        } rules[] = {
                { "saturated", "pool.cpu > 80% and cpu.busy < 80%", 2 * USEC_PER_SEC,  +1, false },
                /* A neighbour needs the machine: give a worker back. */
                { "neighbour", "cpu.busy > 95% and psi.cpu > 20%",  5 * USEC_PER_SEC,  -1, true },
                { "idle",      "pool.cpu < 20%",                    30 * USEC_PER_SEC, -1, false },
        };
        struct policy_config *p = &c->policy;

        free_rules(p);
        c->workers.min = 1;
        c->workers.max = 0;
        c->workers.initial = 0;
        p->has_target = false;
        p->target_signal = _SIGNAL_INVALID;
        p->has_optimize = batch;
        p->optimize_signal = batch ? SIGNAL_TASKS_RATE : _SIGNAL_INVALID;

        p->rules = calloc(ELEMENTSOF(rules), sizeof(struct rule_config));
        if (!p->rules)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(rules); i++) {
                if (batch && !rules[i].batch)
                        continue;
                struct rule_config *rule = &p->rules[p->n_rules++];
                rule->hold = rules[i].hold;
                rule->scale = rules[i].scale;
                rule->name = strdup(rules[i].name);
                rule->when_text = strdup(rules[i].when);
                if (!rule->name || !rule->when_text ||
                    condition_parse(rules[i].when, &rule->when, NULL, NULL, 0) < 0) {
                        free_rules(p);
                        return -ENOMEM;  /* the texts above are known to parse */
                }
        }
        return 0;
}
