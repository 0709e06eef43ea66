/* SPDX-License-Identifier: MIT */
/*
 * The condition language of a rule's `when:` (DESIGN.md "Signals a condition
 * can use"): comparisons of signals and numbers joined by `and`, `or`, `not`
 * and parentheses, e.g. `pool.cpu > 80% and cpu.busy < 80%`.
 *
 * Grammar, loosest binding first:
 *     expr       := and ('or' and)*
 *     and        := unary ('and' unary)*
 *     unary      := 'not' unary | '(' expr ')' | comparison
 *     comparison := operand ('<' | '<=' | '>' | '>=' | '==' | '!=') operand
 *     operand    := SIGNAL | NUMBER ['%']
 * so `not` applies to one comparison or one parenthesised group, comparisons
 * bind tighter than `and`, and `and` tighter than `or`. One side of a
 * comparison must be a signal; `%` is allowed only against a percentage
 * signal, where it means the same as the bare number (80% == 80).
 *
 * Pure: no system calls, no globals, no logging. A parsed condition is one
 * allocation, immutable, and evaluated without allocating.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/signals.h"

struct condition;

/* Parses text. Returns 0 and a new condition in *ret, or -EINVAL with a
 * one-line message in `error` (when error_size > 0) and the 0-based byte offset
 * of the offending token in *ret_error_offset (when non-NULL), or -ENOMEM.
 * *ret is written only on success. */
int condition_parse(const char *text, struct condition **ret, size_t *ret_error_offset, char *error, size_t error_size);

/* Evaluates c against one snapshot. A comparison reading an unavailable signal
 * is false (so `not (psi.cpu > 20)` is true without PSI). Cannot fail, does not
 * allocate. */
bool condition_eval(const struct condition *c, const struct signals *s);

/* The signals c reads, as a mask of (1u << signal_id). */
uint32_t condition_signals(const struct condition *c);

/* Writes the canonical text of c (single spaces, minimal parentheses, numbers
 * in their shortest form, `%` kept where written); parsing it gives the same
 * canonical text again. Returns the length written (without the NUL), or
 * -ENOBUFS when it does not fit in size bytes (buf then holds a truncated,
 * NUL-terminated prefix when size > 0). */
int condition_format(const struct condition *c, char *buf, size_t size);

/* What holds back c, read as a demand and its guards: when c is comparisons
 * joined by `and` whose first holds and a later one does not, writes the first
 * that does not as what holds instead, with the signal's value ("cpu.busy 100%
 * >= 80%", or "psi.cpu n/a" for an unavailable signal), and returns its signal.
 * Otherwise (c holds, its first comparison does not, or the failing part is
 * not a comparison) returns _SIGNAL_INVALID and leaves buf alone. */
enum signal_id condition_blocker(const struct condition *c, const struct signals *s, char *buf, size_t size);

/* Where c's demand stands. Its demand, as condition_blocker() reads it: the
 * first of the parts c's top-level `and`s join (or c itself, without one),
 * when that part is a comparison; the parts after it may be anything. */
enum condition_demand {
        CONDITION_DEMAND_NONE,          /* c names no demand: its first part is not a comparison */
        CONDITION_DEMAND_HOLDS,
        CONDITION_DEMAND_UNMET,         /* it does not hold; buf says what it waits for */
        CONDITION_DEMAND_UNKNOWN,       /* it reads an unavailable signal; buf says which */
};

/* What c waits for: when its demand does not hold, writes it with the values
 * of the signals it reads ("pool.cpu > 80% (pool.cpu 66%)", or "pool.cpu >
 * 80% (pool.cpu n/a)" for an unavailable signal) to buf, truncated to size.
 * Otherwise leaves buf alone. */
enum condition_demand condition_unmet_demand(const struct condition *c, const struct signals *s, char *buf,
                                             size_t size);

/* A part of a valid condition that is almost certainly not what was meant. */
struct condition_warning {
        size_t offset;                  /* 0-based byte offset of the comparison in the text */
        char message[200];              /* one line, e.g. "pool.cpu > 0.8: ..." */
};

/* Finds, in text order of the checks: a percentage signal compared with a
 * number under 1 written without '%' (a ratio, where 0.8 means 0.8%); a
 * bound outside 0-100 for a percentage signal other than pool.cpu (which is
 * of one core, so a threaded worker goes beyond 100); comparisons joined by
 * `and` that can never hold together. Writes at most n to out; returns how
 * many it wrote. Pure; cannot fail. */
size_t condition_lint(const struct condition *c, struct condition_warning *out, size_t n);

/* Frees c. Accepts NULL, returns NULL. */
struct condition *condition_free(struct condition *c);

static inline void condition_freep(struct condition **c) {
        *c = condition_free(*c);
}

/* Limits that keep parsing and evaluation bounded on hostile input. */
#define CONDITION_MAX_NODES 256
#define CONDITION_MAX_DEPTH 32
