#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An example worker that answers lookups from a table corral shares between
all workers: the Python twin of shm-lookup.c, same table, same protocol.

The table is records of two little-endian uint64 (key, value), sorted by key.
One key per line on stdin; one line out per line in: "KEY VALUE" or "KEY -".
With numpy (python3-numpy) the table is an array over the shared memory itself
(np.frombuffer copies nothing); without it, a binary search with struct.

    shm_lookup.py [NAME]    serve lookups from segment NAME (default TABLE)
"""
import mmap
import os
import struct
import sys

RECORD = struct.Struct("<QQ")


def map_segment(name):
    """The one shared, read-only copy that corral loaded."""
    try:
        fd = int(os.environ[f"CORRAL_SHM_{name}"])
        size = int(os.environ[f"CORRAL_SHM_{name}_SIZE"])
    except KeyError as e:
        sys.exit(f"shm_lookup.py: {e.args[0]} is not set: run me under corral "
                 f"with a 'shared: {name.lower()}' segment")
    return mmap.mmap(fd, size, prot=mmap.PROT_READ)


def numpy_lookup(mm):
    import numpy as np
    table = np.frombuffer(mm, dtype="<u8")
    table = table[: len(table) // 2 * 2].reshape(-1, 2)
    keys, values = table[:, 0], table[:, 1]

    def lookup(key):
        i = int(np.searchsorted(keys, key))
        return int(values[i]) if i < len(keys) and int(keys[i]) == key else None
    return lookup


def struct_lookup(mm):
    n = len(mm) // RECORD.size

    def lookup(key):
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            k, v = RECORD.unpack_from(mm, mid * RECORD.size)
            if k == key:
                return v
            if k < key:
                lo = mid + 1
            else:
                hi = mid
        return None
    return lookup


def main():
    mm = map_segment(sys.argv[1] if len(sys.argv) > 1 else "TABLE")
    try:
        lookup = numpy_lookup(mm)
    except ImportError:
        lookup = struct_lookup(mm)
    for line in sys.stdin:
        text = line.rstrip("\n")
        try:
            key = int(text)
            value = lookup(key) if 0 <= key < 1 << 64 else None
        except ValueError:
            value = None
        print(f"{text} {'-' if value is None else value}", flush=True)


if __name__ == "__main__":
    main()
