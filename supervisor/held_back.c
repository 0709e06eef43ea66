/* SPDX-License-Identifier: MIT */
/*
 * "not growing: ..." lines: what holds a pool back, logged when the situation
 * changes; and once per run, "not growing yet: rule R waits for ...": what
 * growing waits for (held_back.h).
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

/* What growing waits for is said once it has lasted this many samples: the
 * first figure of a worker still starting up (loading its data, say) is not
 * yet what the pool waits for. */
#define AWAITED_SAMPLES 2u

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

/* When no scale-up rule's demand holds (one that does is on its way up, or
 * guard_holds_back() says what stops it): the first scale-up rule whose demand
 * is unmet, and what it waits for, in `awaited`. A demand on a signal without
 * a value (pool.cpu before the workers have one, psi.* without PSI) does not
 * say what the pool waits for: the next rule is asked. */
static bool demand_awaited(const struct policy_config *cfg, const struct signals *s, const struct rule_config **ret,
                           char *awaited, size_t awaited_size) {
        const struct rule_config *first = NULL;

        for (size_t i = 0; i < cfg->n_rules; i++) {
                const struct rule_config *rule = &cfg->rules[i];
                if (rule->scale <= 0 || !rule->when)
                        continue;
                char text[128];
                enum condition_demand state = condition_unmet_demand(rule->when, s, text, sizeof(text));
                /* A rule that names no demand wants to grow when all of its `when` holds. */
                if (state == CONDITION_DEMAND_HOLDS ||
                    (state == CONDITION_DEMAND_NONE && condition_eval(rule->when, s)))
                        return false;
                if (!first && state == CONDITION_DEMAND_UNMET) {
                        first = rule;
                        snprintf(awaited, awaited_size, "%s", text);
                }
        }
        *ret = first;
        return first != NULL;
}

/* The once-per-run line, when a steady pool below max, asked by nothing to
 * change (no rule, target, manual size or seeker), has waited for a demand
 * AWAITED_SAMPLES samples in a row. */
static void note_awaited(struct held_back *h, const struct policy_config *cfg, const struct signals *s,
                         const struct decision *d, unsigned max) {
        const struct rule_config *rule;
        char awaited[128];

        if (h->told_awaited)
                return;
        if (d->source != DECISION_NONE || d->desired >= max ||
            !demand_awaited(cfg, s, &rule, awaited, sizeof(awaited))) {
                h->awaited_samples = 0;
                return;
        }
        if (++h->awaited_samples < AWAITED_SAMPLES)
                return;
        log_info("not growing yet: rule %s waits for %s", rule->name ? rule->name : "?", awaited);
        h->told_awaited = true;
}

void held_back_note(struct held_back *h, const struct policy_config *cfg, const struct signals *s,
                    const struct decision *d, unsigned max) {
        char line[POLICY_WHY_MAX + 64], key[sizeof(h->logged)];

        if (!s || !(bound_holds_back(d, line, sizeof(line), key, sizeof(key)) ||
                    guard_holds_back(cfg, s, line, sizeof(line), key, sizeof(key)))) {
                if (h->logged[0] && ++h->clear >= HELD_BACK_CLEAR_SAMPLES)
                        held_back_reset(h);
                if (s)
                        note_awaited(h, cfg, s, d, max);
                else
                        h->awaited_samples = 0;
                return;
        }
        h->clear = h->awaited_samples = 0;
        if (strcmp(key, h->logged) == 0)
                return;
        log_info("%s", line);
        snprintf(h->logged, sizeof(h->logged), "%s", key);
}

void held_back_reset(struct held_back *h) {
        h->logged[0] = '\0';
        h->clear = h->awaited_samples = 0;
}
