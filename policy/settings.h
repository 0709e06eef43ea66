/* SPDX-License-Identifier: MIT */
/*
 * What a scaling policy is (DESIGN.md "Configuration", policy:): its rules,
 * its target or throughput seeker, and its timing. policy/ owns these types;
 * conf/ fills them from the file (or with the built-in default), and
 * policy_decide() reads them. Durations are in microseconds, percentages 0-100.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"
#include "policy/signals.h"

struct condition;   /* policy/condition.h: a parsed `when:` */

struct rule_config {
        char *name;
        char *when_text;
        struct condition *when;
        usec_t hold;             /* `for:` */
        int scale;               /* +N / -N, or percent when scale_percent */
        bool scale_percent;
        unsigned line, column;   /* where `when:` is in the file (1-based), 0 if built in */
};

struct policy_config {
        bool has_target;
        enum signal_id target_signal;
        double target_value;
        double target_tolerance; /* % */
        bool has_optimize;
        enum signal_id optimize_signal;
        double optimize_bias;    /* % */
        usec_t stabilization_down;
        usec_t cooldown_up;
        usec_t cooldown_down;
        struct rule_config *rules;
        size_t n_rules;
};

/* Fills p with DESIGN.md's defaults: no rules, no target, no optimize,
 * tolerance 10%, bias 5%, stabilization.down 30s, cooldowns 2s up and 10s
 * down. Cannot fail. */
void policy_config_init(struct policy_config *p);

/* Frees the rules (their names, texts and conditions) and leaves p without
 * rules; the other settings stay. Accepts a zeroed p. */
void policy_config_free_rules(struct policy_config *p);

/* Frees what p owns and zeroes it. Accepts a zeroed p. */
void policy_config_done(struct policy_config *p);
