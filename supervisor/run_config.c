/* SPDX-License-Identifier: MIT */
/* Building the run configuration: file or default policy, flags, machine defaults. */
#include <errno.h>
#include <string.h>

#include "conf/conf.h"
#include "metrics/http.h"
#include "supervisor/identity.h"
#include "supervisor/log.h"
#include "supervisor/run_config.h"
#include "supervisor/sampler.h"

static int strv_copy(char *const *src, char ***ret) {
        size_t n = strv_length(src);
        _cleanup_(strv_freep) char **v = calloc(n + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (!(v[i] = strdup(src[i])))
                        return -ENOMEM;
        *ret = TAKE_PTR(v);
        return 0;
}

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

static int replace_string(char **dst, const char *value) {
        char *copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        free(*dst);
        *dst = copy;
        return 0;
}

static int apply_task_flags(const struct run_args *a, struct tasks_config *t) {
        int r;

        if (a->tasks && (r = replace_string(&t->from, a->tasks)) < 0)
                return r;
        if (a->joblog && (r = replace_string(&t->joblog, a->joblog)) < 0)
                return r;
        if (a->stream)
                t->mode = TASK_MODE_STREAM;
        /* A filter reads stdin unless told otherwise: `corral run --stream -- cmd < in`. */
        if (t->mode == TASK_MODE_STREAM && !t->from && (r = replace_string(&t->from, "-")) < 0)
                return r;
        if (a->keep_order)
                t->keep_order = true;
        if (a->line_buffer)
                t->output = TASK_OUTPUT_LINE;
        if (a->ungroup)
                t->output = TASK_OUTPUT_UNGROUP;
        if (a->retries_set)
                t->retries = a->retries;
        if (a->timeout != USEC_INFINITY)
                t->timeout = a->timeout;
        if (a->batch)
                t->batch = a->batch;
        if (a->shard_count) {
                t->shard_index = a->shard_index;
                t->shard_count = a->shard_count;
        }
        if ((a->keep_order || a->line_buffer || a->ungroup || a->joblog || a->resume || a->resume_failed || a->retries_set ||
             a->bar || a->shard_count || a->batch || a->timeout != USEC_INFINITY) && !t->from) {
                log_error("the batch flags need --tasks FILE|- (or tasks.from in the file)");
                return -EINVAL;
        }
        /* The file alone was checked by conf_load(); these come from a flag. */
        if (t->output != TASK_OUTPUT_GROUP && t->mode == TASK_MODE_STREAM) {
                log_error("tasks.output: %s (--%s) applies to per-task mode only: stream mode (--stream, "
                          "tasks.mode: stream) writes one result line per input line",
                          t->output == TASK_OUTPUT_LINE ? "line-buffer" : "ungroup",
                          t->output == TASK_OUTPUT_LINE ? "line-buffer" : "ungroup");
                return -EINVAL;
        }
        if (t->output == TASK_OUTPUT_UNGROUP && t->keep_order) {
                log_error("--ungroup (tasks.output: ungroup) and --keep-order (tasks.keep_order) exclude each "
                          "other: ungroup passes output on as it comes, in no order");
                return -EINVAL;
        }
        if ((a->resume || a->resume_failed) && !t->joblog) {
                log_error("%s needs a joblog: --joblog FILE or tasks.joblog", a->resume ? "--resume" : "--resume-failed");
                return -EINVAL;
        }
        return 0;
}

static int apply_flags(const struct run_args *a, struct corral_config *c) {
        struct workers_config *w = &c->workers;
        int r;

        if (a->command) {
                strv_free(c->command);
                c->command = NULL;
                r = strv_copy(a->command, &c->command);
                if (r < 0)
                        return r;
        }
        if (a->metrics) {
                struct sockaddr_storage addr;
                socklen_t len;
                if (strcmp(a->metrics, "none") != 0 && metrics_listen_parse(a->metrics, &addr, &len) < 0) {
                        log_error("--metrics: '%s' is not HOST:PORT or none", a->metrics);
                        return -EINVAL;
                }
                free(c->metrics.listen);
                if (!(c->metrics.listen = strdup(a->metrics)))
                        return -ENOMEM;
        }
        if (a->min_set)
                w->min = a->min;
        if (a->max_set)
                w->max = a->max;
        if (a->stop_timeout != USEC_INFINITY)
                w->stop_timeout = a->stop_timeout;
        if (a->restart_delay != USEC_INFINITY)
                w->backoff_initial = a->restart_delay;
        if (a->crash_limit_set)
                w->crash_burst = a->crash_limit;
        return apply_task_flags(a, &c->tasks);
}

static int resolve_machine_defaults(struct corral_config *c) {
        struct workers_config *w = &c->workers;
        unsigned cpus = 1;

        if (!c->command || !c->command[0]) {
                log_error("no COMMAND to run: give one after -- or as command: in the configuration file");
                return -EINVAL;
        }
        /* An unset max follows the machine, but never below an explicit min.
         * A batch may run 4 tasks per CPU: tasks that wait on I/O leave room
         * for more, and the policy finds out how many pay. */
        (void) cpu_capacity(&cpus);
        if (w->max == 0) {
                unsigned max = c->tasks.from ? 4 * cpus : cpus;
                w->max = max > w->min ? max : w->min;
        }
        /* A batch starts where xargs -P$(nproc) would, and the policy moves
         * it from there; a long-lived pool starts at min. */
        if (w->initial == 0 && c->tasks.from)
                w->initial = cpus;
        if (w->min > w->max) {
                log_error("min %u is larger than max %u", w->min, w->max);
                return -EINVAL;
        }
        if (w->initial == 0 || w->initial < w->min)
                w->initial = w->min;
        if (w->initial > w->max)
                w->initial = w->max;
        if (w->backoff_initial > w->backoff_max)
                w->backoff_max = w->backoff_initial;
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
        r = apply_flags(args, &c);
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
