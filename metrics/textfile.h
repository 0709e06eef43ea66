/* SPDX-License-Identifier: MIT */
/*
 * The metrics text as a file for node_exporter's textfile collector, replaced
 * atomically so that a scrape never reads half of it.
 */
#pragma once

#include <stddef.h>

/*
 * Writes len bytes of text to path: into a temporary file in the same directory
 * (named path.tmp.XXXXXX, so the collector, which reads *.prom, skips it), then
 * fsync, mode 0644, and rename over path. On failure the temporary file is
 * removed and path keeps its previous content. Returns 0 or a negative errno.
 */
int metrics_textfile_write(const char *path, const char *text, size_t len);
