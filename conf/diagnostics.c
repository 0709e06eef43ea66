/* SPDX-License-Identifier: MIT */
/*
 * Diagnostics: every problem of a file collected as a ready-to-print line
 * ("FILE:LINE:COL: message"), counted, capped at CONF_MAX_ERRORS per load,
 * and sorted into file order, so that one run of `corral check` shows all of
 * them in the order an editor would visit them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/loader.h"

int conf_diagnostics_addv(struct conf_diagnostics *d, enum conf_severity severity, const char *path,
                          unsigned line, unsigned column, const char *format, va_list ap) {
        char text[1024];
        char *message = NULL;

        vsnprintf(text, sizeof(text), format, ap);
        int r;
        const char *warning = severity == CONF_WARNING ? "warning: " : "";
        if (!path)      /* about the command line, not a file */
                r = asprintf(&message, "%s%s", warning, text);
        else if (line > 0)
                r = asprintf(&message, "%s:%u:%u: %s%s", path, line, column, warning, text);
        else
                r = asprintf(&message, "%s: %s%s", path, warning, text);
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
        int r = conf_diagnostics_addv(d, severity, path, line, column, format, ap);
        va_end(ap);
        return r;
}

void conf_diagnostics_done(struct conf_diagnostics *d) {
        for (size_t i = 0; i < d->n_items; i++)
                free(d->items[i].message);
        free(d->items);
        *d = (struct conf_diagnostics) {};
}

void loader_error_at(struct loader *l, unsigned line, unsigned column, const char *format, ...) {
        if (l->n_errors >= CONF_MAX_ERRORS) {
                l->too_many = true;
                return;
        }
        va_list ap;
        va_start(ap, format);
        if (conf_diagnostics_addv(l->diag, CONF_ERROR, l->path, line, column, format, ap) < 0)
                l->oom = -ENOMEM;
        va_end(ap);
        l->n_errors++;
}

/* File order reads best; errors about the same node keep their order of discovery. */
void conf_diagnostics_sort(struct conf_diagnostics *d, size_t first) {
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
