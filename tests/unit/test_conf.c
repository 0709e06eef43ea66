/* SPDX-License-Identifier: MIT */
/* The built-in default policy, the value parsers conf_load adds (percent, size,
 * shard), and conf_load_text on inputs the fuzzer found. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "conf/conf.h"
#include "conf/units.h"
#include "policy/condition.h"

static void test_default_policy(void **state) {
        static const char *const long_lived[] = {
                "pool.cpu > 80% and cpu.busy < 80%", "cpu.busy > 95% and psi.cpu > 20%", "pool.cpu < 20%",
        };
        struct corral_config c;
        char buf[128];
        (void) state;

        config_init(&c);
        assert_int_equal(config_default_policy(&c, false), 0);
        assert_int_equal(c.policy.n_rules, 3);
        assert_false(c.policy.has_optimize);
        for (size_t i = 0; i < 3; i++) {
                assert_true(condition_format(c.policy.rules[i].when, buf, sizeof(buf)) > 0);
                assert_string_equal(buf, long_lived[i]);
        }
        assert_int_equal(c.policy.rules[0].scale, 1);
        assert_int_equal(c.policy.rules[0].hold, 2 * USEC_PER_SEC);
        assert_int_equal(c.policy.rules[1].scale, -1);
        assert_int_equal(c.policy.rules[1].hold, 5 * USEC_PER_SEC);
        assert_int_equal(c.policy.rules[2].hold, 30 * USEC_PER_SEC);
        assert_int_equal(c.workers.min, 1);
        assert_int_equal(c.workers.max, 0);

        /* replacing the rules frees the old ones (checked by the sanitizers) */
        assert_int_equal(config_default_policy(&c, true), 0);
        assert_int_equal(c.policy.n_rules, 1);
        assert_string_equal(c.policy.rules[0].name, "neighbour");
        assert_true(c.policy.has_optimize);
        assert_int_equal(c.policy.optimize_signal, SIGNAL_TASKS_RATE);
        config_done(&c);
}

static void test_percent_size_shard(void **state) {
        double d = -1;
        uint64_t v = 7;
        unsigned k = 9, n = 9;
        (void) state;

        assert_int_equal(parse_percent("80%", &d), 0);
        assert_true(d == 80);
        assert_int_equal(parse_percent("12.5", &d), 0);
        assert_true(d == 12.5);
        assert_int_equal(parse_percent("101%", &d), -ERANGE);
        assert_int_equal(parse_percent("1e2", &d), -EINVAL);
        assert_int_equal(parse_percent("80 %", &d), -EINVAL);
        assert_int_equal(parse_percent("-1", &d), -EINVAL);
        assert_true(d == 12.5);

        assert_int_equal(parse_size("512MiB", &v), 0);
        assert_int_equal(v, 512ULL << 20);
        assert_int_equal(parse_size("2GiB", &v), 0);
        assert_int_equal(v, 2ULL << 30);
        assert_int_equal(parse_size("1KB", &v), 0);
        assert_int_equal(v, 1000);
        assert_int_equal(parse_size("0", &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(parse_size("99999999999TiB", &v), -ERANGE);
        assert_int_equal(parse_size("5 MiB", &v), -EINVAL);
        assert_int_equal(parse_size("MiB", &v), -EINVAL);
        assert_int_equal(v, 0);

        assert_int_equal(parse_shard("1/4", &k, &n), 0);
        assert_int_equal(k, 1);
        assert_int_equal(n, 4);
        assert_int_equal(parse_shard("4/4", &k, &n), -ERANGE);
        assert_int_equal(parse_shard("0/0", &k, &n), -ERANGE);
        assert_int_equal(parse_shard("1-4", &k, &n), -EINVAL);
        assert_int_equal(parse_shard("/4", &k, &n), -EINVAL);
        assert_int_equal(k, 1);

        assert_string_equal(signal_suggest("TREM"), "TERM");
        assert_string_equal(signal_suggest("SIGKIL"), "KILL");
        assert_null(signal_suggest("XYZZY"));
}

/* Inputs found by tests/fuzz (fuzz-conf). Leaks show in the sanitizer pass. */
static void test_load_text_regressions(void **state) {
        static const struct {
                const char *name, *text, *first_error;
                int r;
        } cases[] = {
                /* Leaked the arguments after a bad one: argv had a hole, strv_free() stopped there. */
                { "argv item after a bad one", "command: [python3, {a: b}, filters/x.py]\n",
                  "t.yaml:1:20: command[1]: expected a string, got a mapping", -EINVAL },
                { "argv two bad items", "command: [a, [b], c, {d: e}, f]\n",
                  "t.yaml:1:14: command[1]: expected a string, got a list", -EINVAL },
                { "shared command item after a bad one",
                  "command: [w]\nshared: {ref: {command: [zcat, [x], /srv/ref.gz]}}\n",
                  "t.yaml:2:32: shared.ref.command[1]: expected a string, got a list", -EINVAL },
                { "valid", "command: [./worker, --fast]\n", NULL, 0 },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct conf_diagnostics d = {};
                struct corral_config c;
                print_message("case: %s\n", cases[i].name);
                int r = conf_load_text("t.yaml", cases[i].text, strlen(cases[i].text), &c, &d);
                assert_int_equal(r, cases[i].r);
                if (cases[i].first_error) {
                        assert_true(d.n_items > 0);
                        assert_string_equal(d.items[0].message, cases[i].first_error);
                } else {
                        assert_int_equal(d.n_errors, 0);
                        assert_string_equal(c.command[1], "--fast");
                        config_done(&c);
                }
                conf_diagnostics_done(&d);
        }
}

/* The text need not end in a NUL, and the size limit is conf_load's. */
static void test_load_text_bounds(void **state) {
        static const char text[] = "command: [w]\nworkers: {min: 2}XXXX";
        struct conf_diagnostics d = {};
        struct corral_config c;
        (void) state;

        assert_int_equal(conf_load_text("t.yaml", text, strlen(text) - 4, &c, &d), 0);
        assert_int_equal(c.workers.min, 2);
        assert_string_equal(c.path, "t.yaml");
        config_done(&c);

        char *big = malloc(CONF_MAX_FILE_SIZE + 1);
        assert_non_null(big);
        memset(big, '#', CONF_MAX_FILE_SIZE + 1);
        assert_int_equal(conf_load_text("t.yaml", big, CONF_MAX_FILE_SIZE + 1, &c, &d), -EFBIG);
        assert_int_equal(d.n_errors, 1);
        free(big);
        conf_diagnostics_done(&d);
}

/* libyaml parses nesting in time quadratic in the depth (1 MiB of '[' took 29
 * minutes): a file is refused at the first level past CONF_MAX_DEPTH, at
 * once. The root mapping is the first level, so "command: " and 63 '[' nest
 * 64 deep (just inside), and 64 '[' nest 65 deep (just outside). */
static void test_nesting_depth_is_bounded(void **state) {
        struct conf_diagnostics d = {};
        struct corral_config c;
        char text[256];
        (void) state;

        int n = snprintf(text, sizeof(text), "command: %.*s", CONF_MAX_DEPTH - 1,
                         "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
        assert_int_equal(conf_load_text("t.yaml", text, (size_t) n, &c, &d), -EINVAL);
        assert_true(d.n_items > 0);
        assert_null(strstr(d.items[0].message, "nested too deeply"));
        conf_diagnostics_done(&d);

        n = snprintf(text, sizeof(text), "command: %.*s", CONF_MAX_DEPTH,
                     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
        assert_int_equal(conf_load_text("t.yaml", text, (size_t) n, &c, &d), -EINVAL);
        assert_int_equal(d.n_items, 1);
        assert_string_equal(d.items[0].message,
                            "t.yaml:1:73: nested too deeply (more than 64 levels of lists and mappings)");
        conf_diagnostics_done(&d);

        /* block mappings count as much as flow lists */
        char block[64 * 70] = "";
        size_t len = 0;
        for (int i = 0; i <= CONF_MAX_DEPTH; i++)
                len += (size_t) snprintf(block + len, sizeof(block) - len, "%*sk%d:\n", i, "", i);
        assert_int_equal(conf_load_text("t.yaml", block, len, &c, &d), -EINVAL);
        assert_int_equal(d.n_items, 1);
        assert_string_equal(d.items[0].message,
                            "t.yaml:65:65: nested too deeply (more than 64 levels of lists and mappings)");
        conf_diagnostics_done(&d);

        /* the largest file there is, all '[': refused at once, not after minutes */
        char *big = malloc(CONF_MAX_FILE_SIZE);
        assert_non_null(big);
        memset(big, '[', CONF_MAX_FILE_SIZE);
        assert_int_equal(conf_load_text("t.yaml", big, CONF_MAX_FILE_SIZE, &c, &d), -EINVAL);
        assert_int_equal(d.n_items, 1);
        assert_string_equal(d.items[0].message,
                            "t.yaml:1:65: nested too deeply (more than 64 levels of lists and mappings)");
        free(big);
        conf_diagnostics_done(&d);
}

/* conf_validate over a configuration that merges a file and flags: each error
 * points at the value in the file, or names the flags. */
static void test_validate_merged(void **state) {
#define file_3_8 { 3, 8, NULL }
#define file_4_8 { 4, 8, NULL }
#define file_5_3 { 5, 3, NULL }
#define flag_min { .flag = "--min" }
#define flag_max { .flag = "--max" }
#define flag_ungroup { .flag = "--ungroup" }
#define flag_keep { .flag = "--keep-order" }
#define flag_line { .flag = "--line-buffer" }
#define flag_stream { .flag = "--stream" }
        static const struct {
                const char *name;
                unsigned min, max, initial;
                struct config_origin min_at, max_at, initial_at;
                enum task_output output;
                bool keep_order, stream, resume, partial;
                struct config_origin output_at, keep_order_at, mode_at;
                const char *error;      /* NULL: valid */
        } cases[] = {
                { "max in the file below min from a flag", 5, 4, 0, flag_min, file_3_8, {},
                  .error = "t.yaml:3:8: workers.max: 4 is less than --min 5" },
                { "min in the file above max from a flag", 4, 2, 0, file_3_8, flag_max, {},
                  .error = "t.yaml:3:8: workers.min: 4 is greater than --max 2" },
                { "both in the file: at the later", 4, 2, 0, file_4_8, file_3_8, {},
                  .error = "t.yaml:4:8: workers.min: 4 is greater than workers.max (2)" },
                { "both flags", 3, 2, 0, flag_min, flag_max, {}, .error = "--min 3 is larger than --max 2" },
                { "min = max", 2, 2, 0, flag_min, file_3_8, {}, .error = NULL },
                { "an unset max is not related", 9, 0, 0, flag_min, {}, {}, .error = NULL },
                { "--max caps the file's initial", 1, 2, 5, {}, flag_max, file_5_3, .error = NULL },
                { "initial above max, both in the file", 1, 2, 5, {}, file_3_8, file_5_3,
                  .error = "t.yaml:5:3: workers.initial: 5 is greater than workers.max (2)" },
                { "ungroup flag, keep_order in the file", 1, 0, 0, .output = TASK_OUTPUT_UNGROUP, .keep_order = true,
                  .output_at = flag_ungroup, .keep_order_at = file_4_8,
                  .error = "t.yaml:4:8: --ungroup (tasks.output: ungroup) passes output on as it comes, so "
                           "tasks.keep_order cannot hold it in input order; give only one of them" },
                { "ungroup in the file, --keep-order", 1, 0, 0, .output = TASK_OUTPUT_UNGROUP, .keep_order = true,
                  .output_at = file_3_8, .keep_order_at = flag_keep,
                  .error = "t.yaml:3:8: tasks.output: ungroup passes output on as it comes, so --keep-order "
                           "cannot hold it in input order; give only one of them" },
                { "ungroup and keep-order flags", 1, 0, 0, .output = TASK_OUTPUT_UNGROUP, .keep_order = true,
                  .output_at = flag_ungroup, .keep_order_at = flag_keep,
                  .error = "--ungroup and --keep-order exclude each other: ungroup passes output on as it comes, "
                           "in no order" },
                { "line-buffer keeps order", 1, 0, 0, .output = TASK_OUTPUT_LINE, .keep_order = true,
                  .output_at = flag_line, .keep_order_at = flag_keep, .error = NULL },
                { "--line-buffer in a file's stream mode", 1, 0, 0, .output = TASK_OUTPUT_LINE, .stream = true,
                  .output_at = flag_line, .mode_at = file_5_3,
                  .error = "t.yaml:5:3: tasks.output: line-buffer (--line-buffer) applies to per-task mode only: "
                           "stream mode (--stream, tasks.mode: stream) writes one result line per input line" },
                { "the file's line-buffer with --stream", 1, 0, 0, .output = TASK_OUTPUT_LINE, .stream = true,
                  .output_at = file_3_8, .mode_at = flag_stream,
                  .error = "t.yaml:3:8: tasks.output: line-buffer applies to tasks.mode per-task only; stream mode "
                           "writes one result line per input line (leave tasks.output out)" },
                { "--resume without a joblog", 1, 0, 0, .resume = true,
                  .error = "--resume needs a joblog: --joblog FILE or tasks.joblog" },
                { "--resume, the file still to come", 1, 0, 0, .resume = true, .partial = true, .error = NULL },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct conf_diagnostics d = {};
                struct corral_config c;
                print_message("case: %s\n", cases[i].name);
                config_init(&c);
                c.workers.min = cases[i].min;
                c.workers.max = cases[i].max;
                c.workers.initial = cases[i].initial;
                c.origin.min = cases[i].min_at;
                c.origin.max = cases[i].max_at;
                c.origin.initial = cases[i].initial_at;
                c.tasks.output = cases[i].output;
                c.tasks.keep_order = cases[i].keep_order;
                c.tasks.mode = cases[i].stream ? TASK_MODE_STREAM : TASK_MODE_PER_TASK;
                c.tasks.resume = cases[i].resume;
                c.origin.output = cases[i].output_at;
                c.origin.keep_order = cases[i].keep_order_at;
                c.origin.mode = cases[i].mode_at;
                int r = conf_validate(&c, "t.yaml", cases[i].partial, &d);
                if (cases[i].error) {
                        assert_int_equal(r, -EINVAL);
                        assert_int_equal(d.n_items, 1);
                        assert_string_equal(d.items[0].message, cases[i].error);
                } else {
                        assert_int_equal(r, 0);
                        assert_int_equal(d.n_items, 0);
                }
                conf_diagnostics_done(&d);
                config_done(&c);
        }
#undef file_3_8
#undef file_4_8
#undef file_5_3
#undef flag_min
#undef flag_max
#undef flag_ungroup
#undef flag_keep
#undef flag_line
#undef flag_stream
}

/* workers.user/group are looked up later, by `corral run`: their errors need the positions. */
static void test_user_and_group_keep_their_positions(void **state) {
        static const char text[] = "command: [w]\nworkers:\n  min: 1\n  user: nobody\n  group:   web\n  cwd: /srv\n";
        struct conf_diagnostics d = {};
        struct corral_config c;
        (void) state;

        assert_int_equal(conf_load_text("t.yaml", text, strlen(text), &c, &d), 0);
        assert_string_equal(c.workers.user, "nobody");
        assert_int_equal(c.workers.user_line, 4);
        assert_int_equal(c.workers.user_column, 9);
        assert_string_equal(c.workers.group, "web");
        assert_int_equal(c.workers.group_line, 5);
        assert_int_equal(c.workers.group_column, 12);
        assert_int_equal(c.workers.cwd_line, 6);
        assert_int_equal(c.workers.cwd_column, 8);
        assert_int_equal(c.command_line, 1);
        assert_int_equal(c.command_column, 10);
        config_done(&c);
        conf_diagnostics_done(&d);
}

/* listen: its addresses with their places, notify implied unless written,
 * and the server pool's rules when the file has no policy of its own. */
static void test_listen(void **state) {
        static const struct {
                const char *name, *text;
                bool notify;
                const char *first_rule;   /* NULL: none */
        } cases[] = {
                { "one address", "command: [w]\nlisten: 127.0.0.1:8080\n", true, "queued" },
                { "a list", "command: [w]\nlisten: [\"[::]:80\", \"unix:/run/a.sock\"]\n", true, "queued" },
                { "notify: false written", "command: [w]\nlisten: [\":80\"]\nworkers: {notify: false}\n", false, "queued" },
                { "a policy of its own", "command: [w]\nlisten: [\"a:80\"]\npolicy:\n  rules:\n"
                  "    - {name: mine, when: pool.cpu > 50%, scale: +1}\n", true, "mine" },
                { "no listen", "command: [w]\n", false, NULL },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct conf_diagnostics d = {};
                struct corral_config c;
                print_message("%s\n", cases[i].name);
                int r = conf_load_text("t.yaml", cases[i].text, strlen(cases[i].text), &c, &d);
                if (strstr(cases[i].text, "\":80\"")) {
                        /* An empty host is not an address. */
                        assert_int_equal(r, -EINVAL);
                        conf_diagnostics_done(&d);
                        continue;
                }
                assert_int_equal(r, 0);
                assert_int_equal(c.workers.notify, cases[i].notify);
                if (cases[i].first_rule)
                        assert_string_equal(c.policy.rules[0].name, cases[i].first_rule);
                else
                        assert_int_equal(c.policy.n_rules, 0);
                config_done(&c);
                conf_diagnostics_done(&d);
        }

        struct conf_diagnostics d = {};
        struct corral_config c;
        static const char text[] = "command: [w]\nlisten:\n  - 127.0.0.1:8080\n  - unix:/run/app.sock\n";
        assert_int_equal(conf_load_text("t.yaml", text, strlen(text), &c, &d), 0);
        assert_int_equal(c.n_listen, 2);
        assert_string_equal(c.listen[1].address, "unix:/run/app.sock");
        assert_int_equal(c.listen[1].line, 4);
        assert_int_equal(c.listen[1].column, 5);
        assert_int_equal(c.listen_backlog, 0);
        assert_int_equal(c.workers.start_timeout, 60 * USEC_PER_SEC);
        config_done(&c);
        conf_diagnostics_done(&d);
}

/* Doubtful conditions load (they run as written) with a warning at the
 * comparison; conf_lint warns about task signals only without tasks; the
 * built-in policies warn about nothing. */
static void test_lint_warnings(void **state) {
        static const char text[] = "command: [w]\n"
                                   "policy:\n"
                                   "  target: {signal: tasks.backlog, value: 5}\n"
                                   "  rules:\n"
                                   "    - {name: r, when: cpu.busy > 0.5, scale: +1}\n";
        struct conf_diagnostics d = {};
        struct corral_config c;
        (void) state;

        assert_int_equal(conf_load_text("t.yaml", text, strlen(text), &c, &d), 0);
        assert_int_equal(d.n_errors, 0);
        assert_int_equal(d.n_warnings, 1);
        assert_string_equal(d.items[0].message, "t.yaml:5:23: warning: policy.rules[0].when: cpu.busy > 0.5: cpu.busy "
                                                "is a percentage (0-100), so 0.5 means 0.5%, not a ratio; write 50% "
                                                "if you meant 0.5");
        conf_diagnostics_done(&d);
        assert_int_equal(conf_lint(&c, c.path, &d), 0);
        assert_int_equal(d.n_warnings, 1);
        assert_string_equal(d.items[0].message, "t.yaml:3:11: warning: policy.target reads tasks.backlog, but a pool "
                                                "without tasks (no --tasks or tasks.from) has none: the pool stays at "
                                                "its size");
        conf_diagnostics_done(&d);
        c.tasks.from = strdup("t.txt");
        assert_non_null(c.tasks.from);
        assert_int_equal(conf_lint(&c, c.path, &d), 0);
        assert_int_equal(d.n_items, 0);
        config_done(&c);

        for (int batch = 0; batch <= 1; batch++) {
                config_init(&c);
                assert_int_equal(config_default_policy(&c, batch), 0);
                if (batch)
                        c.tasks.from = strdup("-");
                assert_int_equal(conf_lint(&c, NULL, &d), 0);
                assert_int_equal(d.n_items, 0);
                for (size_t i = 0; i < c.policy.n_rules; i++) {
                        struct condition_warning w[1];
                        assert_int_equal(condition_lint(c.policy.rules[i].when, w, 1), 0);
                }
                config_done(&c);
        }
}

/* Stream mode's own keys in a file whose tasks run per task: a warning at
 * each key; none once the tasks stream (tasks.mode, or --stream at run). */
static void test_lint_stream_keys_outside_stream_mode(void **state) {
        static const char text[] = "command: [w]\n"
                                   "tasks:\n"
                                   "  from: t.txt\n"
                                   "  in_flight: 4\n"
                                   "  failed_line: 'ERR'\n";
        struct conf_diagnostics d = {};
        struct corral_config c;
        (void) state;

        assert_int_equal(conf_load_text("t.yaml", text, strlen(text), &c, &d), 0);
        assert_int_equal(d.n_items, 0);
        assert_int_equal(conf_lint(&c, c.path, &d), 0);
        assert_int_equal(d.n_warnings, 2);
        assert_string_equal(d.items[0].message, "t.yaml:4:14: warning: tasks.in_flight applies to stream mode only "
                                                "(tasks.mode: stream or --stream); these tasks run per task and it "
                                                "is ignored");
        assert_string_equal(d.items[1].message, "t.yaml:5:16: warning: tasks.failed_line applies to stream mode "
                                                "only (tasks.mode: stream or --stream); these tasks run per task and "
                                                "it is ignored");
        conf_diagnostics_done(&d);
        c.tasks.mode = TASK_MODE_STREAM;
        assert_int_equal(conf_lint(&c, c.path, &d), 0);
        assert_int_equal(d.n_items, 0);
        config_done(&c);
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_default_policy),
                cmocka_unit_test(test_percent_size_shard),
                cmocka_unit_test(test_load_text_regressions),
                cmocka_unit_test(test_load_text_bounds),
                cmocka_unit_test(test_nesting_depth_is_bounded),
                cmocka_unit_test(test_validate_merged),
                cmocka_unit_test(test_user_and_group_keep_their_positions),
                cmocka_unit_test(test_listen),
                cmocka_unit_test(test_lint_warnings),
                cmocka_unit_test(test_lint_stream_keys_outside_stream_mode),
        };
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
