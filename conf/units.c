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

const char *format_duration(usec_t t, char buf[static 32]) {
        if (t == USEC_INFINITY)
                snprintf(buf, 32, "infinity");
        else if (t == 0)
                snprintf(buf, 32, "0");
        else if (t < USEC_PER_MSEC)
                snprintf(buf, 32, "%" PRIu64 "us", t);
        else if (t < USEC_PER_SEC)
                snprintf(buf, 32, "%.4gms", (double) t / (double) USEC_PER_MSEC);
        else if (t < 60 * USEC_PER_SEC)
                snprintf(buf, 32, "%.4gs", (double) t / (double) USEC_PER_SEC);
        else if (t < 3600 * USEC_PER_SEC)
                snprintf(buf, 32, "%.4gm", (double) t / (double) (60 * USEC_PER_SEC));
        else
                snprintf(buf, 32, "%.4gh", (double) t / (double) (3600 * USEC_PER_SEC));
        return buf;
}
