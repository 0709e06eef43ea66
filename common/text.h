/* SPDX-License-Identifier: MIT */
/*
 * A bounded text: printf-style appends into a caller's fixed buffer, for
 * log lines and messages ("rule up: pool.cpu 91% for 2s", "'a', 'b' or
 * 'c'"). An append that does not fit is cut and later ones are dropped; the
 * text stays NUL-terminated. A cut log line is fine; nothing here allocates.
 */
#pragma once

#include <stddef.h>

struct text {
        char *buf;
        size_t size, len;
};

/* A text writing into buf of size bytes (size > 0), starting empty. */
static inline struct text text_init(char *buf, size_t size) {
        buf[0] = '\0';
        return (struct text) { .buf = buf, .size = size };
}

/* Appends the formatted text, cut at the buffer's end. Cannot fail. */
void text_add(struct text *t, const char *format, ...) __attribute__((format(printf, 2, 3)));
