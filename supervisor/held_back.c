/* SPDX-License-Identifier: MIT */
/*
 * "not growing: ..." lines: what holds a pool back, logged when the situation
 * changes (held_back.h).
 */
#include <stdio.h>
#include <string.h>

#include "policy/condition.h"
#include "supervisor/held_back.h"
#include "supervisor/log.h"

/* A situation that has not been seen for this many samples is over: when it
 * comes back, it is logged again. Long enough that a signal wavering around a
 * threshold does not repeat the line every other sample. */
#define HELD_BACK_CLEAR_SAMPLES 10u

/* What a failing guard on this signal means, in words. */
static const char *guard_meaning(enum signal_id id) {
        switch (id) {
        case SIGNAL_CPU_BUSY:
        case SIGNAL_CPU_CORE_MAX:
        case SIGNAL_CPU_CORE_MIN:
        case SIGNAL_CPU_IDLE_CORES:
        case SIGNAL_LOAD1:
                return "the machine is busy";
        case SIGNAL_PSI_CPU:
                return "the CPUs are under pressure";
        case SIGNAL_PSI_MEMORY:
        case SIGNAL_MEM_AVAILABLE:
                return "memory is short";
        case SIGNAL_PSI_IO:
                return "I/O is under pressure";
        default:
                return "a condition does not hold";
        }
}

/* The first scale-up rule whose demand holds and a guard does not: writes its
 * line and key. */
static bool guard_holds_back(const struct policy_config *cfg, const struct signals *s, char *line, size_t line_size,
                             char *key, size_t key_size) {
        for (size_t i = 0; i < cfg->n_rules; i++) {
                const struct rule_config *rule = &cfg->rules[i];
                char blocker[96];
                if (rule->scale <= 0 || !rule->when)
                        continue;
                enum signal_id id = condition_blocker(rule->when, s, blocker, sizeof(blocker));
                if (id == _SIGNAL_INVALID)
                        continue;
                const char *name = rule->name ? rule->name : "?";
                snprintf(line, line_size, "not growing: %s (%s), rule %s", guard_meaning(id), blocker, name);
                snprintf(key, key_size, "guard %s %s", name, signal_name(id));
                return true;
        }
        return false;
}

/* A rule or the target asks for more than max, or for less than min (a
 * neighbour needs the machine, and the pool gives back all it may). */
static bool bound_holds_back(const struct decision *d, char *line, size_t line_size, char *key, size_t key_size) {
        if ((d->source != DECISION_RULE && d->source != DECISION_TARGET) ||
            (d->reason != DECISION_MAX && d->reason != DECISION_MIN))
                return false;
        bool max = d->reason == DECISION_MAX;
        snprintf(line, line_size, "%s: %s", max ? "not growing" : "not growing, holding at the minimum", d->why);
        snprintf(key, key_size, "%s %s", max ? "max" : "min", decision_label(d));
        return true;
}

void held_back_note(struct held_back *h, const struct policy_config *cfg, const struct signals *s,
                    const struct decision *d) {
        char line[POLICY_WHY_MAX + 64], key[sizeof(h->logged)];

        if (!s || !(bound_holds_back(d, line, sizeof(line), key, sizeof(key)) ||
                    guard_holds_back(cfg, s, line, sizeof(line), key, sizeof(key)))) {
                if (h->logged[0] && ++h->clear >= HELD_BACK_CLEAR_SAMPLES)
                        held_back_reset(h);
                return;
        }
        h->clear = 0;
        if (strcmp(key, h->logged) == 0)
                return;
        log_info("%s", line);
        snprintf(h->logged, sizeof(h->logged), "%s", key);
}

void held_back_reset(struct held_back *h) {
        h->logged[0] = '\0';
        h->clear = 0;
}
