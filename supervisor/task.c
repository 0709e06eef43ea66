/* SPDX-License-Identifier: MIT */
/* Pure helpers of per-task batch mode: buffers, argv substitution, line splitting, output cuts, ordering, the bar. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/task.h"

int strbuf_reserve(struct strbuf *b, size_t n) {
        if (b->cap - b->len >= n)
                return 0;
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) {
                if (cap > SIZE_MAX / 2)
                        return -ENOMEM;
                cap *= 2;
        }
        char *p = realloc(b->data, cap);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->cap = cap;
        return 0;
}

int strbuf_append(struct strbuf *b, const char *s, size_t n) {
        int r = strbuf_reserve(b, n + 1);
        if (r < 0)
                return r;
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

void strbuf_done(struct strbuf *b) {
        free(b->data);
        *b = (struct strbuf) {};
}

size_t task_count_placeholders(const char *arg) {
        size_t n = 0;
        for (const char *p = arg; (p = strstr(p, "{}")); p += 2)
                n++;
        return n;
}

bool task_command_has_placeholder(char *const *command) {
        for (size_t i = 0; command[i]; i++)
                if (strstr(command[i], "{}"))
                        return true;
        return false;
}

/* Writes template with every `{}` replaced by line, and a NUL; returns the end. */
static char *put_arg(char *out, const char *template, const char *line, size_t len) {
        for (const char *p = template;;) {
                const char *ph = strstr(p, "{}");
                size_t lit = ph ? (size_t) (ph - p) : strlen(p);
                memcpy(out, p, lit);
                out += lit;
                if (!ph)
                        break;
                memcpy(out, line, len);
                out += len;
                p = ph + 2;
        }
        *out++ = '\0';
        return out;
}

/* The next line of a task, from *p up to '\n' or end; advances *p past it. */
static size_t next_line(const char **p, const char *end) {
        const char *line = *p;
        const char *nl = memchr(line, '\n', (size_t) (end - line));
        size_t len = nl ? (size_t) (nl - line) : (size_t) (end - line);
        *p = nl ? nl + 1 : end + 1;   /* past end: no more lines */
        return len;
}

int task_argv_build(struct task_argv *a, char *const *command, const char *lines, size_t len) {
        const char *end = lines + len;
        size_t n_lines = 1, n_args = 0, size = 0;
        bool any = false;

        for (const char *p = lines; (p = memchr(p, '\n', (size_t) (end - p))); p++)
                n_lines++;
        /* The bytes of the lines alone, without their separators. */
        size_t text = len - (n_lines - 1);

        /* First the sizes, then the strings: buf may move while it grows, so
         * the pointers are taken only once it is big enough. An argument
         * with `{}` stands once per line. */
        for (size_t i = 0; command[i]; i++) {
                size_t k = task_count_placeholders(command[i]);
                if (k == 0) {
                        n_args++;
                        size += strlen(command[i]) + 1;
                        continue;
                }
                any = true;
                n_args += n_lines;
                size += n_lines * (strlen(command[i]) - 2 * k + 1) + k * text;
        }
        if (!any) {
                n_args += n_lines;
                size += text + n_lines;
        }
        if (a->n_slots < n_args + 1) {
                char **v = reallocarray(a->argv, n_args + 1, sizeof(char *));
                if (!v)
                        return -ENOMEM;
                a->argv = v;
                a->n_slots = n_args + 1;
        }
        a->buf.len = 0;
        if (strbuf_reserve(&a->buf, size) < 0)
                return -ENOMEM;

        char *out = a->buf.data;
        size_t i = 0;
        for (size_t c = 0; command[c]; c++) {
                if (!strstr(command[c], "{}")) {
                        a->argv[i++] = out;
                        out = put_arg(out, command[c], "", 0);
                        continue;
                }
                for (const char *p = lines; p <= end; ) {
                        const char *line = p;
                        size_t l = next_line(&p, end);
                        a->argv[i++] = out;
                        out = put_arg(out, command[c], line, l);
                }
        }
        if (!any)
                for (const char *p = lines; p <= end; ) {
                        const char *line = p;
                        size_t l = next_line(&p, end);
                        a->argv[i++] = out;
                        memcpy(out, line, l);
                        out += l;
                        *out++ = '\0';
                }
        a->argv[i] = NULL;
        a->buf.len = (size_t) (out - a->buf.data);
        return 0;
}

void task_argv_done(struct task_argv *a) {
        free(a->argv);
        strbuf_done(&a->buf);
        *a = (struct task_argv) {};
}

static bool shell_safe(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=:,+@%-", *s))
                        return false;
        return true;
}

/* $'...' with \\, \' and \n escaped. */
static int append_ansi_c(struct strbuf *b, const char *s) {
        int r = strbuf_append(b, "$'", 2);
        for (; r >= 0 && *s; s++)
                r = *s == '\n' ? strbuf_append(b, "\\n", 2) :
                    *s == '\\' ? strbuf_append(b, "\\\\", 2) :
                    *s == '\'' ? strbuf_append(b, "\\'", 2) : strbuf_append(b, s, 1);
        return r < 0 ? r : strbuf_append(b, "'", 1);
}

int task_command_line(struct strbuf *b, char *const *argv) {
        int r = strbuf_reserve(b, 1);
        if (r < 0)
                return r;
        b->data[b->len] = '\0';
        for (size_t i = 0; argv[i]; i++) {
                if (i > 0 && (r = strbuf_append(b, " ", 1)) < 0)
                        return r;
                if (shell_safe(argv[i])) {
                        r = strbuf_append(b, argv[i], strlen(argv[i]));
                        if (r < 0)
                                return r;
                        continue;
                }
                if (strchr(argv[i], '\n')) {
                        /* A newline would split the joblog line: bash's $'...' keeps it on one. */
                        r = append_ansi_c(b, argv[i]);
                        if (r < 0)
                                return r;
                        continue;
                }
                if ((r = strbuf_append(b, "'", 1)) < 0)
                        return r;
                for (const char *p = argv[i]; *p; p++) {
                        r = *p == '\'' ? strbuf_append(b, "'\\''", 4) : strbuf_append(b, p, 1);
                        if (r < 0)
                                return r;
                }
                if ((r = strbuf_append(b, "'", 1)) < 0)
                        return r;
        }
        return 0;
}

int line_reader_space(struct line_reader *r, size_t min, char **ret_ptr, size_t *ret_len) {
        if (r->start > 0 && r->cap - r->end < min) {
                memmove(r->buf, r->buf + r->start, r->end - r->start);
                r->end -= r->start;
                r->start = 0;
        }
        if (r->cap - r->end < min) {
                size_t cap = r->cap ? r->cap : 64 * 1024;
                while (cap - r->end < min)
                        cap *= 2;
                char *p = realloc(r->buf, cap);
                if (!p)
                        return -ENOMEM;
                r->buf = p;
                r->cap = cap;
        }
        *ret_ptr = r->buf + r->end;
        *ret_len = r->cap - r->end;
        return 0;
}

void line_reader_commit(struct line_reader *r, size_t n) {
        if (n == 0)
                r->eof = true;
        r->end += n;
}

/* Drops a line longer than the reader's limit: what is read of it now, the
 * rest as it comes, so memory stays bounded. Returns -E2BIG with its length
 * once its end is dropped too, 0 until then. */
static int line_reader_skip(struct line_reader *r, const char *nl, size_t *ret_len) {
        size_t n = nl ? (size_t) (nl - (r->buf + r->start)) : r->end - r->start;

        r->skipping = true;
        r->skipped += n;
        r->start += n + (nl != NULL);
        if (r->start == r->end)
                r->start = r->end = 0;
        if (!nl && !r->eof)
                return 0;
        *ret_len = r->skipped;
        r->skipping = false;
        r->skipped = 0;
        return -E2BIG;
}

int line_reader_next(struct line_reader *r, char **ret_line, size_t *ret_len) {
        size_t max = r->max ? r->max : TASK_LINE_MAX;
        size_t avail = r->end - r->start;
        char *line = r->buf + r->start;
        char *nl = avail ? memchr(line, '\n', avail) : NULL;
        size_t len = nl ? (size_t) (nl - line) : avail;

        if (r->skipping || len > max)
                return line_reader_skip(r, nl, ret_len);
        if (!nl && !(r->eof && avail > 0))
                return 0;

        if (nl) {
                *nl = '\0';
                r->start += len + 1;
        } else {
                /* The last line without '\n': there is room for the NUL only
                 * if the caller left it, so make sure. */
                char *p;
                size_t n;
                if (line_reader_space(r, 1, &p, &n) < 0)
                        return -ENOMEM;
                line = r->buf + r->start;
                line[len] = '\0';
                r->start += len;
        }
        if (r->start == r->end)
                r->start = r->end = 0;   /* cheap: the next read starts at the front */
        *ret_line = line;
        *ret_len = len;
        return 1;
}

void line_reader_done(struct line_reader *r) {
        free(r->buf);
        *r = (struct line_reader) {};
}

size_t task_output_cut(const char *data, size_t len, size_t cap, bool final) {
        if (final || len == 0)
                return len;
        const char *nl = memrchr(data, '\n', len);
        size_t whole = nl ? (size_t) (nl - data) + 1 : 0;
        return len - whole >= cap ? len : whole;
}

static int order_buffer_grow(struct order_buffer *o, size_t need) {
        size_t cap = o->cap ? o->cap : 64;
        while (cap < need)
                cap *= 2;
        if (cap == o->cap)
                return 0;
        struct order_entry *ring = calloc(cap, sizeof(*ring));
        if (!ring)
                return -ENOMEM;
        /* Entries live at ord % cap: move the ones in flight to their new places. */
        for (size_t i = 0; i < o->cap; i++) {
                uint64_t ord = o->next + i;
                ring[ord & (cap - 1)] = o->ring[ord & (o->cap - 1)];
        }
        free(o->ring);
        o->ring = ring;
        o->cap = cap;
        return 0;
}

static void order_item_free(const struct order_buffer *o, void *item) {
        if (o->free_item && item)
                o->free_item(item);
        else
                free(item);
}

int order_buffer_put(struct order_buffer *o, uint64_t ord, void *item, size_t len) {
        if (ord < o->next) {
                order_item_free(o, item);
                return -EINVAL;
        }
        if (ord - o->next >= o->cap && order_buffer_grow(o, (size_t) (ord - o->next) + 1) < 0) {
                order_item_free(o, item);
                return -ENOMEM;
        }
        struct order_entry *e = &o->ring[ord & (o->cap - 1)];
        *e = (struct order_entry) { .item = item, .len = len, .ready = true };
        return 0;
}

bool order_buffer_pop(struct order_buffer *o, void **ret_item, size_t *ret_len) {
        if (o->cap == 0)
                return false;
        struct order_entry *e = &o->ring[o->next & (o->cap - 1)];
        if (!e->ready)
                return false;
        *ret_item = e->item;
        *ret_len = e->len;
        *e = (struct order_entry) {};
        o->next++;
        return true;
}

void order_buffer_done(struct order_buffer *o) {
        for (size_t i = 0; i < o->cap; i++)
                order_item_free(o, o->ring[i].item);
        free(o->ring);
        *o = (struct order_buffer) { .free_item = o->free_item };
}

static void format_eta(char *buf, size_t size, double seconds) {
        unsigned long s = (unsigned long) (seconds + 0.5);
        if (s >= 3600)
                snprintf(buf, size, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
        else
                snprintf(buf, size, "%lu:%02lu", s / 60, s % 60);
}

void task_bar_format(char *buf, size_t size, unsigned width, uint64_t done, uint64_t total,
                     uint64_t failed, unsigned running, double rate) {
        char tail[160], eta[32] = "?", rate_text[32] = "?";
        int n;

        if (rate >= 0)
                snprintf(rate_text, sizeof(rate_text), "%.0f/s", rate);
        if (total == 0) {
                snprintf(buf, size, "%llu done, %llu failed, %u running, %s",
                         (unsigned long long) done, (unsigned long long) failed, running, rate_text);
                return;
        }
        if (rate > 0 && done <= total)
                format_eta(eta, sizeof(eta), (double) (total - done) / rate);
        else if (done >= total)
                format_eta(eta, sizeof(eta), 0);
        n = snprintf(tail, sizeof(tail), " %llu/%llu %3.0f%% %llu failed, %u running, %s, ETA %s",
                     (unsigned long long) done, (unsigned long long) total,
                     100.0 * (double) (done < total ? done : total) / (double) total,
                     (unsigned long long) failed, running, rate_text, eta);
        if (n < 0)
                n = 0;

        /* The bar takes what the text leaves of the width, at least 10 columns. */
        unsigned bar = width > (unsigned) n + 2 + 10 ? width - (unsigned) n - 2 : 10;
        if (bar > 60)
                bar = 60;
        unsigned fill = (unsigned) ((double) bar * (double) (done < total ? done : total) / (double) total);
        size_t k = 0;
        if (size < (size_t) bar + 3 + (size_t) n + 1) {
                snprintf(buf, size, "%s", tail + 1);
                return;
        }
        buf[k++] = '[';
        for (unsigned i = 0; i < bar; i++)
                buf[k++] = i < fill ? '#' : '-';
        buf[k++] = ']';
        memcpy(buf + k, tail, (size_t) n + 1);
}
