/* SPDX-License-Identifier: MIT */
/*
 * The controller's report: the metrics snapshot assembled from the workload,
 * the last sample, the shared segments, the rules and the last decision, then
 * rendered for the HTTP thread (/metrics, /status, /healthz) and the textfile.
 * Everything here runs on the loop thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "metrics/process.h"
#include "metrics/status_json.h"
#include "metrics/textfile.h"
#include "supervisor/controller_metrics.h"
#include "supervisor/log.h"
#include "supervisor/run_config.h"

int controller_ensure_buffers(struct controller *c) {
        size_t n_rules = c->config->policy.n_rules;
        if (n_rules > c->n_rules_alloc) {
                struct metrics_rule *rules = reallocarray(c->rules, n_rules, sizeof(*rules));
                if (!rules)
                        return -ENOMEM;
                c->rules = rules;
                c->n_rules_alloc = n_rules;
        }

        size_t n = workload_slots(&c->work);
        if (c->sample.n_cores > n)
                n = c->sample.n_cores;
        if (c->shm && c->shm->n_segments > n)
                n = c->shm->n_segments;
        if (n <= c->n_buffers)
                return 0;
        struct metrics_worker *rows = reallocarray(c->rows, n, sizeof(*rows));
        if (!rows)
                return -ENOMEM;
        c->rows = rows;
        struct metrics_core *cores = reallocarray(c->cores, n, sizeof(*cores));
        if (!cores)
                return -ENOMEM;
        c->cores = cores;
        struct metrics_segment *segments = reallocarray(c->segments, n, sizeof(*segments));
        if (!segments)
                return -ENOMEM;
        c->segments = segments;
        pid_t *pids = reallocarray(c->pids, n, sizeof(*pids));
        if (!pids)
                return -ENOMEM;
        c->pids = pids;
        c->n_buffers = n;
        return 0;
}

static void fill_sample(struct controller *c, struct metrics_snapshot *s) {
        if (!c->have_sample)
                return;
        s->signals = c->sample.signals;
        for (size_t i = 0; i < c->sample.n_cores; i++)
                c->cores[i] = (struct metrics_core) { .id = (unsigned) c->sample.cores[i].id,
                                                      .busy = c->sample.cores[i].busy };
        s->cores = c->cores;
        s->n_cores = c->sample.n_cores;
}

static void fill_segments(struct controller *c, struct metrics_snapshot *s) {
        const struct shm_set *shm = c->shm;
        if (!shm)
                return;
        for (size_t i = 0; i < shm->n_segments; i++)
                c->segments[i] = (struct metrics_segment) {
                        .name = shm->segments[i]->name,
                        .bytes = shm->segments[i]->size,
                        .load_seconds = (double) shm->segments[i]->load_usec / USEC_PER_SEC,
                        .generation = shm->segments[i]->generation,
                };
        s->segments = c->segments;
        s->n_segments = shm->n_segments;
}

static void fill_policy(struct controller *c, struct metrics_snapshot *s, usec_t now) {
        s->scale_events = c->scale_events;
        s->n_scale_events = c->n_scale_events;
        s->target = c->config->policy.has_target;
        s->optimize = c->config->policy.has_optimize;
        s->n_rules = c->config->policy.n_rules;
        s->rules = c->rules;
        for (size_t i = 0; i < s->n_rules; i++) {
                const struct rule_config *rule = &c->config->policy.rules[i];
                struct policy_rule_status st = {};
                (void) policy_rule_status(&c->config->policy, &c->policy, i, now, &st);
                c->rules[i] = (struct metrics_rule) {
                        .name = rule->name,
                        .when = rule->when_text,
                        .for_seconds = (double) st.hold / (double) USEC_PER_SEC,
                        .holding = st.holding,
                        .held = (double) st.held_for / (double) USEC_PER_SEC,
                        .scale = rule->scale,
                };
        }
        if (c->decided)
                s->last_decision = (struct metrics_decision) {
                        .valid = true,
                        .rule = c->decision_label,
                        .reason = c->decision.why,
                        .changed = c->change.valid,
                        .from = c->change.from,
                        .to = c->change.to,
                        .age = (double) (now - c->change.when) / (double) USEC_PER_SEC,
                };
}

static void fill_snapshot(struct controller *c, struct metrics_snapshot *s, usec_t now) {
        *s = (struct metrics_snapshot) {
                .version = CORRAL_VERSION,
                .min = c->config->workers.min,
                .reloads_ok = c->reloads_ok,
                .reloads_failed = c->reloads_failed,
        };
        fill_sample(c, s);   /* first: the workload may read the signals */
        workload_fill_snapshot(&c->work, s, &(struct workload_view) {
                                       .sampler = c->sampler, .now = now, .rows = c->rows });
        fill_segments(c, s);
        fill_policy(c, s, now);
        (void) metrics_process_read(&s->process);
}

void controller_publish(struct controller *c) {
        struct metrics_snapshot s;
        _cleanup_free_ char *text = NULL, *json = NULL;
        size_t text_len = 0, json_len = 0;
        char reason[256];
        usec_t now = 0;
        int r;

        if (!c->http && !c->config->metrics.textfile)
                return;
        r = controller_ensure_buffers(c);
        if (r < 0)
                return (void) log_warning_errno(r, "Failed to publish metrics: %m");
        (void) sd_event_now(c->event, CLOCK_MONOTONIC, &now);   /* the loop's time, as the controller's */
        fill_snapshot(c, &s, now);
        r = metrics_snapshot_render(&s, &text, &text_len);
        if (r >= 0)
                r = metrics_snapshot_status_json(&s, &json, &json_len);
        if (r < 0)
                return (void) log_warning_errno(r, "Failed to render metrics: %m");
        if (c->http) {
                bool healthy = metrics_snapshot_health(&s, reason, sizeof(reason));
                r = metrics_http_publish(c->http, text, json, healthy, reason);
                if (r < 0)
                        log_warning_errno(r, "Failed to publish metrics: %m");
        }
        if (c->config->metrics.textfile) {
                r = metrics_textfile_write(c->config->metrics.textfile, text, text_len);
                if (r < 0)
                        log_warning_errno(r, "Failed to write %s: %m", c->config->metrics.textfile);
        }
}

void controller_count_scale_event(struct controller *c, const char *label, enum metrics_direction dir) {
        for (size_t i = 0; i < c->n_scale_events; i++)
                if (c->scale_events[i].direction == dir && strcmp(c->scale_events[i].rule, label) == 0) {
                        c->scale_events[i].count++;
                        return;
                }
        struct metrics_scale_count *a = reallocarray(c->scale_events, c->n_scale_events + 1, sizeof(*a));
        if (!a)
                return;
        c->scale_events = a;
        char *copy = strdup(label);
        if (!copy)
                return;
        c->scale_events[c->n_scale_events++] = (struct metrics_scale_count) {
                .rule = copy, .direction = dir, .count = 1,
        };
}

static int on_render_request(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        eventfd_t n;
        (void) s;
        (void) revents;
        (void) eventfd_read(fd, &n);
        controller_publish(userdata);
        return 0;
}

/*
 * The default address (metrics.listen not given) is a convenience, not a
 * promise: a second corral on the machine (shards, another user's batch) finds
 * it taken and serves on a free port of the same host, which it logs. An
 * address asked for (file or --metrics) that is busy is an error.
 */
static int start_metrics_default(struct controller *c, const char *listen, uint64_t reserved, uint16_t *ret_port) {
        char fallback[sizeof(METRICS_LISTEN_DEFAULT)];
        const char *colon = strrchr(listen, ':');

        int r = metrics_http_start(listen, reserved, &c->http, ret_port);
        if (r != -EADDRINUSE || !colon)
                return r;
        snprintf(fallback, sizeof(fallback), "%.*s:0", (int) (colon - listen), listen);
        r = metrics_http_start(fallback, reserved, &c->http, ret_port);
        if (r < 0)
                return r;
        log_info("metrics on port %u (%s is in use: took a free port)", *ret_port, listen);
        return 1;
}

/* The fds a worker or task may hold: its pidfd, its /proc/PID/stat, stdin,
 * stdout and stderr pipes, and one more while it is being spawned. HTTP
 * clients get only what is left, so that idle clients cannot take the fds a
 * restart needs. The reserve follows workers.max at start, not on reload. */
#define FDS_PER_WORKER 6u

int controller_start_metrics(struct controller *c) {
        const char *listen = run_config_metrics_listen(c->config);
        uint64_t reserved = (uint64_t) c->config->workers.max * FDS_PER_WORKER;
        uint16_t port;
        int r;

        if (!listen)
                return 0;
        if (!c->config->metrics.listen)
                r = start_metrics_default(c, listen, reserved, &port);
        else
                r = metrics_http_start(listen, reserved, &c->http, &port);
        if (r < 0)
                return log_error_errno(r, "cannot listen on %s: %m", listen);
        if (r == 0)
                log_info("metrics on port %u (%s)", port, listen);
        log_debug("metrics: up to %u connections at once", metrics_http_max_connections(c->http));
        return 0;
}

int controller_watch_metrics(struct controller *c) {
        if (!c->http)
                return 0;
        int r = sd_event_add_io(c->event, NULL, metrics_http_render_fd(c->http), EPOLLIN, on_render_request, c);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the metrics endpoint: %m");
        return 0;
}

void controller_metrics_done(struct controller *c) {
        c->http = metrics_http_stop(c->http);
        for (size_t i = 0; i < c->n_scale_events; i++)
                free((char *) c->scale_events[i].rule);
        free(c->scale_events);
        free(c->rows);
        free(c->rules);
        free(c->cores);
        free(c->segments);
        free(c->pids);
}
