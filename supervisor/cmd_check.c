/* SPDX-License-Identifier: MIT */
/*
 * `corral check -c FILE`: validates a configuration file the way `run` and a
 * reload would, prints every problem as FILE:LINE:COL: message (unknown
 * workers.user/group included), and warns about signals this machine cannot
 * provide (a rule reading them never fires), about task signals in a pool
 * without tasks, and about a command or workers.cwd that cannot be used here
 * (conf_load() warns about doubtful conditions itself).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/units.h"
#include "policy/condition.h"
#include "supervisor/commands.h"
#include "supervisor/identity.h"
#include "supervisor/spawn.h"

static const char check_try[] = "Try 'corral check --help' for more information.\n";

static const char check_usage[] =
        "Usage: corral check -c FILE\n"
        "\n"
        "Validate a configuration file: print a one-line summary and exit 0, or print\n"
        "every error as FILE:LINE:COL: message and exit 2.\n"
        "\n"
        "  -c, --config FILE   the file to check\n"
        "  -h, --help          show this help\n";

/* The PSI files behind each pressure signal. CORRAL_PSI_DIR replaces
 * /proc/pressure so that tests can play a kernel without PSI. */
static uint32_t unavailable_signals(void) {
        static const struct { enum signal_id id; const char *file; } psi[] = {
                { SIGNAL_PSI_CPU, "cpu" }, { SIGNAL_PSI_MEMORY, "memory" }, { SIGNAL_PSI_IO, "io" },
        };
        const char *dir = getenv("CORRAL_PSI_DIR");
        uint32_t mask = 0;
        char path[4096];

        if (!dir || !*dir)
                dir = "/proc/pressure";
        for (size_t i = 0; i < ELEMENTSOF(psi); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, psi[i].file);
                if (access(path, R_OK) < 0)
                        mask |= 1u << psi[i].id;
        }
        return mask;
}

static int warn_unavailable(const struct corral_config *c, struct conf_diagnostics *diag) {
        uint32_t missing = unavailable_signals();
        int r;

        for (size_t i = 0; i < c->policy.n_rules; i++) {
                const struct rule_config *rule = &c->policy.rules[i];
                uint32_t m = condition_signals(rule->when) & missing;
                for (enum signal_id id = 0; id < _SIGNAL_MAX; id++) {
                        if (!(m & (1u << id)))
                                continue;
                        r = conf_diagnostics_add(diag, CONF_WARNING, c->path, rule->line, rule->column,
                                                 "rule '%s' reads %s, which this machine does not provide: "
                                                 "the rule never fires", rule->name, signal_name(id));
                        if (r < 0)
                                return r;
                }
        }
        if (c->policy.has_target && (missing & (1u << c->policy.target_signal))) {
                r = conf_diagnostics_add(diag, CONF_WARNING, c->path, 0, 0,
                                         "policy.target reads %s, which this machine does not provide",
                                         signal_name(c->policy.target_signal));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* workers.recycle.tasks counts the lines of stream mode; elsewhere nothing
 * counts them. A warning, not an error: `run --stream` may still supply the mode. */
static int warn_recycle_tasks(const struct corral_config *c, struct conf_diagnostics *diag) {
        if (c->workers.recycle_tasks == 0 || (c->tasks.from && c->tasks.mode == TASK_MODE_STREAM))
                return 0;
        return conf_diagnostics_add(diag, CONF_WARNING, c->path, 0, 0,
                                    "workers.recycle.tasks counts stream-mode lines only: %s, so it is "
                                    "never reached unless corral runs with --stream",
                                    c->tasks.from ? "tasks.mode is per-task (each task is its own process)"
                                                  : "a pool without tasks has none to count");
}

/* The command and workers.cwd as a spawn would meet them here (one rule,
 * spawn_check(), shared with a reload), as the user running `check`. A
 * warning, not an error: the file may be meant for another machine or
 * image (a container's), where `corral run` refuses them with exit 2. */
static int check_worker_command(const struct corral_config *c, struct conf_diagnostics *diag) {
        const struct workers_config *w = &c->workers;
        enum spawn_check_what what;

        if (!c->command)
                return 0;
        int r = spawn_check(c->command, w->cwd, NULL, &what);
        if (r >= 0)
                return 0;
        if (what == SPAWN_CHECK_CWD)
                return conf_diagnostics_add(diag, CONF_WARNING, c->path, w->cwd_line, w->cwd_column,
                                            "workers.cwd: cannot use '%s' here: %s", w->cwd, strerror(-r));
        return conf_diagnostics_add(diag, CONF_WARNING, c->path, c->command_line, c->command_column,
                                    "command: cannot run '%s' here: %s", c->command[0], strerror(-r));
}

static void print_summary(const struct corral_config *c) {
        const struct workers_config *w = &c->workers;
        char max[16] = "auto", command[256] = "none (give one after --)";

        if (w->max > 0)
                snprintf(max, sizeof(max), "%u", w->max);
        if (c->command) {
                size_t len = 0;
                for (char **a = c->command; *a && len < sizeof(command); a++)
                        len += (size_t) snprintf(command + len, sizeof(command) - len, "%s%s",
                                                 a == c->command ? "" : " ", *a);
        }
        printf("%s: OK: command %s; workers %u-%s; %zu rule%s%s%s%s%s\n", c->path, command, w->min, max,
               c->policy.n_rules, c->policy.n_rules == 1 ? "" : "s",
               c->policy.has_target ? "; target " : "",
               c->policy.has_target ? signal_name(c->policy.target_signal) : "",
               c->policy.has_optimize ? "; optimize " : "",
               c->policy.has_optimize ? signal_name(c->policy.optimize_signal) : "");
}

int cmd_check(int argc, char **argv) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "help",   no_argument,       NULL, 'h' },
                {}
        };
        const char *path = NULL;
        int opt, r;

        optind = 0;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, "+:c:h", options, NULL)) >= 0)
                switch (opt) {
                case 'c':
                        path = optarg;
                        break;
                case 'h':
                        fputs(check_usage, stdout);
                        return EXIT_OK;
                case ':':
                        fprintf(stderr, "corral check: option '%s' needs a value\n%s", argv[optind - 1], check_try);
                        return EXIT_USAGE;
                default:
                        fprintf(stderr, "corral check: unknown option '%s'\n%s", argv[optind - 1], check_try);
                        return EXIT_USAGE;
                }
        if (optind < argc) {
                fprintf(stderr, "corral check: unexpected argument '%s'\n%s", argv[optind], check_try);
                return EXIT_USAGE;
        }
        if (!path) {
                fprintf(stderr, "corral check: no file given (-c FILE)\n%s", check_try);
                return EXIT_USAGE;
        }

        _cleanup_(config_done) struct corral_config config = {};
        _cleanup_(conf_diagnostics_done) struct conf_diagnostics diag = {};
        r = conf_load(path, &config, &diag);
        /* Whether the names exist here, not whether this user may use them:
         * a file checked by its author may be meant for a root service. */
        if (r >= 0)
                r = identity_resolve(&config.workers, config.path, NULL, &diag);
        if (r >= 0)
                r = check_worker_command(&config, &diag);
        if (r >= 0)
                r = warn_unavailable(&config, &diag);
        if (r >= 0)
                r = warn_recycle_tasks(&config, &diag);
        if (r >= 0)
                r = conf_lint(&config, config.path, &diag);
        for (size_t i = 0; i < diag.n_items; i++)
                fprintf(stderr, "%s\n", diag.items[i].message);
        if (r == -ENOMEM) {
                fprintf(stderr, "corral check: %s: out of memory\n", path);
                return EXIT_USAGE;
        }
        if (r < 0)
                return EXIT_USAGE;
        print_summary(&config);
        return EXIT_OK;
}
