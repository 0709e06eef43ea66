/* SPDX-License-Identifier: MIT */
/*
 * The built-in default policies (DESIGN.md "Default policy"). Without a
 * configuration file: grow while the workers are busy and the machine has
 * room, give a worker back to a neighbour under pressure, shrink when idle;
 * a batch seeks throughput instead of growing by rule. A server pool (a
 * file with `listen:` and no policy of its own) grows on requests waiting in
 * the accept queue instead, since a server waiting on its clients or on a
 * database is busy without using CPU.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "policy/condition.h"

struct default_rule {
        const char *name, *when;
        usec_t hold;
        int scale;
        bool percent;   /* scale is a percentage of the current size */
};

/* Replaces the rules of p with these. 0 or -ENOMEM (p's rules are then empty). */
static int set_rules(struct policy_config *p, const struct default_rule *rules, size_t n) {
        policy_config_free_rules(p);
        p->rules = calloc(n, sizeof(struct rule_config));
        if (!p->rules)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct rule_config *rule = &p->rules[p->n_rules++];
                rule->hold = rules[i].hold;
                rule->scale = rules[i].scale;
                rule->scale_percent = rules[i].percent;
                rule->name = strdup(rules[i].name);
                rule->when_text = strdup(rules[i].when);
                if (!rule->name || !rule->when_text ||
                    condition_parse(rules[i].when, &rule->when, NULL, NULL, 0) < 0) {
                        policy_config_free_rules(p);
                        return -ENOMEM;  /* the texts given are known to parse */
                }
        }
        return 0;
}

/* A neighbour needs the machine: give a worker back. */
#define NEIGHBOUR_RULE { "neighbour", "cpu.busy > 95% and psi.cpu > 20%", 5 * USEC_PER_SEC, -1, false }

int config_default_policy(struct corral_config *c, bool batch) {
        static const struct default_rule pool_rules[] = {
                { "saturated", "pool.cpu > 80% and cpu.busy < 80%", 2 * USEC_PER_SEC,  +1, false },
                NEIGHBOUR_RULE,
                { "idle",      "pool.cpu < 20%",                    30 * USEC_PER_SEC, -1, false },
        };
        static const struct default_rule batch_rules[] = { NEIGHBOUR_RULE };
        struct policy_config *p = &c->policy;

        c->workers.min = 1;
        c->workers.max = 0;
        c->workers.initial = 0;
        p->has_target = false;
        p->target_signal = _SIGNAL_INVALID;
        p->has_optimize = batch;
        p->optimize_signal = batch ? SIGNAL_TASKS_RATE : _SIGNAL_INVALID;
        return batch ? set_rules(p, batch_rules, ELEMENTSOF(batch_rules))
                     : set_rules(p, pool_rules, ELEMENTSOF(pool_rules));
}

int config_default_listen_policy(struct corral_config *c) {
        /* Many waiting: half as many workers again, so that a step from a
         * few clients to many is met in a few cooldowns, not one per worker. */
        static const struct default_rule rules[] = {
                { "queued",  "listen.backlog > 4",                     1 * USEC_PER_SEC,  +50, true },
                { "waiting", "listen.backlog > 0",                     1 * USEC_PER_SEC,  +1,  false },
                NEIGHBOUR_RULE,
                { "idle",    "listen.backlog == 0 and pool.cpu < 20%", 30 * USEC_PER_SEC, -1,  false },
        };
        struct policy_config *p = &c->policy;

        if (p->n_rules > 0 || p->has_target || p->has_optimize)
                return 0;
        return set_rules(p, rules, ELEMENTSOF(rules));
}
