/* SPDX-License-Identifier: MIT */
/* Parsing and checking the flags of `corral run`. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hostport.h"
#include "conf/conf.h"
#include "conf/units.h"
#include "supervisor/run_args.h"


const char run_usage[] =
        "Usage: corral run [-c FILE] [--min N] [--max N] [-j N] [--metrics HOST:PORT|none]\n"
        "                  [--stop-timeout DURATION]\n"
        "                  [--restart-delay DURATION] [--crash-limit N]\n"
        "                  [--tasks FILE|-] [--stream] [--keep-order] [--line-buffer|--ungroup]\n"
        "                  [--joblog FILE] [--results FILE] [--resume]\n"
        "                  [--resume-failed] [--retries N] [--timeout DURATION]\n"
        "                  [--batch N] [--shard K/N|env] [--until-empty] [--bar] [-v|-q]\n"
        "                  [--] COMMAND [ARG...]\n"
        "\n"
        "Runs a pool of copies of COMMAND (no shell), replaces those that end, and\n"
        "stops them gracefully on TERM or INT (a second one kills at once).\n"
        "With --tasks, runs COMMAND once per input line instead, {} replaced by the\n"
        "line (appended when absent), as many at once as the machine allows.\n"
        "\n"
        "  -c, --config FILE          read the configuration from FILE\n"
        "      --min N                keep at least N workers (default 1)\n"
        "      --max N                at most N workers (default: usable CPUs)\n"
        "  -j, --jobs N               exactly N workers: --min N --max N\n"
        "      --metrics HOST:PORT    serve /metrics, /healthz and /status there\n"
        "                             (default 127.0.0.1:9311; none: do not)\n"
        "      --stop-timeout DURATION  SIGKILL workers still running this long after\n"
        "                             the stop signal (default 10s)\n"
        "      --restart-delay DURATION first restart delay, doubling up to 30s\n"
        "                             (default 100ms)\n"
        "      --crash-limit N        give up (exit 3) after more than N quick\n"
        "                             failures in a row (default 10)\n"
        "      --tasks FILE|-         batch: one task per line of FILE (- for stdin)\n"
        "      --tasks redis://[:PASSWORD@]HOST:PORT/STREAM[?group=G&consumer=C]\n"
        "                             batch: take tasks from a Redis stream shared\n"
        "                             with other consumers (a work queue)\n"
        "      --until-empty          work queue: exit once nothing is undelivered or\n"
        "                             pending (0; 1 if some went to STREAM:dead)\n"
        "      --stream               batch: long-lived workers read the lines (of\n"
        "                             --tasks, default stdin) and write one result\n"
        "                             line per line\n"
        "      --keep-order           print task outputs in input order\n"
        "      --line-buffer          print a task's output as it comes, in whole\n"
        "                             lines (default: whole when the task ends)\n"
        "      --ungroup              let tasks write to corral's stdout directly\n"
        "                             (fastest; lines of tasks may mix)\n"
        "      --joblog FILE          log every task attempt (GNU parallel format)\n"
        "      --results FILE         write each task's result as a JSON line\n"
        "      --resume               skip the tasks the joblog has as done\n"
        "      --resume-failed        ... and run the failed ones again\n"
        "      --retries N            run a failed task up to N more times\n"
        "      --timeout DURATION     stop a task running longer (stop signal, then\n"
        "                             SIGKILL after the stop timeout); it failed.\n"
        "                             stream: replace a worker that holds a line longer\n"
        "      --batch N              up to N lines per invocation, {} standing once\n"
        "                             per line (or the lines appended)\n"
        "      --shard K/N            run only lines with (number-1) % N == K\n"
        "      --shard env            K and N from an array job's variables: Kubernetes\n"
        "                             (JOB_COMPLETION_INDEX, CORRAL_SHARDS), Slurm,\n"
        "                             AWS Batch or Cloud Run\n"
        "      --bar                  draw a progress bar on the terminal even when\n"
        "                             stderr is redirected\n"
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
        ARG_TASKS,
        ARG_STREAM,
        ARG_KEEP_ORDER,
        ARG_LINE_BUFFER,
        ARG_UNGROUP,
        ARG_JOBLOG,
        ARG_RESULTS,
        ARG_RESUME,
        ARG_RESUME_FAILED,
        ARG_RETRIES,
        ARG_TIMEOUT,
        ARG_BATCH,
        ARG_SHARD,
        ARG_BAR,
        ARG_UNTIL_EMPTY,
};

static const struct option run_options[] = {
        { "config",        required_argument, NULL, 'c' },
        { "min",           required_argument, NULL, ARG_MIN },
        { "max",           required_argument, NULL, ARG_MAX },
        { "jobs",          required_argument, NULL, 'j' },
        { "metrics",       required_argument, NULL, ARG_METRICS },
        { "stop-timeout",  required_argument, NULL, ARG_STOP_TIMEOUT },
        { "restart-delay", required_argument, NULL, ARG_RESTART_DELAY },
        { "crash-limit",   required_argument, NULL, ARG_CRASH_LIMIT },
        { "tasks",         required_argument, NULL, ARG_TASKS },
        { "stream",        no_argument,       NULL, ARG_STREAM },
        { "keep-order",    no_argument,       NULL, ARG_KEEP_ORDER },
        { "line-buffer",   no_argument,       NULL, ARG_LINE_BUFFER },
        { "ungroup",       no_argument,       NULL, ARG_UNGROUP },
        { "joblog",        required_argument, NULL, ARG_JOBLOG },
        { "results",       required_argument, NULL, ARG_RESULTS },
        { "resume",        no_argument,       NULL, ARG_RESUME },
        { "resume-failed", no_argument,       NULL, ARG_RESUME_FAILED },
        { "retries",       required_argument, NULL, ARG_RETRIES },
        { "timeout",       required_argument, NULL, ARG_TIMEOUT },
        { "batch",         required_argument, NULL, ARG_BATCH },
        { "shard",         required_argument, NULL, ARG_SHARD },
        { "bar",           no_argument,       NULL, ARG_BAR },
        { "until-empty",   no_argument,       NULL, ARG_UNTIL_EMPTY },
        { "verbose",       no_argument,       NULL, 'v' },
        { "quiet",         no_argument,       NULL, 'q' },
        { "help",          no_argument,       NULL, 'h' },
        {}
};

#define fail(...) (snprintf(error, error_size, __VA_ARGS__), -EINVAL)

/* The array-job schedulers --shard env understands, in the contract's order:
 * the first whose index variable is set wins. */
static const struct shard_env {
        const char *index, *count;
        const char *first;       /* the lowest index when it need not be 0, or NULL */
        const char *hint;        /* what sets the count */
} shard_envs[] = {
        { "JOB_COMPLETION_INDEX", "CORRAL_SHARDS", NULL, "set it to the Job's completions" },
        { "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "Slurm sets it for --array" },
        { "AWS_BATCH_JOB_ARRAY_INDEX", "AWS_BATCH_JOB_ARRAY_SIZE", NULL, "set it to the array's size" },
        { "CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_COUNT", NULL, "Cloud Run sets it" },
};

static int shard_from_vars(const struct shard_env *e, const char *index, const char *count, const char *first,
                           unsigned *ret_index, unsigned *ret_count, char *error, size_t error_size) {
        unsigned k, n, lowest = 0;

        if (!count || !*count)
                return fail("--shard env: %s is not set (%s)", e->count, e->hint);
        if (parse_unsigned(index, COUNT_LIMIT, &k) < 0)
                return fail("--shard env: %s='%s' is not a shard index (0, 1, ...)", e->index, index);
        if (parse_unsigned(count, COUNT_LIMIT, &n) < 0 || n == 0)
                return fail("--shard env: %s='%s' is not a number of shards (1, 2, ...)", e->count, count);
        if (first && *first && (parse_unsigned(first, COUNT_LIMIT, &lowest) < 0 || lowest > k))
                return fail("--shard env: %s='%s' is not an index at most %s=%u", e->first, first, e->index, k);
        k -= lowest;
        if (k >= n)
                return fail("--shard env: %s=%u is not below %s=%u", e->index, k + lowest, e->count, n);
        *ret_index = k;
        *ret_count = n;
        return 0;
}

int shard_from_env(const char *index, const char *count, unsigned *ret_index, unsigned *ret_count,
                   char *error, size_t error_size) {
        if (!index || !*index)
                return fail("--shard env: JOB_COMPLETION_INDEX is not set (a Kubernetes Indexed Job sets it)");
        return shard_from_vars(&shard_envs[0], index, count, NULL, ret_index, ret_count, error, error_size);
}

int shard_from_environment(unsigned *ret_index, unsigned *ret_count, char *error, size_t error_size) {
        for (size_t i = 0; i < ELEMENTSOF(shard_envs); i++) {
                const struct shard_env *e = &shard_envs[i];
                const char *index = getenv(e->index);
                if (index && *index)
                        return shard_from_vars(e, index, getenv(e->count), e->first ? getenv(e->first) : NULL,
                                               ret_index, ret_count, error, error_size);
        }
        return fail("--shard env: JOB_COMPLETION_INDEX is not set (a Kubernetes Indexed Job sets it), nor "
                    "SLURM_ARRAY_TASK_ID, AWS_BATCH_JOB_ARRAY_INDEX or CLOUD_RUN_TASK_INDEX");
}

static int replace_string(char **dst, const char *value) {
        char *copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        free(*dst);
        *dst = copy;
        return 0;
}

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

/* A flag's value wins over the file's, and the origin says so. */
static void set_by(struct config_origin *o, const char *flag) {
        *o = (struct config_origin) { .flag = flag };
}

/* The first flag given that only a batch takes, or NULL. */
static const char *first_batch_flag(const struct run_args *a) {
        return a->keep_order ? "--keep-order" : a->line_buffer ? "--line-buffer" : a->ungroup ? "--ungroup" :
               a->joblog ? "--joblog" : a->results ? "--results" : a->resume ? "--resume" : a->resume_failed ? "--resume-failed" :
               a->retries_set ? "--retries" : a->timeout != USEC_INFINITY ? "--timeout" : a->batch ? "--batch" :
               a->shard_count ? "--shard" : a->bar ? "--bar" : NULL;
}

static int apply_task_flags(const struct run_args *a, struct corral_config *c) {
        struct tasks_config *t = &c->tasks;
        struct config_origins *o = &c->origin;
        int r;

        if (a->tasks && (r = replace_string(&t->from, a->tasks)) < 0)
                return r;
        if (a->tasks)
                set_by(&o->from, "--tasks");
        if (a->until_empty) {
                t->until = TASK_UNTIL_EMPTY;
                set_by(&o->until, "--until-empty");
        }
        if (a->joblog && (r = replace_string(&t->joblog, a->joblog)) < 0)
                return r;
        if (a->results && (r = replace_string(&t->results, a->results)) < 0)
                return r;
        if (a->stream) {
                t->mode = TASK_MODE_STREAM;
                set_by(&o->mode, "--stream");
        }
        /* A filter reads stdin unless told otherwise: `corral run --stream -- cmd < in`. */
        if (t->mode == TASK_MODE_STREAM && !t->from && (r = replace_string(&t->from, "-")) < 0)
                return r;
        if (a->keep_order) {
                t->keep_order = true;
                set_by(&o->keep_order, "--keep-order");
        }
        if (a->line_buffer) {
                t->output = TASK_OUTPUT_LINE;
                set_by(&o->output, "--line-buffer");
        }
        if (a->ungroup) {
                t->output = TASK_OUTPUT_UNGROUP;
                set_by(&o->output, "--ungroup");
        }
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
        t->resume = a->resume;
        t->resume_failed = a->resume_failed;
        /* --stream is a batch of its own, on stdin unless --tasks says otherwise. */
        const char *flag = first_batch_flag(a);
        if (flag)
                set_by(&o->batch_flag, flag);
        return 0;
}

int run_args_apply(const struct run_args *a, struct corral_config *c) {
        struct workers_config *w = &c->workers;
        int r;

        if (a->command) {
                strv_free(c->command);
                c->command = NULL;
                r = strv_copy(a->command, &c->command);
                if (r < 0)
                        return r;
        }
        if (a->metrics && (r = replace_string(&c->metrics.listen, a->metrics)) < 0)
                return r;
        if (a->min_set) {
                w->min = a->min;
                set_by(&c->origin.min, a->min_flag ? a->min_flag : "--min");
        }
        if (a->max_set) {
                w->max = a->max;
                set_by(&c->origin.max, a->max_flag ? a->max_flag : "--max");
        }
        if (a->stop_timeout != USEC_INFINITY)
                w->stop_timeout = a->stop_timeout;
        if (a->restart_delay != USEC_INFINITY) {
                w->backoff_initial = a->restart_delay;
                set_by(&c->origin.backoff_initial, "--restart-delay");
                /* The delay doubles up to the max: a longer first delay raises it. */
                if (w->backoff_max < w->backoff_initial)
                        w->backoff_max = w->backoff_initial;
        }
        if (a->crash_limit_set)
                w->crash_burst = a->crash_limit;
        return apply_task_flags(a, c);
}

/* The command line against the rules that relate values (conf_validate(), the
 * same pass as over the file and the merged configuration): flags that
 * contradict each other are a usage error, whatever a file says. With -c the
 * file is still to come, so what it may add (a joblog) is not missed yet. */
static int check_values(const struct run_args *a, char *error, size_t error_size) {
        _cleanup_(config_done) struct corral_config c;
        _cleanup_(conf_diagnostics_done) struct conf_diagnostics diag = {};

        config_init(&c);
        int r = run_args_apply(a, &c);
        if (r < 0)
                return r;
        r = conf_validate(&c, NULL, a->config_path != NULL, &diag);
        if (r == -EINVAL && diag.n_items > 0)
                snprintf(error, error_size, "%s", diag.items[0].message);
        return r;
}

int run_args_parse(int argc, char **argv, struct run_args *ret, char *error, size_t error_size) {
        struct run_args a = {
                .stop_timeout = USEC_INFINITY,
                .restart_delay = USEC_INFINITY,
                .timeout = USEC_INFINITY,
        };
        int c, r;

        optind = 0;   /* glibc: reinitialise, so the parser can run more than once */
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:c:j:vqh", run_options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        a.config_path = optarg;
                        break;
                case ARG_MIN:
                        if (parse_unsigned(optarg, WORKERS_LIMIT, &a.min) < 0)
                                return fail("--min: '%s' is not a number of workers (0-%u)", optarg, WORKERS_LIMIT);
                        a.min_set = true;
                        a.min_flag = "--min";
                        break;
                case ARG_MAX:
                        if (parse_unsigned(optarg, WORKERS_LIMIT, &a.max) < 0 || a.max == 0)
                                return fail("--max: '%s' is not a number of workers (1-%u)", optarg, WORKERS_LIMIT);
                        a.max_set = true;
                        a.max_flag = "--max";
                        break;
                case 'j':
                        /* xargs -P's and make's spelling of a fixed size; a later --min or --max still
                         * moves one bound. */
                        if (parse_unsigned(optarg, WORKERS_LIMIT, &a.max) < 0 || a.max == 0)
                                return fail("-j: '%s' is not a number of workers (1-%u)", optarg, WORKERS_LIMIT);
                        a.min = a.max;
                        a.min_set = a.max_set = true;
                        a.min_flag = a.max_flag = "-j";
                        break;
                case ARG_METRICS:
                        /* The syntax of metrics.listen in the file; whether the host resolves is
                         * found when corral listens, as for the file's. */
                        if (strcmp(optarg, "none") != 0 && hostport_parse(optarg, NULL, NULL) < 0)
                                return fail("--metrics: '%s' is not HOST:PORT or none", optarg);
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
                        if (parse_unsigned(optarg, COUNT_LIMIT, &a.crash_limit) < 0)
                                return fail("--crash-limit: '%s' is not a number", optarg);
                        a.crash_limit_set = true;
                        break;
                case ARG_TASKS:
                        if (!*optarg)
                                return fail("--tasks needs a file, or - for stdin");
                        a.tasks = optarg;
                        break;
                case ARG_STREAM:
                        a.stream = true;
                        break;
                case ARG_KEEP_ORDER:
                        a.keep_order = true;
                        break;
                case ARG_LINE_BUFFER:
                        a.line_buffer = true;
                        break;
                case ARG_UNGROUP:
                        a.ungroup = true;
                        break;
                case ARG_JOBLOG:
                        if (!*optarg)
                                return fail("--joblog needs a file");
                        a.joblog = optarg;
                        break;
                case ARG_RESULTS:
                        if (!*optarg)
                                return fail("--results needs a file");
                        a.results = optarg;
                        break;
                case ARG_RESUME:
                        a.resume = true;
                        break;
                case ARG_RESUME_FAILED:
                        a.resume_failed = true;
                        break;
                case ARG_RETRIES:
                        if (parse_unsigned(optarg, COUNT_LIMIT, &a.retries) < 0)
                                return fail("--retries: '%s' is not a number (0-%u)", optarg, COUNT_LIMIT);
                        a.retries_set = true;
                        break;
                case ARG_TIMEOUT:
                        if (parse_duration(optarg, &a.timeout) < 0)
                                return fail("--timeout: '%s' is not a duration (like 30s, 5m)", optarg);
                        break;
                case ARG_BATCH:
                        if (parse_unsigned(optarg, TASKS_BATCH_LIMIT, &a.batch) < 0 || a.batch == 0)
                                return fail("--batch: '%s' is not a number of lines per invocation (1-%u)",
                                            optarg, TASKS_BATCH_LIMIT);
                        break;
                case ARG_SHARD:
                        if (strcmp(optarg, "env") == 0) {
                                r = shard_from_environment(&a.shard_index, &a.shard_count, error, error_size);
                                if (r < 0)
                                        return r;
                                break;
                        }
                        r = parse_shard(optarg, &a.shard_index, &a.shard_count);
                        if (r == -ERANGE)
                                return fail("--shard: shard %s does not exist: K/N needs N >= 1 and K < N "
                                            "(K counts from 0)", optarg);
                        if (r < 0)
                                return fail("--shard: '%s' is not K/N (such as 0/4) or env", optarg);
                        break;
                case ARG_BAR:
                        a.bar = true;
                        break;
                case ARG_UNTIL_EMPTY:
                        a.until_empty = true;
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
        if (a.resume && a.resume_failed)
                return fail("--resume and --resume-failed exclude each other");
        if (a.line_buffer && a.ungroup)
                return fail("--line-buffer and --ungroup exclude each other");
        if (!a.help && !a.command && !a.config_path)
                return fail("no COMMAND to run");
        if (!a.help) {
                r = check_values(&a, error, error_size);
                if (r < 0)
                        return r;
        }

        *ret = a;
        return 0;
}

#undef fail   /* not into the next file of a unity build */
