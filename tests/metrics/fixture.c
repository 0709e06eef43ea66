/* SPDX-License-Identifier: MIT */
/* The shared test snapshot: every field set, every label kind present. */
#include <string.h>

#include "tests/metrics/fixture.h"

static const struct metrics_core cores[] = {
        { .id = 0, .busy = 63.5 },
        { .id = 1, .busy = 12 },
};

static const struct metrics_scale_count scale_events[] = {
        { .rule = "saturated", .direction = METRICS_SCALE_UP, .count = 3 },
        { .rule = "idle", .direction = METRICS_SCALE_DOWN, .count = 1 },
        { .rule = FIXTURE_TRICKY_RULE, .direction = METRICS_SCALE_UP, .count = 2 },
        { .rule = "line\nbreak", .direction = METRICS_SCALE_DOWN, .count = 1 },
};

static const struct metrics_segment segments[] = {
        { .name = "refdata", .bytes = 268435456, .load_seconds = 0.25, .generation = 3 },
};

static const struct metrics_worker workers[] = {
        { .id = 0, .pid = 4242, .state = METRICS_WORKER_RUNNING, .uptime = 83.2, .cpu = 35.5,
          .rss = 12 << 20, .tasks = 10, .restarts = 0 },
        { .id = 1, .pid = 4243, .state = METRICS_WORKER_RUNNING, .uptime = 12, .cpu = 99.9,
          .rss = 3 << 20, .tasks = 4, .restarts = 2 },
        { .id = 2, .pid = 4250, .state = METRICS_WORKER_STOPPING, .uptime = 0.5, .cpu = 0,
          .rss = 1 << 20, .tasks = 0, .restarts = 1 },
};

static const struct metrics_rule rules[] = {
        { .name = "saturated", .when = "pool.cpu > 80% and cpu.busy < 80%", .for_seconds = 2,
          .holding = true, .held = 1.5 },
        { .name = "idle", .when = "pool.cpu < 20%", .for_seconds = 30, .holding = false },
        { .name = FIXTURE_TRICKY_RULE, .when = "load1 > 2", .for_seconds = 5, .holding = false },
};

void fixture_snapshot(struct metrics_snapshot *s, bool crash_loop) {
        *s = (struct metrics_snapshot) {
                .version = "0.1.0-test",
                .workers = { [METRICS_WORKER_STARTING] = 0, [METRICS_WORKER_RUNNING] = 2,
                             [METRICS_WORKER_STOPPING] = 1 },
                .desired = 2, .min = 1, .max = 8,
                .crash_loop = crash_loop,
                .cores = cores, .n_cores = sizeof(cores) / sizeof(cores[0]),
                .scale_events = scale_events, .n_scale_events = sizeof(scale_events) / sizeof(scale_events[0]),
                .exits = { 5, 2, 1 },
                .recycles = { 4, 1, 0 },
                .restarts = 3,
                .tasks_ok = 14, .tasks_failed = 1, .tasks_pending = 7,
                .utilization = 0.675,
                .segments = segments, .n_segments = 1,
                .reloads_ok = 1, .reloads_failed = 1,
                .worker_rows = workers, .n_worker_rows = sizeof(workers) / sizeof(workers[0]),
                .rules = rules, .n_rules = sizeof(rules) / sizeof(rules[0]),
                .last_decision = { .valid = true, .rule = "saturated", .reason = "pool.cpu 85% > 80% for 2s",
                                   .changed = true, .from = 1, .to = 2, .age = 3.25 },
                .process = { .valid = true, .cpu_seconds = 1.25, .resident_bytes = 4 << 20,
                             .start_time = 1700000000.5, .open_fds = 9, .max_fds = 1024 },
        };
        if (crash_loop)
                s->workers[METRICS_WORKER_RUNNING] = 0;
        signals_set(&s->signals, SIGNAL_CPU_BUSY, 63.5);
        signals_set(&s->signals, SIGNAL_CPU_CORE_MAX, 80);
        signals_set(&s->signals, SIGNAL_CPU_CORE_MIN, 12);
        signals_set(&s->signals, SIGNAL_CPU_IDLE_CORES, 1);
        signals_set(&s->signals, SIGNAL_LOAD1, 0.75);
        signals_set(&s->signals, SIGNAL_MEM_AVAILABLE, 70);
        signals_set(&s->signals, SIGNAL_POOL_SIZE, 2);
        signals_set(&s->signals, SIGNAL_POOL_CPU, 67.7);
        signals_set(&s->signals, SIGNAL_TASKS_RATE, 12.5);
        signals_set(&s->signals, SIGNAL_TASKS_LATENCY, 0.16);
        /* PSI and the batch-only backlog/busy stay unavailable: they must be absent. */
        static const double durations[] = { 0.0005, 0.003, 0.003, 0.2, 0.7, 1, 1, 4, 400 };
        for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++)
                metrics_histogram_observe(&s->task_duration, durations[i]);
}
