/* SPDX-License-Identifier: MIT */
/*
 * condition_lint(): what a valid `when:` probably did not mean. A ratio
 * where a percentage is read (`pool.cpu > 0.8` holds at 0.8%, not 80%), a
 * bound no percentage reaches (`cpu.busy > 180`), and an `and` whose
 * comparisons of one signal exclude each other. `corral check` and `run`
 * print them as warnings: the condition runs as written.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "policy/condition.h"
#include "policy/condition_internal.h"

struct lint {
        struct condition_warning *out;
        size_t n, found;
};

__attribute__((format(printf, 3, 4)))
static void warn(struct lint *l, size_t offset, const char *format, ...) {
        if (l->found >= l->n)
                return;
        struct condition_warning *w = &l->out[l->found++];
        va_list ap;

        w->offset = offset;
        va_start(ap, format);
        vsnprintf(w->message, sizeof(w->message), format, ap);     /* a truncated message is fine */
        va_end(ap);
}

/* A comparison of a signal with a number, the signal on the left. */
struct bound {
        enum signal_id signal;
        enum cmp_op op;
        double value;
        bool percent;
        size_t offset;
};

static bool as_bound(const struct node *n, struct bound *ret) {
        static const enum cmp_op flipped[_OP_MAX] = {
                [OP_LT] = OP_GT, [OP_LE] = OP_GE, [OP_GT] = OP_LT, [OP_GE] = OP_LE, [OP_EQ] = OP_EQ, [OP_NE] = OP_NE,
        };
        if (n->type != NODE_CMP)
                return false;
        if (n->lhs.signal != _SIGNAL_INVALID && n->rhs.signal == _SIGNAL_INVALID)
                *ret = (struct bound) { n->lhs.signal, n->op, n->rhs.value, n->rhs.percent, n->offset };
        else if (n->lhs.signal == _SIGNAL_INVALID && n->rhs.signal != _SIGNAL_INVALID)
                *ret = (struct bound) { n->rhs.signal, flipped[n->op], n->lhs.value, n->lhs.percent, n->offset };
        else
                return false;
        return true;
}

/* "cpu.busy > 80%" */
static const char *bound_text(const struct bound *b, char buf[static 64]) {
        snprintf(buf, 64, "%s %s %g%s", signal_name(b->signal), op_text[b->op], b->value, b->percent ? "%" : "");
        return buf;
}

/* Does `x op value` hold for some x in [0, 100]? And for all of them? */
static void holds_in_range(const struct bound *b, bool *some, bool *all) {
        double v = b->value;
        switch (b->op) {
        case OP_LT: *some = v > 0;    *all = v > 100; break;
        case OP_LE: *some = v >= 0;   *all = v >= 100; break;
        case OP_GT: *some = v < 100;  *all = v < 0; break;
        case OP_GE: *some = v <= 100; *all = v <= 0; break;
        case OP_EQ: *some = v >= 0 && v <= 100; *all = false; break;
        default:    *some = true;     *all = !(v >= 0 && v <= 100); break;
        }
}

static void lint_comparison(struct lint *l, const struct node *n) {
        struct bound b;
        char text[64];

        if (!as_bound(n, &b) || !signal_is_percent(b.signal))
                return;
        if (!b.percent && b.value > 0 && b.value < 1)
                warn(l, b.offset, "%s: %s is a percentage (0-100), so %g means %g%%, not a ratio; "
                     "write %g%% if you meant %g", bound_text(&b, text), signal_name(b.signal), b.value, b.value,
                     b.value * 100, b.value);
        if (b.signal == SIGNAL_POOL_CPU || (b.value >= 0 && b.value <= 100))
                return;
        bool some, all;
        holds_in_range(&b, &some, &all);
        warn(l, b.offset, "%s: %s ranges over 0-100%%, so this comparison %s", bound_text(&b, text),
             signal_name(b.signal), all ? "always holds" : some ? "is out of range" : "never holds");
}

/* The tightest bounds of one signal within an `and`. */
struct range {
        bool has_lo, has_hi;
        struct bound lo, hi;    /* lo: x > or >= lo.value; hi: x < or <= hi.value */
};

static bool empty(const struct range *r) {
        if (!r->has_lo || !r->has_hi)
                return false;
        bool lo_strict = r->lo.op == OP_GT, hi_strict = r->hi.op == OP_LT;
        return r->lo.value > r->hi.value || (r->lo.value == r->hi.value && (lo_strict || hi_strict));
}

/* Narrows r by b; true when that leaves nothing. */
static bool narrow(struct range *r, const struct bound *b) {
        bool lower = b->op == OP_GT || b->op == OP_GE || b->op == OP_EQ;
        bool upper = b->op == OP_LT || b->op == OP_LE || b->op == OP_EQ;

        if (lower && (!r->has_lo || b->value > r->lo.value || (b->value == r->lo.value && b->op == OP_GT))) {
                r->lo = *b;
                r->has_lo = true;
        }
        if (upper && (!r->has_hi || b->value < r->hi.value || (b->value == r->hi.value && b->op == OP_LT))) {
                r->hi = *b;
                r->has_hi = true;
        }
        return empty(r);
}

/* The comparisons directly under an `and` chain (through nested `and`s
 * only), narrowing each signal's range; warns once at the first
 * contradiction. Recursion is bounded by CONDITION_MAX_NODES. */
static bool collect(struct lint *l, const struct condition *c, size_t i, struct range ranges[static _SIGNAL_MAX]) {
        const struct node *n = &c->nodes[i];
        struct bound b;
        char x[64], y[64];

        if (n->type == NODE_AND)
                return collect(l, c, n->a, ranges) || collect(l, c, n->b, ranges);
        if (!as_bound(n, &b) || b.op == OP_NE)
                return false;
        struct range *r = &ranges[b.signal];
        if (!narrow(r, &b))
                return false;
        const struct bound *first = r->lo.offset < r->hi.offset ? &r->lo : &r->hi;
        const struct bound *second = first == &r->lo ? &r->hi : &r->lo;
        warn(l, first->offset, "'%s' and '%s' can never both hold, so this 'and' is never true",
             bound_text(first, x), bound_text(second, y));
        return true;
}

size_t condition_lint(const struct condition *c, struct condition_warning *out, size_t n) {
        struct lint l = { out, n, 0 };
        bool under_and[CONDITION_MAX_NODES] = {};

        if (!c)
                return 0;
        for (size_t i = 0; i < c->n_nodes; i++)
                lint_comparison(&l, &c->nodes[i]);
        /* Children come before their parents: mark the `and`s inside an `and`. */
        for (size_t i = 0; i < c->n_nodes; i++)
                if (c->nodes[i].type == NODE_AND) {
                        under_and[c->nodes[i].a] = c->nodes[c->nodes[i].a].type == NODE_AND;
                        under_and[c->nodes[i].b] = c->nodes[c->nodes[i].b].type == NODE_AND;
                }
        for (size_t i = 0; i < c->n_nodes; i++)
                if (c->nodes[i].type == NODE_AND && !under_and[i]) {
                        struct range ranges[_SIGNAL_MAX] = {};
                        collect(&l, c, i, ranges);
                }
        return l.found;
}
