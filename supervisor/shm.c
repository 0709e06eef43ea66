/* SPDX-License-Identifier: MIT */
/*
 * Loading shared segments into sealed memfds, and the reference-counted sets
 * that let an old generation live on while its workers run (see shm.h).
 *
 * Data reaches the memfd without passing through corral's memory where the
 * kernel allows it: sendfile from a file (copy_file_range refuses to cross
 * from ext4 into a memfd with EXDEV), splice from a command's pipe. Huge-page
 * memfds take no write(), so there the data is read into a shared mapping of
 * the memfd, one window at a time, which also reserves the huge pages window
 * by window and so fails cleanly (ENOMEM at mmap, not SIGBUS) when they run out.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "conf/units.h"
#include "supervisor/child.h"
#include "supervisor/shm.h"

/* Kernel 6.3; Debian 12's headers lack it. No exec from the segment either. */
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

#define SHM_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* sendfile and splice move at most this much per call. */
#define COPY_CHUNK ((uint64_t) 0x7ffff000)

/* Huge-page memfds are filled through windows of this size (or one huge page). */
#define HUGE_WINDOW ((uint64_t) 64 << 20)

extern char **environ;

static __attribute__((format(printf, 4, 5))) int fail(struct shm_error *err, int r, const char *name,
                                                        const char *format, ...) {
        va_list ap;
        int n = snprintf(err->message, sizeof(err->message), "shared segment '%s': ", name);
        if (n < 0 || (size_t) n >= sizeof(err->message))
                return r;
        va_start(ap, format);
        (void) vsnprintf(err->message + n, sizeof(err->message) - (size_t) n, format, ap);
        va_end(ap);
        return r;
}

/* A /proc/meminfo value: "kB" values in bytes, plain counts as they are. */
static int meminfo_get(const char *key, uint64_t *ret) {
        _cleanup_(fclosep) FILE *f = fopen("/proc/meminfo", "re");
        char line[256];
        size_t len = strlen(key);

        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                if (strncmp(line, key, len) != 0 || line[len] != ':')
                        continue;
                char *end;
                errno = 0;
                unsigned long long v = strtoull(line + len + 1, &end, 10);
                if (errno != 0 || end == line + len + 1)
                        return -EBADMSG;
                *ret = strstr(end, "kB") ? (uint64_t) v * 1024 : (uint64_t) v;
                return 0;
        }
        return -ENOENT;
}

int shm_default_max_size(uint64_t *ret) {
        uint64_t avail;
        int r = meminfo_get("MemAvailable", &avail);
        if (r < 0)
                return r;
        *ret = avail / 2;
        return 0;
}

/* "zcat /srv/ref.gz" for messages, shortened if long. */
static const char *command_text(char *const *argv, char *buf, size_t size) {
        size_t n = 0;
        buf[0] = '\0';
        for (size_t i = 0; argv[i] && n + 1 < size; i++) {
                int k = snprintf(buf + n, size - n, "%s%s", i ? " " : "", argv[i]);
                if (k < 0)
                        break;
                n += (size_t) k;
        }
        return buf;
}

/* ------------------------------------------------------------------------ */
/* filling a memfd */

enum copy_mode {
        COPY_SENDFILE,   /* from a file */
        COPY_SPLICE,     /* from a pipe */
        COPY_READ_WRITE, /* from anything else, or where the kernel refused the above */
        COPY_HUGE,       /* read() into a mapping: hugetlbfs takes no write() */
};

struct sink {
        const char *name;        /* for messages */
        int fd;                  /* the writable memfd */
        enum copy_mode mode;
        uint64_t limit;          /* max bytes */
        uint64_t size;           /* bytes in so far */
        uint64_t expect;         /* a file's size, 0 if unknown */
        uint64_t page;           /* huge page size */
        uint8_t *window;         /* COPY_HUGE: mapping of [window_off, window_off + window_len) */
        uint64_t window_off, window_len;
};

static void sink_unmap(struct sink *k) {
        if (k->window)
                (void) munmap(k->window, k->window_len);
        k->window = NULL;
}

static uint64_t round_up(uint64_t v, uint64_t to) {
        return (v + to - 1) / to * to;
}

/* Maps the next window of a huge-page memfd once the current one is full.
 * A mapping reserves all its huge pages up front, so a window never reaches
 * past what is needed: up to HUGE_WINDOW of a file's known size, one page at
 * a time of a command's output. The load then fits in exactly the pages the
 * data fills. */
static int sink_next_window(struct sink *k, struct shm_error *err) {
        uint64_t off = k->window_off + k->window_len, len = k->page;

        if (k->expect > k->size)
                len = round_up(k->expect - k->size < HUGE_WINDOW ? k->expect - k->size : HUGE_WINDOW, k->page);
        if (len > round_up(k->limit + 1 - k->size, k->page))
                len = round_up(k->limit + 1 - k->size, k->page);

        sink_unmap(k);
        if (ftruncate(k->fd, (off_t) (off + len)) < 0)
                return fail(err, -errno, k->name, "cannot grow the huge-page memfd: %s", strerror(errno));
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, k->fd, (off_t) off);
        if (p == MAP_FAILED) {
                int r = -errno;
                uint64_t free_pages = 0;
                (void) meminfo_get("HugePages_Free", &free_pages);
                if (r == -ENOMEM)
                        return fail(err, r, k->name,
                                    "not enough free huge pages (HugePages_Free %" PRIu64 ", %" PRIu64
                                    " KiB each; reserve more with vm.nr_hugepages, or drop 'huge: true')",
                                    free_pages, k->page / 1024);
                return fail(err, r, k->name, "cannot map the huge-page memfd: %s", strerror(-r));
        }
        k->window = p;
        k->window_off = off;
        k->window_len = len;
        return 0;
}

/* COPY_HUGE: reads into the window. When it is full, one byte is read
 * first, so that an input that ends exactly there costs no further page. */
static ssize_t sink_read_huge(struct sink *k, int in, uint64_t want, struct shm_error *err,
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

static ssize_t sink_read_write(struct sink *k, int in, size_t want) {
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
static ssize_t sink_step(struct sink *k, int in, struct shm_error *err, int *ret_window_error) {
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
static int sink_fill(struct sink *k, int in, const char *what, struct shm_error *err) {
        for (;;) {
                int window_error = 0;
                ssize_t n = sink_step(k, in, err, &window_error);
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
                        return fail(err, -errno, k->name, "cannot read %s: %s", what, strerror(errno));
                if (n == 0)
                        return 0;
                k->size += (uint64_t) n;
                if (k->size > k->limit)
                        return -EFBIG;
        }
}

static int memfd_new(const struct shared_config *sc, struct shm_error *err) {
        char name[80];
        unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING | (sc->huge ? MFD_HUGETLB : 0);

        /* Shows in /proc/PID/maps as "/memfd:corral:NAME (deleted)". */
        snprintf(name, sizeof(name), "corral:%s", sc->name);
        int fd = memfd_create(name, flags | MFD_NOEXEC_SEAL);
        if (fd < 0 && errno == EINVAL)  /* before 6.3 */
                fd = memfd_create(name, flags);
        if (fd < 0 && sc->huge && errno == EINVAL)
                return fail(err, -errno, sc->name, "huge: true, but this kernel has no huge-page memfds (hugetlbfs)");
        if (fd < 0)
                return fail(err, -errno, sc->name, "cannot create a memfd: %s", strerror(errno));
        return fd;
}

/* Checks before creating anything, so that the message says what to do. */
static int huge_check(const struct shared_config *sc, uint64_t *ret_page, struct shm_error *err) {
        uint64_t total = 0, page = 0;
        if (meminfo_get("Hugepagesize", &page) < 0 || page == 0)
                return fail(err, -EOPNOTSUPP, sc->name, "huge: true, but this system has no huge pages");
        (void) meminfo_get("HugePages_Total", &total);
        if (total == 0)
                return fail(err, -ENOMEM, sc->name,
                            "huge: true, but no huge pages are reserved (vm.nr_hugepages is 0); "
                            "reserve some or drop 'huge: true'");
        *ret_page = page;
        return 0;
}

/* ------------------------------------------------------------------------ */
/* the two sources */

static int load_file(const struct shared_config *sc, struct sink *k, struct shm_source *ret_source,
                     struct shm_error *err) {
        _cleanup_(closep) int in = open(sc->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat before, after;

        if (in < 0)
                return fail(err, -errno, sc->name, "cannot open %s: %s", sc->path, strerror(errno));
        if (fstat(in, &before) < 0)
                return fail(err, -errno, sc->name, "cannot stat %s: %s", sc->path, strerror(errno));
        if (S_ISDIR(before.st_mode))
                return fail(err, -EISDIR, sc->name, "%s is a directory", sc->path);
        if (S_ISREG(before.st_mode) && (uint64_t) before.st_size > k->limit)
                return fail(err, -EFBIG, sc->name, "%s is %" PRIu64 " bytes, more than max_size (%" PRIu64 ")",
                            sc->path, (uint64_t) before.st_size, k->limit);
        if (S_ISREG(before.st_mode))
                k->expect = (uint64_t) before.st_size;
        if (k->mode != COPY_HUGE)
                k->mode = S_ISREG(before.st_mode) ? COPY_SENDFILE : S_ISFIFO(before.st_mode) ? COPY_SPLICE : COPY_READ_WRITE;

        int r = sink_fill(k, in, sc->path, err);
        if (r == -EFBIG)
                return fail(err, r, sc->name, "%s has more than max_size (%" PRIu64 " bytes)", sc->path, k->limit);
        if (r < 0)
                return r;
        if (k->size == 0)
                return fail(err, -ENODATA, sc->name, "%s is empty", sc->path);

        /* A file rewritten in place while we copied could give workers a mix
         * of old and new: refuse it (a reload tries again on the next HUP). */
        if (fstat(in, &after) < 0)
                return fail(err, -errno, sc->name, "cannot stat %s: %s", sc->path, strerror(errno));
        if (S_ISREG(before.st_mode) &&
            (after.st_size != before.st_size || (uint64_t) after.st_size != k->size ||
             after.st_mtim.tv_sec != before.st_mtim.tv_sec || after.st_mtim.tv_nsec != before.st_mtim.tv_nsec))
                return fail(err, -EAGAIN, sc->name, "%s changed while it was being loaded", sc->path);

        *ret_source = (struct shm_source) {
                .dev = before.st_dev, .ino = before.st_ino, .size = before.st_size, .mtime = before.st_mtim,
        };
        return 0;
}

/* A command source runs on the one child lifecycle (child.h), on a loop of
 * its own: corral waits for the data (at startup, in a reload) as it always
 * did, while the command is spawned, watched and killed like any worker,
 * its whole process group with it. The loop also watches for TERM and INT
 * through a signalfd it only polls, so that the signal stays pending for
 * corral's own loop (or the exit at startup). */
struct command_run {
        const struct shared_config *sc;
        struct sink *k;
        struct shm_error *err;
        const char *text;        /* the command line, for messages */
        struct child child;
        sd_event_source *out_src;
        int result;              /* 0, or why it was cut short: err is filled */
        bool output_done;
        bool ended;
        struct child_end end;
};

/* Stops the command for good (SIGKILL to its group) with `r` as the result. */
static void run_abort(struct command_run *run, int r) {
        if (run->result == 0)
                run->result = r;
        run->out_src = sd_event_source_disable_unref(run->out_src);
        child_dispatch(&run->child, CHILD_EVENT_KILL);
}

static int on_command_output(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct command_run *run = userdata;
        struct sink *k = run->k;
        int window_error = 0;
        (void) s;
        (void) revents;

        ssize_t n = sink_step(k, fd, run->err, &window_error);
        if (n < 0 && window_error < 0)
                run_abort(run, window_error);
        else if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        else if (n < 0 && (errno == EINVAL || errno == ENOSYS) && k->mode == COPY_SPLICE)
                k->mode = COPY_READ_WRITE;   /* the kernel refused splice here: the slow way */
        else if (n < 0)
                run_abort(run, fail(run->err, -errno, k->name, "cannot read the command's output: %s",
                                    strerror(errno)));
        else if (n == 0) {
                run->output_done = true;
                run->out_src = sd_event_source_disable_unref(run->out_src);
        } else if ((k->size += (uint64_t) n) > k->limit)
                run_abort(run, fail(run->err, -EFBIG, k->name, "'%s' wrote more than max_size (%" PRIu64
                                    " bytes); stopped it", run->text, k->limit));
        return 0;
}

static int on_command_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct command_run *run = userdata;
        char limit[32];
        (void) s;
        (void) usec;
        run_abort(run, fail(run->err, -ETIME, run->sc->name, "'%s' did not finish within its timeout of %s; stopped it",
                            run->text, format_duration(run->sc->timeout, limit)));
        return 0;
}

static int on_stop_request(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct command_run *run = userdata;
        (void) fd;
        (void) revents;
        /* Polled, never read: the signal stays pending for corral's loop. */
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (run->output_done)
                run_abort(run, fail(run->err, -EINTR, run->sc->name,
                                    "stopped while waiting for '%s' to exit: TERM or INT arrived", run->text));
        else
                run_abort(run, fail(run->err, -EINTR, run->sc->name,
                                    "stopped while loading the command's output: TERM or INT arrived"));
        return 0;
}

static void command_started(struct child *c, void *userdata) {
        (void) c;
        (void) userdata;
}

static usec_t command_ended(struct child *c, const struct child_end *end, void *userdata) {
        struct command_run *run = userdata;
        (void) c;
        run->ended = true;
        run->end = *end;
        return CHILD_NO_RESTART;
}

static void command_nothing(struct child *c, void *userdata) {
        (void) c;
        (void) userdata;
}

static const struct child_owner command_owner = {
        .started = command_started,
        .ended = command_ended,
        .recycle = command_nothing,
        .ready = command_nothing,
        .killed = command_nothing,
};

/* A signalfd for TERM and INT, or -EBADF if none can be made (then a hanging
 * command is waited for, as before). */
static int stop_signalfd(void) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
        return fd < 0 ? -EBADF : fd;
}

/* Runs the command to its end on `e`, its output into the sink. 0, or a
 * negative errno with run->err filled. */
static int command_run(struct command_run *run, sd_event *e, int out_read, int out_write) {
        static const struct child_stop stop = { .signal = SIGKILL };
        _cleanup_(closep) int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        _cleanup_(closep) int stop_fd = stop_signalfd();
        const struct shared_config *sc = run->sc;
        char sig[16];
        int r;

        if (devnull < 0)
                return fail(run->err, -errno, sc->name, "cannot open /dev/null: %s", strerror(errno));
        /* stdin /dev/null, stdout the pipe, stderr corral's; corral's own ids. */
        int stdio[3] = { devnull, out_write, -EBADF };
        struct spawn_request req = { .argv = sc->command, .envp = environ, .stdio = stdio };

        r = sd_event_add_io(e, &run->out_src, out_read, EPOLLIN, on_command_output, run);
        if (r >= 0 && stop_fd >= 0)
                r = sd_event_add_io(e, NULL, stop_fd, EPOLLIN, on_stop_request, run);
        if (r >= 0 && sc->timeout)
                r = sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, sc->timeout, 1, on_command_timeout, run);
        if (r < 0)
                return fail(run->err, r, sc->name, "cannot watch '%s': %s", run->text, strerror(-r));

        child_init(&run->child, &child_os_sd_event, e, &stop, &command_owner, run);
        r = child_start(&run->child, &req, 0);
        safe_close(out_write);    /* ours: the output ends when the command's copy closes */
        if (r < 0)
                return fail(run->err, r, sc->name, "cannot run '%s': %s", run->text, strerror(-r));

        while (!run->ended || (!run->output_done && run->result == 0)) {
                r = sd_event_run(e, UINT64_MAX);
                if (r < 0) {
                        run_abort(run, fail(run->err, r, sc->name, "cannot wait for '%s': %s", run->text,
                                            strerror(-r)));
                        break;
                }
        }
        if (run->result < 0)
                return run->result;
        if (run->end.outcome == CHILD_FAILURE)
                return fail(run->err, -EIO, sc->name, "'%s' exited with status %d", run->text, run->end.status);
        if (run->end.outcome == CHILD_SIGNAL)
                return fail(run->err, -EIO, sc->name, "'%s' was killed by signal %s", run->text,
                            signal_to_string(run->end.status, sig));
        return 0;
}

static int load_command(const struct shared_config *sc, struct sink *k, struct shm_source *ret_source,
                        struct shm_error *err) {
        _cleanup_(closep) int out_read = -EBADF;
        char text[256];
        struct command_run run = { .sc = sc, .k = k, .err = err, .text = text };
        sigset_t chld, saved;
        int fds[2], r;

        command_text(sc->command, text, sizeof(text));
        if (pipe2(fds, O_CLOEXEC) < 0)
                return fail(err, -errno, sc->name, "cannot create a pipe: %s", strerror(errno));
        out_read = fds[0];
        (void) fcntl(out_read, F_SETFL, O_NONBLOCK);   /* ours only: the command's end blocks */
        if (k->mode != COPY_HUGE)
                k->mode = COPY_SPLICE;

        /* sd-event watches children only with SIGCHLD blocked (corral's loop
         * has it blocked already; a test may not). */
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        (void) pthread_sigmask(SIG_BLOCK, &chld, &saved);
        sd_event *e = NULL;
        r = sd_event_new(&e);
        if (r < 0) {
                safe_close(fds[1]);
                r = fail(err, r, sc->name, "cannot create an event loop: %s", strerror(-r));
        } else
                r = command_run(&run, e, out_read, fds[1]);
        /* The child is gone (ended) or was never there; this frees its sources. */
        child_done(&run.child);
        run.out_src = sd_event_source_disable_unref(run.out_src);
        sd_event_unref(e);
        (void) pthread_sigmask(SIG_SETMASK, &saved, NULL);
        if (r < 0)
                return r;
        if (k->size == 0)
                return fail(err, -ENODATA, sc->name, "'%s' wrote nothing", text);
        *ret_source = (struct shm_source) {};
        return 0;
}

/* ------------------------------------------------------------------------ */
/* segments */

/* Workers get an O_RDONLY fd: beyond the seals, not even a writable mapping
 * can be attempted through it. Also keeps the fd off 0-2, which a worker's
 * stdio would take over, should corral have been started with one closed. */
static int reopen_read_only(int fd) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        int ro = open(path, O_RDONLY | O_CLOEXEC);
        if (ro < 0)
                ro = fcntl(fd, F_DUPFD_CLOEXEC, 3);  /* no /proc: the sealed fd is safe too */
        if (ro < 0)
                return -errno;
        if (ro < 3) {
                int moved = fcntl(ro, F_DUPFD_CLOEXEC, 3);
                safe_close(ro);
                if (moved < 0)
                        return -errno;
                ro = moved;
        }
        return ro;
}

int shm_segment_load(const struct shared_config *sc, uint64_t generation, struct shm_segment **ret,
                     struct shm_error *err) {
        struct shm_source source = {};
        struct sink k = { .name = sc->name, .fd = -EBADF, .limit = sc->max_size };
        usec_t start = now_usec();
        int r;

        if (k.limit == 0) {
                r = shm_default_max_size(&k.limit);
                if (r < 0)
                        return fail(err, r, sc->name, "cannot read MemAvailable from /proc/meminfo: %s", strerror(-r));
        }
        if (sc->huge) {
                r = huge_check(sc, &k.page, err);
                if (r < 0)
                        return r;
                k.mode = COPY_HUGE;
        }

        _cleanup_(closep) int fd = memfd_new(sc, err);
        if (fd < 0)
                return fd;
        k.fd = fd;

        r = sc->path ? load_file(sc, &k, &source, err) : load_command(sc, &k, &source, err);
        sink_unmap(&k);  /* sealing fails with EBUSY while a writable mapping exists */
        if (r < 0)
                return r;
        if (sc->huge && ftruncate(fd, (off_t) round_up(k.size, k.page)) < 0)
                return fail(err, -errno, sc->name, "cannot trim the huge-page memfd: %s", strerror(errno));
        if (fcntl(fd, F_ADD_SEALS, SHM_SEALS) < 0)
                return fail(err, -errno, sc->name, "cannot seal the memfd: %s", strerror(errno));

        r = reopen_read_only(fd);
        if (r < 0)
                return fail(err, r, sc->name, "cannot reopen the memfd read-only: %s", strerror(-r));
        _cleanup_(closep) int ro = r;

        struct shm_segment *s = calloc(1, sizeof(*s));
        if (!s)
                return fail(err, -ENOMEM, sc->name, "out of memory");
        s->name = strdup(sc->name);
        if (sc->path)
                source.path = strdup(sc->path);
        if (!s->name || (sc->path && !source.path)) {
                free(source.path);
                free(s->name);
                free(s);
                return fail(err, -ENOMEM, sc->name, "out of memory");
        }
        s->n_ref = 1;
        s->fd = TAKE_FD(ro);
        s->size = k.size;
        s->huge = sc->huge;
        s->generation = generation;
        s->source = source;
        s->load_usec = now_usec() - start;
        *ret = s;
        return 0;
}

struct shm_segment *shm_segment_ref(struct shm_segment *s) {
        if (s)
                s->n_ref++;
        return s;
}

struct shm_segment *shm_segment_unref(struct shm_segment *s) {
        if (!s || --s->n_ref > 0)
                return NULL;
        safe_close(s->fd);
        free(s->source.path);
        free(s->name);
        free(s);
        return NULL;
}

bool shm_segment_changed(const struct shm_segment *s, const struct shared_config *sc) {
        struct stat st;

        if (!sc->path || !s->source.path || strcmp(sc->path, s->source.path) != 0 || sc->huge != s->huge)
                return true;
        if (stat(sc->path, &st) < 0)
                return true;
        return st.st_dev != s->source.dev || st.st_ino != s->source.ino || st.st_size != s->source.size ||
               st.st_mtim.tv_sec != s->source.mtime.tv_sec || st.st_mtim.tv_nsec != s->source.mtime.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* sets */

static void upper(char *s) {
        for (; *s; s++)
                if (*s >= 'a' && *s <= 'z')
                        *s = (char) (*s - 'a' + 'A');
}

/* Builds fds and env from the segments, once: every worker of the set gets the same. */
static int set_finish(struct shm_set *set) {
        set->fds = calloc(set->n_segments + 1, sizeof(int));
        set->env = calloc(2 * set->n_segments + 1, sizeof(char *));
        if (!set->fds || !set->env)
                return -ENOMEM;
        for (size_t i = 0; i < set->n_segments; i++) {
                const struct shm_segment *s = set->segments[i];
                _cleanup_free_ char *name = strdup(s->name);
                if (!name)
                        return -ENOMEM;
                upper(name);
                set->fds[i] = s->fd;
                if (asprintf(&set->env[2 * i], "CORRAL_SHM_%s=%d", name, s->fd) < 0) {
                        set->env[2 * i] = NULL;
                        return -ENOMEM;
                }
                if (asprintf(&set->env[2 * i + 1], "CORRAL_SHM_%s_SIZE=%" PRIu64, name, s->size) < 0) {
                        set->env[2 * i + 1] = NULL;
                        return -ENOMEM;
                }
        }
        return 0;
}

static struct shm_set *set_new(uint64_t generation, size_t n) {
        struct shm_set *set = calloc(1, sizeof(*set));
        if (!set)
                return NULL;
        set->n_ref = 1;
        set->generation = generation;
        set->segments = calloc(n + 1, sizeof(struct shm_segment *));
        if (!set->segments)
                return shm_set_unref(set);
        return set;
}

struct shm_set *shm_set_ref(struct shm_set *set) {
        if (set)
                set->n_ref++;
        return set;
}

struct shm_set *shm_set_unref(struct shm_set *set) {
        if (!set || --set->n_ref > 0)
                return NULL;
        for (size_t i = 0; i < set->n_segments; i++)
                shm_segment_unref(set->segments[i]);
        free(set->segments);
        free(set->fds);
        strv_free(set->env);
        free(set);
        return NULL;
}

static const struct shm_segment *set_find(const struct shm_set *set, const char *name) {
        for (size_t i = 0; set && i < set->n_segments; i++)
                if (strcmp(set->segments[i]->name, name) == 0)
                        return set->segments[i];
        return NULL;
}

/* The set for configs, sharing what old has unchanged (old may be NULL).
 * *ret_loaded tells whether any segment was loaded anew. */
static int set_build(const struct shm_set *old, uint64_t generation, const struct shared_config *configs,
                     size_t n, struct shm_set **ret, bool *ret_loaded, struct shm_error *err) {
        _cleanup_(shm_set_unrefp) struct shm_set *set = set_new(generation, n);
        bool loaded = false;

        if (!set)
                return fail(err, -ENOMEM, n > 0 ? configs[0].name : "?", "out of memory");
        for (size_t i = 0; i < n; i++) {
                const struct shm_segment *prev = set_find(old, configs[i].name);
                if (prev && !shm_segment_changed(prev, &configs[i])) {
                        set->segments[set->n_segments++] = shm_segment_ref((struct shm_segment *) prev);
                        continue;
                }
                int r = shm_segment_load(&configs[i], generation, &set->segments[set->n_segments], err);
                if (r < 0)
                        return r;
                set->n_segments++;
                loaded = true;
        }
        int r = set_finish(set);
        if (r < 0)
                return fail(err, r, n > 0 ? configs[0].name : "?", "out of memory");
        *ret = TAKE_PTR(set);
        *ret_loaded = loaded;
        return 0;
}

int shm_set_load(const struct shared_config *configs, size_t n, struct shm_set **ret, struct shm_error *err) {
        bool loaded;
        return set_build(NULL, 1, configs, n, ret, &loaded, err);
}

int shm_set_reload(struct shm_set *old, const struct shared_config *configs, size_t n, struct shm_set **ret,
                   struct shm_error *err) {
        struct shm_set *set;
        bool loaded;

        int r = set_build(old, old->generation + 1, configs, n, &set, &loaded, err);
        if (r < 0)
                return r;
        /* Nothing loaded and the same names: the workers have all they need. */
        if (!loaded && set->n_segments == old->n_segments) {
                shm_set_unref(set);
                *ret = shm_set_ref(old);
                return 0;
        }
        *ret = set;
        return 1;
}
