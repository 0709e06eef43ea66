/* SPDX-License-Identifier: MIT */
/*
 * One read of a small file (small_file.h). One read() is enough for the
 * kernel's one-line files, which it writes whole at offset 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "common/small_file.h"
#include "common/util.h"

ssize_t read_small_file(const char *path, char *buf, size_t size) {
        _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return n;
}
