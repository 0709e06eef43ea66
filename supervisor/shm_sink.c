/* SPDX-License-Identifier: MIT */
/*
 * Filling a memfd with a segment's data, without passing it through corral's
 * memory where the kernel allows it: sendfile from a file (copy_file_range
 * refuses to cross from ext4 into a memfd with EXDEV), splice from a pipe.
 * Huge-page memfds take no write(), so there the data is read into a shared
 * mapping of the memfd, one window at a time, which also reserves the huge
 * pages window by window and so fails cleanly (ENOMEM at mmap, not SIGBUS)
 * when they run out.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libproc2/meminfo.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "supervisor/shm_sink.h"

/* Kernel 6.3; Debian 12's headers lack it. No exec from the segment either. */
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

/* sendfile and splice move at most this much per call. */
#define COPY_CHUNK ((uint64_t) 0x7ffff000)

/* Huge-page memfds are filled through windows of this size (or one huge page). */
#define HUGE_WINDOW ((uint64_t) 64 << 20)

int shm_fail(struct shm_error *err, int r, const char *name, const char *format, ...) {
        va_list ap;
        int n = snprintf(err->message, sizeof(err->message), "shared segment '%s': ", name);
        if (n < 0 || (size_t) n >= sizeof(err->message))
                return r;
        va_start(ap, format);
        (void) vsnprintf(err->message + n, sizeof(err->message) - (size_t) n, format, ap);
        va_end(ap);
        return r;
}


/* Fresh values (select, not get: MEMINFO_GET caches for a second). The
 * file is closed again before any worker is spawned, so libproc2's missing
 * O_CLOEXEC does not matter here. */
static int meminfo_read(enum meminfo_item *items, int n, uint64_t *ret) {
        struct meminfo_info *info = NULL;
        int r = procps_meminfo_new(&info);
        if (r < 0)
                return r;
        struct meminfo_stack *m = procps_meminfo_select(info, items, n);
        if (m)
                for (int i = 0; i < n; i++)
                        ret[i] = m->head[i].result.ul_int;
        procps_meminfo_unref(&info);
        return m ? 0 : -EIO;
}

int shm_mem_available(uint64_t *ret) {
        enum meminfo_item item = MEMINFO_MEM_AVAILABLE;
        uint64_t kib;
        int r = meminfo_read(&item, 1, &kib);
        if (r < 0)
                return r;
        *ret = kib * 1024;
        return 0;
}

int shm_huge_pages(uint64_t *ret_page_size, uint64_t *ret_total, uint64_t *ret_free) {
        enum meminfo_item items[] = { MEMINFO_MEM_HUGE_SIZE, MEMINFO_MEM_HUGE_TOTAL, MEMINFO_MEM_HUGE_FREE };
        uint64_t v[3];
        int r = meminfo_read(items, 3, v);
        if (r < 0)
                return r;
        *ret_page_size = v[0] * 1024;
        *ret_total = v[1];
        *ret_free = v[2];
        return 0;
}

void shm_sink_unmap(struct shm_sink *k) {
        if (k->window)
                (void) munmap(k->window, k->window_len);
        k->window = NULL;
}

/* Maps the next window of a huge-page memfd once the current one is full.
 * A mapping reserves all its huge pages up front, so a window never reaches
 * past what is needed: up to HUGE_WINDOW of a file's known size, one page at
 * a time of a command's output. The load then fits in exactly the pages the
 * data fills. */
static int sink_next_window(struct shm_sink *k, struct shm_error *err) {
        uint64_t off = k->window_off + k->window_len, len = k->page;

        if (k->expect > k->size)
                len = round_up(k->expect - k->size < HUGE_WINDOW ? k->expect - k->size : HUGE_WINDOW, k->page);
        if (len > round_up(k->limit + 1 - k->size, k->page))
                len = round_up(k->limit + 1 - k->size, k->page);

        shm_sink_unmap(k);
        if (ftruncate(k->fd, (off_t) (off + len)) < 0)
                return shm_fail(err, -errno, k->name, "cannot grow the huge-page memfd: %s", strerror(errno));
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, k->fd, (off_t) off);
        if (p == MAP_FAILED) {
                int r = -errno;
                uint64_t page_size = 0, total = 0, free_pages = 0;
                (void) shm_huge_pages(&page_size, &total, &free_pages);
                if (r == -ENOMEM)
                        return shm_fail(err, r, k->name,
                                    "not enough free huge pages (HugePages_Free %" PRIu64 ", %" PRIu64
                                    " KiB each; reserve more with vm.nr_hugepages, or drop 'huge: true')",
                                    free_pages, k->page / 1024);
                return shm_fail(err, r, k->name, "cannot map the huge-page memfd: %s", strerror(-r));
        }
        k->window = p;
        k->window_off = off;
        k->window_len = len;
        return 0;
}

/* COPY_HUGE: reads into the window. When it is full, one byte is read
 * first, so that an input that ends exactly there costs no further page. */
static ssize_t sink_read_huge(struct shm_sink *k, int in, uint64_t want, struct shm_error *err,
                              int *ret_window_error) {
        if (k->window && k->size < k->window_off + k->window_len) {
                uint64_t room = k->window_off + k->window_len - k->size;
                return read(in, k->window + (k->size - k->window_off), want < room ? want : room);
        }
        uint8_t first;
        ssize_t n = read(in, &first, 1);
        if (n <= 0)
                return n;
        int r = sink_next_window(k, err);
        if (r < 0) {
                *ret_window_error = r;
                return -1;
        }
        k->window[k->size - k->window_off] = first;
        return 1;
}

static ssize_t sink_read_write(struct shm_sink *k, int in, size_t want) {
        char buf[64 * 1024];
        ssize_t n = read(in, buf, want < sizeof(buf) ? want : sizeof(buf));
        if (n <= 0)
                return n;
        for (ssize_t done = 0; done < n;) {
                ssize_t w = write(k->fd, buf + done, (size_t) (n - done));
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return -1;
                done += w;
        }
        return n;
}

/* One step of the copy: bytes moved, 0 at end of input, -1 with errno. */
ssize_t shm_sink_step(struct shm_sink *k, int in, struct shm_error *err, int *ret_window_error) {
        /* One byte more than the limit tells "exactly max" from "over max". */
        uint64_t want = k->limit + 1 - k->size;
        if (want > COPY_CHUNK)
                want = COPY_CHUNK;

        switch (k->mode) {
        case COPY_SENDFILE:
                return sendfile(k->fd, in, NULL, want);
        case COPY_SPLICE:
                return splice(in, NULL, k->fd, NULL, want, SPLICE_F_MOVE);
        case COPY_READ_WRITE:
                return sink_read_write(k, in, want);
        case COPY_HUGE:
                return sink_read_huge(k, in, want, err, ret_window_error);
        }
        errno = EINVAL;
        return -1;
}

/* Copies `in` (a file) to its end into the memfd. Returns 0, -EFBIG past
 * the limit (err not filled: the caller knows what the input was), or a
 * negative errno with err filled. */
int shm_sink_fill(struct shm_sink *k, int in, const char *what, struct shm_error *err) {
        for (;;) {
                int window_error = 0;
                ssize_t n = shm_sink_step(k, in, err, &window_error);
                if (n < 0 && window_error < 0)
                        return window_error;
                if (n < 0 && errno == EINTR)
                        continue;
                /* The kernel may refuse sendfile/splice for this pair of files:
                 * the offsets are where they were, so go on the slow way. */
                if (n < 0 && (errno == EINVAL || errno == ENOSYS) && k->mode != COPY_READ_WRITE &&
                    k->mode != COPY_HUGE) {
                        k->mode = COPY_READ_WRITE;
                        continue;
                }
                if (n < 0)
                        return shm_fail(err, -errno, k->name, "cannot read %s: %s", what, strerror(errno));
                if (n == 0)
                        return 0;
                k->size += (uint64_t) n;
                if (k->size > k->limit)
                        return -EFBIG;
        }
}

int shm_memfd_new(const struct shared_config *sc, struct shm_error *err) {
        char name[80];
        unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING | (sc->huge ? MFD_HUGETLB : 0);

        /* Shows in /proc/PID/maps as "/memfd:corral:NAME (deleted)". */
        snprintf(name, sizeof(name), "corral:%s", sc->name);
        int fd = memfd_create(name, flags | MFD_NOEXEC_SEAL);
        if (fd < 0 && errno == EINVAL)  /* before 6.3 */
                fd = memfd_create(name, flags);
        if (fd < 0 && sc->huge && errno == EINVAL)
                return shm_fail(err, -errno, sc->name, "huge: true, but this kernel has no huge-page memfds (hugetlbfs)");
        if (fd < 0)
                return shm_fail(err, -errno, sc->name, "cannot create a memfd: %s", strerror(errno));
        return fd;
}

/* Checks before creating anything, so that the message says what to do. */
int shm_huge_check(const struct shared_config *sc, uint64_t *ret_page, struct shm_error *err) {
        uint64_t page = 0, total = 0, free_pages = 0;
        if (shm_huge_pages(&page, &total, &free_pages) < 0 || page == 0)
                return shm_fail(err, -EOPNOTSUPP, sc->name, "huge: true, but this system has no huge pages");
        if (total == 0)
                return shm_fail(err, -ENOMEM, sc->name,
                            "huge: true, but no huge pages are reserved (vm.nr_hugepages is 0); "
                            "reserve some or drop 'huge: true'");
        *ret_page = page;
        return 0;
}

