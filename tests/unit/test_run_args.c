/* SPDX-License-Identifier: MIT */
/* The command line of `corral run`: what it accepts and the reason it gives for what it refuses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "supervisor/run_args.h"

#define ARGV(...) ((char *[]) { "run", __VA_ARGS__, NULL })
#define ARGC(...) ((int) (sizeof((char *[]) { "run", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(a, err, ...) run_args_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (a), (err), sizeof(err))

static void test_command_after_double_dash(void **state) {
        struct run_args a;
        char err[256] = "";
        (void) state;

        assert_int_equal(PARSE(&a, err, "--min", "2", "--max", "4", "--", "./wrk", "--fast"), 0);
        assert_true(a.min_set && a.max_set);
        assert_int_equal(a.min, 2);
        assert_int_equal(a.max, 4);
        assert_string_equal(a.command[0], "./wrk");
        assert_string_equal(a.command[1], "--fast");   /* the worker's flag, not ours */
        assert_null(a.command[2]);
}

static void test_command_without_double_dash_keeps_its_flags(void **state) {
        struct run_args a;
        char err[256] = "";
        (void) state;

        assert_int_equal(PARSE(&a, err, "-q", "sleep", "-v"), 0);
        assert_int_equal(a.verbosity, -1);
        assert_string_equal(a.command[0], "sleep");
        assert_string_equal(a.command[1], "-v");
}

static void test_durations_and_limits(void **state) {
        struct run_args a;
        char err[256] = "";
        (void) state;

        assert_int_equal(PARSE(&a, err, "--stop-timeout", "500ms", "--restart-delay", "10ms",
                               "--crash-limit", "3", "-v", "--", "true"), 0);
        assert_int_equal(a.stop_timeout, 500 * USEC_PER_MSEC);
        assert_int_equal(a.restart_delay, 10 * USEC_PER_MSEC);
        assert_int_equal(a.crash_limit, 3);
        assert_int_equal(a.verbosity, 1);
        assert_false(a.min_set);
}

static void test_refusals_name_their_reason(void **state) {
        struct {
                char *argv[8];
                const char *reason;
        } cases[] = {
                { { "run", "--bogus", "--", "true" },    "unknown option '--bogus'" },
                { { "run", "-x", "true" },               "unknown option '-x'" },
                { { "run", "--min", "3", "--max", "2", "true" }, "--min 3 is larger than --max 2" },
                { { "run", "--max", "0", "true" },       "--max: '0' is not a number of workers (1-65536)" },
                { { "run", "--min", "two", "true" },     "--min: 'two' is not a number of workers (0-65536)" },
                { { "run", "--min", "-1", "true" },      "--min: '-1' is not a number of workers (0-65536)" },
                { { "run", "--stop-timeout", "5" , "true"}, "--stop-timeout: '5' is not a duration (like 500ms, 10s, 2m)" },
                { { "run", "--min", "1" },               "no COMMAND to run" },
                { { "run", "--" },                       "no COMMAND to run" },
                { { "run", "--max" },                    "--max needs a value" },
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct run_args a;
                char err[256] = "";
                int argc = 0;
                while (cases[i].argv[argc])
                        argc++;
                assert_int_equal(run_args_parse(argc, cases[i].argv, &a, err, sizeof(err)), -EINVAL);
                assert_string_equal(err, cases[i].reason);
        }
}

/* Flags that contradict each other by the rules of the configuration
 * (conf_validate) are refused with the command line, whatever a file says;
 * what a file may still supply (a joblog) is not missed before it is read. */
static void test_flags_meet_the_configuration_rules(void **state) {
        struct run_args a;
        char err[256] = "";
        (void) state;

        assert_int_equal(PARSE(&a, err, "--tasks", "t", "--ungroup", "--keep-order", "--", "echo"), -EINVAL);
        assert_string_equal(err, "--ungroup and --keep-order exclude each other: ungroup passes output on as it "
                                 "comes, in no order");
        assert_int_equal(PARSE(&a, err, "--stream", "--line-buffer", "--", "cat"), -EINVAL);
        assert_string_equal(err, "tasks.output: line-buffer (--line-buffer) applies to per-task mode only: stream "
                                 "mode (--stream, tasks.mode: stream) writes one result line per input line");
        assert_int_equal(PARSE(&a, err, "--tasks", "t", "--resume", "--", "echo"), -EINVAL);
        assert_string_equal(err, "--resume needs a joblog: --joblog FILE or tasks.joblog");
        assert_int_equal(PARSE(&a, err, "-c", "f.yaml", "--tasks", "t", "--resume"), 0);
        assert_int_equal(PARSE(&a, err, "--tasks", "t", "--resume", "--joblog", "j", "--", "echo"), 0);
        assert_int_equal(PARSE(&a, err, "-c", "f.yaml", "--min", "4", "--max", "3"), -EINVAL);
        assert_string_equal(err, "--min 4 is larger than --max 3");
        assert_int_equal(PARSE(&a, err, "--bar", "--", "true"), -EINVAL);
        assert_string_equal(err, "--bar needs --tasks FILE|-");
        assert_int_equal(PARSE(&a, err, "-c", "f.yaml", "--bar"), 0);   /* tasks.from may be in the file */
        assert_int_equal(PARSE(&a, err, "--stream", "--bar", "--", "cat"), 0);
        /* Stream mode over a work queue; its URL may be in the file. */
        assert_int_equal(PARSE(&a, err, "--stream", "--tasks", "redis://h:1/s", "--until-empty", "--", "cat"), 0);
        assert_int_equal(PARSE(&a, err, "-c", "f.yaml", "--stream", "--until-empty"), 0);
        assert_int_equal(PARSE(&a, err, "--stream", "--until-empty", "--", "cat"), -EINVAL);
        assert_string_equal(err, "--until-empty applies to a work queue (--tasks redis://...), not to -");
        assert_int_equal(PARSE(&a, err, "--metrics", "localhost", "--", "true"), -EINVAL);
        assert_string_equal(err, "--metrics: 'localhost' is not HOST:PORT or none");
}

/* The flags over a file's values: each wins, and says so in the origin. */
static void test_apply_records_origins(void **state) {
        struct run_args a;
        struct corral_config c;
        char err[256] = "";
        (void) state;

        assert_int_equal(PARSE(&a, err, "--max", "6", "--restart-delay", "1m", "--tasks", "t", "--ungroup",
                               "--", "echo", "{}"), 0);
        config_init(&c);
        c.origin.max = (struct config_origin) { 3, 8 };   /* as if the file had set it */
        assert_int_equal(run_args_apply(&a, &c), 0);
        assert_int_equal(c.workers.max, 6);
        assert_string_equal(c.origin.max.flag, "--max");
        assert_int_equal(c.origin.max.line, 0);
        assert_null(c.origin.min.flag);
        assert_int_equal(c.workers.backoff_initial, 60 * USEC_PER_SEC);
        assert_int_equal(c.workers.backoff_max, 60 * USEC_PER_SEC);   /* raised to the first delay */
        assert_int_equal(c.tasks.output, TASK_OUTPUT_UNGROUP);
        assert_string_equal(c.origin.output.flag, "--ungroup");
        assert_string_equal(c.tasks.from, "t");
        assert_string_equal(c.command[1], "{}");
        config_done(&c);
}

/* -j N is --min N --max N; a later --min or --max moves one bound, and an
 * error names the flag that set the value. */
static void test_jobs(void **state) {
        struct run_args a;
        struct corral_config c;
        char err[256] = "";
        (void) state;

        assert_int_equal(PARSE(&a, err, "-j", "3", "--", "true"), 0);
        assert_true(a.min_set && a.max_set);
        assert_int_equal(a.min, 3);
        assert_int_equal(a.max, 3);
        config_init(&c);
        assert_int_equal(run_args_apply(&a, &c), 0);
        assert_int_equal(c.workers.min, 3);
        assert_int_equal(c.workers.max, 3);
        assert_string_equal(c.origin.min.flag, "-j");
        assert_string_equal(c.origin.max.flag, "-j");
        config_done(&c);

        assert_int_equal(PARSE(&a, err, "-j5", "--max", "8", "--", "true"), 0);
        assert_int_equal(a.min, 5);
        assert_int_equal(a.max, 8);
        assert_int_equal(PARSE(&a, err, "--jobs", "2", "--", "true"), 0);
        assert_int_equal(a.min, 2);
        assert_int_equal(a.max, 2);

        assert_int_equal(PARSE(&a, err, "-j", "0", "--", "true"), -EINVAL);
        assert_string_equal(err, "-j: '0' is not a number of workers (1-65536)");
        assert_int_equal(PARSE(&a, err, "-j", "4", "--max", "2", "--", "true"), -EINVAL);
        assert_string_equal(err, "-j 4 is larger than --max 2");
        assert_int_equal(PARSE(&a, err, "-j"), -EINVAL);
        assert_string_equal(err, "-j needs a value");
}

static void test_help_needs_no_command(void **state) {
        struct run_args a;
        char err[256] = "";
        (void) state;

        assert_int_equal(PARSE(&a, err, "--help"), 0);
        assert_true(a.help);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_command_after_double_dash),
                cmocka_unit_test(test_command_without_double_dash_keeps_its_flags),
                cmocka_unit_test(test_durations_and_limits),
                cmocka_unit_test(test_refusals_name_their_reason),
                cmocka_unit_test(test_flags_meet_the_configuration_rules),
                cmocka_unit_test(test_apply_records_origins),
                cmocka_unit_test(test_jobs),
                cmocka_unit_test(test_help_needs_no_command),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
