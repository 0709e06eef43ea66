/* SPDX-License-Identifier: MIT */
/*
 * The workers' own CPU and memory (sampler_workers.c), for sampler.c only.
 * Library-like: it does not log; errors are negative errno.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/util.h"
#include "policy/signals.h"

/* A worker pid followed from one sample to the next. */
struct pid_entry {
        pid_t pid;
        int fd;                 /* /proc/PID/stat */
        uint64_t ticks;
        double cpu;             /* % of one core over the last interval (or since a start
                                 * during it); < 0: not yet known */
        uint64_t rss_pages;
        unsigned seen;          /* the generation of the last sample that passed it */
};

/* The pids followed, in the order they were last passed (the hints). */
struct sampler_workers {
        struct pid_entry *pids;
        size_t n, n_alloc;
        unsigned generation;
};

/* What turns ticks into % of one core over this sample. */
struct sampler_clock {
        usec_t elapsed;          /* since the previous sample */
        usec_t since_boot;       /* now, on the clock of /proc/PID/stat's start times */
        unsigned long clk_tck;
        unsigned n_cpus;         /* >= 1 */
};

/* Reads each of pids (see sampler_sample()) under root (NULL: the kernel's
 * /proc), forgets the ones not passed, and sets pool.size, and pool.cpu once
 * a pid has a figure (a delta, or its CPU since a start during this
 * interval), in signals; *ret_measured = the pids with a figure. 0 or -ENOMEM. */
int sampler_workers_sample(struct sampler_workers *t, const char *root, const pid_t *pids, size_t n,
                           const struct sampler_clock *clock, struct signals *signals, unsigned *ret_measured);

/* One worker as of the last sample (see sampler_worker()). 0 or -ESRCH. */
int sampler_workers_get(const struct sampler_workers *t, pid_t pid, double *ret_cpu, uint64_t *ret_rss);

/* Closes the files and frees; t is empty afterwards. */
void sampler_workers_done(struct sampler_workers *t);
