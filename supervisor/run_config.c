/* SPDX-License-Identifier: MIT */
/* Building the run configuration: file or default policy, flags, validation, machine defaults. */
#include <errno.h>
#include <string.h>

#include "conf/conf.h"
#include "supervisor/identity.h"
#include "supervisor/log.h"
#include "supervisor/machine_limits.h"
#include "supervisor/run_config.h"
#include "supervisor/sampler_cgroup.h"

static int load_file_or_default(const struct run_args *a, struct corral_config *ret) {
        _cleanup_(conf_diagnostics_done) struct conf_diagnostics diag = {};
        int r;

        if (!a->config_path) {
                config_init(ret);
                r = config_default_policy(ret, a->tasks != NULL);
                if (r < 0)
                        config_done(ret);
                /* The throughput seeker measures each size over several
                 * samples: sampling a batch 10 times a second lets it find
                 * its size within a second or two (the first tenth of a
                 * short batch), for about 0.1% of a core. */
                if (a->tasks)
                        ret->sample_interval = 100 * USEC_PER_MSEC;
                return r;
        }

        r = conf_load(a->config_path, ret, &diag);
        for (size_t i = 0; i < diag.n_items; i++)
                log_full(diag.items[i].severity == CONF_ERROR ? LOG_ERR : LOG_WARNING, 0,
                         "%s", diag.items[i].message);
        return r == -ENOMEM ? r : r < 0 ? -EINVAL : 0;
}

/* The same rules as conf_load() applies to the file (conf_validate), now over
 * the file and the flags together. */
static int validate(const struct corral_config *c) {
        _cleanup_(conf_diagnostics_done) struct conf_diagnostics diag = {};

        int r = conf_validate(c, c->path, false, &diag);
        if (r >= 0)
                r = conf_lint(c, c->path, &diag);
        for (size_t i = 0; i < diag.n_items; i++)
                log_full(diag.items[i].severity == CONF_ERROR ? LOG_ERR : LOG_WARNING, 0, "%s", diag.items[i].message);
        return r;
}

static int resolve_machine_defaults(struct corral_config *c) {
        struct workers_config *w = &c->workers;
        unsigned cpus = 1;

        if (!c->command || !c->command[0]) {
                log_error("no COMMAND to run: give one after -- or as command: in the configuration file");
                return -EINVAL;
        }
        /* An unset max follows the machine, but never below an explicit min.
         * A batch has no fixed ceiling: tasks that wait leave room for many
         * more than the CPUs, and the throughput seeker finds out how many
         * pay; only the machine's limits (processes, files, pids cgroup,
         * memory: policy/ceiling.h) bound it. */
        (void) cpu_capacity(&cpus);
        if (w->max == 0) {
                struct machine_limits limits;
                unsigned max = cpus;
                if (c->tasks.from) {
                        machine_limits_read(&limits);
                        max = ceiling_workers(&limits, WORKERS_LIMIT);
                }
                w->max = max > w->min ? max : w->min;
        }
        /* A batch starts where xargs -P$(nproc) would, and the policy moves
         * it from there; a long-lived pool starts at min. */
        if (w->initial == 0 && c->tasks.from)
                w->initial = cpus;
        /* min <= max holds: conf_validate() saw to a max someone set, and the machine's is at least min. */
        if (w->initial == 0 || w->initial < w->min)
                w->initial = w->min;
        if (w->initial > w->max)
                w->initial = w->max;
        return 0;
}

/* workers.user/group into ids, here in corral: a spawn must not read the user
 * database, and a reload re-reads it (a user added since counts). */
static int resolve_identity(struct corral_config *c) {
        _cleanup_(conf_diagnostics_done) struct conf_diagnostics diag = {};
        struct identity_self self = identity_self();

        int r = identity_resolve(&c->workers, c->path, &self, &diag);
        for (size_t i = 0; i < diag.n_items; i++)
                log_error("%s", diag.items[i].message);
        return r;
}

int run_config_build(const struct run_args *args, struct corral_config *ret) {
        struct corral_config c;
        int r;

        r = load_file_or_default(args, &c);
        if (r < 0)
                return r;
        r = run_args_apply(args, &c);
        if (r >= 0)
                r = validate(&c);
        if (r >= 0)
                r = resolve_machine_defaults(&c);
        if (r >= 0)
                r = resolve_identity(&c);
        if (r < 0) {
                config_done(&c);
                return r;
        }
        *ret = c;
        return 0;
}

const char *run_config_metrics_listen(const struct corral_config *c) {
        if (!c->metrics.listen)
                return METRICS_LISTEN_DEFAULT;
        if (strcmp(c->metrics.listen, "none") == 0)
                return NULL;
        return c->metrics.listen;
}
