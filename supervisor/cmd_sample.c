/* SPDX-License-Identifier: MIT */
/*
 * `corral sample`: prints the signals the controller sees, one line per
 * sample, so that a user can watch the machine as corral does before trusting
 * a policy with it. On a terminal a compact per-core bar row follows each
 * line; --json prints one JSON object per line (NDJSON) for scripts.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/units.h"
#include "supervisor/commands.h"
#include "supervisor/log.h"
#include "supervisor/sampler.h"

static const char sample_usage[] =
        "Usage: corral sample [-n COUNT] [--interval DURATION] [--json]\n"
        "\n"
        "Print the signals corral's controller sees, one line per sample.\n"
        "\n"
        "  -n, --count COUNT        stop after COUNT samples (default: until interrupted)\n"
        "  -i, --interval DURATION  time between samples (default: 1s)\n"
        "      --json               one JSON object per line (unavailable signals are null)\n"
        "  -h, --help               show this help\n";

static void json_object_putp(json_object **o) {
        json_object_put(*o);
}

struct sample_args {
        unsigned count;         /* 0: until interrupted */
        usec_t interval;
        bool json;
};

static int sample_usage_error(const char *fmt, const char *arg) {
        fputs("corral sample: ", stderr);
        fprintf(stderr, fmt, arg);
        fputs("\n\n", stderr);
        fputs(sample_usage, stderr);
        return EXIT_USAGE;
}

/* Returns -1 to go on, or the exit status. */
static int parse_args(int argc, char **argv, struct sample_args *a) {
        enum { ARG_JSON = 0x100 };
        static const struct option options[] = {
                { "count",    required_argument, NULL, 'n' },
                { "interval", required_argument, NULL, 'i' },
                { "json",     no_argument,       NULL, ARG_JSON },
                { "help",     no_argument,       NULL, 'h' },
                {}
        };
        int c;

        *a = (struct sample_args) { .interval = USEC_PER_SEC };
        opterr = 0;
        optind = 0;     /* 0 resets getopt fully (glibc), so tests may call us twice */
        while ((c = getopt_long(argc, argv, ":n:i:h", options, NULL)) >= 0) {
                switch (c) {
                case 'n':
                        if (parse_unsigned(optarg, UINT_MAX, &a->count) < 0 || a->count == 0)
                                return sample_usage_error("invalid count '%s': expected a positive number", optarg);
                        break;
                case 'i':
                        if (parse_duration(optarg, &a->interval) < 0 || a->interval < 10 * USEC_PER_MSEC ||
                            a->interval > 24 * 3600 * USEC_PER_SEC)
                                return sample_usage_error("invalid interval '%s': expected a duration from 10ms "
                                                          "to 24h", optarg);
                        break;
                case ARG_JSON:
                        a->json = true;
                        break;
                case 'h':
                        fputs(sample_usage, stdout);
                        return EXIT_OK;
                case ':':
                        return sample_usage_error("option '%s' needs a value", argv[optind - 1]);
                default:
                        return sample_usage_error("unknown option '%s'", argv[optind - 1]);
                }
        }
        if (optind < argc)
                return sample_usage_error("unexpected argument '%s'", argv[optind]);
        return -1;
}

static void print_text(const struct sample *s, bool tty) {
        for (enum signal_id id = 0; id < _SIGNAL_MAX; id++) {
                const char *sep = id == 0 ? "" : " ";
                if (!signals_has(&s->signals, id))
                        printf("%s%s=n/a", sep, signal_name(id));
                else if (signal_is_percent(id))
                        printf("%s%s=%.1f%%", sep, signal_name(id), s->signals.value[id]);
                else if (id == SIGNAL_LOAD1 || id == SIGNAL_TASKS_RATE || id == SIGNAL_TASKS_LATENCY)
                        printf("%s%s=%.2f", sep, signal_name(id), s->signals.value[id]);
                else
                        printf("%s%s=%.0f", sep, signal_name(id), s->signals.value[id]);
        }
        printf(" capacity=%u\n", s->capacity);
        if (!tty)
                return;

        /* The bar row: 10-cell bars for a few cores, one digit (tens of %) each for many. */
        fputs("  cores", stdout);
        for (size_t i = 0; i < s->n_cores; i++) {
                double b = s->cores[i].busy;
                if (s->n_cores <= 8) {
                        int filled = (int) lround(b / 10);
                        printf(" %d[%.*s%.*s]%3.0f%%", s->cores[i].id, filled, "##########",
                               10 - filled, "..........", b);
                } else
                        putchar(b >= 95 ? '#' : (char) ('0' + (int) (b / 10)));
        }
        putchar('\n');
}

static int print_json(const struct sample *s) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        json_object *sig = json_object_new_object(), *cores = json_object_new_array();

        if (!o || !sig || !cores) {
                json_object_put(sig);
                json_object_put(cores);
                return -ENOMEM;
        }
        json_object_object_add(o, "elapsed", json_object_new_double((double) s->elapsed / USEC_PER_SEC));
        json_object_object_add(o, "capacity", json_object_new_int((int) s->capacity));
        json_object_object_add(o, "affinity_cpus", json_object_new_int((int) s->affinity_cpus));
        json_object_object_add(o, "quota_cpus", s->quota_cpus > 0 ? json_object_new_double(s->quota_cpus) : NULL);
        for (enum signal_id id = 0; id < _SIGNAL_MAX; id++)
                json_object_object_add(sig, signal_name(id),
                                       signals_has(&s->signals, id) ? json_object_new_double(s->signals.value[id]) : NULL);
        json_object_object_add(o, "signals", sig);
        for (size_t i = 0; i < s->n_cores; i++) {
                json_object *c = json_object_new_object();
                if (!c)
                        return -ENOMEM;
                json_object_object_add(c, "id", json_object_new_int(s->cores[i].id));
                json_object_object_add(c, "busy", json_object_new_double(s->cores[i].busy));
                json_object_array_add(cores, c);
        }
        json_object_object_add(o, "cores", cores);
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        return 0;
}

static void sleep_until(struct timespec *next, usec_t interval) {
        next->tv_sec += (time_t) (interval / USEC_PER_SEC);
        next->tv_nsec += (long) (interval % USEC_PER_SEC) * 1000;
        if (next->tv_nsec >= 1000000000L) {
                next->tv_sec++;
                next->tv_nsec -= 1000000000L;
        }
        /* An absolute deadline keeps the interval steady whatever printing costs. */
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, next, NULL) == EINTR)
                ;
}

int cmd_sample(int argc, char **argv) {
        _cleanup_(sampler_freep) struct sampler *sampler = NULL;
        struct sample_args a;
        struct timespec next;
        bool tty;
        int r;

        r = parse_args(argc, argv, &a);
        if (r >= 0)
                return r;
        tty = !a.json && isatty(STDOUT_FILENO);
        /* Six significant digits: "98.4953", not json-c's default "98.495316304222598". */
        (void) json_c_set_serialization_double_format("%.6g", JSON_C_OPTION_GLOBAL);

        r = sampler_new(&sampler);
        if (r < 0) {
                log_error_errno(r, "Failed to start sampling: %m");
                return EXIT_FAILURE;
        }
        clock_gettime(CLOCK_MONOTONIC, &next);
        for (unsigned i = 0; a.count == 0 || i < a.count; i++) {
                struct sample s;

                sleep_until(&next, a.interval);
                r = sampler_sample(sampler, NULL, 0, &s);
                if (r < 0) {
                        log_error_errno(r, "Failed to sample: %m");
                        return EXIT_FAILURE;
                }
                if (a.json)
                        r = print_json(&s);
                else
                        print_text(&s, tty);
                if (r < 0) {
                        log_error_errno(r, "Failed to format the sample: %m");
                        return EXIT_FAILURE;
                }
                /* Flushed per line: a script reading a pipe sees each sample as it comes. */
                if (fflush(stdout) != 0)
                        return EXIT_FAILURE;
        }
        return EXIT_OK;
}
