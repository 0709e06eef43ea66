/* SPDX-License-Identifier: MIT */
/*
 * The run loop: sampling, deciding, resizing, reloading and reporting, around
 * one workload (workload.h: a pool, a batch or a stream, all alike here).
 * Everything happens on the loop thread; the HTTP thread only sees the pages
 * published by controller_metrics.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "common/clock.h"
#include "conf/units.h"
#include "supervisor/commands.h"
#include "supervisor/controller.h"
#include "supervisor/controller_metrics.h"
#include "supervisor/listen.h"
#include "supervisor/log.h"
#include "supervisor/placement.h"
#include "supervisor/run_config.h"
#include "supervisor/sampler_listen.h"
#include "supervisor/workload_new.h"

static usec_t controller_now(struct controller *c) {
        usec_t now = 0;
        (void) sd_event_now(c->event, CLOCK_MONOTONIC, &now);
        return now;
}

static void notify_status(struct controller *c) {
        char cpu[32] = "cpu ?", what[64];

        if (c->have_sample && signals_has(&c->sample.signals, SIGNAL_CPU_BUSY))
                snprintf(cpu, sizeof(cpu), "cpu %.0f%%", c->sample.signals.value[SIGNAL_CPU_BUSY]);
        workload_describe(&c->work, what, sizeof(what));
        (void) sd_notifyf(false, "STATUS=%s, %s", what, cpu);
}

static void take_sample(struct controller *c) {
        size_t n;
        int r;

        r = controller_ensure_buffers(c);
        if (r < 0) {
                log_warning_errno(r, "Failed to sample: %m");
                return;
        }
        n = workload_running_pids(&c->work, c->pids, c->n_buffers);
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
        workload_fill_signals(&c->work, &c->sample.signals);
        double backlog;
        if (c->listen && sampler_listen_backlog(c->listen, &backlog) >= 0)
                signals_set(&c->sample.signals, SIGNAL_LISTEN_BACKLOG, backlog);
        workload_check_limits(&c->work, c->sampler);
}

/* The one place the size is applied, whoever decided it (the policy, a
 * manual resize, a reload's new bounds); remembered for /status and metrics. */
static void resize(struct controller *c, unsigned size, const char *label, const char *why) {
        unsigned from = workload_size(&c->work);
        if (size == from)
                return;
        log_info("scale %u -> %u (%s)", from, size, why);
        held_back_reset(&c->held_back);
        controller_count_scale_event(c, label, size > from ? METRICS_SCALE_UP : METRICS_SCALE_DOWN);
        c->change = (struct decision_view) { .valid = true, .from = from, .to = size, .when = controller_now(c) };
        workload_resize(&c->work, size);
}

/* `now` is the sample timer's deadline, not the wake-up time: rules' `for` is
 * then measured in whole intervals, and a condition that held `for` exactly
 * fires on that sample, not one interval later for a wake-up 1 ms early. */
static void decide(struct controller *c, usec_t now) {
        const struct corral_config *cfg = c->config;
        struct decision d;
        int r;

        if (workload_stopping(&c->work))
                return;
        /* The size the pool is heading for: running and waiting-to-restart
         * workers count, stopping ones do not. */
        r = policy_decide(&cfg->policy, cfg->workers.min, workload_max(&c->work), &c->policy,
                          c->have_sample ? &c->sample.signals : NULL, workload_size(&c->work),
                          now, &d);
        if (r < 0) {
                log_warning_errno(r, "Failed to decide the pool size: %m");
                return;
        }
        c->decision = d;
        c->decided = true;
        snprintf(c->decision_label, sizeof(c->decision_label), "%s", decision_label(&d));
        c->decision.rule = NULL;   /* points into the config, which a reload frees */
        if (d.desired != workload_size(&c->work))
                resize(c, d.desired, c->decision_label, d.why);
        else {
                log_debug("steady at %u: %s", d.desired, d.why);
                held_back_note(&c->held_back, &cfg->policy, c->have_sample ? &c->sample.signals : NULL, &d,
                               workload_max(&c->work));
        }
}

static int on_sample_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct controller *c = userdata;

        take_sample(c);
        decide(c, usec);
        /* Rendering the pages costs more than sampling: render for the textfile,
         * else only when a client asks (on_render_request). */
        if (c->config->metrics.textfile || !c->http)
                controller_publish(c);
        else
                metrics_http_mark_stale(c->http);
        notify_status(c);

        /* Re-armed from its own deadline, so samples do not drift; the interval
         * is read each time, so a reload applies from the next sample. After a
         * stall (a long reload) the next sample is one interval from now, not
         * a burst of samples each covering almost no time. */
        usec_t interval = c->config->sample_interval, next = usec + interval, now = controller_now(c);
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
static int place_worker(unsigned worker_id, void *userdata) {
        struct controller *c = userdata;
        enum placement placement = c->config->workers.placement;
        cpu_set_t usable;
        bool have_usable;

        /* Re-read at each start: a cpuset or `taskset -p` may have changed it. */
        have_usable = placement == PLACEMENT_SPREAD && sched_getaffinity(0, sizeof(usable), &usable) >= 0;
        return placement_cpu(placement, worker_id, have_usable ? &usable : NULL,
                             c->have_sample ? c->sample.cores : NULL, c->have_sample ? c->sample.n_cores : 0);
}

/* A worker's CPU at the last sample, for the pool's choice of whom to stop. */
static double worker_cpu(pid_t pid, void *userdata) {
        struct controller *c = userdata;
        double cpu;
        uint64_t rss;
        return sampler_worker(c->sampler, pid, &cpu, &rss) < 0 ? -1 : cpu;
}

static void on_stopping(void *userdata) {
        struct controller *c = userdata;
        (void) sd_notify(false, "STOPPING=1");
        controller_publish(c);   /* /healthz turns 503 now, not at the next sample */
}

static void on_worker_ready(void *userdata) {
        controller_publish(userdata);   /* /healthz turns 200 now, not at the next sample */
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

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct controller *c = userdata;
        char name[16];
        (void) s;
        signal_to_string((int) si->ssi_signo, name);
        if (stop_signal_repeats(&c->stop, si, controller_now(c))) {
                /* Only with -v: `timeout -s INT` does this at every demo. */
                log_debug("received SIG%s again from pid %" PRIu32 " at once: the same request, ignoring",
                         name, si->ssi_pid);
                return 0;
        }
        log_info("received SIG%s", name);
        workload_stop(&c->work);
        c->stop = (struct stop_request) { .signo = si->ssi_signo, .pid = si->ssi_pid, .done = now_usec() };
        return 0;
}

static int on_resize_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct controller *c = userdata;
        unsigned now = workload_size(&c->work), max = workload_max(&c->work);
        unsigned n = now;
        (void) s;

        if (workload_stopping(&c->work))
                return 0;
        if (si->ssi_signo == SIGTTIN && n < max)
                n++;
        else if (si->ssi_signo == SIGTTOU && n > c->config->workers.min)
                n--;
        /* Held until a rule fires. A change is logged once, by resize(). */
        policy_manual(&c->policy, n, controller_now(c));
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
        (void) sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long) controller_now(c));

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
                r = workload_reconfigure(&c->work, next);
        if (r < 0) {
                c->reloads_failed++;
                log_error_errno(r, "reload failed, the running configuration stays: %m");
                config_done(next);
                goto done;
        }

        if (shm != c->shm) {
                r = workload_set_shm(&c->work, shm);
                if (r < 0)
                        log_warning_errno(r, "Failed to hand the new shared segments to the %s, ignoring: %m",
                                          c->work.ops->kind);
                shm_set_unref(c->shm);
                c->shm = TAKE_PTR(shm);
        }

        old_listen = run_config_metrics_listen(c->config);
        new_listen = run_config_metrics_listen(next);
        if (!(old_listen == new_listen || (old_listen && new_listen && strcmp(old_listen, new_listen) == 0)))
                log_warning("metrics.listen changed: it takes effect when corral restarts");
        if (listen_config_changed(c->config, next))
                log_warning("listen changed: the sockets stay as they are until corral restarts");

        /* The pool now reads the new config: clamp the size into the new bounds. */
        unsigned desired = workload_size(&c->work);
        if (desired < next->workers.min)
                desired = next->workers.min;
        if (desired > next->workers.max)
                desired = next->workers.max;

        config_done(c->config);
        free(c->config);
        c->config = TAKE_PTR(next);
        c->reloads_ok++;
        log_info("reloaded: %u-%u workers", c->config->workers.min, c->config->workers.max);
        if (desired != workload_size(&c->work))
                resize(c, desired, desired < workload_size(&c->work) ? "max" : "min", "new bounds");
done:
        (void) sd_notify(false, "READY=1");
        controller_publish(c);
}

static int on_reload_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct controller *c = userdata;
        (void) s;
        (void) si;
        /* A reload would start workers (a new command), reload shared segments
         * (maybe running their commands) and delay the exit for nothing. */
        if (workload_stopping(&c->work)) {
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

static void controller_done(struct controller *c) {
        c->sample_timer = sd_event_source_disable_unref(c->sample_timer);
        workload_done(&c->work);
        c->listen = listen_set_free(c->listen);
        controller_metrics_done(c);
        c->sampler = sampler_free(c->sampler);
        c->shm = shm_set_unref(c->shm);
        if (c->config) {
                config_done(c->config);
                free(c->config);
        }
        policy_state_done(&c->policy);
        c->event = sd_event_unref(c->event);
}

/* The exit status of a start step that the configuration drives (listen
 * addresses, shared segments, the workload's command and input): 2, the
 * configuration's fault, unless the machine ran out of memory on the way. */
static int start_failure(int r) {
        return r == -ENOMEM ? EXIT_SYSTEM : EXIT_USAGE;
}

int controller_run(const struct run_args *args, struct corral_config *config) {
        _cleanup_(controller_done) struct controller c = { .args = args };
        const struct workers_config *w;
        int r;

        c.config = malloc(sizeof(*c.config));
        if (!c.config)
                return log_error_errno(ENOMEM, "Failed to start: %m"), EXIT_SYSTEM;
        *c.config = *config;
        memset(config, 0, sizeof(*config));
        w = &c.config->workers;

        /* First, so that the sockets take the lowest fds: workers get them as 3.. */
        struct listen_error listen_error;
        r = listen_set_open(c.config, &c.listen, &listen_error);
        if (r < 0)
                return log_error("%s", listen_error.message), start_failure(r);

        r = sd_event_default(&c.event);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m"), EXIT_SYSTEM;
        r = policy_state_init(&c.policy, c.config->policy.n_rules);
        if (r < 0)
                return log_error_errno(r, "Failed to start: %m"), EXIT_SYSTEM;
        r = sampler_new(&c.sampler);
        if (r < 0)
                return log_error_errno(r, "Failed to read the machine's CPU statistics: %m"), EXIT_SYSTEM;
        /* Shared data is loaded and sealed before any worker exists. */
        struct shm_error shm_error;
        r = shm_set_load(c.config->shared, c.config->n_shared, &c.shm, &shm_error);
        if (r < 0)
                return log_error("%s", shm_error.message), start_failure(r);
        for (size_t i = 0; i < c.shm->n_segments; i++) {
                char t[32];
                log_info("shared segment '%s': %" PRIu64 " bytes, loaded in %s", c.shm->segments[i]->name,
                         c.shm->segments[i]->size, format_duration(c.shm->segments[i]->load_usec, t));
        }

        c.owner = (struct workload_owner) {
                .stopping = on_stopping, .ready = on_worker_ready, .place = place_worker, .busy = worker_cpu,
                .userdata = &c,
        };
        r = workload_new(c.event, c.config, &(struct workload_options) {
                                 .resume = args->resume,
                                 .resume_failed = args->resume_failed,
                                 .quiet = args->verbosity < 0,
                                 .bar = args->bar,
                                 .listen = c.listen,
                         }, &c.owner, &c.work);
        if (r < 0)
                return start_failure(r);   /* logged */
        r = workload_set_shm(&c.work, c.shm);
        if (r < 0)
                return log_error_errno(r, "Failed to start: %m"), EXIT_SYSTEM;

        if (add_signal_handlers(&c) < 0)
                return EXIT_SYSTEM;
        r = controller_start_metrics(&c);
        if (r < 0)
                return start_failure(r);
        if (controller_watch_metrics(&c) < 0)
                return EXIT_SYSTEM;
        /* Under systemd with WatchdogSec=, the loop pings while it runs. */
        (void) sd_event_set_watchdog(c.event, true);

        r = sd_event_add_time_relative(c.event, &c.sample_timer, CLOCK_MONOTONIC, c.config->sample_interval,
                                       TIMER_ACCURACY_USEC, on_sample_timer, &c);
        if (r < 0)
                return log_error_errno(r, "Failed to arm the sample timer: %m"), EXIT_SYSTEM;

        (void) workload_start(&c.work, w->initial);
        if (!workload_stopping(&c.work))
                (void) sd_notify(false, "READY=1");
        controller_publish(&c);
        notify_status(&c);

        r = sd_event_loop(c.event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m"), EXIT_SYSTEM;
        return r;
}
