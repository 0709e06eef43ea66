/* SPDX-License-Identifier: MIT */
/*
 * A task's collected output, in memory and then in an unlinked temporary
 * file (see spool.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "supervisor/spool.h"

/* An unlinked file in $TMPDIR (or /tmp): O_TMPFILE where the filesystem
 * has it, else a named file unlinked at once. */
static int spool_open_file(void) {
        const char *dir = getenv("TMPDIR");
        if (!dir || !*dir)
                dir = "/tmp";
        int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
                return fd >= 0 ? fd : -errno;
        char path[4096];
        if (snprintf(path, sizeof(path), "%s/corral-output-XXXXXX", dir) >= (int) sizeof(path))
                return -ENAMETOOLONG;
        fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        (void) unlink(path);
        return fd;
}

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EIO;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int spool_spill(struct spool *o) {
        if (o->fd >= 0)
                return 0;
        int fd = spool_open_file();
        if (fd < 0)
                return fd;
        int r = write_all(fd, o->mem.data, o->mem.len);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        o->fd = fd;
        o->file_len = o->mem.len;
        strbuf_done(&o->mem);
        return 0;
}

int spool_append(struct spool *o, const char *p, size_t n, size_t mem_max) {
        int r;
        if (o->fd < 0 && o->mem.len + n > mem_max && (r = spool_spill(o)) < 0)
                return r;
        if (o->fd < 0)
                return strbuf_append(&o->mem, p, n);
        /* O_APPEND is not needed: the file is ours and only ever appended to. */
        if (lseek(o->fd, (off_t) o->file_len, SEEK_SET) < 0)
                return -errno;
        r = write_all(o->fd, p, n);
        if (r < 0) {
                (void) !ftruncate(o->fd, (off_t) o->file_len);
                return r;
        }
        o->file_len += n;
        return 0;
}

uint64_t spool_len(const struct spool *o) {
        return o->fd >= 0 ? o->file_len : o->mem.len;
}

int spool_to_sink(struct spool *o, struct sink *s) {
        int r;
        if (o->fd >= 0) {
                r = sink_write_file(s, o->fd, o->file_len);
                o->fd = -EBADF;
                o->file_len = 0;
        } else
                r = sink_write_buf(s, &o->mem);
        return r;
}

void spool_done(struct spool *o) {
        strbuf_done(&o->mem);
        o->fd = safe_close(o->fd);
        o->file_len = 0;
}
