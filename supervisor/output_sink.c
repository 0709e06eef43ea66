/* SPDX-License-Identifier: MIT */
/*
 * corral's stdout as a non-blocking, ordered queue (see output_sink.h). The
 * queue is a list of segments: bytes (small writes are appended to the last
 * one), a region of a file (read back through a fixed bounce buffer, so a
 * 200 MB spilled output costs 64 KiB of memory), or a mark.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "supervisor/output_sink.h"

#define SEGMENT_APPEND_MAX (256u * 1024u)   /* a bytes segment grows to this by appends */
#define BOUNCE_SIZE (64u * 1024u)
/* A file never says EAGAIN, but writing 200 MB to one takes a while: the
 * loop gets a turn after each slice (signals, timers, HTTP). */
#define FILE_SLICE (4u * 1024u * 1024u)

enum segment_kind { SEGMENT_BYTES, SEGMENT_FILE, SEGMENT_MARK };

struct segment {
        struct segment *next;
        enum segment_kind kind;
        struct strbuf bytes;     /* SEGMENT_BYTES */
        int fd;                  /* SEGMENT_FILE: owned */
        uint64_t len, off;       /* bytes and file: its length, and what is written */
        sink_mark_fn fn;         /* SEGMENT_MARK */
        void *data;
};

struct sink {
        sd_event *event;
        int target;              /* the fd we were given */
        int fd;                  /* what we write to: target, or our own reopen of it */
        bool opened, own_fd, restore_flags;
        int saved_flags;
        sd_event_source *src;    /* EPOLLOUT, for what can say EAGAIN */
        sd_event_source *defer;  /* the next slice, for what cannot */
        struct segment *head, *tail;
        uint64_t pending;
        char *bounce;            /* file segments: read but not yet written */
        size_t bounce_off, bounce_len;
        int error;
        bool flushing;
        void (*cb)(void *userdata);
        void *userdata;
};

static void segment_free(struct segment *g, bool delivered) {
        if (g->kind == SEGMENT_MARK)
                g->fn(g->data, delivered);
        strbuf_done(&g->bytes);
        if (g->kind == SEGMENT_FILE)
                safe_close(g->fd);
        free(g);
}

static struct segment *sink_pop(struct sink *s) {
        struct segment *g = s->head;
        s->head = g->next;
        if (!s->head)
                s->tail = NULL;
        s->bounce_off = s->bounce_len = 0;
        return g;
}

void sink_drop(struct sink *s) {
        while (s->head)
                segment_free(sink_pop(s), false);
        s->pending = 0;
        if (s->src)
                (void) sd_event_source_set_enabled(s->src, SD_EVENT_OFF);
}

static void sink_fail(struct sink *s, int error) {
        if (!s->error)
                s->error = error;
        sink_drop(s);
}

static int on_writable(sd_event_source *src, int fd, uint32_t revents, void *userdata);
static int on_defer(sd_event_source *src, void *userdata);

/*
 * A pipe or terminal gets a descriptor of its own (O_NONBLOCK on the shared
 * one would reach the shell and the other processes using it); a socket, or a
 * pipe that cannot be reopened, gets O_NONBLOCK set, and restored at the end.
 * A regular file or a device like /dev/null never waits for a reader: it is
 * written as it is. A closed fd fails here with -EBADF.
 */
static int sink_open(struct sink *s) {
        struct stat st;

        s->opened = true;
        if (fstat(s->target, &st) < 0)
                return -errno;
        s->fd = s->target;
        bool waits = S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || (S_ISCHR(st.st_mode) && isatty(s->target));
        if (!waits) {
                int r = sd_event_add_defer(s->event, &s->defer, on_defer, s);
                if (r < 0)
                        return r;
                return sd_event_source_set_enabled(s->defer, SD_EVENT_OFF);
        }
        if (!S_ISSOCK(st.st_mode)) {
                char path[48];
                snprintf(path, sizeof(path), "/proc/self/fd/%d", s->target);
                int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
                if (fd >= 0) {
                        s->fd = fd;
                        s->own_fd = true;
                }
        }
        if (!s->own_fd) {
                int flags = fcntl(s->fd, F_GETFL);
                if (flags < 0)
                        return -errno;
                if (!(flags & O_NONBLOCK)) {
                        if (fcntl(s->fd, F_SETFL, flags | O_NONBLOCK) < 0)
                                return -errno;
                        s->saved_flags = flags;
                        s->restore_flags = true;
                }
        }
        int r = sd_event_add_io(s->event, &s->src, s->fd, EPOLLOUT, on_writable, s);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(s->src, SD_EVENT_OFF);
}

/* Writes from a file segment through the bounce buffer. Returns what write()
 * returned, or -1 with errno set. */
static ssize_t write_file_segment(struct sink *s, struct segment *g) {
        if (s->bounce_off == s->bounce_len) {
                uint64_t left = g->len - g->off;
                size_t want = left < BOUNCE_SIZE ? (size_t) left : BOUNCE_SIZE;
                ssize_t n = pread(g->fd, s->bounce, want, (off_t) g->off);
                if (n <= 0) {
                        if (n == 0)
                                errno = EIO;   /* the spill file is shorter than it was */
                        return -1;
                }
                s->bounce_off = 0;
                s->bounce_len = (size_t) n;
        }
        ssize_t n = write(s->fd, s->bounce + s->bounce_off, s->bounce_len - s->bounce_off);
        if (n > 0)
                s->bounce_off += (size_t) n;
        return n;
}

/* Writes until the queue is empty or the reader is full. Not re-entered: a
 * mark's callback that queues more just extends the loop. */
static void sink_flush(struct sink *s) {
        if (s->flushing || s->error)
                return;
        s->flushing = true;
        if (!s->opened) {
                int r = sink_open(s);
                if (r < 0)
                        sink_fail(s, r);
        }
        uint64_t written = 0;
        while (s->head && !s->error) {
                struct segment *g = s->head;
                if (s->defer && written >= FILE_SLICE) {
                        (void) sd_event_source_set_enabled(s->defer, SD_EVENT_ONESHOT);
                        break;
                }
                if (g->kind == SEGMENT_MARK || g->off == g->len) {
                        segment_free(sink_pop(s), true);
                        continue;
                }
                ssize_t n = g->kind == SEGMENT_FILE ? write_file_segment(s, g) :
                            write(s->fd, g->bytes.data + g->off, (size_t) (g->len - g->off));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN && s->src) {
                        (void) sd_event_source_set_enabled(s->src, SD_EVENT_ON);
                        break;
                }
                if (n <= 0) {
                        sink_fail(s, n < 0 ? -errno : -EIO);
                        break;
                }
                g->off += (uint64_t) n;
                s->pending -= (uint64_t) n;
                written += (uint64_t) n;
        }
        if (!s->head && s->src)
                (void) sd_event_source_set_enabled(s->src, SD_EVENT_OFF);
        s->flushing = false;
}

static int on_writable(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct sink *s = userdata;
        (void) src;
        (void) fd;
        (void) revents;
        sink_flush(s);
        if (s->cb && (s->error || !sink_full(s)))
                s->cb(s->userdata);
        return 0;
}

static int on_defer(sd_event_source *src, void *userdata) {
        return on_writable(src, -1, 0, userdata);
}

static struct segment *sink_push(struct sink *s, enum segment_kind kind) {
        struct segment *g = calloc(1, sizeof(*g));
        if (!g)
                return NULL;
        g->kind = kind;
        g->fd = -EBADF;
        if (s->tail)
                s->tail->next = g;
        else
                s->head = g;
        s->tail = g;
        return g;
}

int sink_write(struct sink *s, const void *p, size_t n) {
        if (s->error)
                return s->error;
        if (n == 0)
                return 0;
        struct segment *g = s->tail;
        if (!g || g->kind != SEGMENT_BYTES || g->len + n > SEGMENT_APPEND_MAX) {
                g = sink_push(s, SEGMENT_BYTES);
                if (!g)
                        return -ENOMEM;
        }
        if (strbuf_append(&g->bytes, p, n) < 0)
                return -ENOMEM;
        g->len += n;
        s->pending += n;
        sink_flush(s);
        return s->error;
}

int sink_write_buf(struct sink *s, struct strbuf *b) {
        if (s->error || b->len == 0) {
                strbuf_done(b);
                return s->error;
        }
        if (b->len <= SEGMENT_APPEND_MAX / 4) {
                /* Small: copied into the last segment rather than one each. */
                int r = sink_write(s, b->data, b->len);
                strbuf_done(b);
                return r;
        }
        struct segment *g = sink_push(s, SEGMENT_BYTES);
        if (!g) {
                strbuf_done(b);
                return -ENOMEM;
        }
        g->bytes = *b;
        *b = (struct strbuf) {};
        g->len = g->bytes.len;
        s->pending += g->len;
        sink_flush(s);
        return s->error;
}

int sink_write_file(struct sink *s, int fd, uint64_t len) {
        if (s->error || len == 0) {
                safe_close(fd);
                return s->error;
        }
        if (!s->bounce && !(s->bounce = malloc(BOUNCE_SIZE))) {
                safe_close(fd);
                return -ENOMEM;
        }
        struct segment *g = sink_push(s, SEGMENT_FILE);
        if (!g) {
                safe_close(fd);
                return -ENOMEM;
        }
        g->fd = fd;
        g->len = len;
        s->pending += len;
        sink_flush(s);
        return s->error;
}

int sink_mark(struct sink *s, sink_mark_fn fn, void *data) {
        if (s->error) {
                fn(data, false);
                return s->error;
        }
        if (!s->head) {
                fn(data, true);   /* nothing before it: delivered */
                return 0;
        }
        struct segment *g = sink_push(s, SEGMENT_MARK);
        if (!g) {
                fn(data, false);
                return -ENOMEM;
        }
        g->fn = fn;
        g->data = data;
        return 0;
}

int sink_new(sd_event *e, int fd, struct sink **ret) {
        struct sink *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (struct sink) { .event = sd_event_ref(e), .target = fd, .fd = -EBADF };
        *ret = s;
        return 0;
}

struct sink *sink_free(struct sink *s) {
        if (!s)
                return NULL;
        sink_drop(s);
        sd_event_source_disable_unref(s->src);
        sd_event_source_disable_unref(s->defer);
        if (s->restore_flags)
                (void) fcntl(s->fd, F_SETFL, s->saved_flags);
        if (s->own_fd)
                safe_close(s->fd);
        free(s->bounce);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

void sink_set_callback(struct sink *s, void (*cb)(void *userdata), void *userdata) {
        s->cb = cb;
        s->userdata = userdata;
}

uint64_t sink_pending(const struct sink *s) {
        return s->pending;
}

bool sink_full(const struct sink *s) {
        return s->pending >= SINK_HIGH;
}

bool sink_idle(const struct sink *s) {
        return !s->head;
}

int sink_error(const struct sink *s) {
        return s->error;
}
