/* SPDX-License-Identifier: MIT */
/* Parsing and checking the flags of `corral run`. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "conf/units.h"
#include "supervisor/run_args.h"

/* Large enough for any machine, small enough that slot arrays stay cheap. */
#define WORKERS_LIMIT 65536u

const char run_usage[] =
        "Usage: corral run [-c FILE] [--min N] [--max N] [--metrics HOST:PORT|none]\n"
        "                  [--stop-timeout DURATION]\n"
        "                  [--restart-delay DURATION] [--crash-limit N] [-v|-q]\n"
        "                  [--] COMMAND [ARG...]\n"
        "\n"
        "Runs a pool of copies of COMMAND (no shell), replaces those that end, and\n"
        "stops them gracefully on TERM or INT (a second one kills at once).\n"
        "\n"
        "  -c, --config FILE          read the configuration from FILE\n"
        "      --min N                keep at least N workers (default 1)\n"
        "      --max N                at most N workers (default: usable CPUs)\n"
        "      --metrics HOST:PORT    serve /metrics, /healthz and /status there\n"
        "                             (default 127.0.0.1:9311; none: do not)\n"
        "      --stop-timeout DURATION  SIGKILL workers still running this long after\n"
        "                             the stop signal (default 10s)\n"
        "      --restart-delay DURATION first restart delay, doubling up to 30s\n"
        "                             (default 100ms)\n"
        "      --crash-limit N        give up (exit 3) after more than N quick\n"
        "                             failures in a row (default 10)\n"
        "  -v, --verbose              log more\n"
        "  -q, --quiet                log only warnings and errors\n"
        "  -h, --help                 show this help\n";

enum {
        ARG_MIN = 0x100,
        ARG_MAX,
        ARG_METRICS,
        ARG_STOP_TIMEOUT,
        ARG_RESTART_DELAY,
        ARG_CRASH_LIMIT,
};

static const struct option run_options[] = {
        { "config",        required_argument, NULL, 'c' },
        { "min",           required_argument, NULL, ARG_MIN },
        { "max",           required_argument, NULL, ARG_MAX },
        { "metrics",       required_argument, NULL, ARG_METRICS },
        { "stop-timeout",  required_argument, NULL, ARG_STOP_TIMEOUT },
        { "restart-delay", required_argument, NULL, ARG_RESTART_DELAY },
        { "crash-limit",   required_argument, NULL, ARG_CRASH_LIMIT },
        { "verbose",       no_argument,       NULL, 'v' },
        { "quiet",         no_argument,       NULL, 'q' },
        { "help",          no_argument,       NULL, 'h' },
        {}
};

#define fail(...) (snprintf(error, error_size, __VA_ARGS__), -EINVAL)

int run_args_parse(int argc, char **argv, struct run_args *ret, char *error, size_t error_size) {
        struct run_args a = {
                .stop_timeout = USEC_INFINITY,
                .restart_delay = USEC_INFINITY,
        };
        int c;

        optind = 0;   /* glibc: reinitialise, so the parser can run more than once */
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:c:vqh", run_options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        a.config_path = optarg;
                        break;
                case ARG_MIN:
                        if (parse_unsigned(optarg, WORKERS_LIMIT, &a.min) < 0)
                                return fail("--min: '%s' is not a number of workers (0-%u)", optarg, WORKERS_LIMIT);
                        a.min_set = true;
                        break;
                case ARG_MAX:
                        if (parse_unsigned(optarg, WORKERS_LIMIT, &a.max) < 0 || a.max == 0)
                                return fail("--max: '%s' is not a number of workers (1-%u)", optarg, WORKERS_LIMIT);
                        a.max_set = true;
                        break;
                case ARG_METRICS:
                        a.metrics = optarg;
                        break;
                case ARG_STOP_TIMEOUT:
                        if (parse_duration(optarg, &a.stop_timeout) < 0)
                                return fail("--stop-timeout: '%s' is not a duration (like 500ms, 10s, 2m)", optarg);
                        break;
                case ARG_RESTART_DELAY:
                        if (parse_duration(optarg, &a.restart_delay) < 0)
                                return fail("--restart-delay: '%s' is not a duration (like 100ms, 1s)", optarg);
                        break;
                case ARG_CRASH_LIMIT:
                        if (parse_unsigned(optarg, 1000000, &a.crash_limit) < 0)
                                return fail("--crash-limit: '%s' is not a number", optarg);
                        a.crash_limit_set = true;
                        break;
                case 'v':
                        a.verbosity = 1;
                        break;
                case 'q':
                        a.verbosity = -1;
                        break;
                case 'h':
                        a.help = true;
                        break;
                case ':':
                        return fail("%s needs a value", argv[optind - 1]);
                default:
                        if (optopt)
                                return fail("unknown option '-%c'", optopt);
                        return fail("unknown option '%s'", argv[optind - 1]);
                }
        }

        if (optind < argc)
                a.command = argv + optind;
        if (a.min_set && a.max_set && a.min > a.max)
                return fail("--min %u is larger than --max %u", a.min, a.max);
        if (!a.help && !a.command && !a.config_path)
                return fail("no COMMAND to run");

        *ret = a;
        return 0;
}
