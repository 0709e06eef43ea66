/* SPDX-License-Identifier: MIT */
/* GNU parallel's joblog: formatting a line, parsing one back, and the resume sets. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "supervisor/joblog.h"

int joblog_format_header(struct strbuf *b) {
        return strbuf_append(b, JOBLOG_HEADER "\n", sizeof(JOBLOG_HEADER));
}

int joblog_format(struct strbuf *b, const struct joblog_entry *e) {
#define FIELDS "%llu\t:\t%.3f\t%10.3f\t%llu\t%llu\t%d\t%d\t"
#define FIELD_ARGS (unsigned long long) e->seq, e->start, e->runtime, (unsigned long long) e->send, \
                   (unsigned long long) e->receive, e->exitval, e->signal
        /* GNU parallel: Host is ":" for the local machine, the runtime is
         * right-aligned in 10 columns. Measured first: a time read back from
         * a joblog may be as large as 1e308, 309 digits. */
        size_t cmd = strlen(e->command);
        int n = snprintf(NULL, 0, FIELDS, FIELD_ARGS);
        if (n < 0)
                return -EINVAL;
        int r = strbuf_reserve(b, (size_t) n + cmd + 2);
        if (r < 0)
                return r;
        if (snprintf(b->data + b->len, b->cap - b->len, FIELDS, FIELD_ARGS) != n)
                return -EINVAL;
#undef FIELDS
#undef FIELD_ARGS
        b->len += (size_t) n;
        memcpy(b->data + b->len, e->command, cmd);
        b->len += cmd;
        b->data[b->len++] = '\n';
        b->data[b->len] = '\0';
        return 0;
}

#define fail(...) (snprintf(error, error_size, __VA_ARGS__), -EINVAL)

static bool parse_u64(const char *s, unsigned long long *ret) {
        char *end;
        while (*s == ' ')
                s++;
        if (*s < '0' || *s > '9')
                return false;
        errno = 0;
        *ret = strtoull(s, &end, 10);
        return errno == 0 && *end == '\0';
}

static bool parse_int(const char *s, int *ret) {
        char *end;
        while (*s == ' ')
                s++;
        if (!*s)
                return false;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno != 0 || *end != '\0' || v < -1000000 || v > 1000000)
                return false;
        *ret = (int) v;
        return true;
}

static bool parse_seconds(const char *s, double *ret) {
        char *end;
        while (*s == ' ')
                s++;
        if (*s < '0' || *s > '9')
                return false;
        errno = 0;
        *ret = strtod(s, &end);
        return errno == 0 && *end == '\0';
}

int joblog_parse_line(char *line, struct joblog_entry *ret, char *error, size_t error_size) {
        static const char *const names[] = { "Seq", "Host", "Starttime", "JobRuntime", "Send",
                                             "Receive", "Exitval", "Signal" };
        char *field[8];
        char *p = line;
        unsigned long long seq, send, receive;
        struct joblog_entry e = {};

        /* Eight tab-terminated fields; the command is the rest, tabs and all. */
        for (size_t i = 0; i < ELEMENTSOF(field); i++) {
                char *tab = strchr(p, '\t');
                if (!tab)
                        return fail("%zu fields where 9 are expected (%s)", i + 1, JOBLOG_HEADER);
                *tab = '\0';
                field[i] = p;
                p = tab + 1;
        }
        if (!parse_u64(field[0], &seq) || seq == 0)
                return fail("%s '%s' is not a task number (1, 2, ...)", names[0], field[0]);
        if (!parse_seconds(field[2], &e.start))
                return fail("%s '%s' is not a time in seconds", names[2], field[2]);
        if (!parse_seconds(field[3], &e.runtime))
                return fail("%s '%s' is not a duration in seconds", names[3], field[3]);
        if (!parse_u64(field[4], &send))
                return fail("%s '%s' is not a byte count", names[4], field[4]);
        if (!parse_u64(field[5], &receive))
                return fail("%s '%s' is not a byte count", names[5], field[5]);
        if (!parse_int(field[6], &e.exitval))
                return fail("%s '%s' is not an exit status", names[6], field[6]);
        if (!parse_int(field[7], &e.signal) || e.signal < 0)
                return fail("%s '%s' is not a signal number", names[7], field[7]);
        e.seq = seq;
        e.send = send;
        e.receive = receive;
        e.command = p;
        *ret = e;
        return 0;
}

static uint64_t hash_seq(uint64_t x) {
        /* splitmix64's finaliser: Seqs are consecutive, the slots should not be. */
        x ^= x >> 30;
        x *= 0xbf58476d1ce4e5b9ULL;
        x ^= x >> 27;
        x *= 0x94d049bb133111ebULL;
        return x ^ (x >> 31);
}

static struct joblog_seq *state_find(const struct joblog_state *s, uint64_t seq) {
        if (s->cap == 0)
                return NULL;
        for (size_t i = hash_seq(seq) & (s->cap - 1);; i = (i + 1) & (s->cap - 1))
                if (s->table[i].seq == seq || s->table[i].seq == 0)
                        return &s->table[i];
}

static int state_grow(struct joblog_state *s) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        struct joblog_state next = { .table = calloc(cap, sizeof(struct joblog_seq)), .cap = cap, .n = s->n };
        if (!next.table)
                return -ENOMEM;
        for (size_t i = 0; i < s->cap; i++)
                if (s->table[i].seq)
                        *state_find(&next, s->table[i].seq) = s->table[i];
        free(s->table);
        *s = next;
        return 0;
}

int joblog_state_add(struct joblog_state *s, const struct joblog_entry *e) {
        /* Kept at most half full, so probes stay short and always end. */
        if ((s->n + 1) * 2 > s->cap) {
                int r = state_grow(s);
                if (r < 0)
                        return r;
        }
        struct joblog_seq *q = state_find(s, e->seq);
        if (q->seq == 0) {
                q->seq = e->seq;
                s->n++;
        }
        if (joblog_entry_ok(e))
                q->ok = true;
        else if (q->failed < UINT32_MAX)
                q->failed++;
        return 0;
}

bool joblog_state_done(const struct joblog_state *s, uint64_t seq, bool resume_failed, unsigned retries) {
        const struct joblog_seq *q = state_find(s, seq);
        if (!q || q->seq == 0)
                return false;
        if (q->ok)
                return true;
        return !resume_failed && q->failed > retries;
}

void joblog_state_free(struct joblog_state *s) {
        free(s->table);
        *s = (struct joblog_state) {};
}

/*
 * A joblog is never reached through a symbolic link (O_NOFOLLOW on the last
 * component): a fresh run truncates it, and a link planted in a shared
 * directory (/tmp) would have corral, maybe as root, clobber the file it
 * points to.
 */
static void describe_open_error(const char *path, int r, char *error, size_t error_size) {
        if (r == -ELOOP)
                snprintf(error, error_size,
                         "the joblog %s is a symbolic link; refusing to follow it (give the file it points to)",
                         path);
        else
                snprintf(error, error_size, "cannot write the joblog %s: %s", path, strerror(-r));
}

int joblog_open(const char *path, bool append, char *error, size_t error_size) {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | (append ? 0 : O_TRUNC),
                      0644);
        if (fd < 0) {
                int r = -errno;
                describe_open_error(path, r, error, error_size);
                return r;
        }
        return fd;
}

int joblog_read(const char *path, struct joblog_state *ret, char *error, size_t error_size) {
        _cleanup_(fclosep) FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        struct joblog_state s = {};
        size_t size = 0, lineno = 0;
        ssize_t n;
        char why[160];
        int r = 0;

        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0) {
                if (errno == ENOENT)
                        return *ret = s, 0;
                r = -errno;
                if (r == -ELOOP)
                        describe_open_error(path, r, error, error_size);
                else
                        snprintf(error, error_size, "%s: %s", path, strerror(-r));
                return r;
        }
        f = fdopen(fd, "r");
        if (!f) {
                r = -errno;
                safe_close(fd);
                snprintf(error, error_size, "%s: %s", path, strerror(-r));
                return r;
        }
        while ((n = getline(&line, &size, f)) >= 0) {
                struct joblog_entry e;
                lineno++;
                if (n == 0 || line[n - 1] != '\n') {
                        r = fail("%s:%zu: the last line is cut short (no newline)", path, lineno);
                        break;
                }
                line[n - 1] = '\0';
                if (lineno == 1) {
                        if (strcmp(line, JOBLOG_HEADER) != 0) {
                                r = fail("%s:1: not a joblog: the first line must be the header '%s'",
                                         path, JOBLOG_HEADER);
                                break;
                        }
                        continue;
                }
                if (joblog_parse_line(line, &e, why, sizeof(why)) < 0) {
                        r = fail("%s:%zu: %s", path, lineno, why);
                        break;
                }
                r = joblog_state_add(&s, &e);
                if (r < 0) {
                        snprintf(error, error_size, "%s: %s", path, strerror(-r));
                        break;
                }
        }
        if (r == 0 && ferror(f)) {
                r = -EIO;
                snprintf(error, error_size, "%s: %s", path, strerror(EIO));
        }
        if (r < 0) {
                joblog_state_free(&s);
                return r;
        }
        *ret = s;
        return 0;
}

#undef fail   /* not into the next file of a unity build */
