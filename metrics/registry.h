/* SPDX-License-Identifier: MIT */
/*
 * A small metrics registry and its rendering to the Prometheus text exposition
 * format 0.0.4. Families (a name, a help line, a type and label names) hold
 * samples keyed by their label values. Pure: no system calls, no clock, no
 * globals, so a registry can be built and rendered anywhere, and tested alone.
 *
 * A registry is built fresh for each sample (corral's metrics are a few hundred
 * lines), which is why lookups are linear scans and nothing is ever removed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum metric_type {
        METRIC_COUNTER,
        METRIC_GAUGE,
        METRIC_HISTOGRAM,
        _METRIC_TYPE_MAX,
};

struct metrics_registry;
struct metric_family;

/* A new, empty registry. Returns 0 or -ENOMEM. */
int metrics_registry_new(struct metrics_registry **ret);

/* Frees the registry, its families and samples. Accepts NULL; returns NULL. */
struct metrics_registry *metrics_registry_free(struct metrics_registry *r);

static inline void metrics_registry_freep(struct metrics_registry **r) {
        metrics_registry_free(*r);
}

/*
 * Declares a counter or gauge family. label_names is a NULL-terminated list (or
 * NULL for none). Families render in the order they were added. The registry
 * copies every string. Returns -EINVAL for an invalid metric or label name, a
 * histogram type, or a "le" label; -EEXIST for a name already declared;
 * -ENOMEM. On success *ret belongs to the registry.
 */
int metrics_family_add(struct metrics_registry *r, const char *name, const char *help,
                       enum metric_type type, const char *const *label_names,
                       struct metric_family **ret);

/*
 * Declares a histogram family with n_bounds finite, strictly ascending bucket
 * upper bounds ("+Inf" is implied). Same errors as metrics_family_add().
 */
int metrics_histogram_add(struct metrics_registry *r, const char *name, const char *help,
                          const char *const *label_names, const double *bounds, size_t n_bounds,
                          struct metric_family **ret);

/*
 * Sets the value of a counter or gauge sample; label_values holds one string
 * per label name (NULL when the family has no labels). Setting the same label
 * values again replaces the value. Returns -EINVAL on a histogram, -ENOMEM.
 */
int metrics_set(struct metric_family *f, const char *const *label_values, double value);

/*
 * Sets a histogram sample from per-bucket counts (not cumulative): counts has
 * n_bounds + 1 entries, the last one for observations above the largest bound.
 * Returns -EINVAL on a counter or gauge, -ENOMEM.
 */
int metrics_histogram_set(struct metric_family *f, const char *const *label_values,
                          const uint64_t *counts, double sum);

/*
 * Renders every family: "# HELP", "# TYPE", then its samples (label values and
 * help escaped; histograms as cumulative _bucket{le=...}, _sum and _count). A
 * family without samples renders its HELP and TYPE lines only. *ret_text is
 * NUL-terminated and the caller's to free; *ret_len excludes the NUL.
 * Returns 0 or -ENOMEM.
 */
int metrics_render(const struct metrics_registry *r, char **ret_text, size_t *ret_len);

/*
 * Formats a sample value as Prometheus parses it: integers without a fraction,
 * other numbers in the shortest form that reads back exactly, "+Inf", "-Inf",
 * "NaN". buf needs 32 bytes. Returns buf. Cannot fail.
 */
char *metrics_format_value(double v, char buf[static 32]);

/* True if name is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*). */
bool metrics_name_is_valid(const char *name);
