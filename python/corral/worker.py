# SPDX-License-Identifier: MIT
"""The worker side of stream and per-task mode.

Stream mode's contract: a worker reads lines on stdin and writes exactly one
result line per input line on stdout, in the same order; corral matches them
by count. serve() keeps it whatever the function does: an exception or a
result that is not one line becomes FAILED_LINE (and a traceback on stderr),
a stray print() goes to stderr, each result is written at once, and the
worker serves on.
"""
import collections
import os
import sys
import traceback

__all__ = ["FAILED_LINE", "Task", "serve", "task"]

# The result line of an input line that failed: empty, as corral's own
# tasks.failed_line for a line it gave up, so that output line N always
# answers input line N.
FAILED_LINE = ""

_READ_SIZE = 1 << 16

Task = collections.namedtuple("Task", "line seq id")
Task.__doc__ = """A per-task mode task: line (str; with --batch N the lines joined
by newlines), seq (its 1-based line number), id (a queue entry's id, or None)."""


def task():
    """The task this process runs in per-task mode (`corral run --tasks FILE --
    python3 prog.py`), from $CORRAL_TASK, $CORRAL_TASK_SEQ and $CORRAL_TASK_ID.
    Raises LookupError when the process is not a corral task."""
    line = os.environ.get("CORRAL_TASK")
    if line is None:
        raise LookupError("corral.task(): $CORRAL_TASK is not set: this process is not a task of corral's "
                          "per-task mode (corral run --tasks FILE -- COMMAND)")
    seq = os.environ.get("CORRAL_TASK_SEQ")
    return Task(line, int(seq) if seq else None, os.environ.get("CORRAL_TASK_ID") or None)


def _short(line, limit=60):
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else str(line)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _take_protocol_fds():
    """Moves the protocol's stdin and stdout to private descriptors and points
    fds 0 and 1 at /dev/null and stderr: a print() in the user's function then
    cannot break the one-line-per-line contract, nor input() eat a line."""
    sys.stdout.flush()
    in_fd, out_fd = os.dup(0), os.dup(1)        # non-inheritable (O_CLOEXEC)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    # print() now lands on stderr: flush it line by line, as stderr is, so
    # that a worker stopped with TERM (no flush at exit) loses none of it.
    try:
        sys.stdout.reconfigure(line_buffering=True)
    except (AttributeError, ValueError):
        pass
    return in_fd, out_fd


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def serve_lines(handle, in_fd=None, out_fd=None):
    """The loop: handle(line_bytes) -> result bytes without newline, for each
    line of in_fd until end of input. Each result is written before the next
    line is handled: if the function then kills the process, corral blames
    the line that did it, not an earlier one whose answer was still here.
    handle must not raise. Returns at end of input; exits quietly if corral
    goes away or on Ctrl-C."""
    if in_fd is None:
        in_fd, out_fd = _take_protocol_fds()
    pending = b""
    try:
        while True:
            chunk = os.read(in_fd, _READ_SIZE)
            if not chunk:
                if pending:                       # a last line without newline
                    _write_all(out_fd, handle(pending) + b"\n")
                return
            lines = (pending + chunk).split(b"\n") if pending else chunk.split(b"\n")
            pending = lines.pop()
            for line in lines:
                _write_all(out_fd, handle(line) + b"\n")
    except BrokenPipeError:
        os._exit(0)         # corral is gone: nobody reads results any more
    except KeyboardInterrupt:
        os._exit(130)       # Ctrl-C on the terminal: corral stops the pool itself


def _as_line(result):
    if result is None:
        return b""
    if isinstance(result, (bytes, bytearray, memoryview)):
        data = bytes(result)
    else:
        data = str(result).encode("utf-8", "surrogateescape")
    if data.endswith(b"\n"):
        data = data[:-1]
    if b"\n" in data:
        raise ValueError("the result has a newline inside: one input line gets one output line; "
                         "escape it (json.dumps) or join the parts")
    return data


def serve(fn, *, failed_line=FAILED_LINE):
    """Serves stream mode (`corral run --stream --tasks FILE -- python3 prog.py`):
    calls fn(line) for each input line (str, without its newline; bytes that are
    not UTF-8 survive the round trip) and writes its result as one line: str,
    bytes, None (an empty line) or anything else through str(). One trailing
    newline is allowed; a newline inside a result is refused as an error.
    When fn raises (or the result is refused), the traceback goes to stderr with
    the input line, the output line is `failed_line` (FAILED_LINE, empty, like
    corral's own line for a given-up line), and serving goes on.
    Returns at end of input."""
    failed = _as_line(failed_line)
    count = 0

    def handle(line):
        nonlocal count
        count += 1
        text = line.decode("utf-8", "surrogateescape")
        try:
            return _as_line(fn(text))
        except Exception:
            sys.stderr.write(f"corral.serve: line {count} of this worker, {_short(line)}, failed "
                             f"(output: {failed_line!r}):\n{traceback.format_exc()}")
            sys.stderr.flush()
            return failed

    serve_lines(handle)
