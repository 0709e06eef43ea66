/* SPDX-License-Identifier: MIT */
/* corral's snapshot: every DESIGN.md metric with its type and units, /healthz, /status JSON. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "common/util.h"
#include "metrics/corral_metrics.h"
#include "metrics/status_json.h"
#include "tests/metrics/fixture.h"

static char *render(const struct metrics_snapshot *s) {
        char *text = NULL;
        size_t len;

        assert_int_equal(metrics_snapshot_render(s, &text, &len), 0);
        assert_int_equal(strlen(text), len);
        return text;
}

static void test_every_design_name(void **state) {
        /* DESIGN.md "Metrics", plus the extras this module adds. */
        static const struct { const char *name, *type; } names[] = {
                { "corral_build_info", "gauge" },
                { "corral_workers", "gauge" },
                { "corral_workers_desired", "gauge" },
                { "corral_cpu_busy_ratio", "gauge" },
                { "corral_core_busy_ratio", "gauge" },
                { "corral_signal", "gauge" },
                { "corral_scale_events_total", "counter" },
                { "corral_worker_exits_total", "counter" },
                { "corral_tasks_total", "counter" },
                { "corral_tasks_pending", "gauge" },
                { "corral_worker_utilization_ratio", "gauge" },
                { "corral_restarts_total", "counter" },
                { "corral_crash_loop", "gauge" },
                { "corral_task_duration_seconds", "histogram" },
                { "corral_shared_bytes", "gauge" },
                { "corral_shared_load_seconds", "gauge" },
                { "corral_shared_generation", "gauge" },
                { "corral_config_reloads_total", "counter" },
                { "process_cpu_seconds_total", "counter" },
                { "process_resident_memory_bytes", "gauge" },
                { "process_start_time_seconds", "gauge" },
                { "process_open_fds", "gauge" },
                { "process_max_fds", "gauge" },
                { "corral_workers_min", "gauge" },
                { "corral_workers_max", "gauge" },
                { "corral_rule_condition_held_seconds", "gauge" },
                { "corral_worker_recycles_total", "counter" },
        };
        struct metrics_snapshot s;
        char line[128];
        (void) state;

        fixture_snapshot(&s, false);
        _cleanup_free_ char *text = render(&s);
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                snprintf(line, sizeof(line), "# TYPE %s %s\n", names[i].name, names[i].type);
                print_message("%s", line);
                assert_non_null(strstr(text, line));
                snprintf(line, sizeof(line), "# HELP %s ", names[i].name);
                assert_non_null(strstr(text, line));
        }
}

static void test_values_and_units(void **state) {
        static const char *const lines[] = {
                "corral_build_info{version=\"0.1.0-test\"} 1\n",
                "corral_workers{state=\"starting\"} 0\n",
                "corral_workers{state=\"running\"} 2\n",
                "corral_workers{state=\"stopping\"} 1\n",
                "corral_workers_desired 2\n",
                /* Percentages become ratios. */
                "corral_cpu_busy_ratio 0.635\n",
                "corral_core_busy_ratio{core=\"0\"} 0.635\n",
                "corral_core_busy_ratio{core=\"1\"} 0.12\n",
                "corral_signal{name=\"cpu.busy\"} 0.635\n",
                "corral_signal{name=\"pool.cpu\"} 0.677\n",
                "corral_signal{name=\"cpu.idle_cores\"} 1\n",
                "corral_signal{name=\"load1\"} 0.75\n",
                "corral_signal{name=\"tasks.latency\"} 0.16\n",
                "corral_scale_events_total{direction=\"up\",rule=\"saturated\"} 3\n",
                "corral_scale_events_total{direction=\"up\",rule=\"a\\\"b\\\\c\"} 2\n",
                "corral_scale_events_total{direction=\"down\",rule=\"line\\nbreak\"} 1\n",
                "corral_worker_exits_total{outcome=\"success\"} 5\n",
                "corral_worker_exits_total{outcome=\"failure\"} 2\n",
                "corral_worker_exits_total{outcome=\"signal\"} 1\n",
                "corral_worker_recycles_total{reason=\"tasks\"} 4\n",
                "corral_worker_recycles_total{reason=\"rss\"} 1\n",
                "corral_worker_recycles_total{reason=\"age\"} 0\n",
                "corral_tasks_total{result=\"ok\"} 14\n",
                "corral_tasks_total{result=\"failed\"} 1\n",
                "corral_tasks_pending 7\n",
                "corral_worker_utilization_ratio 0.675\n",
                "corral_restarts_total 3\n",
                "corral_crash_loop 0\n",
                /* 0.0005 | 0.003 0.003 | 0.2 | 0.7 1 1 | 4 | 400: "le" includes its bound. */
                "corral_task_duration_seconds_bucket{le=\"0.001\"} 1\n",
                "corral_task_duration_seconds_bucket{le=\"0.005\"} 3\n",
                "corral_task_duration_seconds_bucket{le=\"0.25\"} 4\n",
                "corral_task_duration_seconds_bucket{le=\"1\"} 7\n",
                "corral_task_duration_seconds_bucket{le=\"5\"} 8\n",
                "corral_task_duration_seconds_bucket{le=\"300\"} 8\n",
                "corral_task_duration_seconds_bucket{le=\"+Inf\"} 9\n",
                "corral_task_duration_seconds_count 9\n",
                "corral_shared_bytes{segment=\"refdata\"} 268435456\n",
                "corral_shared_load_seconds{segment=\"refdata\"} 0.25\n",
                "corral_shared_generation{segment=\"refdata\"} 3\n",
                "corral_config_reloads_total{result=\"ok\"} 1\n",
                "corral_config_reloads_total{result=\"failed\"} 1\n",
                "corral_rule_condition_held_seconds{rule=\"saturated\"} 1.5\n",
                "corral_rule_condition_held_seconds{rule=\"idle\"} 0\n",
                "process_cpu_seconds_total 1.25\n",
                "process_resident_memory_bytes 4194304\n",
                "process_start_time_seconds 1700000000.5\n",
                "process_open_fds 9\n",
        };
        struct metrics_snapshot s;
        (void) state;

        fixture_snapshot(&s, false);
        _cleanup_free_ char *text = render(&s);
        for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
                print_message("%s", lines[i]);
                assert_non_null(strstr(text, lines[i]));
        }
        /* Unavailable signals are absent, not zero. */
        assert_null(strstr(text, "psi.cpu"));
        assert_null(strstr(text, "tasks.backlog"));
        assert_int_equal(text[strlen(text) - 1], '\n');
}

static void test_crash_loop_and_health(void **state) {
        struct metrics_snapshot s;
        char reason[160];
        (void) state;

        fixture_snapshot(&s, false);
        assert_true(metrics_snapshot_health(&s, reason, sizeof(reason)));
        assert_non_null(strstr(reason, "ok"));
        assert_null(strchr(reason, '\n'));

        s.workers[METRICS_WORKER_RUNNING] = 0;
        s.workers[METRICS_WORKER_STARTING] = 1;
        assert_false(metrics_snapshot_health(&s, reason, sizeof(reason)));
        assert_string_equal(reason, "0 of at least 1 worker running (1 starting)");

        s.min = 2;
        assert_false(metrics_snapshot_health(&s, reason, sizeof(reason)));
        assert_string_equal(reason, "0 of at least 2 workers running (1 starting)");

        s.workers[METRICS_WORKER_RUNNING] = 1;
        s.min = 1;
        assert_true(metrics_snapshot_health(&s, reason, sizeof(reason)));
        assert_string_equal(reason, "ok: 1 worker running (min 1, max 8)");

        fixture_snapshot(&s, false);
        s.stopping = true;
        assert_false(metrics_snapshot_health(&s, reason, sizeof(reason)));
        assert_string_equal(reason, "stopping");

        fixture_snapshot(&s, true);
        assert_false(metrics_snapshot_health(&s, reason, sizeof(reason)));
        assert_non_null(strstr(reason, "crash loop"));
        _cleanup_free_ char *text = render(&s);
        assert_non_null(strstr(text, "\ncorral_crash_loop 1\n"));
}

static void test_minimal_snapshot(void **state) {
        /* A zeroed snapshot (before the first sample) still renders every family. */
        struct metrics_snapshot s = {};
        (void) state;

        _cleanup_free_ char *text = render(&s);
        assert_non_null(strstr(text, "corral_build_info{version=\"unknown\"} 1\n"));
        assert_non_null(strstr(text, "# TYPE corral_cpu_busy_ratio gauge\n"));
        assert_null(strstr(text, "process_cpu_seconds_total"));   /* not read yet */
        assert_non_null(strstr(text, "corral_task_duration_seconds_bucket{le=\"+Inf\"} 0\n"));
}

static void test_scale_events_start_at_zero(void **state) {
        /* Every label set the configuration names is there before its first
         * event: a rule in its scale's direction, optimize both ways. */
        static const struct metrics_rule rules[] = {
                { .name = "saturated", .when = "pool.cpu > 80%", .scale = +1 },
                { .name = "idle", .when = "pool.cpu < 20%", .scale = -2 },
        };
        static const struct metrics_scale_count events[] = {
                { .rule = "saturated", .direction = METRICS_SCALE_UP, .count = 3 },
        };
        struct metrics_snapshot s = { .rules = rules, .n_rules = 2, .scale_events = events,
                                      .n_scale_events = 1, .optimize = true };
        (void) state;

        _cleanup_free_ char *text = render(&s);
        assert_non_null(strstr(text, "corral_scale_events_total{direction=\"up\",rule=\"saturated\"} 3\n"));
        assert_null(strstr(text, "corral_scale_events_total{direction=\"up\",rule=\"saturated\"} 0\n"));
        assert_non_null(strstr(text, "corral_scale_events_total{direction=\"down\",rule=\"idle\"} 0\n"));
        assert_null(strstr(text, "direction=\"up\",rule=\"idle\""));
        assert_null(strstr(text, "direction=\"down\",rule=\"saturated\""));
        assert_non_null(strstr(text, "corral_scale_events_total{direction=\"up\",rule=\"optimize\"} 0\n"));
        assert_non_null(strstr(text, "corral_scale_events_total{direction=\"down\",rule=\"optimize\"} 0\n"));
        assert_null(strstr(text, "rule=\"target\""));
}

static void test_null_names(void **state) {
        struct metrics_snapshot s;
        struct metrics_segment seg = { .name = NULL, .bytes = 1 };
        char *text = NULL;
        size_t len;
        (void) state;

        fixture_snapshot(&s, false);
        s.segments = &seg;
        assert_int_equal(metrics_snapshot_render(&s, &text, &len), -EINVAL);
        assert_null(text);
}

static json_object *get(json_object *o, const char *key) {
        json_object *v = NULL;
        assert_true(json_object_object_get_ex(o, key, &v));
        return v;
}

static void test_status_json(void **state) {
        struct metrics_snapshot s;
        _cleanup_free_ char *text = NULL;
        size_t len;
        (void) state;

        fixture_snapshot(&s, false);
        assert_int_equal(metrics_snapshot_status_json(&s, &text, &len), 0);
        assert_int_equal(strlen(text), len);

        json_object *root = json_tokener_parse(text);
        assert_non_null(root);
        json_object *pool = get(root, "pool");
        assert_int_equal(json_object_get_int(get(pool, "running")), 2);
        assert_int_equal(json_object_get_int(get(pool, "stopping")), 1);
        assert_int_equal(json_object_get_int(get(pool, "desired")), 2);
        assert_true(json_object_get_boolean(get(pool, "healthy")));
        assert_int_equal(json_object_get_int(get(get(pool, "exits"), "failure")), 2);

        json_object *workers = get(root, "workers");
        assert_int_equal(json_object_array_length(workers), 3);
        json_object *w1 = json_object_array_get_idx(workers, 1);
        assert_int_equal(json_object_get_int(get(w1, "pid")), 4243);
        assert_string_equal(json_object_get_string(get(w1, "state")), "running");
        assert_int_equal(json_object_get_int64(get(w1, "rss")), 3 << 20);
        assert_int_equal(json_object_get_int(get(w1, "restarts")), 2);
        assert_true(json_object_get_double(get(w1, "cpu")) == 99.9);

        /* Signals keep the controller's units (percent) and show unavailable ones as null. */
        json_object *signals = get(root, "signals");
        assert_true(json_object_get_double(get(signals, "cpu.busy")) == 63.5);
        assert_null(get(signals, "psi.cpu"));

        json_object *rules = get(root, "rules");
        assert_int_equal(json_object_array_length(rules), 3);
        assert_string_equal(json_object_get_string(get(json_object_array_get_idx(rules, 2), "name")),
                            FIXTURE_TRICKY_RULE);
        assert_true(json_object_get_boolean(get(json_object_array_get_idx(rules, 0), "holding")));
        assert_true(json_object_get_double(get(json_object_array_get_idx(rules, 0), "held")) == 1.5);

        json_object *d = get(root, "last_decision");
        assert_string_equal(json_object_get_string(get(d, "rule")), "saturated");
        assert_int_equal(json_object_get_int(get(d, "to")), 2);
        assert_int_equal(json_object_get_int(get(get(root, "tasks"), "pending")), 7);
        json_object_put(root);

        /* Numbers print in their shortest form. */
        assert_non_null(strstr(text, "\"cpu\":99.9,"));

        /* Decided, but the size never changed: no made-up "0 -> 0". */
        s.last_decision.changed = false;
        free(text);
        text = NULL;
        assert_int_equal(metrics_snapshot_status_json(&s, &text, &len), 0);
        assert_non_null(strstr(text, "\"from\":null,\"to\":null,\"age\":null"));
        assert_non_null(strstr(text, "\"rule\":\"saturated\""));

        s.last_decision.valid = false;
        free(text);
        text = NULL;
        assert_int_equal(metrics_snapshot_status_json(&s, &text, &len), 0);
        assert_non_null(strstr(text, "\"last_decision\":null"));
}

static void test_observe_bounds(void **state) {
        struct metrics_histogram h = {};
        (void) state;

        metrics_histogram_observe(&h, 0);
        metrics_histogram_observe(&h, metrics_duration_bounds[0]);
        metrics_histogram_observe(&h, metrics_duration_bounds[METRICS_DURATION_BUCKETS - 1]);
        metrics_histogram_observe(&h, 1e9);
        assert_int_equal(h.counts[0], 2);
        assert_int_equal(h.counts[METRICS_DURATION_BUCKETS - 1], 1);
        assert_int_equal(h.counts[METRICS_DURATION_BUCKETS], 1);
        for (size_t i = 1; i < METRICS_DURATION_BUCKETS; i++)
                assert_true(metrics_duration_bounds[i] > metrics_duration_bounds[i - 1]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_every_design_name),
                cmocka_unit_test(test_values_and_units),
                cmocka_unit_test(test_crash_loop_and_health),
                cmocka_unit_test(test_minimal_snapshot),
                cmocka_unit_test(test_scale_events_start_at_zero),
                cmocka_unit_test(test_null_names),
                cmocka_unit_test(test_status_json),
                cmocka_unit_test(test_observe_bounds),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
