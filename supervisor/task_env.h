/* SPDX-License-Identifier: MIT */
/*
 * Per-task batch mode: what a task is started with, its program and environment (task_env.c).
 */
#pragma once

#include "supervisor/batch_types.h"

/* command[0] as execvpe would find it; NULL only on ENOMEM. */
char *task_resolve_command(const char *name);
int batch_build_env(struct batch *b);
