#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A shared numpy table: corral loads TABLE.npy once into shared memory and
every worker maps that one copy (corral.shared_array keeps its dtype and
shape; nothing is copied or pickled per worker). Each key is looked up in the
table's first column and answered with the second. Needs python3-numpy.

    python3 -c 'import numpy as np; k = np.arange(0, 2**20, 3, dtype="<u8"); np.save("table.npy", np.stack([k, k * k], 1))'
    table_lookup.py table.npy 3 4 300000
"""
import sys

import corral


def lookup(key):
    import numpy as np
    table = corral.shared_array("table")        # the same pages in every worker
    keys = table[:, 0]
    i = int(np.searchsorted(keys, key))
    return int(table[i, 1]) if i < len(keys) and int(keys[i]) == key else None


if __name__ == "__main__":
    path, keys = sys.argv[1], [int(k) for k in sys.argv[2:]]
    for key, value in zip(keys, corral.map(lookup, keys, shared={"table": path})):
        print(key, "-" if value is None else value)
