/* SPDX-License-Identifier: MIT */
/*
 * A host name looked up off the event loop (name_lookup.h): getaddrinfo() on
 * a detached thread of its own, with every signal blocked, which wakes the
 * loop through an eventfd when it is done. The request (struct lookup_job) is
 * shared with that thread until it ends: a lookup freed before that is
 * orphaned, and the thread frees it instead of waking the loop.
 *
 * Not glibc's getaddrinfo_a(): its gai_cancel() leaks the notification's
 * bookkeeping, and its pool of requests is freed from uninitialised rows at
 * exit (valgrind's __libc_freeres reports it). A lookup happens once a
 * reconnect, so a thread each costs nothing that matters.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/eventfd.h>

#include "common/util.h"
#include "supervisor/name_lookup.h"

struct lookup_job {
        pthread_mutex_t lock;    /* done, orphaned, error, result: the loop's thread and the lookup's */
        bool done, orphaned;
        int error;               /* getaddrinfo()'s */
        struct addrinfo *result;
        int efd;                 /* the lookup wakes the loop through it */
        char host[];
};

struct name_lookup {
        struct lookup_job *job;
        sd_event_source *src;
        name_lookup_fn fn;
        void *userdata;
};

bool name_is_numeric(const char *host) {
        unsigned char buf[sizeof(struct in6_addr)];
        return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static void job_free(struct lookup_job *j) {
        if (j->result)
                freeaddrinfo(j->result);
        safe_close(j->efd);
        (void) pthread_mutex_destroy(&j->lock);
        free(j);
}

static void *lookup_thread(void *userdata) {
        struct lookup_job *j = userdata;
        const struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
        struct addrinfo *result = NULL;
        uint64_t one = 1;

        int error = getaddrinfo(j->host, NULL, &hints, &result);
        (void) pthread_mutex_lock(&j->lock);
        j->done = true;
        j->error = error;
        j->result = error == 0 ? result : NULL;
        bool orphaned = j->orphaned;
        if (!orphaned)
                (void) write(j->efd, &one, sizeof(one));
        (void) pthread_mutex_unlock(&j->lock);
        if (orphaned)
                job_free(j);
        return NULL;
}

/* The loop's side lets go of j: freed now if its thread is done, else by it. */
static void job_release(struct lookup_job *j) {
        (void) pthread_mutex_lock(&j->lock);
        bool done = j->done;
        j->orphaned = true;
        (void) pthread_mutex_unlock(&j->lock);
        if (done)
                job_free(j);
}

static int on_wakeup(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        struct name_lookup *l = userdata;
        uint64_t n;
        (void) src;
        (void) revents;

        (void) read(fd, &n, sizeof(n));
        (void) pthread_mutex_lock(&l->job->lock);
        bool done = l->job->done;
        int error = l->job->error;
        const struct addrinfo *ai = l->job->result;
        (void) pthread_mutex_unlock(&l->job->lock);
        if (!done)
                return 0;
        l->src = sd_event_source_disable_unref(l->src);
        if (error == 0 && !ai)
                error = EAI_NONAME;
        l->fn(l, error, ai, l->userdata);   /* may free l */
        return 0;
}

/* The thread takes no signal: the loop's signalfd sees them all. */
static int start_thread(struct lookup_job *j) {
        sigset_t all, old;
        pthread_attr_t attr;
        pthread_t t;

        int r = pthread_attr_init(&attr);
        if (r != 0)
                return -r;
        (void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        sigfillset(&all);
        (void) pthread_sigmask(SIG_SETMASK, &all, &old);
        r = pthread_create(&t, &attr, lookup_thread, j);
        (void) pthread_sigmask(SIG_SETMASK, &old, NULL);
        (void) pthread_attr_destroy(&attr);
        return -r;
}

int name_lookup_start(sd_event *e, const char *host, name_lookup_fn fn, void *userdata, struct name_lookup **ret) {
        size_t len = strlen(host) + 1;
        struct name_lookup *l = calloc(1, sizeof(*l));
        struct lookup_job *j = calloc(1, sizeof(*j) + len);
        int r;

        if (!l || !j) {
                free(l);
                free(j);
                return -ENOMEM;
        }
        memcpy(j->host, host, len);
        (void) pthread_mutex_init(&j->lock, NULL);
        *l = (struct name_lookup) { .job = j, .fn = fn, .userdata = userdata };
        j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (j->efd < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(e, &l->src, j->efd, EPOLLIN, on_wakeup, l);
        if (r >= 0)
                r = start_thread(j);
        if (r < 0)
                goto fail;
        *ret = l;
        return 0;
fail:
        l->src = sd_event_source_disable_unref(l->src);
        job_free(j);
        free(l);
        return r;
}

struct name_lookup *name_lookup_free(struct name_lookup *l) {
        if (!l)
                return NULL;
        l->src = sd_event_source_disable_unref(l->src);
        job_release(l->job);
        free(l);
        return NULL;
}
