/* SPDX-License-Identifier: MIT */
/*
 * Pure parsers and counter arithmetic for the sampler (see procfs_parse.h).
 * Numbers are read by hand rather than with strtod()/sscanf(): the kernel
 * writes plain decimals, and a locale with a decimal comma must not change
 * what "avg10=1.99" means.
 */
#include <errno.h>
#include <string.h>

#include "supervisor/procfs_parse.h"

/* Reads an unsigned decimal at *p, advancing *p past it. */
static int parse_digits(const char **p, uint64_t *ret) {
        const char *s = *p;
        uint64_t v = 0;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        for (; *s >= '0' && *s <= '9'; s++) {
                unsigned d = (unsigned) (*s - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *p = s;
        *ret = v;
        return 0;
}

/* Reads "DIGITS[.DIGITS]" at *p as a double, advancing *p past it. */
static int read_decimal(const char **p, double *ret) {
        const char *s = *p;
        uint64_t whole;
        double v, scale = 0.1;
        int r;

        r = parse_digits(&s, &whole);
        if (r < 0)
                return r;
        v = (double) whole;
        if (*s == '.') {
                s++;
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                for (; *s >= '0' && *s <= '9'; s++, scale /= 10)
                        v += (*s - '0') * scale;
        }
        *p = s;
        *ret = v;
        return 0;
}

/* The start of the line beginning with `prefix`, or NULL. */
static const char *find_line(const char *text, const char *prefix) {
        size_t n = strlen(prefix);

        for (const char *l = text; l && *l; ) {
                if (strncmp(l, prefix, n) == 0)
                        return l;
                l = strchr(l, '\n');
                if (l)
                        l++;
        }
        return NULL;
}

int psi_parse_some_avg10(const char *text, double *ret) {
        const char *l = find_line(text, "some ");
        double v;
        int r;

        if (!l)
                return -ENOENT;
        l += strlen("some ");
        if (strncmp(l, "avg10=", 6) != 0)
                return -EINVAL;
        l += 6;
        r = read_decimal(&l, &v);
        if (r < 0)
                return r;
        /* A truncated line ("avg10=1.9" then EOF) is not a value to trust. */
        if (*l != ' ')
                return -EINVAL;
        if (v > 100)
                return -ERANGE;
        *ret = v;
        return 0;
}

int cgroup_parse_cpu_max(const char *text, uint64_t *ret_quota, uint64_t *ret_period) {
        const char *p = text;
        uint64_t quota, period = 100000;
        int r;

        if (strncmp(p, "max", 3) == 0) {
                quota = CGROUP_QUOTA_MAX;
                p += 3;
        } else {
                r = parse_digits(&p, &quota);
                if (r < 0)
                        return r;
        }
        if (*p == ' ') {
                p++;
                r = parse_digits(&p, &period);
                if (r < 0)
                        return r;
        } else if (quota != CGROUP_QUOTA_MAX)
                return -EINVAL;         /* a number without its period: truncated */
        if (*p != '\n' && *p != '\0')
                return -EINVAL;
        if (period == 0)
                return -EINVAL;
        *ret_quota = quota;
        *ret_period = period;
        return 0;
}

int cgroup_parse_cpu_usage(const char *text, uint64_t *ret_usec) {
        const char *l = find_line(text, "usage_usec ");
        uint64_t v;
        int r;

        if (!l)
                return -ENOENT;
        l += strlen("usage_usec ");
        r = parse_digits(&l, &v);
        if (r < 0)
                return r;
        if (*l != '\n' && *l != '\0')
                return -EINVAL;
        *ret_usec = v;
        return 0;
}

int cgroup_parse_self(const char *text, const char **ret_path, size_t *ret_len) {
        const char *l = find_line(text, "0::");
        const char *end;

        if (!l)
                return -ENOENT;
        l += 3;
        end = strchrnul(l, '\n');
        if (end == l || *l != '/')
                return -EINVAL;
        *ret_path = l;
        *ret_len = (size_t) (end - l);
        return 0;
}

/* Copies a mountinfo field up to the next space, undoing \ooo escapes. */
static int unescape_field(const char *s, char *buf, size_t size) {
        size_t n = 0;

        for (; *s && *s != ' ' && *s != '\n'; s++) {
                char c = *s;
                if (c == '\\') {
                        if (s[1] < '0' || s[1] > '3' || s[2] < '0' || s[2] > '7' || s[3] < '0' || s[3] > '7')
                                return -EINVAL;
                        c = (char) ((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
                        s += 3;
                }
                if (n + 1 >= size)
                        return -ERANGE;
                buf[n++] = c;
        }
        if (n == 0)
                return -EINVAL;
        buf[n] = '\0';
        return 0;
}

int mountinfo_find_cgroup2(const char *text, char *buf, size_t size) {
        /* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER" */
        for (const char *l = text; l && *l; ) {
                const char *eol = strchrnul(l, '\n');
                const char *sep = strstr(l, " - ");

                if (sep && sep < eol && strncmp(sep + 3, "cgroup2 ", 8) == 0) {
                        const char *f = l;
                        for (int i = 0; i < 4 && f && f < eol; i++) {
                                f = strchr(f, ' ');
                                if (f)
                                        f++;
                        }
                        if (!f || f >= sep)
                                return -EINVAL;
                        return unescape_field(f, buf, size);
                }
                l = *eol ? eol + 1 : NULL;
        }
        return -ENOENT;
}

int proc_stat_parse_ticks(const char *text, uint64_t *ret_ticks) {
        const char *p = strrchr(text, ')');
        uint64_t v[4], sum = 0;
        int r;

        if (!p)
                return -EINVAL;
        p++;
        /* After ')' come field 3 (state) ... utime is field 14: skip 11 fields. */
        for (int field = 3; field < 14; field++) {
                if (*p != ' ')
                        return -ENOENT;
                p = strchr(p + 1, ' ');
                if (!p)
                        return -ENOENT;
        }
        for (size_t i = 0; i < 4; i++) {
                if (*p != ' ')
                        return -ENOENT;
                p++;
                /* cutime and cstime are signed in the kernel's format; they are never
                 * negative in practice, and a '-' here is treated as malformed. */
                r = parse_digits(&p, &v[i]);
                if (r < 0)
                        return r == -ERANGE ? r : -ENOENT;
                if (sum > UINT64_MAX - v[i])
                        return -ERANGE;
                sum += v[i];
        }
        /* Truncated after cstime: the rest of the line (priority ...) must follow. */
        if (*p != ' ')
                return -ENOENT;
        *ret_ticks = sum;
        return 0;
}

/* Field `field` (numbered as in proc(5)) of /proc/PID/stat, counted from the
 * last ')', as an unsigned number. */
static int proc_stat_field(const char *text, int field, uint64_t *ret) {
        const char *p = strrchr(text, ')');

        if (!p)
                return -EINVAL;
        p++;
        /* After ')' comes field 3 (state). */
        for (int f = 3; f < field; f++) {
                if (*p != ' ')
                        return -ENOENT;
                p = strchr(p + 1, ' ');
                if (!p)
                        return -ENOENT;
        }
        p++;
        return parse_digits(&p, ret) < 0 ? -ENOENT : 0;
}

int proc_stat_parse_rss(const char *text, uint64_t *ret_pages) {
        return proc_stat_field(text, 24, ret_pages);
}

int proc_stat_parse_start(const char *text, uint64_t *ret_ticks) {
        return proc_stat_field(text, 22, ret_ticks);
}

unsigned cpu_capacity_from(unsigned affinity, uint64_t quota, uint64_t period) {
        unsigned n = affinity > 0 ? affinity : 1;

        if (quota != CGROUP_QUOTA_MAX && period > 0) {
                uint64_t q = quota / period + (quota % period != 0);
                if (q < 1)
                        q = 1;
                if (q < n)
                        n = (unsigned) q;
        }
        return n;
}

double cpu_ticks_busy(const struct cpu_ticks *prev, const struct cpu_ticks *cur) {
        uint64_t dt, di;

        if (cur->total <= prev->total || cur->idle < prev->idle)
                return -1;
        dt = cur->total - prev->total;
        di = cur->idle - prev->idle;
        /* idle is part of total, so Δidle > Δtotal means a torn or reset reading. */
        if (di > dt)
                return -1;
        return 100.0 * (double) (dt - di) / (double) dt;
}

void cpu_load_compute(const struct cpu_ticks *prev, size_t n_prev,
                      const struct cpu_ticks *cur, size_t n_cur,
                      const cpu_set_t *usable,
                      struct core_busy *ret_cores, struct cpu_load *ret_load) {
        struct cpu_load load = {};
        double sum = 0;
        size_t j = 0;

        for (size_t i = 0; i < n_cur; i++) {
                int id = cur[i].id;
                double b;

                if (id < 0 || id >= CPU_SETSIZE || !CPU_ISSET((size_t) id, usable))
                        continue;
                /* Merge join: both lists ascend by id. */
                while (j < n_prev && prev[j].id < id)
                        j++;
                if (j >= n_prev || prev[j].id != id)
                        continue;       /* a CPU that just came online: measured next time */
                b = cpu_ticks_busy(&prev[j], &cur[i]);
                if (b < 0)
                        continue;
                ret_cores[load.n_cores] = (struct core_busy) { .id = id, .busy = b };
                if (load.n_cores == 0 || b > load.core_max)
                        load.core_max = b;
                if (load.n_cores == 0 || b < load.core_min)
                        load.core_min = b;
                if (b < CPU_IDLE_BELOW)
                        load.idle_cores++;
                sum += b;
                load.n_cores++;
        }
        if (load.n_cores > 0)
                load.busy = sum / (double) load.n_cores;
        *ret_load = load;
}

double pid_cpu_percent(uint64_t prev_ticks, uint64_t cur_ticks, usec_t elapsed,
                       unsigned long clk_tck, unsigned max_cpus) {
        double pct, cap;

        if (elapsed == 0 || clk_tck == 0 || cur_ticks < prev_ticks)
                return -1;
        pct = 100.0 * (double) (cur_ticks - prev_ticks) / (double) clk_tck
              / ((double) elapsed / (double) USEC_PER_SEC);
        cap = 100.0 * (max_cpus > 0 ? max_cpus : 1);
        return pct > cap ? cap : pct;
}

double pid_first_cpu_percent(uint64_t ticks, uint64_t start_ticks, usec_t since_boot, usec_t elapsed,
                             unsigned long clk_tck, unsigned max_cpus) {
        usec_t started, age;

        if (clk_tck == 0 || start_ticks > UINT64_MAX / USEC_PER_SEC)
                return -1;
        started = start_ticks * USEC_PER_SEC / clk_tck;
        if (started > since_boot)
                return -1;
        age = since_boot - started;
        /* One tick of slack: the start time is rounded down to a tick. Ten
         * ticks at least, as the ticks counted are whole ones too. */
        if (age > elapsed + USEC_PER_SEC / clk_tck || age < elapsed / 2 || age < 10 * USEC_PER_SEC / clk_tck)
                return -1;
        return pid_cpu_percent(0, ticks, age, clk_tck, max_cpus);
}

double cgroup_quota_busy(uint64_t prev_usage, uint64_t cur_usage, usec_t elapsed,
                         uint64_t quota, uint64_t period) {
        double allowed, pct;

        if (elapsed == 0 || cur_usage < prev_usage || quota == CGROUP_QUOTA_MAX || quota == 0 || period == 0)
                return -1;
        allowed = (double) elapsed * (double) quota / (double) period;
        pct = 100.0 * (double) (cur_usage - prev_usage) / allowed;
        return pct > 100 ? 100 : pct;
}

/* ------------------------------------------------------------------------ */
/* The files libproc2 reads in production, parsed here for a sampler pointed
 * at captured files (sampler_new_at()). */

/* Skips spaces at *p; -EINVAL when there were none. */
static int skip_spaces(const char **p) {
        if (**p != ' ')
                return -EINVAL;
        while (**p == ' ')
                (*p)++;
        return 0;
}

/* One "cpuN user nice system idle iowait irq softirq steal ..." line. */
static int parse_cpu_line(const char *l, struct cpu_ticks *ret) {
        uint64_t id, v[8], idle, total = 0;
        int r;

        l += 3;
        r = parse_digits(&l, &id);
        if (r < 0)
                return r;
        if (id > INT32_MAX)
                return -ERANGE;
        for (size_t i = 0; i < 8; i++) {
                r = skip_spaces(&l);
                if (r >= 0)
                        r = parse_digits(&l, &v[i]);
                if (r < 0)
                        return r;
        }
        idle = v[3] + v[4];
        for (size_t i = 0; i < 8; i++)
                total += v[i];
        *ret = (struct cpu_ticks) { .id = (int) id, .total = total, .idle = idle };
        return 0;
}

int proc_stat_parse_cpus(const char *text, struct cpu_ticks *ret, size_t max, size_t *ret_n) {
        size_t n = 0;

        for (const char *l = text; l && *l; ) {
                /* "cpuN", not the "cpu " total line */
                if (strncmp(l, "cpu", 3) == 0 && l[3] >= '0' && l[3] <= '9') {
                        struct cpu_ticks t;
                        int r = parse_cpu_line(l, &t);
                        if (r < 0)
                                return r;
                        if (n < max)
                                ret[n] = t;
                        n++;
                }
                l = strchr(l, '\n');
                if (l)
                        l++;
        }
        if (n == 0)
                return -ENOENT;
        *ret_n = n;
        return 0;
}

/* The kB value of a "Name:   N kB" line of /proc/meminfo. */
static int meminfo_field(const char *text, const char *name, uint64_t *ret) {
        const char *l = find_line(text, name);

        if (!l)
                return -ENOENT;
        l += strlen(name);
        while (*l == ' ')
                l++;
        return parse_digits(&l, ret);
}

int meminfo_parse(const char *text, uint64_t *ret_available_kib, uint64_t *ret_total_kib) {
        uint64_t avail, total;
        int r;

        r = meminfo_field(text, "MemAvailable:", &avail);
        if (r < 0)
                return r;
        r = meminfo_field(text, "MemTotal:", &total);
        if (r < 0)
                return r;
        *ret_available_kib = avail;
        *ret_total_kib = total;
        return 0;
}

int loadavg_parse(const char *text, double *ret_load1) {
        const char *p = text;
        double v;
        int r = read_decimal(&p, &v);

        if (r < 0)
                return r;
        if (*p != ' ')
                return -EINVAL;
        *ret_load1 = v;
        return 0;
}

int uptime_parse(const char *text, usec_t *ret) {
        const char *p = text;
        uint64_t sec, frac = 0, scale = USEC_PER_SEC;
        int r = parse_digits(&p, &sec);

        if (r < 0)
                return r;
        if (*p == '.')
                for (p++; *p >= '0' && *p <= '9'; p++)
                        if (scale > 1) {
                                scale /= 10;
                                frac += (uint64_t) (*p - '0') * scale;
                        }
        if (*p != ' ' && *p != '\n' && *p != '\0')
                return -EINVAL;
        if (sec > (UINT64_MAX - frac) / USEC_PER_SEC)
                return -ERANGE;
        *ret = sec * USEC_PER_SEC + frac;
        return 0;
}

int cpu_list_parse(const char *text, cpu_set_t *ret) {
        const char *p = text;
        cpu_set_t set;

        CPU_ZERO(&set);
        for (;;) {
                uint64_t a, b;
                int r = parse_digits(&p, &a);
                if (r < 0)
                        return r;
                b = a;
                if (*p == '-') {
                        p++;
                        r = parse_digits(&p, &b);
                        if (r < 0)
                                return r;
                }
                if (b < a || b >= CPU_SETSIZE)
                        return -ERANGE;
                for (uint64_t i = a; i <= b; i++)
                        CPU_SET((int) i, &set);
                if (*p != ',')
                        break;
                p++;
        }
        if (*p != '\n' && *p != '\0')
                return -EINVAL;
        *ret = set;
        return 0;
}

int proc_status_parse_cpus_allowed(const char *text, cpu_set_t *ret) {
        const char *l = find_line(text, "Cpus_allowed_list:");

        if (!l)
                return -ENOENT;
        l += strlen("Cpus_allowed_list:");
        while (*l == ' ' || *l == '\t')
                l++;
        return cpu_list_parse(l, ret);
}
