/* SPDX-License-Identifier: MIT */
/*
 * `corral run`: parses the command line, builds the configuration, prepares
 * the process (enough file descriptors, no death by SIGPIPE), and hands over
 * to the controller. main() has blocked the loop's signals already.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>

#include "conf/config.h"
#include "supervisor/commands.h"
#include "supervisor/controller.h"
#include "supervisor/log.h"
#include "supervisor/run_args.h"
#include "supervisor/run_config.h"

static void raise_fd_limit(void) {
        struct rlimit rl;
        /* A pidfd and a /proc/PID/stat fd per worker: systemd's default soft
         * limit of 1024 is too low for large pools. */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

int cmd_run(int argc, char **argv) {
        struct run_args args;
        char error[256];
        int r;

        r = run_args_parse(argc, argv, &args, error, sizeof(error));
        if (r < 0) {
                fprintf(stderr, "corral run: %s\nTry 'corral run --help' for more information.\n", error);
                return EXIT_USAGE;
        }
        if (args.help) {
                fputs(run_usage, stdout);
                return EXIT_OK;
        }
        log_setup(args.verbosity > 0 ? LOG_DEBUG : args.verbosity < 0 ? LOG_WARNING : LOG_INFO);

        _cleanup_(config_done) struct corral_config config = {};
        r = run_config_build(&args, &config);
        if (r < 0)
                return EXIT_USAGE;

        raise_fd_limit();
        /* A closed stdout must not kill the supervisor; workers get SIGPIPE back. */
        signal(SIGPIPE, SIG_IGN);

        return controller_run(&args, &config);
}
