/* SPDX-License-Identifier: MIT */
/* Counts, durations and signal names, as users write them. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/hostport.h"
#include "common/strdist.h"
#include "conf/config.h"
#include "conf/units.h"

int parse_unsigned(const char *s, unsigned max, unsigned *ret) {
        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        char *end;
        unsigned long v = strtoul(s, &end, 10);
        if (*end != '\0')
                return -EINVAL;
        if (errno == ERANGE || v > max)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

int parse_duration(const char *s, usec_t *ret) {
        static const struct { const char *suffix; usec_t factor; } units[] = {
                { "us", 1 },
                { "ms", USEC_PER_MSEC },
                { "s",  USEC_PER_SEC },
                { "m",  60 * USEC_PER_SEC },
                { "h",  3600 * USEC_PER_SEC },
        };

        if (!s || !(isdigit((unsigned char) s[0]) || s[0] == '.'))
                return -EINVAL;
        errno = 0;
        char *end;
        double v = strtod(s, &end);
        if (end == s || errno == ERANGE || !isfinite(v) || v < 0)
                return -EINVAL;
        if (*end == '\0') {
                if (v != 0)
                        return -EINVAL;   /* a bare number is ambiguous unless it is 0 */
                *ret = 0;
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (strcmp(end, units[i].suffix) == 0) {
                        double us = v * (double) units[i].factor;
                        if (us >= 1e18)
                                return -ERANGE;
                        *ret = (usec_t) llround(us);
                        return 0;
                }
        return -EINVAL;
}

int parse_signal(const char *s, int *ret) {
        if (!s || !*s)
                return -EINVAL;
        if (isdigit((unsigned char) s[0])) {
                unsigned n;
                if (parse_unsigned(s, SIGRTMAX, &n) < 0 || n == 0)
                        return -EINVAL;
                *ret = (int) n;
                return 0;
        }
        if (strncasecmp(s, "SIG", 3) == 0)
                s += 3;
        for (int sig = 1; sig < NSIG; sig++) {
                const char *abbrev = sigabbrev_np(sig);
                if (abbrev && strcasecmp(abbrev, s) == 0) {
                        *ret = sig;
                        return 0;
                }
        }
        return -EINVAL;
}

const char *signal_to_string(int sig, char buf[static 16]) {
        const char *abbrev = sigabbrev_np(sig);
        if (abbrev)
                snprintf(buf, 16, "%s", abbrev);
        else
                snprintf(buf, 16, "SIG%d", sig);
        return buf;
}

int parse_percent(const char *s, double *ret) {
        if (!s || !(isdigit((unsigned char) s[0]) || s[0] == '.'))
                return -EINVAL;
        errno = 0;
        char *end;
        double v = strtod(s, &end);
        if (end == s || errno == ERANGE || !isfinite(v))
                return -EINVAL;
        if (*end == '%')
                end++;
        if (*end != '\0' || memchr(s, 'e', (size_t) (end - s)) || memchr(s, 'E', (size_t) (end - s)) ||
            memchr(s, 'x', (size_t) (end - s)) || memchr(s, 'X', (size_t) (end - s)))
                return -EINVAL;
        if (v < 0 || v > 100)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        static const struct { const char *suffix; uint64_t factor; } units[] = {
                { "",    1 },
                { "B",   1 },
                { "K",   1ULL << 10 }, { "KiB", 1ULL << 10 }, { "KB", 1000ULL },
                { "M",   1ULL << 20 }, { "MiB", 1ULL << 20 }, { "MB", 1000ULL * 1000 },
                { "G",   1ULL << 30 }, { "GiB", 1ULL << 30 }, { "GB", 1000ULL * 1000 * 1000 },
                { "T",   1ULL << 40 }, { "TiB", 1ULL << 40 }, { "TB", 1000ULL * 1000 * 1000 * 1000 },
        };

        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        size_t digits = strspn(s, "0123456789");
        if (digits > 19)
                return -ERANGE;
        errno = 0;
        uint64_t v = strtoull(s, NULL, 10);
        if (errno == ERANGE)
                return -ERANGE;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (strcmp(s + digits, units[i].suffix) == 0) {
                        if (v > UINT64_MAX / units[i].factor)
                                return -ERANGE;
                        *ret = v * units[i].factor;
                        return 0;
                }
        return -EINVAL;
}

int parse_shard(const char *s, unsigned *ret_index, unsigned *ret_count) {
        char buf[32];
        unsigned k, n;

        if (!s || strlen(s) >= sizeof(buf))
                return -EINVAL;
        strcpy(buf, s);
        char *slash = strchr(buf, '/');
        if (!slash)
                return -EINVAL;
        *slash = '\0';
        if (parse_unsigned(buf, COUNT_LIMIT, &k) < 0 || parse_unsigned(slash + 1, COUNT_LIMIT, &n) < 0)
                return -EINVAL;
        if (n == 0 || k >= n)
                return -ERANGE;
        *ret_index = k;
        *ret_count = n;
        return 0;
}

const char *signal_suggest(const char *s) {
        if (!s)
                return NULL;
        if (strncasecmp(s, "SIG", 3) == 0)
                s += 3;
        const char *best = NULL;
        size_t best_d = SIZE_MAX;
        for (int sig = 1; sig < SIGRTMIN; sig++) {
                const char *abbrev = sigabbrev_np(sig);
                if (!abbrev)
                        continue;
                char upper[STRDIST_MAX_LEN + 1];
                size_t len = strlen(s);
                if (len > STRDIST_MAX_LEN)
                        return NULL;
                for (size_t i = 0; i <= len; i++)
                        upper[i] = (char) toupper((unsigned char) s[i]);
                size_t d = strdist(upper, len, abbrev, strlen(abbrev));
                if (strdist_close(upper, len, abbrev) && d < best_d) {
                        best = abbrev;
                        best_d = d;
                }
        }
        return best;
}

int parse_listen_address(const char *s) {
        /* sizeof(sockaddr_un.sun_path) - 1: the kernel's limit for a path. */
        static const size_t unix_path_max = 107;
        uint16_t port;

        if (strncmp(s, LISTEN_UNIX_PREFIX, strlen(LISTEN_UNIX_PREFIX)) == 0) {
                size_t len = strlen(s + strlen(LISTEN_UNIX_PREFIX));
                return len == 0 ? -EINVAL : len > unix_path_max ? -ENAMETOOLONG : 0;
        }
        int r = hostport_parse(s, NULL, &port);
        if (r < 0)
                return r;
        return port == 0 ? -EINVAL : 0;
}
