/* SPDX-License-Identifier: MIT */
/*
 * Slots: an array of pointers to objects that never move once made (sd-event
 * sources and children point at them), indexed by id, grown but never
 * shrunk. Pool workers and batch task slots are kept this way.
 */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * Grows the array whose address is `array` (a `T **` variable, passed as
 * `&p->items`) from *n to `want` entries. Each new entry is made by
 * make(owner, index), which allocates the object, stores it at index and
 * returns 0 or -ENOMEM. Existing objects keep their address. Returns 0, or
 * -ENOMEM with *n counting the entries made so far.
 */
static inline int slots_grow(void *array, unsigned *n, unsigned want, int (*make)(void *owner, unsigned index),
                             void *owner) {
        void *items;

        if (want <= *n)
                return 0;
        /* Through memcpy: a `T **` is read and written as the bytes they are. */
        memcpy(&items, array, sizeof(items));
        items = reallocarray(items, want, sizeof(void *));
        if (!items)
                return -ENOMEM;
        memcpy(array, &items, sizeof(items));
        for (; *n < want; (*n)++) {
                int r = make(owner, *n);
                if (r < 0)
                        return r;
        }
        return 0;
}
