/* SPDX-License-Identifier: MIT */
/* Bounded appends into a fixed buffer (see text.h). */
#include <stdarg.h>
#include <stdio.h>

#include "common/text.h"

void text_add(struct text *t, const char *format, ...) {
        va_list ap;

        if (t->len + 1 >= t->size)
                return;         /* full */
        va_start(ap, format);
        int n = vsnprintf(t->buf + t->len, t->size - t->len, format, ap);
        va_end(ap);
        if (n > 0)
                t->len = t->len + (size_t) n < t->size ? t->len + (size_t) n : t->size - 1;
}
