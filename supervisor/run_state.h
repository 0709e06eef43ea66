/* SPDX-License-Identifier: MIT */
/*
 * What one `corral run` holds, as plain data: the loop (controller.c) drives
 * it, the report (controller_metrics.c) reads it into the metrics snapshot.
 * Types only: the functions live in the files that own them, so that both
 * include this from above and neither reaches up into the other.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "conf/config.h"
#include "metrics/corral_metrics.h"
#include "metrics/http.h"
#include "policy/decide.h"
#include "supervisor/held_back.h"
#include "supervisor/run_args.h"
#include "supervisor/sampler.h"
#include "supervisor/shm.h"
#include "supervisor/workload.h"

struct controller {
        sd_event *event;
        const struct run_args *args;
        struct corral_config *config;    /* owned; replaced on reload */
        struct workload work;            /* what is sized: a pool, a batch or a stream */
        struct workload_owner owner;     /* the workload's way back to us */
        struct sampler *sampler;
        struct shm_set *shm;             /* the shared segments new workers get (a reference) */
        struct listen_set *listen;       /* listen: the sockets every worker gets; NULL: none */
        struct metrics_http *http;
        sd_event_source *sample_timer;

        struct policy_state policy;
        struct decision decision;        /* the last one, valid when decided */
        bool decided;
        char decision_label[64];         /* copied: decision.rule points into the config */
        struct decision_view {
                bool valid;              /* false until the size changed once */
                unsigned from, to;
                usec_t when;
        } change;                        /* the last change of size */
        struct held_back held_back;      /* what keeps the pool from growing, as last logged */
        struct metrics_scale_count *scale_events;   /* labels owned */
        size_t n_scale_events;

        struct sample sample;            /* the last one, valid when have_sample */
        bool have_sample;
        bool sampler_failing;            /* logged once, until it recovers */
        struct stop_request {            /* the last stop signal acted on */
                uint32_t signo, pid;     /* pid 0: sent by the kernel (a terminal's Ctrl-C) */
                usec_t done;             /* when acting on it ended */
        } stop;
        uint64_t reloads_ok, reloads_failed;

        /* Buffers for the snapshot, reused every sample. */
        struct metrics_worker *rows;
        struct metrics_rule *rules;
        size_t n_rules_alloc;
        struct metrics_core *cores;
        struct metrics_segment *segments;
        pid_t *pids;
        size_t n_buffers;
};
