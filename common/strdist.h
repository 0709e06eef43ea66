/* SPDX-License-Identifier: MIT */
/*
 * Edit distance between two short strings, for "did you mean 'X'?" hints in
 * configuration and condition errors. Header-only and pure.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define STRDIST_MAX_LEN 63

/* Edit distance of a[0..alen) and b[0..blen), where a swap of two neighbours
 * counts as one edit ("mxa" is 1 from "max"; optimal string alignment);
 * SIZE_MAX when either is longer than STRDIST_MAX_LEN (hints are for keys and
 * names, never for data, so three rows on the stack suffice). */
static inline size_t strdist(const char *a, size_t alen, const char *b, size_t blen) {
        size_t prev2[STRDIST_MAX_LEN + 1] = { 0 }, prev[STRDIST_MAX_LEN + 1], cur[STRDIST_MAX_LEN + 1];

        if (alen > STRDIST_MAX_LEN || blen > STRDIST_MAX_LEN)
                return SIZE_MAX;
        for (size_t j = 0; j <= blen; j++)
                prev[j] = j;
        for (size_t i = 1; i <= alen; i++) {
                cur[0] = i;
                for (size_t j = 1; j <= blen; j++) {
                        size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
                        size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
                        cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && prev2[j - 2] + 1 < cur[j])
                                cur[j] = prev2[j - 2] + 1;
                }
                memcpy(prev2, prev, (blen + 1) * sizeof(size_t));
                memcpy(prev, cur, (blen + 1) * sizeof(size_t));
        }
        return prev[blen];
}

/* True when `typed` is close enough to `known` to suggest it: at most 2 edits,
 * and fewer than half of the longer word (so "a" does not suggest "max"). */
static inline bool strdist_close(const char *typed, size_t len, const char *known) {
        size_t klen = strlen(known);
        size_t d = strdist(typed, len, known, klen);
        size_t longer = len > klen ? len : klen;
        return d > 0 && d <= 2 && d * 2 < longer;
}
