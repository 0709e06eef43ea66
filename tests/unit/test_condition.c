/* SPDX-License-Identifier: MIT */
/* The `when:` condition language: parsing, precedence, evaluation, errors, canonical text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/util.h"
#include "policy/condition.h"

static char *canonical(const char *text) {
        static char buf[4096];
        struct condition *c = NULL;
        char error[256] = "";
        size_t offset = 0;
        int r = condition_parse(text, &c, &offset, error, sizeof(error));
        if (r < 0) {
                print_error("parse of '%s' failed at %zu: %s\n", text, offset, error);
                return NULL;
        }
        r = condition_format(c, buf, sizeof(buf));
        condition_free(c);
        return r < 0 ? NULL : buf;
}

static void test_canonical(void **state) {
        static const struct { const char *name, *text, *canonical; } cases[] = {
                { "spacing",          "pool.cpu>80%",                       "pool.cpu > 80%" },
                { "every op <",       "load1 < 2",                          "load1 < 2" },
                { "every op <=",      "load1<=2",                           "load1 <= 2" },
                { "every op >",       "load1 > 2",                          "load1 > 2" },
                { "every op >=",      "load1 >= 2",                         "load1 >= 2" },
                { "every op ==",      "pool.size == 3",                     "pool.size == 3" },
                { "every op !=",      "pool.size != 3",                     "pool.size != 3" },
                { "number on left",   "80% < pool.cpu",                     "80% < pool.cpu" },
                { "two signals",      "cpu.core_max > cpu.core_min",        "cpu.core_max > cpu.core_min" },
                { "decimals",         "load1 > 1.50",                       "load1 > 1.5" },
                { "leading point",    "load1 > .5",                         "load1 > 0.5" },
                { "zero fraction",    "load1 > 2.000",                      "load1 > 2" },
                { "and over or",      "load1 > 1 or load1 < 2 and pool.size > 3", "load1 > 1 or load1 < 2 and pool.size > 3" },
                { "redundant parens", "(load1 > 1) and ((pool.size > 3))",  "load1 > 1 and pool.size > 3" },
                { "needed parens",    "(load1 > 1 or load1 < 2) and pool.size > 3", "(load1 > 1 or load1 < 2) and pool.size > 3" },
                { "right-nested or",  "load1 > 1 or (load1 < 2 or pool.size > 3)", "load1 > 1 or (load1 < 2 or pool.size > 3)" },
                { "left-nested or",   "(load1 > 1 or load1 < 2) or pool.size > 3", "load1 > 1 or load1 < 2 or pool.size > 3" },
                { "not comparison",   "not load1 > 1",                      "not load1 > 1" },
                { "not group",        "not (load1 > 1 and pool.size > 2)",  "not (load1 > 1 and pool.size > 2)" },
                { "not not",          "not not load1 > 1",                  "not not load1 > 1" },
                { "not binds tight",  "not load1 > 1 and pool.size > 2",    "not load1 > 1 and pool.size > 2" },
                { "whitespace",       "  \tpool.cpu\n>\r80  ",              "pool.cpu > 80" },
                { "default rule",     "pool.cpu > 80% and cpu.busy < 80%",  "pool.cpu > 80% and cpu.busy < 80%" },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                print_message("case: %s\n", cases[i].name);
                const char *got = canonical(cases[i].text);
                assert_non_null(got);
                assert_string_equal(got, cases[i].canonical);
                /* the canonical text is a fixed point */
                assert_string_equal(canonical(cases[i].canonical), cases[i].canonical);
        }
}

struct sample {
        enum signal_id id;
        double value;
};

static void test_eval(void **state) {
        static const struct {
                const char *name, *text;
                struct sample set[4];
                size_t n;
                bool expect;
        } cases[] = {
                { "gt just above",      "pool.cpu > 80%",   { { SIGNAL_POOL_CPU, 80.001 } }, 1, true },
                { "gt equal",           "pool.cpu > 80%",   { { SIGNAL_POOL_CPU, 80 } }, 1, false },
                { "ge equal",           "pool.cpu >= 80",   { { SIGNAL_POOL_CPU, 80 } }, 1, true },
                { "ge just below",      "pool.cpu >= 80",   { { SIGNAL_POOL_CPU, 79.999 } }, 1, false },
                { "lt just below",      "pool.cpu < 20%",   { { SIGNAL_POOL_CPU, 19.999 } }, 1, true },
                { "lt equal",           "pool.cpu < 20%",   { { SIGNAL_POOL_CPU, 20 } }, 1, false },
                { "le equal",           "pool.cpu <= 20",   { { SIGNAL_POOL_CPU, 20 } }, 1, true },
                { "eq",                 "pool.size == 3",   { { SIGNAL_POOL_SIZE, 3 } }, 1, true },
                { "eq not",             "pool.size == 3",   { { SIGNAL_POOL_SIZE, 4 } }, 1, false },
                { "ne",                 "pool.size != 3",   { { SIGNAL_POOL_SIZE, 4 } }, 1, true },
                { "ne not",             "pool.size != 3",   { { SIGNAL_POOL_SIZE, 3 } }, 1, false },
                { "number on left",     "50 < pool.cpu",    { { SIGNAL_POOL_CPU, 60 } }, 1, true },
                { "two signals",        "cpu.core_max > cpu.core_min", { { SIGNAL_CPU_CORE_MAX, 90 }, { SIGNAL_CPU_CORE_MIN, 10 } }, 2, true },
                { "and both",           "load1 > 1 and pool.size < 3", { { SIGNAL_LOAD1, 2 }, { SIGNAL_POOL_SIZE, 2 } }, 2, true },
                { "and one",            "load1 > 1 and pool.size < 3", { { SIGNAL_LOAD1, 2 }, { SIGNAL_POOL_SIZE, 5 } }, 2, false },
                { "or one",             "load1 > 1 or pool.size < 3",  { { SIGNAL_LOAD1, 0 }, { SIGNAL_POOL_SIZE, 2 } }, 2, true },
                { "or none",            "load1 > 1 or pool.size < 3",  { { SIGNAL_LOAD1, 0 }, { SIGNAL_POOL_SIZE, 5 } }, 2, false },
                /* and binds tighter: true or (false and false) */
                { "precedence and/or",  "load1 > 1 or pool.size < 3 and pool.cpu > 50",
                  { { SIGNAL_LOAD1, 2 }, { SIGNAL_POOL_SIZE, 5 }, { SIGNAL_POOL_CPU, 0 } }, 3, true },
                { "parens override",    "(load1 > 1 or pool.size < 3) and pool.cpu > 50",
                  { { SIGNAL_LOAD1, 2 }, { SIGNAL_POOL_SIZE, 5 }, { SIGNAL_POOL_CPU, 0 } }, 3, false },
                /* not binds tighter than and: (not false) and false */
                { "precedence not/and", "not load1 > 1 and pool.size > 3", { { SIGNAL_LOAD1, 0 }, { SIGNAL_POOL_SIZE, 0 } }, 2, false },
                { "not group",          "not (load1 > 1 and pool.size > 3)", { { SIGNAL_LOAD1, 0 }, { SIGNAL_POOL_SIZE, 0 } }, 2, true },
                { "not not",            "not not load1 > 1", { { SIGNAL_LOAD1, 2 } }, 1, true },
                { "unavailable",        "psi.cpu > 20%",    { }, 0, false },
                { "unavailable ne",     "psi.cpu != 20",    { }, 0, false },
                { "unavailable or",     "psi.cpu > 20 or load1 > 1", { { SIGNAL_LOAD1, 2 } }, 1, true },
                { "unavailable and",    "psi.cpu < 20 and load1 > 1", { { SIGNAL_LOAD1, 2 } }, 1, false },
                { "unavailable not",    "not psi.cpu > 20", { }, 0, true },
                { "unavailable rhs",    "load1 > psi.io",   { { SIGNAL_LOAD1, 2 } }, 1, false },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct signals s = {};
                struct condition *c = NULL;
                print_message("case: %s\n", cases[i].name);
                for (size_t k = 0; k < cases[i].n; k++)
                        signals_set(&s, cases[i].set[k].id, cases[i].set[k].value);
                assert_int_equal(condition_parse(cases[i].text, &c, NULL, NULL, 0), 0);
                assert_int_equal(condition_eval(c, &s), cases[i].expect);
                condition_free(c);
        }
}

static void test_errors(void **state) {
        static const struct { const char *name, *text; size_t offset; const char *message; } cases[] = {
                { "empty",            "",                    0,  "empty condition" },
                { "blank",            "   ",                 0,  "empty condition" },
                { "unknown signal",   "cpu.bussy > 1",       0,  "unknown signal 'cpu.bussy' (did you mean 'cpu.busy'?)" },
                { "unknown far",      "pool.cpu > 1 and frob > 2", 17, "unknown signal 'frob'" },
                { "missing op",       "pool.cpu 80",         9,  "expected a comparison (< <= > >= == !=) after 'pool.cpu', found '80'" },
                { "missing rhs",      "pool.cpu >",          10, "expected a signal or a number, found the end of the condition" },
                { "lone =",           "pool.cpu = 80",       9,  "unexpected '=' (did you mean '=='?)" },
                { "lone !",           "! pool.cpu > 80",     0,  "unexpected '!' (use 'not')" },
                { "c and",            "load1 > 1 && load1 < 2", 10, "unexpected '&' (use 'and')" },
                { "c or",             "load1 > 1 || load1 < 2", 10, "unexpected '|' (use 'or')" },
                { "bad char",         "load1 > 1 # x",       10, "unexpected character '#'" },
                { "bad byte",         "load1 > \x01",        8,  "unexpected byte 0x01" },
                { "bad number",       "load1 > 1.2.3",       8,  "invalid number '1.2.3'" },
                { "number suffix",    "load1 > 5s",          8,  "invalid number '5s'" },
                { "trailing point",   "load1 > 5.",          8,  "invalid number '5.'" },
                { "big number",       "load1 > 1234567890",  8,  "number '1234567890' out of range (at most 9 digits before and 6 after the point)" },
                { "many decimals",    "load1 > 0.1234567",   8,  "number '0.1234567' out of range (at most 9 digits before and 6 after the point)" },
                { "two numbers",      "1 < 2",               0,  "a comparison needs a signal on one side" },
                { "percent count",    "tasks.rate > 5%",     13, "'%' does not apply to tasks.rate, which is not a percentage" },
                { "percent left",     "5% < load1",          0,  "'%' does not apply to load1, which is not a percentage" },
                { "chained compare",  "1 < load1 < 2",       10, "unexpected '<' (expected 'and' or 'or')" },
                { "missing and",      "load1 > 1 pool.size < 2", 10, "unexpected 'pool.size' (expected 'and' or 'or')" },
                { "dangling and",     "load1 > 1 and",       13, "expected a signal or a number, found the end of the condition" },
                { "leading and",      "and load1 > 1",       0,  "expected a signal or a number, found 'and'" },
                { "unclosed paren",   "(load1 > 1",          10, "missing ')' to close a '('" },
                { "stray rparen",     "load1 > 1)",          9,  "unexpected ')' (expected 'and' or 'or')" },
                { "paren junk",       "(load1 > 1 load1 < 2)", 11, "unexpected 'load1' (expected 'and', 'or' or ')')" },
                { "empty parens",     "()",                  1,  "expected a signal or a number, found ')'" },
                { "not alone",        "not",                 3,  "expected a signal or a number, found the end of the condition" },
                { "keyword as value", "load1 > or",          8,  "expected a signal or a number, found 'or'" },
                { "uppercase AND",    "load1 > 1 AND load1 < 2", 10, "unexpected 'AND' (expected 'and' or 'or')" },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct condition *c = (struct condition *) 0x1;   /* must stay untouched */
                char error[256] = "";
                size_t offset = 999;
                print_message("case: %s\n", cases[i].name);
                assert_int_equal(condition_parse(cases[i].text, &c, &offset, error, sizeof(error)), -EINVAL);
                assert_string_equal(error, cases[i].message);
                assert_int_equal(offset, cases[i].offset);
                assert_ptr_equal(c, (struct condition *) 0x1);
        }
}

static void test_limits(void **state) {
        char text[8192], error[256];
        struct condition *c = NULL;
        size_t offset, len = 0;
        (void) state;

        /* nesting */
        for (int i = 0; i < CONDITION_MAX_DEPTH + 1; i++)
                text[len++] = '(';
        strcpy(text + len, "load1 > 1");
        assert_int_equal(condition_parse(text, &c, &offset, error, sizeof(error)), -EINVAL);
        assert_int_equal(offset, CONDITION_MAX_DEPTH);
        assert_string_equal(error, "condition nested too deeply (more than 32 levels)");

        /* many comparisons */
        len = 0;
        for (int i = 0; i < CONDITION_MAX_NODES; i++)
                len += (size_t) snprintf(text + len, sizeof(text) - len, "%sload1 > %d", i ? " or " : "", i);
        assert_int_equal(condition_parse(text, &c, &offset, error, sizeof(error)), -EINVAL);
        assert_string_equal(error, "condition too long (more than 256 comparisons and operators)");

        /* a tiny error buffer is truncated, never overrun */
        char small[8];
        assert_int_equal(condition_parse("frob > 1", &c, NULL, small, sizeof(small)), -EINVAL);
        assert_string_equal(small, "unknown");
        assert_int_equal(condition_parse("frob > 1", &c, NULL, NULL, 0), -EINVAL);
}

static void test_signals_mask_and_format(void **state) {
        struct condition *c = NULL;
        char buf[16];
        (void) state;

        assert_int_equal(condition_parse("pool.cpu > 80% and (psi.cpu > 1 or not load1 < psi.io)", &c, NULL, NULL, 0), 0);
        assert_int_equal(condition_signals(c),
                         (1u << SIGNAL_POOL_CPU) | (1u << SIGNAL_PSI_CPU) | (1u << SIGNAL_LOAD1) | (1u << SIGNAL_PSI_IO));
        assert_int_equal(condition_format(c, buf, sizeof(buf)), -ENOBUFS);
        assert_int_equal(strlen(buf), sizeof(buf) - 1);
        assert_int_equal(condition_format(c, buf, 0), -ENOBUFS);
        condition_free(c);
        assert_null(condition_free(NULL));
        assert_int_equal(condition_signals(NULL), 0);
}

/* A small deterministic generator: the test is repeatable, and a failure prints the text. */
static uint32_t rng(uint32_t *s) {
        *s = *s * 1664525u + 1013904223u;
        return *s >> 8;
}

static size_t gen(char *buf, size_t size, uint32_t *s, int depth) {
        static const char *const ops[] = { "<", "<=", ">", ">=", "==", "!=" };
        static const char *const ws[] = { " ", "", "  ", "\t" };
        uint32_t k = rng(s) % (depth > 4 ? 2 : 6);
        if (k < 2) {
                enum signal_id a = (enum signal_id) (rng(s) % _SIGNAL_MAX);
                bool pct = signal_is_percent(a) && rng(s) % 2;
                unsigned whole = rng(s) % 1000, frac = rng(s) % 4 == 0 ? rng(s) % 1000 : 0;
                char number[32];
                if (frac)
                        snprintf(number, sizeof(number), "%u.%03u%s", whole, frac, pct ? "%" : "");
                else
                        snprintf(number, sizeof(number), "%u%s", whole, pct ? "%" : "");
                const char *w = ws[rng(s) % 4];
                if (k == 0)
                        return (size_t) snprintf(buf, size, "%s%s%s%s%s", signal_name(a), w, ops[rng(s) % 6], " ", number);
                return (size_t) snprintf(buf, size, "%s %s%s%s", number, ops[rng(s) % 6], w, signal_name(a));
        }
        size_t n = 0;
        if (k == 2) {
                n += (size_t) snprintf(buf, size, "not ");
                return n + gen(buf + n, size - n, s, depth + 1);
        }
        if (k == 3) {
                n += (size_t) snprintf(buf, size, "(");
                n += gen(buf + n, size - n, s, depth + 1);
                return n + (size_t) snprintf(buf + n, size - n, ")");
        }
        n += gen(buf, size, s, depth + 1);
        n += (size_t) snprintf(buf + n, size - n, k == 4 ? " and " : " or ");
        return n + gen(buf + n, size - n, s, depth + 1);
}

static void test_roundtrip_property(void **state) {
        uint32_t seed = 42;
        char text[4096], first[4096], second[4096];
        (void) state;

        for (int i = 0; i < 2000; i++) {
                struct condition *a = NULL, *b = NULL;
                char error[256] = "";
                gen(text, sizeof(text), &seed, 0);
                int r = condition_parse(text, &a, NULL, error, sizeof(error));
                if (r < 0)
                        fail_msg("generated '%s' does not parse: %s", text, error);
                assert_true(condition_format(a, first, sizeof(first)) > 0);
                r = condition_parse(first, &b, NULL, error, sizeof(error));
                if (r < 0)
                        fail_msg("canonical '%s' of '%s' does not parse: %s", first, text, error);
                assert_true(condition_format(b, second, sizeof(second)) > 0);
                if (strcmp(first, second) != 0)
                        fail_msg("'%s' -> '%s' -> '%s'", text, first, second);
                assert_int_equal(condition_signals(a), condition_signals(b));

                /* the same tree: the same answer on random snapshots, some signals missing */
                for (int k = 0; k < 8; k++) {
                        struct signals s = {};
                        for (enum signal_id id = 0; id < _SIGNAL_MAX; id++)
                                if (rng(&seed) % 5)
                                        signals_set(&s, id, (double) (rng(&seed) % 1000));
                        assert_int_equal(condition_eval(a, &s), condition_eval(b, &s));
                }
                condition_free(a);
                condition_free(b);
        }
}

/* What holds back a demand: the first guard that fails, with its value. */
static void test_blocker(void **state) {
        static const struct {
                const char *name, *text;
                struct sample set[4];
                size_t n;
                const char *expect;     /* NULL: no blocker */
        } cases[] = {
                { "guard fails",        "pool.cpu > 80% and cpu.busy < 80%", { { SIGNAL_POOL_CPU, 95 }, { SIGNAL_CPU_BUSY, 100 } }, 2,
                  "cpu.busy 100% >= 80%" },
                { "fraction",           "pool.cpu > 80% and cpu.busy < 80%", { { SIGNAL_POOL_CPU, 95 }, { SIGNAL_CPU_BUSY, 85.25 } }, 2,
                  "cpu.busy 85.25% >= 80%" },
                { "second guard",       "pool.cpu > 80 and load1 < 2 and psi.cpu <= 10", { { SIGNAL_POOL_CPU, 95 }, { SIGNAL_LOAD1, 1.5 }, { SIGNAL_PSI_CPU, 30 } }, 3,
                  "psi.cpu 30% > 10" },
                { "number on left",     "pool.cpu > 80 and 2 > load1", { { SIGNAL_POOL_CPU, 95 }, { SIGNAL_LOAD1, 3 } }, 2,
                  "2 <= load1 3" },
                { "unavailable guard",  "pool.cpu > 80 and psi.cpu < 20", { { SIGNAL_POOL_CPU, 95 } }, 1, "psi.cpu n/a" },
                { "no demand",          "pool.cpu > 80% and cpu.busy < 80%", { { SIGNAL_POOL_CPU, 5 }, { SIGNAL_CPU_BUSY, 100 } }, 2, NULL },
                { "holds",              "pool.cpu > 80% and cpu.busy < 80%", { { SIGNAL_POOL_CPU, 95 }, { SIGNAL_CPU_BUSY, 10 } }, 2, NULL },
                { "one comparison",     "pool.cpu > 80%", { { SIGNAL_POOL_CPU, 5 } }, 1, NULL },
                { "or at the top",      "pool.cpu > 80 or load1 < 1", { { SIGNAL_POOL_CPU, 5 }, { SIGNAL_LOAD1, 3 } }, 2, NULL },
                { "not as the guard",   "pool.cpu > 80 and not load1 > 1", { { SIGNAL_POOL_CPU, 95 }, { SIGNAL_LOAD1, 3 } }, 2, NULL },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct signals s = {};
                struct condition *c = NULL;
                char buf[64] = "untouched";
                print_message("case: %s\n", cases[i].name);
                for (size_t k = 0; k < cases[i].n; k++)
                        signals_set(&s, cases[i].set[k].id, cases[i].set[k].value);
                assert_int_equal(condition_parse(cases[i].text, &c, NULL, NULL, 0), 0);
                enum signal_id id = condition_blocker(c, &s, buf, sizeof(buf));
                if (cases[i].expect) {
                        assert_int_not_equal(id, _SIGNAL_INVALID);
                        assert_string_equal(buf, cases[i].expect);
                } else {
                        assert_int_equal(id, _SIGNAL_INVALID);
                        assert_string_equal(buf, "untouched");
                }
                condition_free(c);
        }
}

/* condition_unmet_demand: the first comparison as written, with the values of
 * its signals, while it does not hold; read the same way as condition_blocker(). */
static void test_unmet_demand(void **state) {
        static const struct {
                const char *name, *text;
                struct sample set[4];
                size_t n;
                enum condition_demand expect;
                const char *text_expected;      /* NULL: buf untouched */
        } cases[] = {
                { "unmet",              "pool.cpu > 80% and cpu.busy < 80%", { { SIGNAL_POOL_CPU, 66 }, { SIGNAL_CPU_BUSY, 100 } }, 2,
                  CONDITION_DEMAND_UNMET, "pool.cpu > 80% (pool.cpu 66%)" },
                { "fraction",           "pool.cpu > 80% and cpu.busy < 80%", { { SIGNAL_POOL_CPU, 65.504 }, { SIGNAL_CPU_BUSY, 10 } }, 2,
                  CONDITION_DEMAND_UNMET, "pool.cpu > 80% (pool.cpu 65.5%)" },
                { "one comparison",     "load1 > 4", { { SIGNAL_LOAD1, 0.75 } }, 1,
                  CONDITION_DEMAND_UNMET, "load1 > 4 (load1 0.75)" },
                { "number on left",     "80% < pool.cpu and cpu.busy < 80%", { { SIGNAL_POOL_CPU, 5 }, { SIGNAL_CPU_BUSY, 10 } }, 2,
                  CONDITION_DEMAND_UNMET, "80% < pool.cpu (pool.cpu 5%)" },
                { "two signals",        "cpu.core_max > cpu.core_min", { { SIGNAL_CPU_CORE_MAX, 40 }, { SIGNAL_CPU_CORE_MIN, 40 } }, 2,
                  CONDITION_DEMAND_UNMET, "cpu.core_max > cpu.core_min (cpu.core_max 40%, cpu.core_min 40%)" },
                { "n/a signal",         "pool.cpu > 80% and cpu.busy < 80%", { { SIGNAL_CPU_BUSY, 10 } }, 1,
                  CONDITION_DEMAND_UNKNOWN, "pool.cpu > 80% (pool.cpu n/a)" },
                { "n/a second signal",  "cpu.core_max > cpu.core_min", { { SIGNAL_CPU_CORE_MAX, 40 } }, 1,
                  CONDITION_DEMAND_UNKNOWN, "cpu.core_max > cpu.core_min (cpu.core_max 40%, cpu.core_min n/a)" },
                { "holds",              "pool.cpu > 80% and cpu.busy < 80%", { { SIGNAL_POOL_CPU, 95 }, { SIGNAL_CPU_BUSY, 100 } }, 2,
                  CONDITION_DEMAND_HOLDS, NULL },
                { "holds with guards",  "pool.cpu > 80% and cpu.busy < 80%", { { SIGNAL_POOL_CPU, 95 }, { SIGNAL_CPU_BUSY, 10 } }, 2,
                  CONDITION_DEMAND_HOLDS, NULL },
                { "or at the top",      "pool.cpu > 80 or load1 < 1", { { SIGNAL_POOL_CPU, 5 }, { SIGNAL_LOAD1, 3 } }, 2,
                  CONDITION_DEMAND_NONE, NULL },
                { "not first",          "not pool.cpu < 80 and cpu.busy < 80", { { SIGNAL_POOL_CPU, 5 }, { SIGNAL_CPU_BUSY, 10 } }, 2,
                  CONDITION_DEMAND_NONE, NULL },
                { "group first",        "(pool.cpu > 80 or load1 > 4) and cpu.busy < 80", { { SIGNAL_POOL_CPU, 5 }, { SIGNAL_LOAD1, 1 }, { SIGNAL_CPU_BUSY, 10 } }, 3,
                  CONDITION_DEMAND_NONE, NULL },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(condition_freep) struct condition *c = NULL;
                struct signals s = {};
                char buf[96] = "untouched";
                print_message("case: %s\n", cases[i].name);
                for (size_t k = 0; k < cases[i].n; k++)
                        signals_set(&s, cases[i].set[k].id, cases[i].set[k].value);
                assert_int_equal(condition_parse(cases[i].text, &c, NULL, NULL, 0), 0);
                assert_int_equal(condition_unmet_demand(c, &s, buf, sizeof(buf)), cases[i].expect);
                assert_string_equal(buf, cases[i].text_expected ? cases[i].text_expected : "untouched");
        }

        /* A short buffer holds a terminated prefix. */
        _cleanup_(condition_freep) struct condition *c = NULL;
        struct signals s = {};
        char small[8];
        signals_set(&s, SIGNAL_POOL_CPU, 66);
        assert_int_equal(condition_parse("pool.cpu > 80%", &c, NULL, NULL, 0), 0);
        assert_int_equal(condition_unmet_demand(c, &s, small, sizeof(small)), CONDITION_DEMAND_UNMET);
        assert_string_equal(small, "pool.cp");
        assert_int_equal(condition_unmet_demand(c, &s, NULL, 0), CONDITION_DEMAND_UNMET);
        assert_int_equal(condition_unmet_demand(NULL, &s, NULL, 0), CONDITION_DEMAND_NONE);
}

/* condition_lint: what a valid condition probably did not mean, at the
 * comparison's offset; nothing for the ordinary ones. */
static void test_lint(void **state) {
        static const struct {
                const char *text;
                size_t offset;          /* of the first warning */
                const char *message;    /* the first warning; NULL: none */
                size_t count;
        } t[] = {
                /* a ratio where a percentage is read */
                { "pool.cpu > 0.8", 0,
                  "pool.cpu > 0.8: pool.cpu is a percentage (0-100), so 0.8 means 0.8%, not a ratio; "
                  "write 80% if you meant 0.8", 1 },
                { "cpu.busy < 95% and 0.5 < mem.available", 19,
                  "mem.available > 0.5: mem.available is a percentage (0-100), so 0.5 means 0.5%, not a ratio; "
                  "write 50% if you meant 0.5", 1 },
                { "pool.cpu > 0.8%", 0, NULL, 0 },              /* said in percent: meant */
                { "tasks.rate > 0.5", 0, NULL, 0 },             /* not a percentage */
                { "load1 > 0.7", 0, NULL, 0 },
                { "cpu.busy > 0", 0, NULL, 0 },
                /* a bound no percentage reaches */
                { "cpu.busy > 180", 0, "cpu.busy > 180: cpu.busy ranges over 0-100%, so this comparison never holds", 1 },
                { "psi.cpu <= 150%", 0, "psi.cpu <= 150%: psi.cpu ranges over 0-100%, so this comparison always holds", 1 },
                { "pool.cpu > 180", 0, NULL, 0 },               /* of one core: a threaded worker exceeds 100 */
                { "cpu.busy >= 100", 0, NULL, 0 },
                /* an `and` that can never hold */
                { "cpu.busy > 80% and cpu.busy < 50%", 0,
                  "'cpu.busy > 80%' and 'cpu.busy < 50%' can never both hold, so this 'and' is never true", 1 },
                { "pool.cpu > 20 and (cpu.busy >= 50 and 50 > cpu.busy)", 19,
                  "'cpu.busy >= 50' and 'cpu.busy < 50' can never both hold, so this 'and' is never true", 1 },
                { "tasks.backlog == 3 and tasks.backlog > 3", 0,
                  "'tasks.backlog == 3' and 'tasks.backlog > 3' can never both hold, so this 'and' is never true", 1 },
                { "cpu.busy >= 50 and cpu.busy <= 50", 0, NULL, 0 },    /* exactly 50 */
                { "cpu.busy > 80% or cpu.busy < 50%", 0, NULL, 0 },
                { "cpu.busy > 80% and not cpu.busy > 90%", 0, NULL, 0 },
                { "cpu.busy > 80% and pool.cpu < 50%", 0, NULL, 0 },
                { "(cpu.busy > 80% or psi.cpu > 1) and cpu.busy < 50%", 0, NULL, 0 },
                { "cpu.busy != 5 and cpu.busy == 5", 0, NULL, 0 },      /* != is not narrowed: no false alarm */
                /* several findings */
                { "cpu.busy > 0.9 and cpu.busy > 180", 0, NULL, 2 },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                _cleanup_(condition_freep) struct condition *c = NULL;
                struct condition_warning w[4];
                assert_int_equal(condition_parse(t[i].text, &c, NULL, NULL, 0), 0);
                size_t n = condition_lint(c, w, ELEMENTSOF(w));
                if (n != t[i].count || (t[i].message && strcmp(w[0].message, t[i].message) != 0) ||
                    (t[i].message && w[0].offset != t[i].offset))
                        fail_msg("'%s': %zu warnings, first at %zu: '%s'", t[i].text, n, n ? w[0].offset : 0,
                                 n ? w[0].message : "");
        }
        /* at most n are written */
        _cleanup_(condition_freep) struct condition *c = NULL;
        struct condition_warning one[1];
        assert_int_equal(condition_parse("cpu.busy > 0.9 and cpu.busy > 180", &c, NULL, NULL, 0), 0);
        assert_int_equal(condition_lint(c, one, 1), 1);
        assert_int_equal(condition_lint(NULL, one, 1), 0);
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_canonical),
                cmocka_unit_test(test_eval),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_signals_mask_and_format),
                cmocka_unit_test(test_roundtrip_property),
                cmocka_unit_test(test_blocker),
                cmocka_unit_test(test_unmet_demand),
                cmocka_unit_test(test_lint),
        };
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
