/* SPDX-License-Identifier: MIT */
/*
 * A host name looked up off the event loop (name_lookup.h). The request
 * (struct lookup_job) is shared with glibc's threads until its notification
 * ran: a lookup freed before that is orphaned, and the notification frees it
 * instead of waking the loop.
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
        pthread_mutex_t lock;    /* notified, orphaned: the loop's thread and the notification's */
        bool notified, orphaned;
        int efd;                 /* the notification wakes the loop through it */
        struct gaicb req;
        struct addrinfo hints;
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
        if (j->req.ar_result)
                freeaddrinfo(j->req.ar_result);
        safe_close(j->efd);
        (void) pthread_mutex_destroy(&j->lock);
        free(j);
}

/* On a thread of glibc's, once the request is done. */
static void on_done_thread(union sigval v) {
        struct lookup_job *j = v.sival_ptr;
        uint64_t one = 1;

        (void) pthread_mutex_lock(&j->lock);
        j->notified = true;
        if (j->orphaned) {
                (void) pthread_mutex_unlock(&j->lock);
                job_free(j);
                return;
        }
        (void) write(j->efd, &one, sizeof(one));
        (void) pthread_mutex_unlock(&j->lock);
}

/* The loop's side lets go of j: freed now if its notification ran, else by
 * the notification. (Not gai_cancel(): glibc then leaks the notification's
 * bookkeeping; a lookup of a name takes milliseconds anyway.) */
static void job_release(struct lookup_job *j) {
        (void) pthread_mutex_lock(&j->lock);
        bool done = j->notified;
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
        /* Its lock orders the notification's view of the request before ours. */
        (void) pthread_mutex_lock(&l->job->lock);
        bool done = l->job->notified;
        (void) pthread_mutex_unlock(&l->job->lock);
        if (!done)
                return 0;
        l->src = sd_event_source_disable_unref(l->src);
        int error = gai_error(&l->job->req);
        const struct addrinfo *ai = l->job->req.ar_result;
        if (error == 0 && !ai)
                error = EAI_NONAME;
        l->fn(l, error, ai, l->userdata);   /* may free l */
        return 0;
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
        j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        (void) pthread_mutex_init(&j->lock, NULL);
        *l = (struct name_lookup) { .job = j, .fn = fn, .userdata = userdata };
        if (j->efd < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(e, &l->src, j->efd, EPOLLIN, on_wakeup, l);
        if (r < 0)
                goto fail;
        j->hints = (struct addrinfo) { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
        j->req = (struct gaicb) { .ar_name = j->host, .ar_request = &j->hints };
        struct gaicb *list[] = { &j->req };
        struct sigevent sev = {
                .sigev_notify = SIGEV_THREAD,
                .sigev_value.sival_ptr = j,
                .sigev_notify_function = on_done_thread,
        };
        r = getaddrinfo_a(GAI_NOWAIT, list, 1, &sev);
        if (r != 0) {
                r = r == EAI_MEMORY ? -ENOMEM : -EAGAIN;
                goto fail;
        }
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
