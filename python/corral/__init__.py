# SPDX-License-Identifier: MIT
"""corral for Python: the worker side of corral's protocols and a Pool-like map.

Worker side (a program that corral runs):
    serve(fn)            stream mode: one result line per input line
    shared(name)         a shared segment as a read-only memoryview
    shared_array(name)   ... as a read-only numpy array (.npy keeps dtype and shape)
    ready(), status(t)   the notify protocol (sd_notify), for server pools
    task()               per-task mode: the task's line, seq and id

Caller side (a program that runs corral):
    map(fn, iterable)    like multiprocessing.Pool.map, on corral's adaptive pool
    imap(fn, iterable)   the results as they come

Pure Python 3; numpy only for shared_array. See doc/python.md.
"""
from corral.shared import shared, shared_array
from corral.worker import FAILED_LINE, Task, serve, task

# A worker starts with what it uses: the caller side (subprocess, threads) and
# the notify socket are imported on first use (PEP 562).
_LAZY = {
    "CorralError": "corral.pool", "TaskError": "corral.pool", "imap": "corral.pool", "map": "corral.pool",
    "notify": "corral.notify", "ready": "corral.notify", "status": "corral.notify", "watchdog": "corral.notify",
}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'corral' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CorralError", "FAILED_LINE", "Task", "TaskError", "imap", "map", "notify", "ready", "serve",
    "shared", "shared_array", "status", "task", "watchdog",
]
