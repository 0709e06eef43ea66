/* SPDX-License-Identifier: MIT */
/* Durations and sizes for people (see format.h). */
#include <inttypes.h>
#include <stdio.h>

#include "common/format.h"

#define FORMAT_DIGITS 4

static unsigned decimal_digits(uint64_t v) {
        unsigned n = 1;
        while (v >= 10) {
                v /= 10;
                n++;
        }
        return n;
}

const char *format_duration(usec_t t, char buf[static FORMAT_MAX]) {
        static const struct {
                const char *suffix;
                usec_t size;
        } units[] = {
                { "h",  3600 * USEC_PER_SEC },
                { "m",  60 * USEC_PER_SEC },
                { "s",  USEC_PER_SEC },
                { "ms", USEC_PER_MSEC },
                { "us", 1 },
        };
        size_t u = 0;

        if (t == USEC_INFINITY) {
                snprintf(buf, FORMAT_MAX, "infinity");
                return buf;
        }
        if (t == 0) {
                snprintf(buf, FORMAT_MAX, "0s");
                return buf;
        }
        while (t < units[u].size)
                u++;
        /* Integer arithmetic, so that truncation is exact: rest < size <= 3.6e9
         * and the scale is at most 1000, far from overflowing. */
        uint64_t whole = t / units[u].size, rest = t % units[u].size;
        unsigned digits = decimal_digits(whole);
        unsigned decimals = digits < FORMAT_DIGITS ? FORMAT_DIGITS - digits : 0;
        uint64_t scale = 1;
        for (unsigned i = 0; i < decimals; i++)
                scale *= 10;
        uint64_t fraction = rest * scale / units[u].size;
        while (decimals > 0 && fraction % 10 == 0) {
                fraction /= 10;
                decimals--;
        }
        /* At most 20 digits, a point, 3 decimals and 2 letters: FORMAT_MAX holds them. */
        char number[24], decimal[24] = "";
        snprintf(number, sizeof(number), "%" PRIu64, whole);
        if (decimals > 0)
                snprintf(decimal, sizeof(decimal), ".%0*" PRIu64, (int) decimals, fraction);
        snprintf(buf, FORMAT_MAX, "%s%s%s", number, decimal, units[u].suffix);
        return buf;
}

const char *format_size(uint64_t bytes, char buf[static FORMAT_MAX]) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        double v = (double) bytes;
        size_t u = 0;

        while (v >= 1024 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024;
                u++;
        }
        snprintf(buf, FORMAT_MAX, "%.4g %s", v, units[u]);
        return buf;
}
