/* SPDX-License-Identifier: MIT */
/* Atomic replacement of the textfile: temporary file, fsync, rename. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "metrics/textfile.h"

static int write_all(int fd, const char *p, size_t len) {
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

/* Fills the open temporary file and makes it durable before it takes path's place. */
static int fill(int fd, const char *text, size_t len) {
        int r = write_all(fd, text, len);
        if (r < 0)
                return r;
        /* mkostemp makes 0600; the collector usually runs as another user. */
        if (fchmod(fd, 0644) < 0)
                return -errno;
        if (fsync(fd) < 0)
                return -errno;
        return 0;
}

int metrics_textfile_write(const char *path, const char *text, size_t len) {
        _cleanup_free_ char *tmp = NULL;
        int r;

        if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
                return -ENOMEM;
        _cleanup_(closep) int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;

        r = fill(fd, text, len);
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        return r;
}
