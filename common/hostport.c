/* SPDX-License-Identifier: MIT */
/* HOST:PORT syntax (see hostport.h). */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/hostport.h"

static bool name_valid(const char *h, size_t len) {
        if (len == 0)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!(isalnum((unsigned char) h[i]) || h[i] == '.' || h[i] == '-'))
                        return false;
        return true;
}

static bool ipv6_valid(const char *h, size_t len) {
        return len > 0 && strspn(h, "0123456789abcdefABCDEF:.") >= len && memchr(h, ':', len);
}

int hostport_parse(const char *s, char **ret_host, uint16_t *ret_port) {
        const char *host, *port;
        size_t host_len;

        if (!s)
                return -EINVAL;
        if (s[0] == '[') {
                const char *end = strchr(s, ']');
                if (!end || end[1] != ':')
                        return -EINVAL;
                host = s + 1;
                host_len = (size_t) (end - host);
                if (!ipv6_valid(host, host_len))
                        return -EINVAL;
                port = end + 2;
        } else {
                const char *colon = strrchr(s, ':');
                if (!colon)
                        return -EINVAL;
                host = s;
                host_len = (size_t) (colon - s);
                if (!name_valid(host, host_len))
                        return -EINVAL;
                port = colon + 1;
        }
        size_t digits = strspn(port, "0123456789");
        if (digits == 0 || digits > 5 || port[digits] != '\0')
                return -EINVAL;
        unsigned long v = strtoul(port, NULL, 10);
        if (v > 65535)
                return -EINVAL;
        if (ret_host) {
                char *copy = strndup(host, host_len);
                if (!copy)
                        return -ENOMEM;
                *ret_host = copy;
        }
        if (ret_port)
                *ret_port = (uint16_t) v;
        return 0;
}
