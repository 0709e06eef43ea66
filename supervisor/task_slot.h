/* SPDX-License-Identifier: MIT */
/*
 * Per-task batch mode: one task's life in a slot (task_slot.c).
 */
#pragma once

#include "supervisor/batch_types.h"

/* Starts s->task in slot s. Returns 0; or a negative errno with the task
 * still in s->task and nothing started. */
int slot_start(struct batch *b, struct slot *s);
/* Accounts for one ended attempt; the slot is free afterwards. */
void slot_finish(struct slot *s);
void slot_release_io(struct slot *s);
/* An empty slot `id` of b, its child idle. Cannot fail. */
void slot_init(struct batch *b, struct slot *s, unsigned id);
/* A new empty slot, or NULL (no memory). */
struct slot *slot_new(struct batch *b, unsigned id);
/* The same event to every task's child: STOP (stop_signal + SIGCONT to its
 * process group, SIGKILL after stop_timeout) or KILL. */
void slots_dispatch(struct batch *b, enum child_event event);
/* The errors of exec that say the program cannot run (not a lack of resources). */
bool batch_is_exec_error(int r);
