# SPDX-License-Identifier: MIT
"""Helpers for end-to-end tests: run the built corral and await what it says.

Tests wait for events (a log line on corral's stderr, a line a worker writes on
stdout, a process exit seen through a pidfd), never for a fixed time.
"""
import http.client
import os
import queue
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

CORRAL = os.environ.get("CORRAL") or os.path.join(os.path.dirname(__file__), "..", "..", "build", "corral")
# Runs every corral of the Corral class under this command, e.g. "valgrind ..."
# (tests/valgrind/run). Tests that bring their own prefix keep it.
WRAPPER = shlex.split(os.environ.get("CORRAL_WRAPPER", ""))
PYTHON = sys.executable
# Generous: CI machines are noisy and the sanitizer build is slow; under a
# wrapper (valgrind runs corral 20-50 times slower) three times more. Only a
# failing test ever waits this long.
SLOWDOWN = 3.0 if WRAPPER else 1.0
TIMEOUT = 20.0 * SLOWDOWN


def py(code):
    """argv running a Python snippet as a worker."""
    return [PYTHON, "-c", code]



def read_terminal(master, deadline, what):
    """All that reaches a pseudo-terminal's master until its last writer closes
    the terminal (EIO or end of file); closes master. `what` names the process
    for the assertion that catches a hang."""
    seen = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], deadline)
            assert ready, f"{what} hangs"
            try:
                data = os.read(master, 65536)
            except OSError:         # EIO: the last writer closed the terminal
                break
            if not data:
                break
            seen += data
    finally:
        os.close(master)
    return seen


def need(tool):
    """The path of a program the test needs, or a skip that says how to get it."""
    path = shutil.which(tool)
    if not path:
        pytest.skip(f"{tool} is not installed (packaging/test-deps.sh installs it)")
    return path


def run_tool(*args, timeout=120, **kwargs):
    """A finished run of a helper program (not corral), output as text."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run([str(a) for a in args], timeout=timeout, **kwargs)

# The C helpers of tests/tasks/, built with the tests (meson sets the path).
TASKS_DIR = os.environ.get("CORRAL_TASKS_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "tests", "tasks")


def task(name, *args):
    """argv of a C helper of tests/tasks/, e.g. task("line", "--exit-on", "x"):
    for workers that tests replace often, where Python's start-up on a busy
    machine would be measured instead of corral."""
    return [os.path.join(TASKS_DIR, f"{name}-task"), *map(str, args)]


class Stream:
    """Lines of a pipe, collected by a thread, awaited with a deadline."""

    def __init__(self, pipe):
        self.lines = []
        self._queue = queue.Queue()
        self._seen = 0
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe):
        for line in pipe:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _pull(self, timeout):
        line = self._queue.get(timeout=max(timeout, 0))
        if line is not None:
            self.lines.append(line)
        return line

    def wait(self, pattern, timeout=TIMEOUT):
        """The first line after the last awaited one that matches pattern."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            while self._seen < len(self.lines):
                m = rx.search(self.lines[self._seen])
                self._seen += 1
                if m:
                    return m
            try:
                if self._pull(deadline - time.monotonic()) is None:
                    raise AssertionError(f"stream ended without {pattern!r}:\n" + self.text())
            except queue.Empty:
                raise AssertionError(f"no {pattern!r} within {timeout}s:\n" + self.text()) from None

    def drain(self):
        """Everything until the pipe closes (the process and its workers are gone)."""
        self._thread.join(TIMEOUT)
        while True:
            try:
                if self._pull(0) is None:
                    break
            except queue.Empty:
                break
        return self.text()

    def text(self):
        return "\n".join(self.lines)


class Corral:
    def __init__(self, args, corral_prefix=(), **kwargs):
        # Tests run side by side: unless a test picks its own address, each
        # corral serves metrics on a free port (and says which in its log).
        if args[:1] == ["run"] and "--metrics" not in args:
            args = ["run", "--metrics", "127.0.0.1:0", *args[1:]]
        self.proc = subprocess.Popen([*(corral_prefix or WRAPPER), CORRAL, *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, **kwargs)
        self.pid = self.proc.pid
        self.log = Stream(self.proc.stderr)
        self.out = Stream(self.proc.stdout)

    def started(self, count):
        """Awaits `count` "worker N started (pid P)" lines; returns {id: pid}."""
        workers = {}
        for _ in range(count):
            m = self.log.wait(r"worker (\d+) started \(pid (\d+)\)")
            workers[int(m[1])] = int(m[2])
        return workers

    def metrics_port(self):
        """The port of the metrics endpoint, from the log line that announces it
        (which comes before any worker starts, so it may be behind the cursor)."""
        for line in self.log.lines:
            m = re.search(r"metrics on port (\d+)", line)
            if m:
                return int(m[1])
        return int(self.log.wait(r"metrics on port (\d+)")[1])

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=TIMEOUT):
        rc = self.proc.wait(timeout)
        self.log.drain()
        return rc

    def children(self):
        with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
            return sorted(int(p) for p in f.read().split())

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def corral():
    started = []

    def start(*args, **kwargs):
        c = Corral(list(args), **kwargs)
        started.append(c)
        return c

    yield start
    for c in started:
        c.close()


def alive(pid):
    """True while pid runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid, timeout):
    """Awaits the exit of any process (not only our children) through a pidfd."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0]) or not alive(pid)
    finally:
        os.close(fd)


def http_get(port, path):
    """(status, body) of GET path on the metrics endpoint at port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def metric(text, name, labels=""):
    """The value of one sample in Prometheus text, or None."""
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return float(m[1]) if m else None


def await_metric(port, name, labels, value, timeout=TIMEOUT):
    """Polls /metrics (published once per sample) until name{labels} == value;
    returns the text. Bounded by the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        text = http_get(port, "/metrics")[1]
        if metric(text, name, labels) == value:
            return text
        assert time.monotonic() < deadline, f"{name}{labels} never became {value}:\n{text}"
        time.sleep(0.05)


def running_counts(lines):
    """How many workers ran after each start/exit line of corral's log lines."""
    running, counts = 0, []
    for line in lines:
        if re.search(r"worker \d+ started", line):
            running += 1
        elif re.search(r"worker \d+ \(pid \d+\) (exited|was killed)", line):
            running -= 1
        else:
            continue
        counts.append(running)
    return counts


def send(pid, sig):
    os.kill(pid, sig)


__all__ = ["CORRAL", "PYTHON", "SLOWDOWN", "TIMEOUT", "TASKS_DIR", "py", "task", "alive", "wait_gone", "send", "signal"]
