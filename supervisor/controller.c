/* SPDX-License-Identifier: MIT */
/*
 * The run loop: sampling, resizing, reloading and reporting, around the pool.
 * Everything happens on the loop thread; the HTTP thread only sees the pages
 * published here.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "conf/units.h"
#include "metrics/corral_metrics.h"
#include "metrics/http.h"
#include "metrics/process.h"
#include "metrics/textfile.h"
#include "policy/decide.h"
#include "supervisor/batch.h"
#include "supervisor/commands.h"
#include "supervisor/controller.h"
#include "supervisor/held_back.h"
#include "supervisor/log.h"
#include "supervisor/placement.h"
#include "supervisor/pool.h"
#include "supervisor/run_config.h"
#include "supervisor/sampler.h"
#include "supervisor/shm.h"
#include "supervisor/stream.h"

struct controller {
        sd_event *event;
        const struct run_args *args;
        struct corral_config *config;    /* owned; replaced on reload */
        struct pool *pool;               /* long-lived workers; NULL in batch mode */
        struct batch *batch;             /* per-task batch (--tasks); NULL otherwise */
        struct stream *stream;           /* stream mode (--stream): feeds the pool's workers */
        struct sampler *sampler;
        struct shm_set *shm;             /* the shared segments new workers get (a reference) */
        struct metrics_http *http;
        sd_event_source *sample_timer;

        struct policy_state policy;
        struct decision decision;        /* the last one, valid when decided */
        bool decided;
        char decision_label[64];         /* copied: decision.rule points into the config */
        struct decision_view {
                bool valid;              /* false until the size changed once */
                unsigned from, to;
                usec_t when;
        } change;                        /* the last change of size */
        struct held_back held_back;      /* what keeps the pool from growing, as last logged */
        struct metrics_scale_count *scale_events;   /* labels owned */
        size_t n_scale_events;

        struct sample sample;            /* the last one, valid when have_sample */
        bool have_sample;
        bool sampler_failing;            /* logged once, until it recovers */
        struct stop_request {            /* the last stop signal acted on */
                uint32_t signo, pid;     /* pid 0: sent by the kernel (a terminal's Ctrl-C) */
                usec_t done;             /* when acting on it ended */
        } stop;
        uint64_t reloads_ok, reloads_failed;

        /* Buffers for the snapshot, reused every sample. */
        struct metrics_worker *rows;
        struct metrics_rule *rules;
        size_t n_rules_alloc;
        struct metrics_core *cores;
        struct metrics_segment *segments;
        pid_t *pids;
        size_t n_buffers;
};

static usec_t now_monotonic(struct controller *c) {
        usec_t now = 0;
        (void) sd_event_now(c->event, CLOCK_MONOTONIC, &now);
        return now;
}

static int ensure_buffers(struct controller *c) {
        size_t n_rules = c->config->policy.n_rules;
        if (n_rules > c->n_rules_alloc) {
                struct metrics_rule *rules = reallocarray(c->rules, n_rules, sizeof(*rules));
                if (!rules)
                        return -ENOMEM;
                c->rules = rules;
                c->n_rules_alloc = n_rules;
        }

        size_t n = c->batch ? batch_max(c->batch) : c->pool->n_alloc;
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

static void fill_pool_snapshot(struct controller *c, struct metrics_snapshot *s) {
        const struct pool *p = c->pool;
        usec_t now = now_monotonic(c);
        size_t n_rows = 0;

        s->desired = p->desired;
        s->max = p->max;
        s->stopping = p->stopping;
        s->crash_loop = p->crash_loop;
        s->restarts = p->restarts;
        s->workers[METRICS_WORKER_RUNNING] = pool_count(p, WORKER_RUNNING);
        s->workers[METRICS_WORKER_STOPPING] = pool_count(p, WORKER_STOPPING);
        for (int i = 0; i < _OUTCOME_MAX; i++)
                s->exits[i] = p->exits[i];
        for (int i = 0; i < _RECYCLE_MAX; i++)
                s->recycles[i] = p->recycles[i];

        for (unsigned i = 0; i < p->n_alloc; i++) {
                const struct worker *w = p->workers[i];
                double cpu = NAN;
                uint64_t rss = 0;
                if (w->state == WORKER_EMPTY)
                        continue;
                if (sampler_worker(c->sampler, w->child.pid, &cpu, &rss) < 0 || cpu < 0)
                        cpu = NAN;
                c->rows[n_rows++] = (struct metrics_worker) {
                        .id = w->id,
                        .pid = w->child.pid,
                        .state = w->state == WORKER_RUNNING ? METRICS_WORKER_RUNNING : METRICS_WORKER_STOPPING,
                        .uptime = (double) (now - w->child.started) / (double) USEC_PER_SEC,
                        .cpu = cpu,
                        .rss = rss,
                        .restarts = w->restarts,
                };
        }
        s->worker_rows = c->rows;
        s->n_worker_rows = n_rows;
}

static void fill_snapshot(struct controller *c, struct metrics_snapshot *s) {
        const struct shm_set *shm = c->shm;
        usec_t now = now_monotonic(c);

        *s = (struct metrics_snapshot) {
                .version = CORRAL_VERSION,
                .min = c->config->workers.min,
                .reloads_ok = c->reloads_ok,
                .reloads_failed = c->reloads_failed,
        };
        if (c->batch)
                batch_fill_snapshot(c->batch, s);
        else
                fill_pool_snapshot(c, s);
        if (c->stream)
                stream_fill_snapshot(c->stream, s);

        if (c->have_sample) {
                s->signals = c->sample.signals;
                for (size_t i = 0; i < c->sample.n_cores; i++)
                        c->cores[i] = (struct metrics_core) { .id = (unsigned) c->sample.cores[i].id,
                                                              .busy = c->sample.cores[i].busy };
                s->cores = c->cores;
                s->n_cores = c->sample.n_cores;
                /* In batch mode utilization is the share of task places busy. */
                if (!c->batch && !c->stream && signals_has(&s->signals, SIGNAL_POOL_CPU))
                        s->utilization = fmin(fmax(s->signals.value[SIGNAL_POOL_CPU] / 100.0, 0), 1);
        }
        if (shm) {
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
        (void) metrics_process_read(&s->process);
}

/* Renders and hands the pages to the HTTP thread and the textfile. */
static void publish(struct controller *c) {
        struct metrics_snapshot s;
        _cleanup_free_ char *text = NULL, *json = NULL;
        size_t text_len = 0, json_len = 0;
        char reason[256];
        int r;

        if (!c->http && !c->config->metrics.textfile)
                return;
        r = ensure_buffers(c);
        if (r < 0)
                return (void) log_warning_errno(r, "Failed to publish metrics: %m");
        fill_snapshot(c, &s);
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

static void notify_status(struct controller *c) {
        const struct pool *p = c->pool;
        char cpu[32] = "cpu ?";

        if (c->have_sample && signals_has(&c->sample.signals, SIGNAL_CPU_BUSY))
                snprintf(cpu, sizeof(cpu), "cpu %.0f%%", c->sample.signals.value[SIGNAL_CPU_BUSY]);
        if (c->batch) {
                (void) sd_notifyf(false, "STATUS=tasks %u/%u running, %s", batch_running(c->batch),
                                  batch_concurrency(c->batch), cpu);
                return;
        }
        (void) sd_notifyf(false, "STATUS=workers %u/%u, %s", pool_count(p, WORKER_RUNNING), p->max, cpu);
}

/* workers.recycle.rss: a worker whose resident memory is over its own limit
 * at this sample is replaced. */
static void recycle_by_rss(struct controller *c) {
        struct pool *p = c->pool;
        char why[96], rss_text[32], limit_text[32];

        for (unsigned i = 0; p && i < p->n_alloc; i++) {
                struct worker *w = p->workers[i];
                double cpu;
                uint64_t rss = 0;
                if (w->child.state != CHILD_RUNNING || w->recycle.rss == 0)
                        continue;
                if (sampler_worker(c->sampler, w->child.pid, &cpu, &rss) < 0 || rss <= w->recycle.rss)
                        continue;
                snprintf(why, sizeof(why), "rss %s over %s", format_size(rss, rss_text),
                         format_size(w->recycle.rss, limit_text));
                pool_worker_recycle(w, RECYCLE_RSS, why);
        }
}

static void take_sample(struct controller *c) {
        size_t n;
        int r;

        r = ensure_buffers(c);
        if (r < 0) {
                log_warning_errno(r, "Failed to sample: %m");
                return;
        }
        n = c->batch ? batch_running_pids(c->batch, c->pids, c->n_buffers)
                     : pool_running_pids(c->pool, c->pids, c->n_buffers);
        r = sampler_sample(c->sampler, c->pids, n, &c->sample);
        if (r < 0) {
                /* No sample, no decision: the pool stays as it is. */
                c->have_sample = false;
                if (!c->sampler_failing)
                        log_warning_errno(r, "Failed to sample the machine, holding the pool size: %m");
                c->sampler_failing = true;
                return;
        }
        if (c->sampler_failing)
                log_info("sampling works again");
        c->sampler_failing = false;
        c->have_sample = true;
        if (c->batch)
                batch_fill_signals(c->batch, &c->sample.signals);
        if (c->stream)
                stream_fill_signals(c->stream, &c->sample.signals);
        recycle_by_rss(c);
}

/* The one place the pool size is applied, whoever decided it (the policy, a
 * manual resize): the workers of the pool, or the tasks run at once in batch
 * mode. */
/* The size the pool (or batch) is heading for, its bound, and whether it stops. */
static unsigned controller_size(const struct controller *c) {
        return c->batch ? batch_concurrency(c->batch) : c->pool->desired;
}

static unsigned controller_max(const struct controller *c) {
        return c->batch ? batch_max(c->batch) : c->pool->max;
}

static bool controller_stopping(const struct controller *c) {
        if (c->stream && stream_stopping(c->stream))
                return true;
        return c->batch ? batch_stopping(c->batch) : c->pool->stopping;
}

static void controller_set_size(struct controller *c, unsigned n) {
        if (c->batch)
                batch_set_concurrency(c->batch, n);
        else
                (void) pool_set_desired(c->pool, n);
}

static void count_scale_event(struct controller *c, const char *label, enum metrics_direction dir) {
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

/* Moves the pool to `size` and remembers the change for /status and metrics. */
static void resize(struct controller *c, unsigned size, const char *label, const char *why) {
        unsigned from = controller_size(c);
        if (size == from)
                return;
        log_info("scale %u -> %u (%s)", from, size, why);
        held_back_reset(&c->held_back);
        count_scale_event(c, label, size > from ? METRICS_SCALE_UP : METRICS_SCALE_DOWN);
        c->change = (struct decision_view) { .valid = true, .from = from, .to = size, .when = now_monotonic(c) };
        controller_set_size(c, size);
}

/* `now` is the sample timer's deadline, not the wake-up time: rules' `for` is
 * then measured in whole intervals, and a condition that held `for` exactly
 * fires on that sample, not one interval later for a wake-up 1 ms early. */
static void decide(struct controller *c, usec_t now) {
        const struct corral_config *cfg = c->config;
        struct decision d;
        int r;

        if (controller_stopping(c))
                return;
        /* The size the pool is heading for: running and waiting-to-restart
         * workers count, stopping ones do not. */
        r = policy_decide(&cfg->policy, cfg->workers.min, controller_max(c), &c->policy,
                          c->have_sample ? &c->sample.signals : NULL, controller_size(c),
                          now, &d);
        if (r < 0) {
                log_warning_errno(r, "Failed to decide the pool size: %m");
                return;
        }
        c->decision = d;
        c->decided = true;
        snprintf(c->decision_label, sizeof(c->decision_label), "%s", decision_label(&d));
        c->decision.rule = NULL;   /* points into the config, which a reload frees */
        if (d.desired != controller_size(c))
                resize(c, d.desired, c->decision_label, d.why);
        else {
                log_debug("steady at %u: %s", d.desired, d.why);
                held_back_note(&c->held_back, &cfg->policy, c->have_sample ? &c->sample.signals : NULL, &d);
        }
}

static int on_sample_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct controller *c = userdata;

        take_sample(c);
        decide(c, usec);
        /* Rendering the pages costs more than sampling: render for the textfile,
         * else only when a client asks (on_render_request). */
        if (c->config->metrics.textfile || !c->http)
                publish(c);
        else
                metrics_http_mark_stale(c->http);
        notify_status(c);

        /* Re-armed from its own deadline, so samples do not drift; the interval
         * is read each time, so a reload applies from the next sample. After a
         * stall (a long reload) the next sample is one interval from now, not
         * a burst of samples each covering almost no time. */
        usec_t interval = c->config->sample_interval, next = usec + interval, now = now_monotonic(c);
        if (next <= now)
                next = now + interval;
        int r = sd_event_source_set_time(s, next);
        if (r >= 0)
                r = sd_event_source_set_enabled(s, SD_EVENT_ON);
        if (r < 0)
                log_error_errno(r, "Failed to re-arm the sample timer: %m");
        return 0;
}

/* workers.placement (placement.c): the inputs are the affinity mask now and
 * the cores of the last sample, if any. */
static int place_worker(struct pool *p, unsigned worker_id, void *userdata) {
        struct controller *c = userdata;
        enum placement placement = c->config->workers.placement;
        cpu_set_t usable;
        bool have_usable;
        (void) p;

        /* Re-read at each start: a cpuset or `taskset -p` may have changed it. */
        have_usable = placement == PLACEMENT_SPREAD && sched_getaffinity(0, sizeof(usable), &usable) >= 0;
        return placement_cpu(placement, worker_id, have_usable ? &usable : NULL,
                             c->have_sample ? c->sample.cores : NULL, c->have_sample ? c->sample.n_cores : 0);
}

static void on_stopping(void *userdata) {
        struct controller *c = userdata;
        (void) sd_notify(false, "STOPPING=1");
        publish(c);   /* /healthz turns 503 now, not at the next sample */
}

static void on_pool_stopping(struct pool *p, void *userdata) {
        (void) p;
        on_stopping(userdata);
}

/*
 * One request, two signals: `timeout -s INT` signals corral, then its own
 * process group, which corral shares (PLATFORM.md), and a second stop signal
 * means "kill at once". So the same signal from the same process (pid known,
 * hence not a terminal's Ctrl-C, which the kernel sends once per key press)
 * within STOP_REPEAT_WINDOW of the end of acting on the first is the same
 * request. The window counts from the end of acting on the first, so a slow
 * stop (a busy loop) does not turn the duplicate into a second request. A
 * deliberate second request still escalates: another signal (TERM after INT),
 * another sender (a second `kill`), Ctrl-C again, or the same sender later.
 */
#define STOP_REPEAT_WINDOW_USEC (1 * USEC_PER_SEC)

static bool stop_signal_repeats(const struct stop_request *last, const struct signalfd_siginfo *si, usec_t now) {
        return last->done > 0 && si->ssi_pid != 0 && si->ssi_pid == last->pid && si->ssi_signo == last->signo &&
               now < last->done + STOP_REPEAT_WINDOW_USEC;
}

static usec_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct controller *c = userdata;
        char name[16];
        (void) s;
        signal_to_string((int) si->ssi_signo, name);
        if (stop_signal_repeats(&c->stop, si, now_monotonic(c))) {
                log_info("received SIG%s again from pid %" PRIu32 " at once: the same request, ignoring",
                         name, si->ssi_pid);
                return 0;
        }
        log_info("received SIG%s", name);
        if (c->batch)
                batch_stop(c->batch);
        else if (c->stream)
                stream_stop(c->stream);
        else
                pool_stop(c->pool, EXIT_OK);
        c->stop = (struct stop_request) { .signo = si->ssi_signo, .pid = si->ssi_pid, .done = now_usec() };
        return 0;
}

static int on_resize_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct controller *c = userdata;
        unsigned now = controller_size(c), max = controller_max(c);
        unsigned n = now;
        (void) s;

        if (controller_stopping(c))
                return 0;
        if (si->ssi_signo == SIGTTIN && n < max)
                n++;
        else if (si->ssi_signo == SIGTTOU && n > c->config->workers.min)
                n--;
        /* Held until a rule fires. A change is logged once, by resize(). */
        policy_manual(&c->policy, n, now_monotonic(c));
        if (n == now)
                log_info("manual resize: already %u worker%s (%s %u)", n, n == 1 ? "" : "s",
                         si->ssi_signo == SIGTTIN ? "max" : "min", n);
        resize(c, n, "manual", "by hand");
        return 0;
}

static void reload(struct controller *c) {
        _cleanup_free_ struct corral_config *next = calloc(1, sizeof(*next));
        _cleanup_(shm_set_unrefp) struct shm_set *shm = NULL;
        struct shm_error shm_error;
        const char *old_listen, *new_listen;
        int r;

        if (!c->args->config_path) {
                log_notice("received SIGHUP: no configuration file to reload, ignoring");
                return;
        }
        log_info("received SIGHUP: reloading %s", c->args->config_path);
        (void) sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long) now_monotonic(c));

        r = next ? run_config_build(c->args, next) : -ENOMEM;
        if (r < 0) {
                c->reloads_failed++;
                log_error("reload refused: %s has errors; the running configuration stays", c->args->config_path);
                goto done;
        }
        r = shm_set_reload(c->shm, next->shared, next->n_shared, &shm, &shm_error);
        if (r < 0) {
                c->reloads_failed++;
                log_error("%s; reload refused, the running configuration and segments stay", shm_error.message);
                config_done(next);
                goto done;
        }

        r = policy_state_reload(&c->policy, next->policy.n_rules);
        if (r >= 0)
                r = c->batch ? batch_reconfigure(c->batch, next) : pool_reconfigure(c->pool, next);
        if (r < 0) {
                c->reloads_failed++;
                log_error_errno(r, "reload failed, the running configuration stays: %m");
                config_done(next);
                goto done;
        }

        if (shm != c->shm) {
                if (c->batch)
                        (void) batch_set_shm(c->batch, shm);
                else
                        pool_set_shm(c->pool, shm);
                shm_set_unref(c->shm);
                c->shm = TAKE_PTR(shm);
        }
        if (c->stream)
                stream_reconfigure(c->stream, next);

        old_listen = run_config_metrics_listen(c->config);
        new_listen = run_config_metrics_listen(next);
        if (!(old_listen == new_listen || (old_listen && new_listen && strcmp(old_listen, new_listen) == 0)))
                log_warning("metrics.listen changed: it takes effect when corral restarts");

        /* The pool now reads the new config: clamp the size into the new bounds. */
        unsigned desired = controller_size(c);
        if (desired < next->workers.min)
                desired = next->workers.min;
        if (desired > next->workers.max)
                desired = next->workers.max;

        config_done(c->config);
        free(c->config);
        c->config = TAKE_PTR(next);
        c->reloads_ok++;
        log_info("reloaded: %u-%u workers", c->config->workers.min, c->config->workers.max);
        if (desired != controller_size(c))
                resize(c, desired, desired < controller_size(c) ? "max" : "min", "new bounds");
done:
        (void) sd_notify(false, "READY=1");
        publish(c);
}

static int on_reload_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct controller *c = userdata;
        (void) s;
        (void) si;
        /* A reload would start workers (a new command), reload shared segments
         * (maybe running their commands) and delay the exit for nothing. */
        if (controller_stopping(c)) {
                log_notice("received SIGHUP while stopping, ignoring");
                return 0;
        }
        reload(c);
        return 0;
}

static int add_signal_handlers(struct controller *c) {
        static const struct {
                int sig;
                sd_event_signal_handler_t handler;
        } handlers[] = {
                { SIGTERM, on_stop_signal },
                { SIGINT,  on_stop_signal },
                { SIGHUP,  on_reload_signal },
                { SIGTTIN, on_resize_signal },
                { SIGTTOU, on_resize_signal },
        };
        for (size_t i = 0; i < ELEMENTSOF(handlers); i++) {
                /* NULL source: the loop owns it and frees it with itself. */
                int r = sd_event_add_signal(c->event, NULL, handlers[i].sig, handlers[i].handler, c);
                if (r < 0)
                        return log_error_errno(r, "Failed to watch signal %d: %m", handlers[i].sig);
        }
        return 0;
}

static int on_render_request(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        eventfd_t n;
        (void) s;
        (void) revents;
        (void) eventfd_read(fd, &n);
        publish(userdata);
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

static int start_metrics(struct controller *c) {
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
        r = sd_event_add_io(c->event, NULL, metrics_http_render_fd(c->http), EPOLLIN, on_render_request, c);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the metrics endpoint: %m");
        return 0;
}

static void controller_done(struct controller *c) {
        c->sample_timer = sd_event_source_disable_unref(c->sample_timer);
        c->stream = stream_free(c->stream);   /* first: it writes its last results, leaves the pool */
        c->pool = pool_free(c->pool);
        c->batch = batch_free(c->batch);
        c->http = metrics_http_stop(c->http);
        c->sampler = sampler_free(c->sampler);
        c->shm = shm_set_unref(c->shm);
        if (c->config) {
                config_done(c->config);
                free(c->config);
        }
        for (size_t i = 0; i < c->n_scale_events; i++)
                free((char *) c->scale_events[i].rule);
        free(c->scale_events);
        policy_state_done(&c->policy);
        free(c->rows);
        free(c->rules);
        free(c->cores);
        free(c->segments);
        free(c->pids);
        c->event = sd_event_unref(c->event);
}

int controller_run(const struct run_args *args, struct corral_config *config) {
        _cleanup_(controller_done) struct controller c = { .args = args };
        const struct workers_config *w;
        int r;

        c.config = malloc(sizeof(*c.config));
        if (!c.config)
                return log_error_errno(ENOMEM, "Failed to start: %m"), EXIT_USAGE;
        *c.config = *config;
        memset(config, 0, sizeof(*config));
        w = &c.config->workers;

        r = sd_event_default(&c.event);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m"), EXIT_USAGE;
        r = policy_state_init(&c.policy, c.config->policy.n_rules);
        if (r < 0)
                return log_error_errno(r, "Failed to start: %m"), EXIT_USAGE;
        r = sampler_new(&c.sampler);
        if (r < 0)
                return log_error_errno(r, "Failed to read the machine's CPU statistics: %m"), EXIT_USAGE;
        /* Shared data is loaded and sealed before any worker exists. */
        struct shm_error shm_error;
        r = shm_set_load(c.config->shared, c.config->n_shared, &c.shm, &shm_error);
        if (r < 0)
                return log_error("%s", shm_error.message), EXIT_USAGE;
        for (size_t i = 0; i < c.shm->n_segments; i++) {
                char t[32];
                log_info("shared segment '%s': %" PRIu64 " bytes, loaded in %s", c.shm->segments[i]->name,
                         c.shm->segments[i]->size, format_duration(c.shm->segments[i]->load_usec, t));
        }

        bool stream = c.config->tasks.from && c.config->tasks.mode == TASK_MODE_STREAM;
        if (c.config->tasks.from && !stream) {
                r = batch_new(c.event, c.config, &(struct batch_options) {
                                      .resume = args->resume,
                                      .resume_failed = args->resume_failed,
                                      .bar = args->verbosity < 0 ? BATCH_BAR_NEVER :
                                             args->bar ? BATCH_BAR_ALWAYS : BATCH_BAR_AUTO,
                              }, &c.batch);
                if (r < 0)
                        return EXIT_USAGE;   /* logged */
                r = batch_set_shm(c.batch, c.shm);
                if (r < 0)
                        return log_error_errno(r, "Failed to start: %m"), EXIT_USAGE;
                batch_set_on_stopping(c.batch, on_stopping, &c);
        } else {
                r = pool_new(c.event, c.config, &c.pool);
                if (r < 0)
                        return log_error_errno(r, "Failed to create the pool: %m"), EXIT_USAGE;
                pool_set_shm(c.pool, c.shm);
                c.pool->on_stopping = on_pool_stopping;
                c.pool->place = place_worker;
                c.pool->userdata = &c;
                if (stream) {
                        r = stream_new(c.event, c.config, c.pool, &c.stream);
                        if (r < 0 && r != -EINVAL)   /* -EINVAL: logged */
                                log_error_errno(r, "Failed to start the stream: %m");
                        if (r < 0)
                                return EXIT_USAGE;
                        stream_set_on_stopping(c.stream, on_stopping, &c);
                }
        }

        if (w->recycle_tasks > 0 && !stream)
                log_warning("workers.recycle.tasks counts stream-mode lines only: %s; ignoring it",
                            c.batch ? "in per-task mode each task is its own process"
                                    : "a pool without tasks has none to count");

        if (add_signal_handlers(&c) < 0 || start_metrics(&c) < 0)
                return EXIT_USAGE;
        /* Under systemd with WatchdogSec=, the loop pings while it runs. */
        (void) sd_event_set_watchdog(c.event, true);

        r = sd_event_add_time_relative(c.event, &c.sample_timer, CLOCK_MONOTONIC, c.config->sample_interval,
                                       TIMER_ACCURACY_USEC, on_sample_timer, &c);
        if (r < 0)
                return log_error_errno(r, "Failed to arm the sample timer: %m"), EXIT_USAGE;

        if (c.batch) {
                log_info("batch from %s: up to %u task%s at once", c.config->tasks.from, w->max,
                         w->max == 1 ? "" : "s");
                batch_set_concurrency(c.batch, w->initial);
                (void) batch_start(c.batch);
        } else {
                if (c.stream)
                        log_info("stream from %s%s: %u-%u workers", c.config->tasks.from,
                                 c.config->tasks.keep_order ? ", in order" : "", w->min, w->max);
                log_info("pool of %u-%u workers: starting %u", w->min, w->max, w->initial);
                (void) pool_set_desired(c.pool, w->initial);
        }
        if (!controller_stopping(&c))
                (void) sd_notify(false, "READY=1");
        publish(&c);
        notify_status(&c);

        r = sd_event_loop(c.event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m"), EXIT_CRASH_LOOP;
        return r;
}
