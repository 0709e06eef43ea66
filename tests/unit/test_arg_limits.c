/* SPDX-License-Identifier: MIT */
/* How many lines an invocation can carry under execve()'s limits: each
 * limit just met and just broken, for appended lines and for `{}`. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "supervisor/arg_limits.h"

#define CMD(...) ((char *[]) { __VA_ARGS__, NULL })
#define P sizeof(char *)

/* The kernel's per-string limit with 4 KiB pages, and a generous total. */
static const struct arg_limits big_total = { .string_max = 131072, .total_max = 2 * 1024 * 1024 };

static void budget(struct arg_budget *b, const struct arg_limits *l, char *const *command) {
        /* no environment and no small variables: the sums stay readable */
        arg_budget_init(b, l, command, 0, "CORRAL_TASK=", 0, 0);
}

static void test_one_line_meets_the_string_limit(void **state) {
        struct arg_budget b;
        (void) state;

        /* "CORRAL_TASK=" + line + NUL <= 131072: 131059 bytes */
        budget(&b, &big_total, CMD("true"));
        assert_true(arg_budget_fits(&b, 0, 0, 131059));
        assert_false(arg_budget_fits(&b, 0, 0, 131060));
        assert_int_equal(arg_budget_line_max(&b), 131059);
        /* the line: 131,065 bytes can never be passed */
        assert_false(arg_budget_fits(&b, 0, 0, 131065));
}

static void test_context_around_the_placeholder_counts(void **state) {
        struct arg_budget b;
        (void) state;

        /* 18 bytes around the line, and its NUL (more than "CORRAL_TASK=") */
        budget(&b, &big_total, CMD("prog", "--some-option={}.txt"));
        assert_int_equal(arg_budget_line_max(&b), 131072 - 18 - 1);
        /* two `{}` in one argument: the line twice */
        budget(&b, &big_total, CMD("prog", "{}:{}"));
        assert_int_equal(arg_budget_line_max(&b), (131072 - 1 - 1) / 2);
}

static void test_joined_lines_meet_the_string_limit(void **state) {
        struct arg_budget b;
        (void) state;

        budget(&b, &big_total, CMD("true"));
        /* 100 kB lines: never two in one invocation ($CORRAL_TASK joins them) */
        assert_true(arg_budget_fits(&b, 0, 0, 100000));
        assert_false(arg_budget_fits(&b, 1, 100000, 100000));
        /* n lines of bytes in all, joined: prefix + bytes + n-1 '\n' + one more line + '\n' + NUL */
        size_t room = 131072 - 12;           /* bytes + separators + NUL */
        assert_true(arg_budget_fits(&b, 3, 3000, room - 3000 - 4));
        assert_false(arg_budget_fits(&b, 3, 3000, room - 3000 - 3));
}

static void test_total_counts_strings_and_pointers(void **state) {
        const struct arg_limits small = { .string_max = 131072, .total_max = 30000 };
        struct arg_budget b;
        (void) state;

        /* fixed: "true"+NUL+P, "CORRAL_TASK="+P, two NULLs; per line: its
         * argument (len+NUL+P) and its copy in $CORRAL_TASK (len+1) */
        budget(&b, &small, CMD("true"));
        size_t fixed = 5 + P + 12 + P + 2 * P, per_line = 1 + P + 1;
        size_t n = 9, each = 1000;
        size_t used = fixed + n * (each * 2 + per_line);
        size_t left = small.total_max - used;   /* what one more line may take */
        assert_true(left >= per_line);
        size_t fit = (left - per_line) / 2;
        assert_true(arg_budget_fits(&b, n, n * each, fit));
        assert_false(arg_budget_fits(&b, n, n * each, fit + 1));

        /* the environment and the small per-task variables count too */
        arg_budget_init(&b, &small, CMD("true"), 4000, "CORRAL_TASK=", 3, 40);
        assert_false(arg_budget_fits(&b, n, n * each, fit));
}

static void test_sizes_from_the_input_do_not_overflow(void **state) {
        struct arg_budget b;
        (void) state;

        budget(&b, &big_total, CMD("prog", "{}{}{}"));
        assert_false(arg_budget_fits(&b, 0, 0, SIZE_MAX));
        assert_false(arg_budget_fits(&b, 1, SIZE_MAX - 1, 10));
        assert_false(arg_budget_fits(&b, SIZE_MAX, 0, 0));
}

static void test_this_machine_has_the_kernel_limits(void **state) {
        struct arg_limits l;
        (void) state;

        arg_limits_system(&l);
        assert_true(l.string_max >= 131072);
        /* never under the kernel's 128 KiB floor less the headroom */
        assert_true(l.total_max >= 128 * 1024 - 2048 - 4096);
        assert_true(l.total_max <= 6 * 1024 * 1024);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_one_line_meets_the_string_limit),
                cmocka_unit_test(test_context_around_the_placeholder_counts),
                cmocka_unit_test(test_joined_lines_meet_the_string_limit),
                cmocka_unit_test(test_total_counts_strings_and_pointers),
                cmocka_unit_test(test_sizes_from_the_input_do_not_overflow),
                cmocka_unit_test(test_this_machine_has_the_kernel_limits),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
