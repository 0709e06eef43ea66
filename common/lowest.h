/* SPDX-License-Identifier: MIT */
/*
 * The lowest few values seen, sorted: the "first failed: seq 2, 4" and
 * "given up (lines 7, 300)" of run summaries, whatever order tasks end in.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Adds value to kept[0..*n) (sorted, at most max) if it is among the lowest. */
static inline void lowest_keep(uint64_t *kept, size_t *n, size_t max, uint64_t value) {
        size_t i = *n;
        if (i == max) {
                if (value >= kept[i - 1])
                        return;
                i--;
        } else
                (*n)++;
        for (; i > 0 && kept[i - 1] > value; i--)
                kept[i] = kept[i - 1];
        kept[i] = value;
}
