/* SPDX-License-Identifier: MIT */
/* The subcommands of corral; each returns the process exit status. */
#pragma once

int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_enqueue(int argc, char **argv);

/* The exit statuses of the contract: EXIT_OK, EXIT_TASKS_FAILED, EXIT_USAGE, EXIT_CRASH_LOOP. */
#include "common/exit_status.h"
