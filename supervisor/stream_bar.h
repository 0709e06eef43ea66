/* SPDX-License-Identifier: MIT */
/*
 * Stream mode's progress bar (stream_bar.c).
 */
#pragma once

#include "supervisor/progress_bar.h"

struct stream;

/* Draws the progress bar per mode: on a terminal only, counting lines
 * answered. Problems are logged; the stream goes without. */
void stream_set_bar(struct stream *s, enum batch_bar mode);
