/* SPDX-License-Identifier: MIT */
/*
 * --results FILE: JSON lines written with json-c, one write() per record
 * (O_APPEND, so a line is never interleaved with another writer's), nothing
 * buffered in corral: what a reader sees is every result so far.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "common/util.h"
#include "conf/queue_url.h"
#include "supervisor/log.h"
#include "supervisor/results_file.h"

struct results_file {
        int fd;
};

enum results_kind results_kind(const char *value) {
        if (!value || !*value)
                return RESULTS_NONE;
        if (strncmp(value, "redis://", strlen("redis://")) == 0)
                return RESULTS_REDIS;
        return RESULTS_FILE;
}

int results_file_open(const char *path, bool append, struct results_file **ret) {
        struct results_file *f = malloc(sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | (append ? 0 : O_TRUNC),
                     0644);
        if (f->fd < 0) {
                int r = -errno;
                free(f);
                return r;
        }
        *ret = f;
        return 0;
}

int results_file_open_logged(const char *path, bool append, struct results_file **ret) {
        int r = results_file_open(path, append, ret);
        if (r == -ELOOP)
                log_error("--results %s is a symbolic link; refusing to write through it", path);
        else if (r < 0)
                log_error_errno(r, "cannot write the results to %s: %m", path);
        return r;
}

int results_file_open_config(const char *results, const char *from, bool append, struct results_file **ret) {
        switch (results_kind(results)) {
        case RESULTS_NONE:
                return 0;
        case RESULTS_REDIS:
                if (queue_url_is(from))
                        return 0;   /* the queue's source writes them */
                log_error("tasks.results: %s is a queue's results stream, which needs tasks.from: redis://...", results);
                return -EINVAL;
        case RESULTS_FILE:
                break;
        }
        return results_file_open_logged(results, append, ret);
}

struct results_file *results_file_free(struct results_file *f) {
        if (f) {
                safe_close(f->fd);
                free(f);
        }
        return NULL;
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
        size_t len = p[0] < 0x80 ? 1 : (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3 :
                     (p[0] & 0xf8) == 0xf0 ? 4 : 0;
        if (len == 0 || len > n || (len == 2 && p[0] < 0xc2))
                return 0;
        for (size_t i = 1; i < len; i++)
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
        if (len == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0)))
                return 0;   /* overlong, or a surrogate */
        if (len == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || p[0] > 0xf4 || (p[0] == 0xf4 && p[1] >= 0x90)))
                return 0;
        return len;
}

/* A JSON string of the bytes, at most max of them: JSON is text, and a
 * reader such as Python's json refuses bytes that are not UTF-8, so those
 * become U+FFFD. NULL on ENOMEM. */
static json_object *text(const char *s, size_t len, size_t max) {
        const unsigned char *p = (const unsigned char *) s;
        size_t n = len < max ? len : max, size = 0;
        _cleanup_free_ char *buf = malloc(3 * n + 1);
        if (!buf)
                return NULL;
        for (size_t i = 0; i < n; ) {
                size_t k = utf8_seq(p + i, n - i);
                if (k == 0) {
                        memcpy(buf + size, "\xef\xbf\xbd", 3);
                        size += 3;
                        i++;
                        continue;
                }
                memcpy(buf + size, p + i, k);
                size += k;
                i += k;
        }
        return json_object_new_string_len(buf, (int) size);
}

static int add(json_object *o, const char *key, json_object *v) {
        if (!v)
                return -ENOMEM;
        return json_object_object_add(o, key, v) < 0 ? -ENOMEM : 0;
}

static int add_output(json_object *o, const char *key, const char *flag, const char *s, size_t len, bool more) {
        if (!s)
                return json_object_object_add(o, key, NULL) < 0 ? -ENOMEM : 0;
        int r = add(o, key, text(s, len, RESULTS_OUTPUT_MAX));
        if (r < 0)
                return r;
        return add(o, flag, json_object_new_boolean(more || len > RESULTS_OUTPUT_MAX));
}

/* Seconds to the microsecond: json-c would print 17 digits of noise. */
static json_object *duration(double seconds) {
        char s[32];
        snprintf(s, sizeof(s), "%.6f", seconds);
        return json_object_new_double_s(seconds, s);
}

static json_object *record_json(const struct result_record *r) {
        json_object *o = json_object_new_object();
        int e = o ? 0 : -ENOMEM;

        if (e >= 0)
                e = add(o, "seq", json_object_new_uint64(r->seq));
        if (e >= 0)
                e = r->task ? add(o, "task", text(r->task, r->task_len, SIZE_MAX)) :
                              (json_object_object_add(o, "task", NULL) < 0 ? -ENOMEM : 0);
        if (e >= 0)
                e = r->exited ? add(o, "exit", json_object_new_int(r->exit)) :
                                (json_object_object_add(o, "exit", NULL) < 0 ? -ENOMEM : 0);
        if (e >= 0)
                e = add(o, "signal", json_object_new_int(r->signal));
        if (e >= 0)
                e = add(o, "duration", duration(r->duration));
        if (e >= 0)
                e = add_output(o, "stdout", "stdout_truncated", r->out, r->out_len, r->out_truncated);
        if (e >= 0)
                e = add_output(o, "stderr", "stderr_truncated", r->err, r->err_len, r->err_truncated);
        if (e >= 0 && r->error)
                e = add(o, "error", json_object_new_string(r->error));
        if (e < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

int results_file_write(struct results_file *f, const struct result_record *r) {
        json_object *o = record_json(r);
        if (!o)
                return -ENOMEM;
        size_t len;
        const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                                          &len);
        _cleanup_free_ char *line = s ? malloc(len + 1) : NULL;
        if (!line) {
                json_object_put(o);
                return -ENOMEM;
        }
        memcpy(line, s, len);
        line[len] = '\n';
        json_object_put(o);
        /* One write(): O_APPEND keeps the line whole; a short write on a
         * full disk is the caller's error to report. */
        ssize_t n;
        do
                n = write(f->fd, line, len + 1);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        return (size_t) n == len + 1 ? 0 : -ENOSPC;
}
