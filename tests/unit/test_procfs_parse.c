/* SPDX-License-Identifier: MIT */
/* The sampler's pure half: kernel file parsers on captured and broken contents,
 * and the counter arithmetic on synthetic tick series. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <cmocka.h>

#include "supervisor/procfs_parse.h"

/* Table-driven checks name the failing case. */
#define CHECK(name, cond)                                                   \
        do {                                                                \
                if (!(cond))                                                \
                        fail_msg("case '%s': %s", (name), #cond);           \
        } while (0)

#define NEAR(a, b) (fabs((a) - (b)) < 1e-6)

static void test_psi(void **state) {
        static const struct {
                const char *name, *text;
                int r;
                double avg10;
        } cases[] = {
                { "machine cpu", "some avg10=1.99 avg60=0.45 avg300=0.25 total=2894860\n"
                                 "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", 0, 1.99 },
                { "old kernel cpu, no full line", "some avg10=12.50 avg60=3.00 avg300=1.00 total=1\n", 0, 12.5 },
                { "io, some after nothing", "some avg10=0.06 avg60=0.06 avg300=0.21 total=3812375\n"
                                            "full avg10=0.06 avg60=0.05 avg300=0.20 total=3649251\n", 0, 0.06 },
                { "full first", "full avg10=9.00 avg60=0 avg300=0 total=0\nsome avg10=100.00 avg60=0 avg300=0 total=0\n", 0, 100 },
                { "empty", "", -ENOENT, 0 },
                { "only full", "full avg10=1.00 avg60=0.00 avg300=0.00 total=0\n", -ENOENT, 0 },
                { "truncated in avg10", "some avg10=1.9", -EINVAL, 0 },
                { "truncated after key", "some avg10=", -EINVAL, 0 },
                { "missing avg10", "some avg60=0.45 avg300=0.25 total=2894860\n", -EINVAL, 0 },
                { "negative", "some avg10=-1.00 avg60=0.00 avg300=0.00 total=0\n", -EINVAL, 0 },
                { "dot without digits", "some avg10=1. avg60=0.00\n", -EINVAL, 0 },
                { "over 100", "some avg10=100.01 avg60=0.00 avg300=0.00 total=0\n", -ERANGE, 0 },
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                double v = -42;
                int r = psi_parse_some_avg10(cases[i].text, &v);
                CHECK(cases[i].name, r == cases[i].r);
                CHECK(cases[i].name, r == 0 ? NEAR(v, cases[i].avg10) : v == -42);
        }
}

static void test_cpu_max(void **state) {
        static const struct {
                const char *name, *text;
                int r;
                uint64_t quota, period;
        } cases[] = {
                { "two CPUs", "200000 100000\n", 0, 200000, 100000 },
                { "half a CPU", "50000 100000\n", 0, 50000, 100000 },
                { "no quota", "max 100000\n", 0, CGROUP_QUOTA_MAX, 100000 },
                { "max alone", "max\n", 0, CGROUP_QUOTA_MAX, 100000 },
                { "no newline", "150000 100000", 0, 150000, 100000 },
                { "truncated after quota", "200000", -EINVAL, 0, 0 },
                { "truncated after space", "200000 ", -EINVAL, 0, 0 },
                { "empty", "", -EINVAL, 0, 0 },
                { "zero period", "1000 0\n", -EINVAL, 0, 0 },
                { "garbage", "lots 100000\n", -EINVAL, 0, 0 },
                { "trailing junk", "200000 100000 x\n", -EINVAL, 0, 0 },
                { "overflow", "99999999999999999999999 100000\n", -ERANGE, 0, 0 },
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint64_t q = 7, p = 7;
                int r = cgroup_parse_cpu_max(cases[i].text, &q, &p);
                CHECK(cases[i].name, r == cases[i].r);
                if (r == 0) {
                        CHECK(cases[i].name, q == cases[i].quota);
                        CHECK(cases[i].name, p == cases[i].period);
                } else
                        CHECK(cases[i].name, q == 7 && p == 7);
        }
}

static void test_cpu_stat(void **state) {
        static const struct {
                const char *name, *text;
                int r;
                uint64_t usage;
        } cases[] = {
                { "captured", "usage_usec 123456789\nuser_usec 100000000\nsystem_usec 23456789\n"
                              "nr_periods 10\nnr_throttled 2\nthrottled_usec 5000\n", 0, 123456789 },
                { "not first", "user_usec 1\nusage_usec 42\n", 0, 42 },
                { "last, no newline", "user_usec 1\nusage_usec 42", 0, 42 },
                { "missing", "user_usec 1\nsystem_usec 2\n", -ENOENT, 0 },
                { "prefix of another key", "usage_usec_total 5\n", -ENOENT, 0 },
                { "truncated value", "usage_usec \n", -EINVAL, 0 },
                { "junk value", "usage_usec 12x\n", -EINVAL, 0 },
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint64_t u = 7;
                int r = cgroup_parse_cpu_usage(cases[i].text, &u);
                CHECK(cases[i].name, r == cases[i].r);
                CHECK(cases[i].name, u == (r == 0 ? cases[i].usage : 7));
        }
}

static void test_self_cgroup(void **state) {
        static const struct {
                const char *name, *text;
                int r;
                const char *path;
        } cases[] = {
                { "pure v2", "0::/system.slice/corral.service\n", 0, "/system.slice/corral.service" },
                { "hybrid root", "9:name=systemd:/\n4:memory:/x/y\n1:cpu:/\n0::/\n", 0, "/" },
                { "no newline", "0::/a", 0, "/a" },
                { "v1 only", "4:memory:/x\n1:cpu,cpuacct:/\n", -ENOENT, NULL },
                { "empty path", "0::\n", -EINVAL, NULL },
                { "relative path", "0::a/b\n", -EINVAL, NULL },
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const char *p = NULL;
                size_t n = 0;
                int r = cgroup_parse_self(cases[i].text, &p, &n);
                CHECK(cases[i].name, r == cases[i].r);
                if (r == 0)
                        CHECK(cases[i].name, n == strlen(cases[i].path) && memcmp(p, cases[i].path, n) == 0);
        }
}

static void test_mountinfo(void **state) {
        static const struct {
                const char *name, *text;
                int r;
                const char *mount;
        } cases[] = {
                { "hybrid",
                  "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
                  "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
                  "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
                  0, "/sys/fs/cgroup/unified" },
                { "pure v2 with optional fields",
                  "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
                  "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev shared:9 - cgroup2 cgroup2 rw,nsdelegate\n",
                  0, "/sys/fs/cgroup" },
                { "escaped space", "41 31 0:38 / /mnt/cg\\0402 rw - cgroup2 none rw\n", 0, "/mnt/cg 2" },
                { "no cgroup2", "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", -ENOENT, NULL },
                { "fstype prefix is not enough", "41 31 0:38 / /x rw - cgroup2fs x rw\n", -ENOENT, NULL },
                { "truncated line", "41 31 0:38 - cgroup2 cgroup2 rw\n", -EINVAL, NULL },
                { "bad escape", "41 31 0:38 / /mnt/\\9 rw - cgroup2 none rw\n", -EINVAL, NULL },
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char buf[64] = "untouched";
                int r = mountinfo_find_cgroup2(cases[i].text, buf, sizeof(buf));
                CHECK(cases[i].name, r == cases[i].r);
                if (r == 0)
                        CHECK(cases[i].name, strcmp(buf, cases[i].mount) == 0);
        }
}

static void test_pid_stat(void **state) {
        static const struct {
                const char *name, *text;
                int r;
                uint64_t ticks, start;  /* start 0: no start time to read */
        } cases[] = {
                { "captured bash",
                  "3445 (bash) S 3444 3445 3445 0 -1 4194560 4047 182317 2 99 1 2 163 40 20 0 1 0 47527 "
                  "5255168 938 18446744073709551615 93832308912128 93832309701533 0 0 0\n", 0, 206, 47527 },
                { "name with spaces and parens",
                  "77 (a) b (c)) R 1 77 77 0 -1 0 0 0 0 0 500 250 7 3 20 0 1 0 100 0 0\n", 0, 760, 100 },
                { "zombie",
                  "78 (worker) Z 1 78 78 0 -1 0 0 0 0 0 90 10 0 0 20 0 1 0 100 0 0\n", 0, 100, 100 },
                { "truncated before cstime",
                  "79 (w) R 1 79 79 0 -1 0 0 0 0 0 500 250 7", -ENOENT, 0 },
                { "truncated after cstime",
                  "79 (w) R 1 79 79 0 -1 0 0 0 0 0 500 250 7 3", -ENOENT, 0 },
                { "missing fields", "80 (w) R 1 80\n", -ENOENT, 0 },
                { "no parenthesis", "81 w R 1 81 81 0 -1 0 0 0 0 0 1 1 1 1 20\n", -EINVAL, 0 },
                { "negative cutime", "82 (w) R 1 82 82 0 -1 0 0 0 0 0 1 1 -1 1 20\n", -ENOENT, 0 },
                { "empty", "", -EINVAL, 0 },
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint64_t t = 7;
                int r = proc_stat_parse_ticks(cases[i].text, &t);
                CHECK(cases[i].name, r == cases[i].r);
                CHECK(cases[i].name, t == (r == 0 ? cases[i].ticks : 7));
                r = proc_stat_parse_start(cases[i].text, &t);
                CHECK(cases[i].name, cases[i].start ? r == 0 && t == cases[i].start : r < 0);
        }
}

static void test_capacity(void **state) {
        static const struct {
                const char *name;
                unsigned affinity;
                uint64_t quota, period;
                unsigned capacity;
        } cases[] = {
                { "no quota", 8, CGROUP_QUOTA_MAX, 100000, 8 },
                { "quota of 2 on 8", 8, 200000, 100000, 2 },
                { "1.5 rounds up", 8, 150000, 100000, 2 },
                { "just over 1", 8, 100001, 100000, 2 },
                { "tiny quota is still one", 8, 1000, 100000, 1 },
                { "quota above affinity", 2, 800000, 100000, 2 },
                { "taskset one CPU", 1, CGROUP_QUOTA_MAX, 100000, 1 },
                { "zero period means none", 4, 1000, 0, 4 },
                { "empty affinity is one", 0, CGROUP_QUOTA_MAX, 0, 1 },
                { "different period", 16, 30000, 10000, 3 },
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                CHECK(cases[i].name, cpu_capacity_from(cases[i].affinity, cases[i].quota, cases[i].period) ==
                                     cases[i].capacity);
}

#define MAX_CPUS 4
struct tick_case {
        const char *name;
        size_t n_prev, n_cur;
        struct cpu_ticks prev[MAX_CPUS], cur[MAX_CPUS];
        int usable[MAX_CPUS + 1];       /* ids, -1 ends */
        size_t n_cores;                 /* measured */
        double busy, core_max, core_min;
        unsigned idle_cores;
        struct core_busy cores[MAX_CPUS];
};

static void test_tick_series(void **state) {
        static const struct tick_case cases[] = {
                { "idle machine", 2, 2,
                  { { 0, 1000, 900 }, { 1, 1000, 900 } },
                  { { 0, 1100, 1000 }, { 1, 1100, 1000 } },
                  { 0, 1, -1 }, 2, 0, 0, 0, 2, { { 0, 0 }, { 1, 0 } } },
                { "one busy core", 2, 2,
                  { { 0, 1000, 900 }, { 1, 1000, 900 } },
                  { { 0, 1100, 900 }, { 1, 1100, 1000 } },
                  { 0, 1, -1 }, 2, 50, 100, 0, 1, { { 0, 100 }, { 1, 0 } } },
                { "all busy", 2, 2,
                  { { 0, 1000, 900 }, { 1, 1000, 900 } },
                  { { 0, 1100, 900 }, { 1, 1100, 900 } },
                  { 0, 1, -1 }, 2, 100, 100, 100, 0, { { 0, 100 }, { 1, 100 } } },
                { "iowait counts as idle", 1, 1,
                  /* idle already holds idle+iowait: 30 idle + 50 iowait of 100 */
                  { { 0, 1000, 500 } }, { { 0, 1100, 580 } },
                  { 0, -1 }, 1, 20, 20, 20, 0, { { 0, 20 } } },
                { "just under the idle threshold", 1, 1,
                  { { 0, 0, 0 } }, { { 0, 1000, 801 } },
                  { 0, -1 }, 1, 19.9, 19.9, 19.9, 1, { { 0, 19.9 } } },
                { "counter reset on one core", 2, 2,
                  { { 0, 1000, 900 }, { 1, 5000, 4000 } },
                  { { 0, 1100, 950 }, { 1, 100, 50 } },
                  { 0, 1, -1 }, 1, 50, 50, 50, 0, { { 0, 50 } } },
                { "idle backwards alone", 1, 1,
                  { { 0, 1000, 900 } }, { { 0, 1100, 800 } },
                  { 0, -1 }, 0, 0, 0, 0, 0, { { 0, 0 } } },
                { "torn reading: idle grew more than total", 1, 1,
                  { { 0, 1000, 900 } }, { { 0, 1010, 950 } },
                  { 0, -1 }, 0, 0, 0, 0, 0, { { 0, 0 } } },
                { "no time passed", 1, 1,
                  { { 0, 1000, 900 } }, { { 0, 1000, 900 } },
                  { 0, -1 }, 0, 0, 0, 0, 0, { { 0, 0 } } },
                { "hot-unplug of cpu1 keeps cpu2 matched by id", 3, 2,
                  { { 0, 1000, 1000 }, { 1, 9000, 0 }, { 2, 1000, 1000 } },
                  { { 0, 1100, 1090 }, { 2, 1100, 1000 } },
                  { 0, 1, 2, -1 }, 2, 55, 100, 10, 1, { { 0, 10 }, { 2, 100 } } },
                { "hot-plug of cpu1 waits for its second reading", 2, 3,
                  { { 0, 1000, 1000 }, { 2, 1000, 1000 } },
                  { { 0, 1100, 1100 }, { 1, 50, 0 }, { 2, 1100, 1100 } },
                  { 0, 1, 2, -1 }, 2, 0, 0, 0, 2, { { 0, 0 }, { 2, 0 } } },
                { "offline then online again with lower counters", 1, 1,
                  { { 3, 100000, 50000 } }, { { 3, 10, 5 } },
                  { 3, -1 }, 0, 0, 0, 0, 0, { { 0, 0 } } },
                { "only usable CPUs count", 2, 2,
                  { { 0, 1000, 900 }, { 1, 1000, 900 } },
                  { { 0, 1100, 900 }, { 1, 1100, 1000 } },
                  { 1, -1 }, 1, 0, 0, 0, 1, { { 1, 0 } } },
                { "first reading", 0, 2, {},
                  { { 0, 1100, 900 }, { 1, 1100, 1000 } },
                  { 0, 1, -1 }, 0, 0, 0, 0, 0, { { 0, 0 } } },
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct tick_case *c = &cases[i];
                struct core_busy cores[MAX_CPUS];
                struct cpu_load load;
                cpu_set_t usable;

                CPU_ZERO(&usable);
                for (size_t k = 0; c->usable[k] >= 0; k++)
                        CPU_SET((size_t) c->usable[k], &usable);
                cpu_load_compute(c->prev, c->n_prev, c->cur, c->n_cur, &usable, cores, &load);
                CHECK(c->name, load.n_cores == c->n_cores);
                CHECK(c->name, NEAR(load.busy, c->busy));
                CHECK(c->name, NEAR(load.core_max, c->core_max));
                CHECK(c->name, NEAR(load.core_min, c->core_min));
                CHECK(c->name, load.idle_cores == c->idle_cores);
                for (size_t k = 0; k < load.n_cores; k++) {
                        CHECK(c->name, cores[k].id == c->cores[k].id);
                        CHECK(c->name, NEAR(cores[k].busy, c->cores[k].busy));
                        CHECK(c->name, cores[k].busy >= 0 && cores[k].busy <= 100);
                }
        }
}

static void test_pid_cpu(void **state) {
        static const struct {
                const char *name;
                uint64_t prev, cur;
                usec_t elapsed;
                unsigned max_cpus;
                double pct;
        } cases[] = {
                { "one full core", 100, 200, USEC_PER_SEC, 2, 100 },
                { "sleeping", 100, 100, USEC_PER_SEC, 2, 0 },
                { "half a core over 2s", 0, 100, 2 * USEC_PER_SEC, 2, 50 },
                { "two threads", 0, 200, USEC_PER_SEC, 4, 200 },
                { "reaped child's lifetime is capped", 0, 100000, USEC_PER_SEC, 2, 200 },
                { "backwards", 200, 100, USEC_PER_SEC, 2, -1 },
                { "no time", 100, 200, 0, 2, -1 },
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                double v = pid_cpu_percent(cases[i].prev, cases[i].cur, cases[i].elapsed, 100, cases[i].max_cpus);
                CHECK(cases[i].name, cases[i].pct < 0 ? v < 0 : NEAR(v, cases[i].pct));
        }
}

/* A worker seen for the first time, the interval 1 s, now 100 s after boot. */
static void test_pid_first_cpu(void **state) {
        static const struct {
                const char *name;
                uint64_t ticks, start;
                double pct;
        } cases[] = {
                { "started with the interval, busy since", 99, 9901, 100 },
                { "started 0.6 s ago, half busy", 30, 9940, 50 },
                { "started half an interval ago", 25, 9950, 50 },
                { "started too recently to say", 10, 9960, -1 },
                { "started before the last sample", 100, 9800, -1 },
                { "the start rounded down a tick", 101, 9899, 100 },
                { "two ticks before the interval", 102, 9898, -1 },
                { "an unreadable start time", 50, UINT64_MAX, -1 },
                { "started after now", 0, 10001, -1 },
                { "idle since it started", 0, 9920, 0 },
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                double v = pid_first_cpu_percent(cases[i].ticks, cases[i].start, 100 * USEC_PER_SEC, USEC_PER_SEC, 100, 2);
                CHECK(cases[i].name, cases[i].pct < 0 ? v < 0 : NEAR(v, cases[i].pct));
        }
        /* Over an interval of 40 ms, a worker as old as the interval has
         * still run too few ticks to measure. */
        CHECK("a short interval", pid_first_cpu_percent(4, 9996, 100 * USEC_PER_SEC, 40000, 100, 2) < 0);
        CHECK("ten ticks", NEAR(pid_first_cpu_percent(10, 9990, 100 * USEC_PER_SEC, 100000, 100, 2), 100));
        CHECK("no clock rate", pid_first_cpu_percent(50, 9950, 100 * USEC_PER_SEC, USEC_PER_SEC, 0, 2) < 0);
}

static void test_cgroup_quota_busy(void **state) {
        static const struct {
                const char *name;
                uint64_t prev, cur;
                usec_t elapsed;
                uint64_t quota, period;
                double pct;
        } cases[] = {
                { "half of two CPUs", 0, 1000000, USEC_PER_SEC, 200000, 100000, 50 },
                { "all of half a CPU", 0, 500000, USEC_PER_SEC, 50000, 100000, 100 },
                { "burst over the quota is capped", 0, 900000, USEC_PER_SEC, 50000, 100000, 100 },
                { "idle", 5, 5, USEC_PER_SEC, 100000, 100000, 0 },
                { "no quota", 0, 5, USEC_PER_SEC, CGROUP_QUOTA_MAX, 100000, -1 },
                { "backwards", 10, 5, USEC_PER_SEC, 100000, 100000, -1 },
                { "no time", 0, 5, 0, 100000, 100000, -1 },
        };
        (void) state;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                double v = cgroup_quota_busy(cases[i].prev, cases[i].cur, cases[i].elapsed,
                                             cases[i].quota, cases[i].period);
                CHECK(cases[i].name, cases[i].pct < 0 ? v < 0 : NEAR(v, cases[i].pct));
        }
}

/* ---- the files libproc2 reads in production (captured-file samplers) ---- */

static void test_proc_stat_cpus(void **state) {
        static const char stat[] =
                "cpu  10 0 10 80 0 0 0 0 0 0\n"
                "cpu0 5 0 5 40 2 1 1 1 0 0\n"
                "cpu2 5 0 5 40 0 0 0 0 0 0\n"
                "intr 1 2 3\nctxt 99\n";
        struct cpu_ticks t[2];
        size_t n = 0;
        (void) state;

        /* Counting first (no room), then reading; the total line is not a CPU. */
        assert_int_equal(proc_stat_parse_cpus(stat, NULL, 0, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(proc_stat_parse_cpus(stat, t, 1, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(proc_stat_parse_cpus(stat, t, 2, &n), 0);
        assert_int_equal(t[0].id, 0);
        assert_int_equal(t[0].total, 5 + 5 + 40 + 2 + 1 + 1 + 1);     /* guest fields are in user already */
        assert_int_equal(t[0].idle, 40 + 2);
        assert_int_equal(t[1].id, 2);
        assert_int_equal(proc_stat_parse_cpus("cpu  1 2 3 4 5 6 7 8\n", t, 2, &n), -ENOENT);
        assert_int_equal(proc_stat_parse_cpus("cpu0 1 2 3\n", t, 2, &n), -EINVAL);    /* truncated */
        assert_int_equal(proc_stat_parse_cpus("cpu0 1 2 3 4 5 6 7 x\n", t, 2, &n), -EINVAL);
}

static void test_meminfo_loadavg_uptime(void **state) {
        uint64_t avail = 0, total = 0;
        double load1 = 0;
        usec_t up = 0;
        (void) state;

        assert_int_equal(meminfo_parse("MemTotal:       24683748 kB\nMemFree: 1 kB\n"
                                       "MemAvailable:   23920896 kB\n", &avail, &total), 0);
        assert_int_equal(avail, 23920896);
        assert_int_equal(total, 24683748);
        assert_int_equal(meminfo_parse("MemTotal: 5 kB\n", &avail, &total), -ENOENT);

        assert_int_equal(loadavg_parse("8.60 10.13 7.03 6/143 1119\n", &load1), 0);
        assert_true(load1 > 8.599 && load1 < 8.601);
        assert_int_equal(loadavg_parse("8,60 10.13\n", &load1), -EINVAL);

        assert_int_equal(uptime_parse("1169.53 401.22\n", &up), 0);
        assert_int_equal(up, 1169530000);
        assert_int_equal(uptime_parse("7\n", &up), 0);
        assert_int_equal(up, 7000000);
        assert_int_equal(uptime_parse("x 1\n", &up), -EINVAL);
        assert_int_equal(uptime_parse("1.5x\n", &up), -EINVAL);
}

static void test_cpu_list(void **state) {
        cpu_set_t set;
        (void) state;

        assert_int_equal(cpu_list_parse("0-2,5\n", &set), 0);
        assert_int_equal(CPU_COUNT(&set), 4);
        assert_true(CPU_ISSET(0, &set) && CPU_ISSET(2, &set) && CPU_ISSET(5, &set) && !CPU_ISSET(3, &set));
        assert_int_equal(cpu_list_parse("3", &set), 0);
        assert_int_equal(CPU_COUNT(&set), 1);
        assert_int_equal(cpu_list_parse("3-1", &set), -ERANGE);
        assert_int_equal(cpu_list_parse("0-99999", &set), -ERANGE);
        assert_int_equal(cpu_list_parse("0,,1", &set), -EINVAL);
        assert_int_equal(cpu_list_parse("", &set), -EINVAL);
        assert_int_equal(proc_status_parse_cpus_allowed("Name:\tx\nCpus_allowed:\t3\n"
                                                        "Cpus_allowed_list:\t0-1\n", &set), 0);
        assert_int_equal(CPU_COUNT(&set), 2);
        assert_int_equal(proc_status_parse_cpus_allowed("Name:\tx\n", &set), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_psi),
                cmocka_unit_test(test_cpu_max),
                cmocka_unit_test(test_cpu_stat),
                cmocka_unit_test(test_self_cgroup),
                cmocka_unit_test(test_mountinfo),
                cmocka_unit_test(test_pid_stat),
                cmocka_unit_test(test_capacity),
                cmocka_unit_test(test_tick_series),
                cmocka_unit_test(test_pid_cpu),
                cmocka_unit_test(test_pid_first_cpu),
                cmocka_unit_test(test_cgroup_quota_busy),
                cmocka_unit_test(test_proc_stat_cpus),
                cmocka_unit_test(test_meminfo_loadavg_uptime),
                cmocka_unit_test(test_cpu_list),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
