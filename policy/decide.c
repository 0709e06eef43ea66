/* SPDX-License-Identifier: MIT */
/*
 * The scaling decision (see decide.h for the order of its steps): one
 * dispatcher, policy_decide(), over small helpers for the recommendation, the
 * stabilization window, the limits and the log text.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/format.h"
#include "common/text.h"
#include "policy/condition.h"
#include "policy/decide.h"

/* Times come from the caller's monotonic clock; a time before a stored one
 * (which a monotonic clock never gives) counts as no time passed rather than
 * as a huge unsigned difference. */
static usec_t elapsed(usec_t now, usec_t then) {
        return now > then ? now - then : 0;
}

static usec_t shift_saturated(usec_t t, unsigned shift) {
        return t > (USEC_INFINITY >> shift) ? USEC_INFINITY : t << shift;
}

/* ---- text for the log (a struct text over decision.why) ---- */

/* "91%", "0.75", "12.5%": at most two decimals, no trailing zeros. */
static const char *fmt_value(enum signal_id id, double v, char buf[static 32]) {
        int n;

        if (v == floor(v) && fabs(v) < 1e15)
                n = snprintf(buf, 32, "%.0f", v);
        else {
                n = snprintf(buf, 32, "%.2f", v);
                while (n > 0 && buf[n - 1] == '0')
                        buf[--n] = '\0';
                if (n > 0 && buf[n - 1] == '.')   /* 30.001 rounds to "30." */
                        buf[--n] = '\0';
        }
        if (signal_is_percent(id) && n > 0 && n < 31)
                snprintf(buf + n, (size_t) (32 - n), "%%");
        return buf;
}

/* "rule saturated: pool.cpu 91%, cpu.busy 43% for 2s": the values the rule read. */
static void describe_rule(struct text *t, const struct rule_config *rule, const struct policy_state *st,
                          const struct signals *s, usec_t held) {
        uint32_t mask = rule->when ? condition_signals(rule->when) : 0;
        const char *sep = " ";
        char a[32], b[32];

        text_add(t, "rule %s:", rule->name ? rule->name : "?");
        for (enum signal_id id = 0; id < _SIGNAL_MAX; id++) {
                if (!(mask & (1u << id)))
                        continue;
                text_add(t, "%s%s %s", sep, signal_name(id), signals_has(s, id) ? fmt_value(id, s->value[id], a) : "n/a");
                sep = ", ";
        }
        text_add(t, " for %s", format_duration(held, a));
        usec_t hold = policy_rule_hold(rule, st);
        if (hold != rule->hold)
                text_add(t, " (anti-flap: for %s, not %s)", format_duration(hold, a), format_duration(rule->hold, b));
}

/* ---- the recommendation ---- */

struct recommendation {
        enum decision_reason source;    /* NONE, RULE, TARGET or MANUAL */
        const struct rule_config *rule;
        long long size;                 /* before clamping: may be below min or above max */
};

/* The size a firing rule asks for. A percent step is of the current size,
 * rounded away from zero (+10% of 3 is +1, -10% of 3 is -1), and at least one
 * worker, so that a firing rule always moves the pool (even from 0). */
static long long rule_size(const struct rule_config *rule, unsigned current) {
        long long step = rule->scale;

        if (rule->scale_percent) {
                unsigned long long magnitude = (unsigned long long) llabs(step) * current;
                step = (long long) ((magnitude + 99) / 100);
                if (step == 0)
                        step = 1;
                if (rule->scale < 0)
                        step = -step;
        }
        return (long long) current + step;
}

/* HPA-style proportional sizing. Returns false when the target has nothing to
 * say (none configured, its signal unavailable). The epsilon keeps a product
 * that is an integer in exact arithmetic (4 * 75 / 50) from rounding up one
 * worker too many through floating-point noise. */
static bool target_size(const struct policy_config *cfg, const struct signals *s, unsigned current,
                        long long *ret, struct text *why) {
        enum signal_id id = cfg->target_signal;
        char a[32], b[32];

        if (!cfg->has_target || !signal_name(id))
                return false;
        if (!signals_has(s, id) || isnan(s->value[id]) || !(cfg->target_value > 0)) {
                text_add(why, "target: %s unavailable", signal_name(id));
                return false;
        }
        double v = s->value[id], ratio = v / cfg->target_value;
        fmt_value(id, v, a);
        fmt_value(id, cfg->target_value, b);
        /* The epsilon puts a signal exactly at the band's edge (55 against 50
         * with 10%) inside it, as the contract's `<=` says, despite rounding. */
        if (fabs(ratio - 1.0) <= cfg->target_tolerance / 100.0 + 1e-9) {
                text_add(why, "target: %s %s within %g%% of %s", signal_name(id), a, cfg->target_tolerance, b);
                *ret = current;
                return true;
        }
        long long size;
        if (current == 0)
                size = ratio > 1.0;     /* nothing to multiply: start one worker to measure with */
        else {
                double x = (double) current * ratio;
                size = x >= (double) UINT_MAX ? (long long) UINT_MAX + 1 : (long long) ceil(x - 1e-9);
        }
        text_add(why, "target: %s %s vs %s, %u -> %lld", signal_name(id), a, b, current, size);
        *ret = size;
        return true;
}

static void update_holds(const struct policy_config *cfg, struct policy_state *st, const struct signals *s,
                         usec_t now) {
        for (size_t i = 0; i < cfg->n_rules; i++) {
                const struct condition *when = cfg->rules[i].when;
                if (!when || !condition_eval(when, s))
                        st->held_since[i] = USEC_INFINITY;
                else if (st->held_since[i] == USEC_INFINITY)
                        st->held_since[i] = now;
        }
}

/* "steady, rule idle held 12s of 30s": says what is on its way. */
static void describe_steady(const struct policy_config *cfg, const struct policy_state *st, usec_t now,
                            struct text *why) {
        char a[32], b[32];

        if (why->len == 0)
                text_add(why, "steady");
        for (size_t i = 0; i < cfg->n_rules; i++)
                if (st->held_since[i] != USEC_INFINITY) {
                        text_add(why, ", rule %s held %s of %s", cfg->rules[i].name ? cfg->rules[i].name : "?",
                                 format_duration(elapsed(now, st->held_since[i]), a),
                                 format_duration(policy_rule_hold(&cfg->rules[i], st), b));
                        break;
                }
}

static struct recommendation recommend(const struct policy_config *cfg, unsigned min, unsigned max,
                                       struct policy_state *st, const struct signals *s, unsigned current,
                                       usec_t now, struct text *why) {
        for (size_t i = 0; i < cfg->n_rules; i++) {
                const struct rule_config *rule = &cfg->rules[i];
                if (st->held_since[i] == USEC_INFINITY)
                        continue;
                usec_t held = elapsed(now, st->held_since[i]);
                if (held < policy_rule_hold(rule, st))
                        continue;
                describe_rule(why, rule, st, s, held);
                return (struct recommendation) { DECISION_RULE, rule, rule_size(rule, current) };
        }

        if (st->manual) {
                text_add(why, "manual size %u", st->manual_size);
                return (struct recommendation) { DECISION_MANUAL, NULL, st->manual_size };
        }

        /* The throughput seeker, in place of the target (the two are
         * exclusive in a file). It is fed only the samples no rule or manual
         * size took: those are the ones at the size it asked for. */
        if (cfg->has_optimize) {
                struct optimize_params p = { cfg->optimize_signal, cfg->optimize_bias, min, max };
                struct optimize_advice adv;
                if (optimize_step(&st->optimize, &p, s, current, now, &adv) == 0) {
                        text_add(why, "%s", adv.why);
                        return (struct recommendation) { DECISION_OPTIMIZE, NULL, adv.size };
                }
                text_add(why, "optimize: invalid signal or bias");
                describe_steady(cfg, st, now, why);
                return (struct recommendation) { DECISION_NONE, NULL, current };
        }

        long long size;
        if (target_size(cfg, s, current, &size, why))
                return (struct recommendation) { DECISION_TARGET, NULL, size };

        describe_steady(cfg, st, now, why);
        return (struct recommendation) { DECISION_NONE, NULL, current };
}

/* ---- the stabilization window: a monotonic queue in a ring ---- */

static struct policy_recommendation *window_at(struct policy_state *st, size_t i) {
        return &st->window[(st->window_first + i) % POLICY_WINDOW_MAX];
}

static const struct policy_recommendation *window_at_const(const struct policy_state *st, size_t i) {
        return &st->window[(st->window_first + i) % POLICY_WINDOW_MAX];
}

/* Entries are kept for the longest window the penalty can make, so that a
 * rising penalty finds the recommendations it now has to respect. */
static void window_expire(const struct policy_config *cfg, struct policy_state *st, usec_t now) {
        usec_t keep = shift_saturated(cfg->stabilization_down, POLICY_PENALTY_MAX);

        while (st->window_len > 0 && elapsed(now, window_at(st, 0)->time) >= keep) {
                st->window_first = (st->window_first + 1) % POLICY_WINDOW_MAX;
                st->window_len--;
        }
}

/* An older entry no larger than the new one can never again be the highest
 * in any window, so it goes: sizes stay strictly decreasing, oldest first,
 * and the highest recommendation within any recent span is the first entry
 * inside it. */
static void window_push(struct policy_state *st, usec_t now, unsigned size) {
        while (st->window_len > 0 && window_at(st, st->window_len - 1)->size <= size)
                st->window_len--;
        if (st->window_len == POLICY_WINDOW_MAX) {
                /* Full: the newest entry takes the larger size of the one before
                 * it. Windows then see a larger size for longer, never a smaller. */
                window_at(st, st->window_len - 2)->time = window_at(st, st->window_len - 1)->time;
                st->window_len--;
        }
        *window_at(st, st->window_len) = (struct policy_recommendation) { now, size };
        st->window_len++;
}

/* ---- limits: bounds, cooldowns, stabilization ---- */

static unsigned clamp_size(long long size, unsigned min, unsigned max) {
        return size < (long long) min ? min : size > (long long) max ? max : (unsigned) size;
}

static bool cooling_down(const struct policy_state *st, usec_t cooldown, usec_t now) {
        return st->changed && elapsed(now, st->last_change) < cooldown;
}

/* Settles the outcome of a recommendation. Returns true when the change it
 * decides is the policy's own (a rule or the target), which is what anti-flap
 * counts. */
static bool settle_recommendation(const struct policy_config *cfg, unsigned min, unsigned max,
                                  const struct policy_state *st, const struct recommendation *rec, unsigned current,
                                  usec_t now, struct decision *d, struct text *why) {
        unsigned size = clamp_size(rec->size, min, max);
        char a[32], b[32];

        d->desired = current;
        if (current < min || current > max) {
                /* The bounds are hard (a reload may have moved them): no cooldown. */
                d->desired = current < min ? min : max;
                d->reason = current < min ? DECISION_MIN : DECISION_MAX;
                if (current < min)
                        text_add(why, "; pool %u below min %u", current, min);
                else
                        text_add(why, "; pool %u above max %u", current, max);
                return false;
        }
        switch (rec->source) {
        case DECISION_NONE:
                d->reason = DECISION_NONE;
                return false;
        case DECISION_MANUAL:
                /* The operator's word: no cooldown, no window. */
                d->desired = size;
                d->reason = size == rec->size ? DECISION_MANUAL : size == min ? DECISION_MIN : DECISION_MAX;
                if (d->reason != DECISION_MANUAL)
                        text_add(why, "; limited to %s %u", d->reason == DECISION_MIN ? "min" : "max", size);
                return false;
        case DECISION_OPTIMIZE:
                /* Paced by its own probe windows: no cooldown, no window, not
                 * a flap (decide.h, "Optimize against the limits"). */
                d->desired = size;
                if (size != rec->size) {
                        d->reason = size == min ? DECISION_MIN : DECISION_MAX;
                        text_add(why, "; wants %lld, limited to %s %u", rec->size,
                                 d->reason == DECISION_MIN ? "min" : "max", size);
                } else
                        d->reason = size == current ? DECISION_NONE : DECISION_OPTIMIZE;
                return false;
        default:
                break;
        }

        if (size > current) {
                if (cooling_down(st, cfg->cooldown_up, now)) {
                        d->reason = DECISION_COOLDOWN;
                        text_add(why, "; wants %u, cooldown up %s since the last change %s ago", size,
                                 format_duration(cfg->cooldown_up, a), format_duration(elapsed(now, st->last_change), b));
                        return false;
                }
                d->desired = size;
                d->reason = size == rec->size ? rec->source : DECISION_MAX;
                if (d->reason == DECISION_MAX)
                        text_add(why, "; wants %lld, limited to max %u", rec->size, max);
                return true;
        }

        if (size < current) {
                unsigned stable = size, window_size;
                if (policy_stabilized_size(cfg, st, now, &window_size) && window_size > stable)
                        stable = window_size;
                if (stable >= current) {
                        d->reason = DECISION_STABILIZING;
                        text_add(why, "; wants %u, but %u was recommended within %s", size, stable,
                                 format_duration(policy_stabilization_window(cfg, st), a));
                        return false;
                }
                if (cooling_down(st, cfg->cooldown_down, now)) {
                        d->reason = DECISION_COOLDOWN;
                        text_add(why, "; wants %u, cooldown down %s since the last change %s ago", stable,
                                 format_duration(cfg->cooldown_down, a), format_duration(elapsed(now, st->last_change), b));
                        return false;
                }
                d->desired = stable;
                if (stable > size) {
                        d->reason = rec->source;
                        text_add(why, "; wants %u, stabilized at %u (highest within %s)", size, stable,
                                 format_duration(policy_stabilization_window(cfg, st), a));
                } else {
                        d->reason = size == rec->size ? rec->source : DECISION_MIN;
                        if (d->reason == DECISION_MIN)
                                text_add(why, "; wants %lld, limited to min %u", rec->size, min);
                }
                return true;
        }

        /* Asked for the current size, or for a size beyond a bound it is at. */
        if (size != rec->size) {
                d->reason = rec->size < (long long) min ? DECISION_MIN : DECISION_MAX;
                text_add(why, "; wants %lld, at %s %u", rec->size, d->reason == DECISION_MIN ? "min" : "max", size);
        } else
                d->reason = DECISION_NONE;
        return false;
}

/* ---- anti-flap ---- */

static void penalty_decay(const struct policy_config *cfg, struct policy_state *st, usec_t now) {
        usec_t window = policy_flap_window(cfg);
        usec_t decay = window > USEC_INFINITY / POLICY_PENALTY_DECAY_WINDOWS
                ? USEC_INFINITY : window * POLICY_PENALTY_DECAY_WINDOWS;

        while (st->penalty > 0 && decay != USEC_INFINITY && elapsed(now, st->penalty_since) >= decay) {
                st->penalty--;
                st->penalty_since += decay;
        }
}

static void record_change(const struct policy_config *cfg, struct policy_state *st, unsigned current,
                          bool policy, usec_t now, struct decision *d, struct text *why) {
        st->changed = true;
        st->last_change = now;
        if (!policy)
                return;
        if (d->desired < current) {
                st->scaled_down = true;
                st->last_down = now;
                return;
        }
        if (st->scaled_down && elapsed(now, st->last_down) <= policy_flap_window(cfg)) {
                char a[32];
                if (st->penalty < POLICY_PENALTY_MAX)
                        st->penalty++;
                st->penalty_since = now;
                st->flaps++;
                st->scaled_down = false;        /* one flap per scale-down */
                text_add(why, "; flap: up %s after a scale-down, scale-down holds now x%u",
                         format_duration(elapsed(now, st->last_down), a), 1u << st->penalty);
        }
}

/* ---- the entry points ---- */

const char *decision_reason_to_string(enum decision_reason r) {
        static const char *const names[_DECISION_REASON_MAX] = {
                [DECISION_NONE] = "none",
                [DECISION_RULE] = "rule",
                [DECISION_TARGET] = "target",
                [DECISION_MANUAL] = "manual",
                [DECISION_MIN] = "min",
                [DECISION_MAX] = "max",
                [DECISION_COOLDOWN] = "cooldown",
                [DECISION_STABILIZING] = "stabilizing",
                [DECISION_OPTIMIZE] = "optimize",
        };
        if ((int) r < 0 || r >= _DECISION_REASON_MAX)
                return NULL;
        return names[r];
}

const char *decision_label(const struct decision *d) {
        return d->rule ? d->rule : decision_reason_to_string(d->reason);
}

static usec_t *held_since_new(size_t n_rules) {
        /* One element at least, so that a policy without rules still gets a pointer. */
        usec_t *a = calloc(n_rules ? n_rules : 1, sizeof(usec_t));
        for (size_t i = 0; a && i < n_rules; i++)
                a[i] = USEC_INFINITY;
        return a;
}

int policy_state_init(struct policy_state *st, size_t n_rules) {
        *st = (struct policy_state) { .n_rules = n_rules };
        st->held_since = held_since_new(n_rules);
        if (!st->held_since) {
                *st = (struct policy_state) {};
                return -ENOMEM;
        }
        return 0;
}

void policy_state_done(struct policy_state *st) {
        free(st->held_since);
        *st = (struct policy_state) {};
}

int policy_state_reload(struct policy_state *st, size_t n_rules) {
        usec_t *a = held_since_new(n_rules);
        if (!a)
                return -ENOMEM;
        free(st->held_since);
        st->held_since = a;
        st->n_rules = n_rules;
        optimize_reset(&st->optimize);
        return 0;
}

int policy_decide(const struct policy_config *cfg, unsigned min, unsigned max, struct policy_state *st,
                  const struct signals *sample, unsigned current, usec_t now, struct decision *ret) {
        if (!cfg || !st || !ret || !st->held_since || st->n_rules != cfg->n_rules || min > max)
                return -EINVAL;

        struct decision d = { .desired = current, .reason = DECISION_NONE, .source = DECISION_NONE };
        struct text why = text_init(d.why, sizeof(d.why));

        penalty_decay(cfg, st, now);
        if (!sample) {
                /* Nobody saw the conditions hold through this gap. */
                for (size_t i = 0; i < st->n_rules; i++)
                        st->held_since[i] = USEC_INFINITY;
                text_add(&why, "no sample");
                *ret = d;
                return 0;
        }

        if (!st->seeded) {
                /* Before the first sample the pool's size was the only opinion:
                 * a quiet first sample does not shrink a pool just started. */
                st->seeded = true;
                window_push(st, now, clamp_size(current, min, max));
        }
        update_holds(cfg, st, sample, now);
        struct recommendation rec = recommend(cfg, min, max, st, sample, current, now, &why);
        d.source = rec.source;
        d.rule = rec.rule ? rec.rule->name : NULL;
        if (rec.source == DECISION_RULE)
                st->manual = false;
        if (rec.source == DECISION_RULE || rec.source == DECISION_TARGET) {
                /* Clamped before it is kept: max() commutes with the clamp, and
                 * clamped sizes bound the queue by max - min + 1 entries. */
                window_expire(cfg, st, now);
                window_push(st, now, clamp_size(rec.size, min, max));
        }

        bool policy = settle_recommendation(cfg, min, max, st, &rec, current, now, &d, &why);
        if (d.desired != current)
                record_change(cfg, st, current, policy, now, &d, &why);
        *ret = d;
        return 0;
}

void policy_manual(struct policy_state *st, unsigned size, usec_t now) {
        st->manual = true;
        st->manual_size = size;
        for (size_t i = 0; i < st->n_rules; i++)
                if (st->held_since[i] != USEC_INFINITY)
                        st->held_since[i] = now;
        st->window_len = 0;
        st->changed = true;
        st->last_change = now;
}

usec_t policy_rule_hold(const struct rule_config *rule, const struct policy_state *st) {
        return rule->scale < 0 ? shift_saturated(rule->hold, st->penalty) : rule->hold;
}

int policy_rule_status(const struct policy_config *cfg, const struct policy_state *st, size_t i, usec_t now,
                       struct policy_rule_status *ret) {
        if (i >= st->n_rules || i >= cfg->n_rules)
                return -EINVAL;
        bool holding = st->held_since[i] != USEC_INFINITY;
        usec_t held = holding ? elapsed(now, st->held_since[i]) : 0;
        usec_t hold = policy_rule_hold(&cfg->rules[i], st);
        *ret = (struct policy_rule_status) {
                .holding = holding,
                .held_for = held,
                .hold = hold,
                .firing = holding && held >= hold,
        };
        return 0;
}

usec_t policy_flap_window(const struct policy_config *cfg) {
        return cfg->stabilization_down > POLICY_FLAP_WINDOW_MIN ? cfg->stabilization_down : POLICY_FLAP_WINDOW_MIN;
}

usec_t policy_stabilization_window(const struct policy_config *cfg, const struct policy_state *st) {
        return shift_saturated(cfg->stabilization_down, st->penalty);
}

bool policy_stabilized_size(const struct policy_config *cfg, const struct policy_state *st, usec_t now,
                            unsigned *ret) {
        usec_t window = policy_stabilization_window(cfg, st);

        for (size_t i = 0; i < st->window_len; i++) {
                const struct policy_recommendation *e = window_at_const(st, i);
                if (elapsed(now, e->time) < window) {
                        *ret = e->size;
                        return true;
                }
        }
        return false;
}
