/* SPDX-License-Identifier: MIT */
/*
 * conf_load(): a YAML file into a validated struct corral_config. The steps
 * live in the files loader.h lists: the text becomes a libyaml document
 * (yaml_document.c), the document is walked with the schema's tables
 * (schema_walk.c, schema.c), and the values are related (validate.c). The
 * walk never stops at the first problem: every error is collected with its
 * position, and the diagnostics are sorted into file order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conf/loader.h"

/* The relations between values, counted among the load's errors so that the
 * cap and the result (-EINVAL) take them in. */
static void validate(struct loader *l) {
        size_t before = l->diag->n_errors;

        int r = conf_validate(l->c, l->path, false, l->diag);
        if (r == -ENOMEM)
                l->oom = r;
        l->n_errors += l->diag->n_errors - before;
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
        if (yaml_document_read(&l, &have_doc)) {
                schema_walk(&l);
                if (!l.oom && !l.too_many)
                        schema_check(&l);
                if (!l.oom && !l.too_many)
                        validate(&l);
                if (!l.oom && l.n_errors == 0 && c.n_listen > 0 && config_default_listen_policy(&c) < 0)
                        l.oom = -ENOMEM;
        }
        if (have_doc)
                yaml_document_delete(&l.doc);
        free(l.line_start);
        free(l.seen);

        conf_diagnostics_sort(diag, l.first_diag);
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

        r = conf_read_file(path, diag, &text, &size);
        if (r < 0)
                return r;
        return load_text(path, text, size, ret, diag);
}

int conf_load_text(const char *path, const void *text, size_t size, struct corral_config *ret,
                   struct conf_diagnostics *diag) {
        int r = conf_refuse_too_large(path, size, diag);
        if (r < 0)
                return r;
        /* The loader wants a NUL after the text, as read_file leaves one. */
        _cleanup_free_ char *copy = malloc(size + 1);
        if (!copy)
                return -ENOMEM;
        if (size > 0)
                memcpy(copy, text, size);
        copy[size] = '\0';
        return load_text(path, copy, size, ret, diag);
}
