/* SPDX-License-Identifier: MIT */
/*
 * The built-in default policy (DESIGN.md "Default policy"), used when
 * `corral run` has no configuration file: grow while the workers are busy and
 * the machine has room, give a worker back to a neighbour under pressure,
 * shrink when idle; a batch seeks throughput instead of growing by rule.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "policy/condition.h"

int config_default_policy(struct corral_config *c, bool batch) {
        static const struct {
                const char *name, *when;
                usec_t hold;
                int scale;
                bool batch;     /* also in batch mode */
        } rules[] = {
                { "saturated", "pool.cpu > 80% and cpu.busy < 80%", 2 * USEC_PER_SEC,  +1, false },
                /* A neighbour needs the machine: give a worker back. */
                { "neighbour", "cpu.busy > 95% and psi.cpu > 20%",  5 * USEC_PER_SEC,  -1, true },
                { "idle",      "pool.cpu < 20%",                    30 * USEC_PER_SEC, -1, false },
        };
        struct policy_config *p = &c->policy;

        policy_config_free_rules(p);
        c->workers.min = 1;
        c->workers.max = 0;
        c->workers.initial = 0;
        p->has_target = false;
        p->target_signal = _SIGNAL_INVALID;
        p->has_optimize = batch;
        p->optimize_signal = batch ? SIGNAL_TASKS_RATE : _SIGNAL_INVALID;

        p->rules = calloc(ELEMENTSOF(rules), sizeof(struct rule_config));
        if (!p->rules)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(rules); i++) {
                if (batch && !rules[i].batch)
                        continue;
                struct rule_config *rule = &p->rules[p->n_rules++];
                rule->hold = rules[i].hold;
                rule->scale = rules[i].scale;
                rule->name = strdup(rules[i].name);
                rule->when_text = strdup(rules[i].when);
                if (!rule->name || !rule->when_text ||
                    condition_parse(rules[i].when, &rule->when, NULL, NULL, 0) < 0) {
                        policy_config_free_rules(p);
                        return -ENOMEM;  /* the texts above are known to parse */
                }
        }
        return 0;
}
