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

/* workers.user/group are looked up later, by `corral run`: their errors need the positions. */
static void test_user_and_group_keep_their_positions(void **state) {
        static const char text[] = "command: [w]\nworkers:\n  min: 1\n  user: nobody\n  group:   web\n";
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
        config_done(&c);
        conf_diagnostics_done(&d);
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_default_policy),
                cmocka_unit_test(test_percent_size_shard),
                cmocka_unit_test(test_load_text_regressions),
                cmocka_unit_test(test_load_text_bounds),
                cmocka_unit_test(test_nesting_depth_is_bounded),
                cmocka_unit_test(test_user_and_group_keep_their_positions),
        };
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
