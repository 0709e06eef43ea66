/* SPDX-License-Identifier: MIT */
/* The hard ceiling of a batch pool from the machine's limits (policy/ceiling.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "policy/ceiling.h"

#define NONE UINT64_MAX
#define MIB (1024u * 1024u)

static void test_ceiling_table(void **state) {
        static const struct {
                const char *name;
                struct machine_limits limits;   /* nproc, nofile, pids_max, pids_current, mem_available */
                unsigned max;
                unsigned expected;
        } cases[] = {
                { "no limits: the configuration's",      { NONE, NONE, NONE, 0, NONE }, 65536, 65536 },
                { "nofile 20000",                        { NONE, 20000, NONE, 0, NONE }, 65536, (20000 - 64) / 6 },
                { "nofile 1024 (systemd's soft)",        { NONE, 1024, NONE, 0, NONE }, 65536, 160 },
                { "nofile below the reserve: 1",         { NONE, 60, NONE, 0, NONE }, 65536, 1 },
                { "nproc 4096: half",                    { 4096, NONE, NONE, 0, NONE }, 65536, 2048 },
                { "pids.max 100, 20 in use: 40",         { NONE, NONE, 100, 20, NONE }, 65536, 40 },
                { "pids.max reached: 1",                 { NONE, NONE, 100, 100, NONE }, 65536, 1 },
                { "memory 1 GiB: 256",                   { NONE, NONE, NONE, 0, 1024ull * MIB }, 65536, 256 },
                { "memory under one worker: 1",          { NONE, NONE, NONE, 0, 1 * MIB }, 65536, 1 },
                { "the least wins",                      { 4096, 1024, 1000, 10, 1024ull * MIB }, 65536, 160 },
                { "max below the limits",                { 4096, 20000, NONE, 0, NONE }, 64, 64 },
                { "not the CPU count: 2 CPUs, 50 GiB",   { 63000, 1048576, NONE, 0, 50ull * 1024 * MIB }, 65536, 12800 },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                unsigned got = ceiling_workers(&cases[i].limits, cases[i].max);
                if (got != cases[i].expected)
                        fail_msg("%s: got %u, want %u", cases[i].name, got, cases[i].expected);
        }
        (void) state;
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ceiling_table),
        };
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
