/* SPDX-License-Identifier: MIT */
/* Defaults and destruction of a policy's settings (see settings.h). */
#include <stdlib.h>
#include <string.h>

#include "policy/condition.h"
#include "policy/settings.h"

void policy_config_init(struct policy_config *p) {
        *p = (struct policy_config) {
                .target_signal = _SIGNAL_INVALID,
                .target_tolerance = 10,
                .optimize_signal = _SIGNAL_INVALID,
                .optimize_bias = 5,
                .stabilization_down = 30 * USEC_PER_SEC,
                .cooldown_up = 2 * USEC_PER_SEC,
                .cooldown_down = 10 * USEC_PER_SEC,
        };
}

void policy_config_free_rules(struct policy_config *p) {
        for (size_t i = 0; i < p->n_rules; i++) {
                free(p->rules[i].name);
                free(p->rules[i].when_text);
                condition_free(p->rules[i].when);
        }
        free(p->rules);
        p->rules = NULL;
        p->n_rules = 0;
}

void policy_config_done(struct policy_config *p) {
        policy_config_free_rules(p);
        memset(p, 0, sizeof(*p));
}
