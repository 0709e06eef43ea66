# SPDX-License-Identifier: MIT
"""tasks.output in per-task mode: line-buffer (whole lines as they come, a
long partial line flushed at its cap, keep_order printing the first task
live) and ungroup (the task writes to corral's stdout), the combinations that
are refused, retries, summaries, and the progress bar beside live output.

Tasks hold still on named pipes that the test opens once it has seen what it
awaits on corral's stdout: no sleep stands in for an event."""
import errno
import os
import pty
import re
import select
import subprocess
import time

import pytest

from conftest import CORRAL, PYTHON, TIMEOUT
from test_batch import read_joblog, run_batch, write_lines

# Chunk of corral's line-buffer cap (supervisor/task.h TASK_LINE_BUFFER_MAX).
LINE_BUFFER_MAX = 64 * 1024


def fifos(directory, *names):
    for name in names:
        os.mkfifo(directory / name)


def release(path, timeout=TIMEOUT):
    """Lets a task blocked reading the named pipe path go on (it reads EOF).
    The task may not have opened it yet: retried until the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            return
        except OSError as e:
            if e.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
        time.sleep(0.01)


class RawOut:
    """corral's stdout as bytes, read with a deadline (partial lines too)."""

    def __init__(self, proc):
        self.proc = proc
        self.data = b""

    def read_until(self, predicate, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while not predicate(self.data):
            left = deadline - time.monotonic()
            assert left > 0, f"not within {timeout}s; stdout so far ends {self.data[-200:]!r}"
            if select.select([self.proc.stdout], [], [], left)[0]:
                chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
                assert chunk, f"stdout ended; it ends {self.data[-200:]!r}"
                self.data += chunk
        return self.data

    def finish(self):
        self.data += self.proc.stdout.read()
        err = self.proc.stderr.read().decode()
        return self.proc.wait(TIMEOUT), self.data, err


def start_batch(*args):
    proc = subprocess.Popen([CORRAL, "run", "--metrics", "none", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return RawOut(proc)


# ---- line-buffer ----------------------------------------------------------------

# A writes half a line and lets B go; B writes a whole line and ends; A ends its
# line once released, then writes a last line with no newline.
HALVES = ("import os, sys\n"
          "role, d = sys.argv[1], sys.argv[2]\n"
          "if role == 'A':\n"
          "    os.write(1, b'alpha-first-half')\n"
          "    open(os.path.join(d, 'a-wrote'), 'w').close()\n"
          "    open(os.path.join(d, 'release')).read()\n"
          "    os.write(1, b'-second-half\\nalpha-last')\n"
          "else:\n"
          "    open(os.path.join(d, 'a-wrote')).read()\n"
          "    os.write(1, b'bravo\\n')\n")


def test_line_buffer_never_mixes_a_line_with_part_of_another(tmp_path):
    fifos(tmp_path, "a-wrote", "release")
    tasks = write_lines(tmp_path / "tasks", ["A", "B"])
    out = start_batch("--tasks", tasks, "--max", "2", "--line-buffer", "--",
                      PYTHON, "-c", HALVES, "{}", str(tmp_path))
    # B's line comes out while A still holds half of its own.
    out.read_until(lambda d: b"\n" in d)
    assert out.data == b"bravo\n"
    release(tmp_path / "release")
    rc, data, err = out.finish()
    assert rc == 0, err
    assert data == b"bravo\nalpha-first-half-second-half\nalpha-last", "the last partial line is written at the end"
    assert "2 ok, 0 failed" in err


# Writes `first`, holds still until released, then `second`.
HOLD = ("import os, sys\n"
        "os.write(1, b'first ' + sys.argv[1].encode() + b'\\n')\n"
        "open(os.path.join(sys.argv[2], 'release')).read()\n"
        "os.write(1, b'second ' + sys.argv[1].encode() + b'\\n')\n")


@pytest.mark.parametrize("mode", ["--line-buffer", "--ungroup"])
def test_output_of_a_running_task_appears_before_it_ends(tmp_path, mode):
    fifos(tmp_path, "release")
    tasks = write_lines(tmp_path / "tasks", ["7"])
    out = start_batch("--tasks", tasks, mode, "--", PYTHON, "-c", HOLD, "{}", str(tmp_path))
    assert out.read_until(lambda d: d.endswith(b"\n")) == b"first 7\n"
    release(tmp_path / "release")
    rc, data, err = out.finish()
    assert rc == 0, err
    assert data == b"first 7\nsecond 7\n"


def test_line_buffer_keeps_every_line_whole_under_concurrency(tmp_path):
    names = "abcdefgh"
    tasks = write_lines(tmp_path / "tasks", names)
    # Each piece's slice: [0, n/3), [n/3, 2n/3), [2n/3, n): the whole line.
    writer = ("import os, sys\n"
              "t = sys.argv[1]\n"
              "for i in range(300):\n"
              "    b = (f'{t}:{i}:' + t * (i * 37 % 5000) + '\\n').encode()\n"
              "    n = len(b)\n"
              "    for lo, hi in ((0, n // 3), (n // 3, 2 * n // 3), (2 * n // 3, n)):\n"
              "        os.write(1, b[lo:hi])\n")
    p = run_batch("--tasks", tasks, "--max", "8", "--line-buffer", "--", PYTHON, "-c", writer)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().split("\n")
    assert lines[-1] == ""
    expected = {f"{t}:{i}:" + t * (i * 37 % 5000) for t in names for i in range(300)}
    assert len(lines) - 1 == len(expected)
    assert set(lines[:-1]) == expected, "every line is exactly one a task wrote"
    for t in names:   # and a task's lines keep their order
        mine = [int(line.split(":")[1]) for line in lines[:-1] if line.startswith(t + ":")]
        assert mine == list(range(300))


# Writes 1 MiB without a newline, holds still until released, then ends the line.
HUGE = ("import os, sys\n"
        "for _ in range(256): os.write(1, b'x' * 4096)\n"
        "open(os.path.join(sys.argv[1], 'release')).read()\n"
        "os.write(1, b'y\\n')\n")


def test_line_buffer_flushes_a_partial_line_past_its_cap(tmp_path):
    fifos(tmp_path, "release")
    tasks = write_lines(tmp_path / "tasks", ["1"])
    joblog = tmp_path / "joblog"
    out = start_batch("--tasks", tasks, "--line-buffer", "--joblog", str(joblog), "--", PYTHON, "-c", HUGE,
                      str(tmp_path))
    # corral does not hold the megabyte until the newline: all but less than the cap is out.
    out.read_until(lambda d: len(d) > (1 << 20) - LINE_BUFFER_MAX)
    release(tmp_path / "release")
    rc, data, err = out.finish()
    assert rc == 0, err
    assert data == b"x" * (1 << 20) + b"y\n"
    assert read_joblog(joblog)[0][:3] == (1, 0, 0)
    receive = open(joblog).read().splitlines()[1].split("\t")[5]
    assert int(receive) == (1 << 20) + 2


# keep_order: task 2 writes first; task 1 is the one printed live, then 2 goes live.
ORDERED = ("import os, sys\n"
           "n, d = sys.argv[1], sys.argv[2]\n"
           "if n == '1':\n"
           "    open(os.path.join(d, 'two-wrote')).read()\n"
           "    open(os.path.join(d, 'release1')).read()\n"
           "    os.write(1, b'one\\n')\n"
           "elif n == '2':\n"
           "    os.write(1, b'two-a\\n')\n"
           "    open(os.path.join(d, 'two-wrote'), 'w').close()\n"
           "    open(os.path.join(d, 'release2')).read()\n"
           "    os.write(1, b'two-b\\n')\n"
           "else:\n"
           "    os.write(1, b'three\\n')\n")


def test_keep_order_with_line_buffer_prints_the_first_task_live(tmp_path):
    fifos(tmp_path, "two-wrote", "release1", "release2")
    tasks = write_lines(tmp_path / "tasks", ["1", "2", "3"])
    out = start_batch("--tasks", tasks, "--max", "3", "--line-buffer", "--keep-order", "--",
                      PYTHON, "-c", ORDERED, "{}", str(tmp_path))
    release(tmp_path / "release1")
    # Task 1 ends; task 2, still running, goes live with the line it held back.
    assert out.read_until(lambda d: d.count(b"\n") >= 2) == b"one\ntwo-a\n"
    release(tmp_path / "release2")
    rc, data, err = out.finish()
    assert rc == 0, err
    assert data == b"one\ntwo-a\ntwo-b\nthree\n"
    assert "3 ok, 0 failed" in err


# ---- ungroup ----------------------------------------------------------------------

def test_ungroup_writes_everything_and_keeps_exit_status_and_summary(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 21))
    joblog = tmp_path / "joblog"
    p = run_batch("--tasks", tasks, "--max", "4", "--ungroup", "--joblog", str(joblog), "--",
                  "sh", "-c", 'echo "out $1"; [ "$1" != 13 ]', "sh")
    assert p.returncode == 1
    assert sorted(p.stdout.decode().splitlines()) == sorted(f"out {i}" for i in range(1, 21))
    assert "19 ok, 1 failed; first failed: seq 13 (13)" in p.stderr.decode()
    rows = read_joblog(joblog)
    assert sorted(r[0] for r in rows) == list(range(1, 21))
    # corral does not see what the tasks write: Receive is 0.
    assert {line.split("\t")[5] for line in open(joblog).read().splitlines()[1:]} == {"0"}


# ---- retries: what went out live stays --------------------------------------------

@pytest.mark.parametrize("mode,expected", [
    (None, ["attempt 3"]),
    ("--line-buffer", ["attempt 1", "attempt 2", "attempt 3"]),
    ("--ungroup", ["attempt 1", "attempt 2", "attempt 3"]),
])
def test_a_retried_task_keeps_its_earlier_output_only_when_live(tmp_path, mode, expected):
    tasks = write_lines(tmp_path / "tasks", ["1"])
    count = tmp_path / "count"
    script = 'n=$(( $(cat "$0" 2>/dev/null || echo 0) + 1 )); echo $n > "$0"; echo "attempt $n"; [ $n = 3 ]'
    p = run_batch("--tasks", tasks, "--retries", "2", *([mode] if mode else []), "--", "sh", "-c", script,
                  str(count))
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().splitlines() == expected


# ---- refused combinations -----------------------------------------------------------

def test_ungroup_with_keep_order_is_refused(tmp_path):
    tasks = write_lines(tmp_path / "tasks", ["1"])
    p = run_batch("--tasks", tasks, "--ungroup", "--keep-order", "--", "echo")
    assert p.returncode == 2
    assert "--ungroup and --keep-order exclude each other" in p.stderr.decode()
    # One from the file, one from a flag.
    conf = tmp_path / "c.yaml"
    conf.write_text(f"command: [echo]\ntasks:\n  from: {tasks}\n  keep_order: true\n")
    p = run_batch("-c", str(conf), "--ungroup")
    assert p.returncode == 2
    assert "tasks.output: ungroup" in p.stderr.decode() and "tasks.keep_order" in p.stderr.decode()
    assert p.stdout == b""


@pytest.mark.parametrize("mode", ["--line-buffer", "--ungroup"])
def test_stream_mode_refuses_a_per_task_output_mode(tmp_path, mode):
    p = run_batch("--stream", mode, "--", "cat", input=b"a\n")
    assert p.returncode == 2
    assert f"tasks.output: {mode[2:]} ({mode}) applies to per-task mode only" in p.stderr.decode()
    assert p.stdout == b""


# ---- the progress bar beside live output --------------------------------------------

@pytest.mark.parametrize("mode", [None, "--line-buffer", "--ungroup"])
def test_output_on_the_bars_terminal_never_lands_on_the_bar(tmp_path, mode):
    """stdout and stderr on one terminal: the bar steps aside for every line."""
    tasks = write_lines(tmp_path / "tasks", range(1, 5))
    fifos(tmp_path, *(f"go{i}" for i in range(1, 5)))
    master, slave = pty.openpty()
    # Each task waits on its named pipe, released once the bar is on the
    # terminal's line: the output then has to step the bar aside.
    proc = subprocess.Popen([CORRAL, "run", "--metrics", "none", "--tasks", tasks, "--max", "1",
                             *([mode] if mode else []), "--", "sh", "-c", 'read x < "$1/go$2"; echo "out $2"',
                             "sh", str(tmp_path), "{}"],
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + TIMEOUT

    def read_until(pattern, since):
        """Reads the terminal until pattern shows after offset since; False at its end."""
        nonlocal seen
        while not re.search(pattern, seen[since:]):
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"no {pattern!r} within {TIMEOUT}s: {seen!r}"
            try:
                chunk = os.read(master, 65536)   # EIO once corral and its tasks closed the terminal
            except OSError:
                chunk = b""
            if not chunk:
                return False
            seen += chunk
        return True

    bar = rb"\r\[#*-*\] \d/4 "
    for i in range(1, 5):
        mark = len(seen)
        assert read_until(bar, mark), f"the bar was drawn before task {i}'s output: {seen!r}"
        release(tmp_path / f"go{i}")
        assert read_until(rb"out %d\r?\n" % i, mark), seen
    read_until(rb"(?!)", len(seen))     # to the end
    os.close(master)
    assert proc.wait(TIMEOUT) == 0
    for i in range(1, 5):
        # The bar's line is wiped (\r, erase to the end) right before the output.
        assert re.search(rb"(^|\n|\r\x1b\[K)out %d\r?\n" % i, seen), seen
        assert not re.search(rb"ETA [0-9:?]+out %d" % i, seen), seen
