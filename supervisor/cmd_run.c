/* SPDX-License-Identifier: MIT */
/*
 * `corral run`: builds the configuration from the command line, sets up the
 * process (signals blocked for sd-event, enough file descriptors), and runs the
 * pool on an sd-event loop until it stops.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-event.h>

#include "conf/config.h"
#include "conf/units.h"
#include "supervisor/commands.h"
#include "supervisor/log.h"
#include "supervisor/pool.h"
#include "supervisor/run_args.h"

/* The signals the loop handles; blocked before any thread exists, so that
 * sd-event can read them and workers are started with a clean mask. */
static const int handled_signals[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGTTIN, SIGTTOU };

static unsigned usable_cpus(void) {
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof(set), &set) < 0)
                return 1;
        int n = CPU_COUNT(&set);
        return n > 0 ? (unsigned) n : 1;
}

static void raise_fd_limit(void) {
        struct rlimit rl;
        /* One pidfd per worker: systemd's default soft limit of 1024 is too low. */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

static int block_signals(void) {
        sigset_t set;
        sigemptyset(&set);
        for (size_t i = 0; i < ELEMENTSOF(handled_signals); i++)
                sigaddset(&set, handled_signals[i]);
        if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
                return -errno;
        /* A closed stdout must not kill the supervisor; workers get SIGPIPE back. */
        signal(SIGPIPE, SIG_IGN);
        return 0;
}

static int apply_args(struct corral_config *c, const struct run_args *a, char *error, size_t size) {
        struct workers_config *w = &c->workers;

        if (a->command) {
                strv_free(c->command);
                size_t n = strv_length(a->command);
                c->command = calloc(n + 1, sizeof(char *));
                if (!c->command)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++)
                        if (!(c->command[i] = strdup(a->command[i])))
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

        /* An unset max follows the machine, but never below an explicit min. */
        if (w->max == 0)
                w->max = usable_cpus() > w->min ? usable_cpus() : w->min;
        if (w->min > w->max) {
                snprintf(error, size, "min %u is larger than max %u", w->min, w->max);
                return -EINVAL;
        }
        if (w->initial == 0 || a->min_set)
                w->initial = w->min;
        if (w->initial > w->max)
                w->initial = w->max;
        if (w->backoff_initial > w->backoff_max)
                w->backoff_max = w->backoff_initial;
        return 0;
}

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct pool *p = userdata;
        char name[16];
        (void) s;
        log_info("received SIG%s", signal_to_string((int) si->ssi_signo, name));
        pool_stop(p, EXIT_OK);
        return 0;
}

static int on_resize_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct pool *p = userdata;
        const struct workers_config *w = &p->config->workers;
        unsigned n = p->desired;
        (void) s;

        if (si->ssi_signo == SIGTTIN && n < w->max)
                n++;
        else if (si->ssi_signo == SIGTTOU && n > w->min)
                n--;
        log_info("manual resize: %u -> %u workers", p->desired, n);
        (void) pool_set_desired(p, n);
        return 0;
}

static int on_reload_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void) s;
        (void) si;
        (void) userdata;
        log_notice("received SIGHUP: no configuration file to reload, ignoring");
        return 0;
}

static int run_pool(const struct corral_config *config) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        struct pool *pool = NULL;
        int r;

        r = sd_event_default(&e);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m");
        r = pool_new(e, config, &pool);
        if (r < 0)
                return log_error_errno(r, "Failed to create the pool: %m");

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
                /* NULL source: the loop owns it (floating) and frees it with itself. */
                r = sd_event_add_signal(e, NULL, handlers[i].sig, handlers[i].handler, pool);
                if (r < 0) {
                        log_error_errno(r, "Failed to watch signal %d: %m", handlers[i].sig);
                        goto finish;
                }
        }

        log_info("pool of %u-%u workers: starting %u", config->workers.min, config->workers.max,
                 config->workers.initial);
        r = pool_set_desired(pool, config->workers.initial);
        if (r >= 0 || pool->stopping)
                r = sd_event_loop(e);
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");
finish:
        pool_free(pool);
        return r < 0 ? EXIT_CRASH_LOOP : r;
}

int cmd_run(int argc, char **argv) {
        struct run_args args;
        char error[256];
        int r;

        r = run_args_parse(argc, argv, &args, error, sizeof(error));
        if (r < 0) {
                fprintf(stderr, "corral run: %s\n\n%s", error, run_usage);
                return EXIT_USAGE;
        }
        if (args.help) {
                fputs(run_usage, stdout);
                return EXIT_OK;
        }
        log_setup(args.verbosity > 0 ? LOG_DEBUG : args.verbosity < 0 ? LOG_WARNING : LOG_INFO);

        if (args.config_path) {
                fprintf(stderr, "corral run: -c: configuration files are not supported yet\n");
                return EXIT_USAGE;
        }

        _cleanup_(config_done) struct corral_config config;
        config_init(&config);
        r = apply_args(&config, &args, error, sizeof(error));
        if (r == -ENOMEM)
                return log_error_errno(r, "Failed to build the configuration: %m"), EXIT_USAGE;
        if (r < 0) {
                fprintf(stderr, "corral run: %s\n\n%s", error, run_usage);
                return EXIT_USAGE;
        }

        raise_fd_limit();
        r = block_signals();
        if (r < 0)
                return log_error_errno(r, "Failed to block signals: %m"), EXIT_USAGE;

        return run_pool(&config);
}
