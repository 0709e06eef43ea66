/* SPDX-License-Identifier: MIT */
/* Defaults and destruction of struct corral_config. */
#include <signal.h>
#include <string.h>

#include "conf/config.h"

const char *const task_output_names[_TASK_OUTPUT_MAX + 1] = { "group", "line-buffer", "ungroup", NULL };

const char *task_output_to_string(enum task_output o) {
        return (unsigned) o < _TASK_OUTPUT_MAX ? task_output_names[o] : NULL;
}

void config_init(struct corral_config *c) {
        *c = (struct corral_config) {
                .workers = {
                        .min = 1,
                        .stop_signal = SIGTERM,
                        .stop_timeout = 10 * USEC_PER_SEC,
                        .restart = RESTART_ALWAYS,
                        .backoff_initial = 100 * USEC_PER_MSEC,
                        .backoff_max = 30 * USEC_PER_SEC,
                        .backoff_reset_after = 10 * USEC_PER_SEC,
                        .crash_burst = 10,
                        .placement = PLACEMENT_NONE,
                        .recycle_jitter = 10,
                        .start_timeout = 60 * USEC_PER_SEC,
                },
                .sample_interval = USEC_PER_SEC,
                .tasks = {
                        .mode = TASK_MODE_PER_TASK,
                        .output = TASK_OUTPUT_GROUP,
                        .batch = 1,
                        .shard_count = 1,
                        .lease = QUEUE_LEASE_DEFAULT,
                        .max_deliveries = QUEUE_MAX_DELIVERIES_DEFAULT,
                },
        };
        policy_config_init(&c->policy);
}

void config_done(struct corral_config *c) {
        free(c->path);
        strv_free(c->command);
        free(c->workers.user);
        free(c->workers.group);
        free(c->workers.identity.groups);
        strv_free(c->workers.env);
        free(c->workers.cwd);
        policy_config_done(&c->policy);
        for (size_t i = 0; i < c->n_shared; i++) {
                free(c->shared[i].name);
                free(c->shared[i].path);
                strv_free(c->shared[i].command);
        }
        free(c->shared);
        free(c->metrics.listen);
        free(c->metrics.textfile);
        for (size_t i = 0; i < c->n_listen; i++)
                free(c->listen[i].address);
        free(c->listen);
        free(c->tasks.from);
        free(c->tasks.joblog);
        free(c->tasks.results);
        free(c->tasks.failed_line);
        memset(c, 0, sizeof(*c));
}
