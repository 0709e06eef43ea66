/* SPDX-License-Identifier: MIT */
/*
 * The signals a policy condition can read (DESIGN.md "Signals a condition can
 * use"): their names and one snapshot of their values. Pure data; the sampler
 * fills a snapshot, the policy reads it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

enum signal_id {
        SIGNAL_CPU_BUSY,        /* % of the usable CPUs */
        SIGNAL_CPU_CORE_MAX,    /* % */
        SIGNAL_CPU_CORE_MIN,    /* % */
        SIGNAL_CPU_IDLE_CORES,  /* count of usable cores under 20% busy */
        SIGNAL_LOAD1,           /* 1-minute load average per usable CPU */
        SIGNAL_PSI_CPU,         /* pressure "some avg10", % */
        SIGNAL_PSI_MEMORY,
        SIGNAL_PSI_IO,
        SIGNAL_MEM_AVAILABLE,   /* MemAvailable / MemTotal, % */
        SIGNAL_POOL_SIZE,       /* running workers */
        SIGNAL_POOL_CPU,        /* mean CPU per worker, % of one core */
        SIGNAL_TASKS_BACKLOG,
        SIGNAL_TASKS_BUSY,      /* % */
        SIGNAL_TASKS_RATE,      /* completions per second */
        SIGNAL_TASKS_LATENCY,   /* seconds */
        SIGNAL_QUEUE_LAG,       /* work queue: entries not yet delivered to the group */
        SIGNAL_QUEUE_PENDING,   /* work queue: delivered, not acknowledged */
        SIGNAL_LISTEN_BACKLOG,  /* connections waiting in the accept queues of listen: (sum) */
        _SIGNAL_MAX,
        _SIGNAL_INVALID = -1,
};

/*
 * One sample of every signal. Percentages are 0-100 (a condition's `80%` is 80).
 * A signal this machine cannot provide (no PSI, no batch) is unavailable, not
 * zero: a comparison that reads it is false.
 */
struct signals {
        double value[_SIGNAL_MAX];
        uint32_t available;     /* bit (1u << signal_id) */
};

_Static_assert(_SIGNAL_MAX <= 32, "signals.available is a 32-bit mask");

/* The contract's name of a signal ("cpu.busy"), or NULL for an invalid id. */
const char *signal_name(enum signal_id id);

/* The id of a signal name, or _SIGNAL_INVALID. len is the name's length (no NUL needed). */
enum signal_id signal_from_name(const char *name, size_t len);

/* True for the signals measured in percent (a bare number means percent for them). */
bool signal_is_percent(enum signal_id id);

static inline bool signals_has(const struct signals *s, enum signal_id id) {
        return s->available & (1u << id);
}

static inline void signals_set(struct signals *s, enum signal_id id, double v) {
        s->value[id] = v;
        s->available |= 1u << id;
}
