/* SPDX-License-Identifier: MIT */
/*
 * Parsing a work queue's URL (queue_url.h). The URL is shown in errors with
 * its password masked, since it may end up in a log.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/queue_url.h"

bool queue_url_is(const char *text) {
        return text && strncmp(text, QUEUE_URL_SCHEME, strlen(QUEUE_URL_SCHEME)) == 0;
}

void queue_url_done(struct queue_url *u) {
        free(u->host);
        free(u->user);
        free(u->password);
        free(u->stream);
        free(u->group);
        free(u->consumer);
        *u = (struct queue_url) {};
}

static int hex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* A decoded copy of s[0..len) in *ret. -EINVAL for a bad escape or an
 * escaped NUL; -ENOMEM. */
static int decode(const char *s, size_t len, char **ret) {
        char *out = malloc(len + 1), *o = out;
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                if (s[i] != '%') {
                        *o++ = s[i];
                        continue;
                }
                int h = i + 2 < len ? hex(s[i + 1]) : -1, l = h >= 0 ? hex(s[i + 2]) : -1;
                if (h < 0 || l < 0 || (h == 0 && l == 0)) {
                        free(out);
                        return -EINVAL;
                }
                *o++ = (char) (h * 16 + l);
                i += 2;
        }
        *o = '\0';
        *ret = out;
        return 0;
}

static void masked(const char *text, char *buf, size_t size);

const char *queue_url_masked(const char *text, char *buf, size_t size) {
        if (!queue_url_is(text))
                return text;
        masked(text, buf, size);
        return buf;
}

/* The URL as it may be shown: the password replaced by "***". */
static void masked(const char *text, char *buf, size_t size) {
        const char *rest = text + strlen(QUEUE_URL_SCHEME);
        const char *at = strchr(rest, '@'), *slash = strchr(rest, '/');
        const char *colon = at ? memchr(rest, ':', (size_t) (at - rest)) : NULL;
        if (!at || (slash && slash < at) || !colon)
                snprintf(buf, size, "%s", text);
        else
                snprintf(buf, size, "%.*s:***%s", (int) (colon - text), text, at);
}

static int fail(const char *text, char *error, size_t size, const char *fmt, ...) {
        char shown[256], why[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        masked(text, shown, sizeof(shown));
        snprintf(error, size, "'%s' is not a work queue URL: %s (redis://[:PASSWORD@]HOST:PORT/STREAM"
                 "[?group=G&consumer=C])", shown, why);
        return -EINVAL;
}

/* [[USER]:PASSWORD@] of authority[0..len); *ret_used: the bytes it took. */
static int parse_userinfo(const char *a, size_t len, struct queue_url *u, size_t *ret_used) {
        const char *at = memchr(a, '@', len);
        int r;
        *ret_used = 0;
        if (!at)
                return 0;
        const char *colon = memchr(a, ':', (size_t) (at - a));
        if (!colon)
                return -EINVAL;   /* Redis needs a password; a user alone means nothing */
        if (colon > a && (r = decode(a, (size_t) (colon - a), &u->user)) < 0)
                return r;
        if ((r = decode(colon + 1, (size_t) (at - colon - 1), &u->password)) < 0)
                return r;
        *ret_used = (size_t) (at - a) + 1;
        return 0;
}

/* HOST[:PORT] or [V6][:PORT]. */
static int parse_hostport(const char *text, const char *a, size_t len, struct queue_url *u, char *error,
                          size_t size) {
        const char *end = a + len, *host = a, *host_end, *port = NULL;
        if (len > 0 && *a == '[') {
                host_end = memchr(a, ']', len);
                if (!host_end)
                        return fail(text, error, size, "'[' without ']' in the host");
                host++;
                if (host_end + 1 < end && host_end[1] != ':')
                        return fail(text, error, size, "text after the ']' of the host");
                port = host_end + 1 < end ? host_end + 2 : NULL;
        } else {
                const char *colon = memchr(a, ':', len);
                host_end = colon ? colon : end;
                port = colon ? colon + 1 : NULL;
                if (colon && memchr(colon + 1, ':', (size_t) (end - colon - 1)))
                        return fail(text, error, size, "an IPv6 address needs brackets: [::1]:6379");
        }
        if (host_end == host)
                return fail(text, error, size, "no host");
        u->host = strndup(host, (size_t) (host_end - host));
        if (!u->host)
                return -ENOMEM;
        u->port = QUEUE_DEFAULT_PORT;
        if (!port)
                return 0;
        unsigned long p = 0;
        if (port == end)
                return fail(text, error, size, "no port after ':'");
        for (const char *c = port; c < end; c++) {
                if (*c < '0' || *c > '9' || (p = p * 10 + (unsigned long) (*c - '0')) > 65535)
                        return fail(text, error, size, "the port '%.*s' is not a number 1-65535",
                                    (int) (end - port), port);
        }
        if (p == 0)
                return fail(text, error, size, "the port is 0");
        u->port = (unsigned) p;
        return 0;
}

/* group=G&consumer=C */
static int parse_query(const char *text, const char *q, struct queue_url *u, char *error, size_t size) {
        while (*q) {
                size_t n = strcspn(q, "&");
                const char *eq = memchr(q, '=', n);
                char **slot = NULL;
                if (eq && (size_t) (eq - q) == 5 && strncmp(q, "group", 5) == 0)
                        slot = &u->group;
                else if (eq && (size_t) (eq - q) == 8 && strncmp(q, "consumer", 8) == 0)
                        slot = &u->consumer;
                if (!slot)
                        return fail(text, error, size, "unknown parameter '%.*s' (group=, consumer=)",
                                    (int) (eq ? eq - q : (ptrdiff_t) n), q);
                if (eq + 1 == q + n)
                        return fail(text, error, size, "'%.*s' is empty", (int) (eq - q), q);
                free(*slot);
                *slot = NULL;
                int r = decode(eq + 1, (size_t) (q + n - eq - 1), slot);
                if (r == -EINVAL)
                        return fail(text, error, size, "a bad %%-escape in '%.*s'", (int) n, q);
                if (r < 0)
                        return r;
                q += n + (q[n] == '&');
        }
        return 0;
}

static int parse(const char *text, struct queue_url *u, char *error, size_t size) {
        if (!queue_url_is(text))
                return fail(text, error, size, "it does not start with %s", QUEUE_URL_SCHEME);
        const char *a = text + strlen(QUEUE_URL_SCHEME);
        const char *slash = strchr(a, '/');
        if (!slash)
                return fail(text, error, size, "no /STREAM after the host");
        size_t used, len = (size_t) (slash - a);
        int r = parse_userinfo(a, len, u, &used);
        if (r == -EINVAL)
                return fail(text, error, size, "the part before '@' must be [USER]:PASSWORD");
        if (r < 0)
                return r;
        r = parse_hostport(text, a + used, len - used, u, error, size);
        if (r < 0)
                return r;
        const char *stream = slash + 1, *q = strchr(stream, '?');
        size_t n = q ? (size_t) (q - stream) : strlen(stream);
        if (n == 0)
                return fail(text, error, size, "no stream name after '/'");
        r = decode(stream, n, &u->stream);
        if (r == -EINVAL)
                return fail(text, error, size, "a bad %%-escape in the stream name");
        if (r < 0)
                return r;
        if (q && (r = parse_query(text, q + 1, u, error, size)) < 0)
                return r;
        if (!u->group && !(u->group = strdup(QUEUE_DEFAULT_GROUP)))
                return -ENOMEM;
        return 0;
}

int queue_url_parse(const char *text, struct queue_url *ret, char *error, size_t error_size) {
        struct queue_url u = {};
        int r = parse(text, &u, error, error_size);
        if (r == -ENOMEM)
                snprintf(error, error_size, "out of memory");
        if (r < 0) {
                queue_url_done(&u);
                return r;
        }
        *ret = u;
        return 0;
}
