/* SPDX-License-Identifier: MIT */
/*
 * The per-task batch's queue of tasks to run: a double-ended ring of
 * invocations, new ones at the back, retries at the front.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* A task waiting to run (or to run again): one invocation of COMMAND, over
 * one line or, with tasks.batch N, up to N lines joined by '\n'. */
struct pending {
        uint64_t seq;            /* 1-based input line number of its first line */
        uint64_t ord;            /* 0-based among the tasks this run, for keep_order */
        unsigned attempts;       /* made so far */
        unsigned lines;          /* task lines in it, >= 1 */
        char *line;              /* owned; the lines joined by '\n' */
        size_t len;
};

/* A double-ended ring: new lines at the back, retries at the front. */
struct queue {
        struct pending *ring;
        size_t cap, head, len;   /* cap is a power of two */
};

static inline int queue_reserve(struct queue *q) {
        if (q->len < q->cap)
                return 0;
        size_t cap = q->cap ? q->cap * 2 : 64;
        struct pending *ring = calloc(cap, sizeof(*ring));
        if (!ring)
                return -ENOMEM;
        for (size_t i = 0; i < q->len; i++)
                ring[i] = q->ring[(q->head + i) & (q->cap - 1)];
        free(q->ring);
        q->ring = ring;
        q->cap = cap;
        q->head = 0;
        return 0;
}

static inline int queue_push_back(struct queue *q, const struct pending *p) {
        int r = queue_reserve(q);
        if (r < 0)
                return r;
        q->ring[(q->head + q->len++) & (q->cap - 1)] = *p;
        return 0;
}

static inline int queue_push_front(struct queue *q, const struct pending *p) {
        int r = queue_reserve(q);
        if (r < 0)
                return r;
        q->head = (q->head - 1) & (q->cap - 1);
        q->ring[q->head] = *p;
        q->len++;
        return 0;
}

static inline struct pending queue_pop_front(struct queue *q) {
        struct pending p = q->ring[q->head];
        q->head = (q->head + 1) & (q->cap - 1);
        q->len--;
        return p;
}

static inline void queue_clear(struct queue *q) {
        while (q->len > 0)
                free(queue_pop_front(q).line);
}

