/* SPDX-License-Identifier: MIT */
/*
 * The metrics registry and the Prometheus text format 0.0.4 renderer
 * (https://prometheus.io/docs/instrumenting/exposition_formats/). Pure.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "metrics/registry.h"

struct metric_sample {
        char **label_values;     /* n_labels strings */
        double value;            /* counter, gauge */
        uint64_t *counts;        /* histogram: n_bounds + 1 per-bucket counts */
        double sum;
};

struct metric_family {
        char *name;
        char *help;
        enum metric_type type;
        char **label_names;      /* NULL-terminated */
        size_t n_labels;
        double *bounds;          /* histogram */
        size_t n_bounds;
        struct metric_sample *samples;
        size_t n_samples, n_allocated;
};

struct metrics_registry {
        /* Pointers, so that a family handed out stays put while the array grows. */
        struct metric_family **families;
        size_t n_families, n_allocated;
};

static const char *const type_names[_METRIC_TYPE_MAX] = {
        [METRIC_COUNTER]   = "counter",
        [METRIC_GAUGE]     = "gauge",
        [METRIC_HISTOGRAM] = "histogram",
};

static bool is_name_char(char c, bool first, bool colon) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
                return true;
        if (colon && c == ':')
                return true;
        return !first && c >= '0' && c <= '9';
}

static bool name_is_valid(const char *name, bool colon) {
        if (!name || !*name)
                return false;
        for (const char *p = name; *p; p++)
                if (!is_name_char(*p, p == name, colon))
                        return false;
        return true;
}

bool metrics_name_is_valid(const char *name) {
        return name_is_valid(name, true);
}

static void strv_free_n(char **v, size_t n) {
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* Copies n strings into a new NULL-terminated array; NULL on -ENOMEM. */
static char **strv_copy_n(const char *const *v, size_t n) {
        char **c = calloc(n + 1, sizeof(char *));
        if (!c)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                c[i] = strdup(v[i]);
                if (!c[i]) {
                        strv_free_n(c, i);
                        return NULL;
                }
        }
        return c;
}

static void family_free(struct metric_family *f) {
        if (!f)
                return;
        for (size_t i = 0; i < f->n_samples; i++) {
                strv_free_n(f->samples[i].label_values, f->n_labels);
                free(f->samples[i].counts);
        }
        free(f->samples);
        strv_free_n(f->label_names, f->n_labels);
        free(f->bounds);
        free(f->help);
        free(f->name);
        free(f);
}

int metrics_registry_new(struct metrics_registry **ret) {
        struct metrics_registry *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        *ret = r;
        return 0;
}

struct metrics_registry *metrics_registry_free(struct metrics_registry *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_families; i++)
                family_free(r->families[i]);
        free(r->families);
        free(r);
        return NULL;
}

static int family_new(struct metrics_registry *r, const char *name, const char *help,
                      enum metric_type type, const char *const *label_names,
                      struct metric_family **ret) {
        size_t n_labels = 0;

        if (!metrics_name_is_valid(name) || type < 0 || type >= _METRIC_TYPE_MAX)
                return -EINVAL;
        for (; label_names && label_names[n_labels]; n_labels++) {
                const char *l = label_names[n_labels];
                /* "__" names are reserved for Prometheus; "le" is the bucket label. */
                if (!name_is_valid(l, false) || strncmp(l, "__", 2) == 0 ||
                    (type == METRIC_HISTOGRAM && strcmp(l, "le") == 0))
                        return -EINVAL;
        }
        for (size_t i = 0; i < r->n_families; i++)
                if (strcmp(r->families[i]->name, name) == 0)
                        return -EEXIST;

        if (r->n_families == r->n_allocated) {
                size_t n = r->n_allocated ? r->n_allocated * 2 : 16;
                struct metric_family **a = reallocarray(r->families, n, sizeof(*a));
                if (!a)
                        return -ENOMEM;
                r->families = a;
                r->n_allocated = n;
        }

        struct metric_family *f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->type = type;
        f->n_labels = n_labels;
        f->name = strdup(name);
        f->help = strdup(help ? help : "");
        f->label_names = strv_copy_n(label_names, n_labels);
        if (!f->name || !f->help || !f->label_names) {
                family_free(f);
                return -ENOMEM;
        }
        r->families[r->n_families++] = f;
        *ret = f;
        return 0;
}

int metrics_family_add(struct metrics_registry *r, const char *name, const char *help,
                       enum metric_type type, const char *const *label_names,
                       struct metric_family **ret) {
        if (type == METRIC_HISTOGRAM)
                return -EINVAL;
        return family_new(r, name, help, type, label_names, ret);
}

int metrics_histogram_add(struct metrics_registry *r, const char *name, const char *help,
                          const char *const *label_names, const double *bounds, size_t n_bounds,
                          struct metric_family **ret) {
        struct metric_family *f;
        int k;

        for (size_t i = 0; i < n_bounds; i++)
                if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
                        return -EINVAL;

        /* Copy the bounds before declaring, so that a failure leaves no half family. */
        _cleanup_free_ double *b = malloc((n_bounds ? n_bounds : 1) * sizeof(double));
        if (!b)
                return -ENOMEM;
        if (n_bounds)
                memcpy(b, bounds, n_bounds * sizeof(double));

        k = family_new(r, name, help, METRIC_HISTOGRAM, label_names, &f);
        if (k < 0)
                return k;
        f->bounds = TAKE_PTR(b);
        f->n_bounds = n_bounds;
        *ret = f;
        return 0;
}

/* The sample with these label values, created if missing; NULL on -ENOMEM. */
static struct metric_sample *family_sample(struct metric_family *f, const char *const *label_values) {
        for (size_t i = 0; i < f->n_samples; i++) {
                size_t j = 0;
                while (j < f->n_labels && strcmp(f->samples[i].label_values[j], label_values[j]) == 0)
                        j++;
                if (j == f->n_labels)
                        return &f->samples[i];
        }

        if (f->n_samples == f->n_allocated) {
                size_t n = f->n_allocated ? f->n_allocated * 2 : 4;
                struct metric_sample *a = reallocarray(f->samples, n, sizeof(*a));
                if (!a)
                        return NULL;
                f->samples = a;
                f->n_allocated = n;
        }
        struct metric_sample *s = &f->samples[f->n_samples];
        *s = (struct metric_sample) {};
        s->label_values = strv_copy_n(label_values, f->n_labels);
        if (!s->label_values)
                return NULL;
        if (f->type == METRIC_HISTOGRAM) {
                s->counts = calloc(f->n_bounds + 1, sizeof(uint64_t));
                if (!s->counts) {
                        strv_free_n(s->label_values, f->n_labels);
                        return NULL;
                }
        }
        f->n_samples++;
        return s;
}

int metrics_set(struct metric_family *f, const char *const *label_values, double value) {
        if (f->type == METRIC_HISTOGRAM)
                return -EINVAL;
        struct metric_sample *s = family_sample(f, label_values);
        if (!s)
                return -ENOMEM;
        s->value = value;
        return 0;
}

int metrics_histogram_set(struct metric_family *f, const char *const *label_values,
                          const uint64_t *counts, double sum) {
        if (f->type != METRIC_HISTOGRAM)
                return -EINVAL;
        struct metric_sample *s = family_sample(f, label_values);
        if (!s)
                return -ENOMEM;
        memcpy(s->counts, counts, (f->n_bounds + 1) * sizeof(uint64_t));
        s->sum = sum;
        return 0;
}

char *metrics_format_value(double v, char buf[static 32]) {
        if (isnan(v))
                return strcpy(buf, "NaN");
        if (isinf(v))
                return strcpy(buf, v > 0 ? "+Inf" : "-Inf");
        /* Counters are whole numbers: print them whole, not as 1e+06. 2^53 keeps it exact. */
        if (v == floor(v) && fabs(v) < 9007199254740992.0) {
                snprintf(buf, 32, "%.0f", v);
                return buf;
        }
        /* The shortest %g that reads back as the same double: 0.1, not 0.10000000000000001. */
        for (int precision = 1; precision <= 17; precision++) {
                snprintf(buf, 32, "%.*g", precision, v);
                if (strtod(buf, NULL) == v)
                        break;
        }
        return buf;
}

/* HELP text escapes backslash and newline; label values also escape the double quote. */
static void put_escaped(FILE *out, const char *s, bool quote) {
        for (; *s; s++)
                switch (*s) {
                case '\\':
                        fputs("\\\\", out);
                        break;
                case '\n':
                        fputs("\\n", out);
                        break;
                case '"':
                        fputs(quote ? "\\\"" : "\"", out);
                        break;
                default:
                        fputc(*s, out);
                }
}

/* Writes {a="x",b="y"}, with an extra le="..." for buckets; nothing when there are no labels. */
static void put_labels(FILE *out, const struct metric_family *f, const struct metric_sample *s,
                       const char *le) {
        if (f->n_labels == 0 && !le)
                return;
        fputc('{', out);
        for (size_t i = 0; i < f->n_labels; i++) {
                fprintf(out, "%s%s=\"", i ? "," : "", f->label_names[i]);
                put_escaped(out, s->label_values[i], true);
                fputc('"', out);
        }
        if (le)
                fprintf(out, "%sle=\"%s\"", f->n_labels ? "," : "", le);
        fputc('}', out);
}

static void put_histogram(FILE *out, const struct metric_family *f, const struct metric_sample *s) {
        char buf[32];
        uint64_t cumulative = 0;

        for (size_t i = 0; i <= f->n_bounds; i++) {
                cumulative += s->counts[i];
                fprintf(out, "%s_bucket", f->name);
                put_labels(out, f, s, i < f->n_bounds ? metrics_format_value(f->bounds[i], buf) : "+Inf");
                fprintf(out, " %" PRIu64 "\n", cumulative);
        }
        fprintf(out, "%s_sum", f->name);
        put_labels(out, f, s, NULL);
        fprintf(out, " %s\n", metrics_format_value(s->sum, buf));
        fprintf(out, "%s_count", f->name);
        put_labels(out, f, s, NULL);
        fprintf(out, " %" PRIu64 "\n", cumulative);
}

static void put_family(FILE *out, const struct metric_family *f) {
        char buf[32];

        fprintf(out, "# HELP %s ", f->name);
        put_escaped(out, f->help, false);
        fprintf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);

        for (size_t i = 0; i < f->n_samples; i++) {
                const struct metric_sample *s = &f->samples[i];
                if (f->type == METRIC_HISTOGRAM) {
                        put_histogram(out, f, s);
                        continue;
                }
                fputs(f->name, out);
                put_labels(out, f, s, NULL);
                fprintf(out, " %s\n", metrics_format_value(s->value, buf));
        }
}

int metrics_render(const struct metrics_registry *r, char **ret_text, size_t *ret_len) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;

        /* A memory stream: no system call, and no length arithmetic to get wrong. */
        FILE *out = open_memstream(&text, &len);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_families; i++)
                put_family(out, r->families[i]);
        bool failed = ferror(out);
        if (fclose(out) != 0 || failed)
                return -ENOMEM;

        *ret_text = TAKE_PTR(text);
        *ret_len = len;
        return 0;
}
