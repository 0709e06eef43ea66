/* SPDX-License-Identifier: MIT */
/*
 * Test helpers for sampler_new_at(): a scratch directory that receives one
 * instant of a fixture (tests/fixtures/sampler/NAME/tN) after another. Files
 * are rewritten in place (same inode), because the sampler keeps them open
 * and re-reads them, as it does the kernel's.
 */
#pragma once

#include <stddef.h>

/* The directory of the sampler fixtures (from the environment that meson sets). */
const char *fixture_dir(void);

/* Creates an empty scratch directory; writes its path to buf. Asserts on failure. */
void fixture_scratch(char *buf, size_t size);

/* Copies fixture_dir()/NAME/INSTANT over the scratch directory dest. */
void fixture_load(const char *dest, const char *name, const char *instant);

/* Writes text to dest/path (which must exist in the fixture), in place. */
void fixture_put(const char *dest, const char *path, const char *text);

/* Removes the scratch directory and all it holds. */
void fixture_remove(const char *dest);
