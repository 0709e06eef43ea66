/* SPDX-License-Identifier: MIT */
/*
 * The insides of conf_load(), shared by the files of conf/ that read a file
 * (not for use outside conf/). One load goes:
 *
 *   load.c           the entry points: read, parse, walk, check, validate
 *   yaml_document.c  the file into a libyaml document: size, UTF-8, tabs,
 *                    nesting depth, syntax errors; nodes and positions
 *   schema_walk.c    a mapping walked with a table of fields: unknown and
 *                    duplicate keys, each value parsed by its type
 *   schema.c         the YAML schema: DESIGN.md's keys as tables, the values
 *                    that need their own parser (rules, shared segments), the
 *                    checks of the file's structure, and the origins recorded
 *   validate.c       the relations between values (conf_validate), also run
 *                    by `corral run` after its flags apply
 *   diagnostics.c    the collected, sorted FILE:LINE:COL messages
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "conf/conf.h"

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

/* ---- diagnostics.c ---- */

/* Sorts d's items from first on into file order (stable). */
void conf_diagnostics_sort(struct conf_diagnostics *d, size_t first);

/* Reports an error of the file at a 1-based position; counts it, and stops
 * collecting after CONF_MAX_ERRORS (l->too_many). Out of memory sets l->oom. */
void loader_error_at(struct loader *l, unsigned line, unsigned column, const char *format, ...)
        __attribute__((format(printf, 4, 5)));

/* libyaml marks are 0-based; messages are 1-based. */
#define error_at(l, node, ...) \
        loader_error_at((l), (unsigned) (node)->start_mark.line + 1, (unsigned) (node)->start_mark.column + 1, \
                        __VA_ARGS__)

/* ---- yaml_document.c ---- */

/* Reads the file at path whole (at most CONF_MAX_FILE_SIZE bytes, a NUL
 * after them). Returns 0, or a negative errno with the reason in diag. */
int conf_read_file(const char *path, struct conf_diagnostics *diag, char **ret, size_t *ret_size);
/* 0, or -EFBIG with the diagnostic when size is over CONF_MAX_FILE_SIZE. */
int conf_refuse_too_large(const char *path, size_t size, struct conf_diagnostics *diag);

/* Parses l->text into l->doc after the checks libyaml makes badly or not at
 * all (binary data, invalid UTF-8, tabs in indentation, nesting depth).
 * Returns true with a document whose root is not empty; false after
 * reporting why not. *ret_doc says whether l->doc must be deleted. */
bool yaml_document_read(struct loader *l, bool *ret_doc);

const yaml_node_t *node_get(struct loader *l, int index);
const char *scalar_text(const yaml_node_t *n);
bool scalar_is_null(const yaml_node_t *n);

/* How a node reads in "expected X, got Y": "a mapping", "'text'", ... */
void yaml_node_describe(const yaml_node_t *n, char *buf, size_t size);

/* The 1-based file position of byte offset within scalar n's value (for an
 * error inside a `when:` condition). */
void scalar_position(const struct loader *l, const yaml_node_t *n, size_t offset, unsigned *ret_line,
                     unsigned *ret_column);

/* ---- schema_walk.c ---- */

/* Walks mapping n with fields, writing values relative to base; path is the
 * dotted key of n ("workers"), NULL for the root. Every problem is reported. */
void walk_mapping(struct loader *l, const yaml_node_t *n, const struct field *fields, void *base, const char *path);

/* Marks each key of mapping n that repeats an earlier one in dup[] and reports it. */
void check_duplicates(struct loader *l, const yaml_node_t *n, bool *dup, const char *path);

void type_error(struct loader *l, const yaml_node_t *n, const char *path, const char *what);

/* The text of a scalar that should hold a value, or NULL after reporting why not. */
const char *value_text(struct loader *l, const yaml_node_t *n, const char *path, const char *what);

/* Records that the value at field came from node n (the last one wins). */
void mark_seen(struct loader *l, const void *field, const yaml_node_t *n);

/* The node the value at field came from, or NULL when the file did not set it. */
const yaml_node_t *seen_node(const struct loader *l, const void *field);

/* "path.key" (or "key" for a NULL path) in a new string, or NULL. */
char *path_join(const char *path, const char *key);

bool mapping_has_key(struct loader *l, const yaml_node_t *n, const char *name);

/* ---- schema.c ---- */

/* Walks the document's root with the top-level table into l->c. */
void schema_walk(struct loader *l);

/* The checks of the file's own structure (keys a mapping must have, a '%'
 * the signal does not take, the sample interval), and the origins of the
 * values conf_validate relates, recorded in l->c->origin. */
void schema_check(struct loader *l);
