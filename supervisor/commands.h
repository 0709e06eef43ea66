/* SPDX-License-Identifier: MIT */
/* The subcommands of corral; each returns the process exit status. */
#pragma once

int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_status(int argc, char **argv);

/* Exit statuses of the contract (DESIGN.md). */
enum {
        EXIT_OK = 0,
        EXIT_TASKS_FAILED = 1,
        EXIT_USAGE = 2,
        EXIT_CRASH_LOOP = 3,
};
