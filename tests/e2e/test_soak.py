# SPDX-License-Identifier: MIT
"""Soak: 1,000 HUP reloads alternating good and broken files, while a per-task
batch runs (no task lost: the joblog has every Seq succeeded exactly once;
corral's fd table is the same and its RSS bounded), and while a long-lived pool
runs (it never has fewer than min workers). CORRAL_SOAK_RELOADS scales it
down under the sanitizers."""
import os
import re
import signal
import subprocess
import time

from conftest import CORRAL, TIMEOUT, Stream, running_counts
from test_fds import await_fds, fds

RELOADS = int(os.environ.get("CORRAL_SOAK_RELOADS") or 1000)
SANITIZED = os.environ.get("CORRAL_SANITIZED") == "1"
RSS_SLACK_KIB = 2048   # allocator noise; a leak per reload would be far more over 1,000
BROKEN = "workers: {min: 5}\n  bad indentation\n"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)[1])


def reload(path, log, text, good):
    path.write_text(text)
    os.kill(log.pid, signal.SIGHUP)
    log.wait(r"reloaded: " if good else r"reload refused")


def joblog_lines(path):
    try:
        with open(path) as f:
            return f.read().count("\n") - 1
    except FileNotFoundError:
        return 0


def await_joblog(path, n, timeout=120):
    """Polls until the joblog has n lines (no event tells a test that a task's
    line is written). Generous: a task costs ~20 ms on a busy machine."""
    deadline = time.monotonic() + timeout
    while joblog_lines(path) < n:
        assert time.monotonic() < deadline, f"joblog has {joblog_lines(path)} of {n} lines"
        time.sleep(0.02)


def idle_fds(pid, timeout=TIMEOUT):
    """corral's fd table once no task runs and the sampler has dropped the
    /proc/PID/stat of the last ones (it does so at its next sample)."""
    deadline = time.monotonic() + timeout
    while True:
        table = fds(pid)
        if not any(re.fullmatch(r"/proc/\d+/stat", t) for t in table.values()):
            return table
        assert time.monotonic() < deadline, f"task stat files still open: {sorted(table.items())}"
        time.sleep(0.05)


def test_reloads_during_a_batch_lose_no_task_and_leak_nothing(tmp_path):
    conf, joblog = tmp_path / "c.yaml", tmp_path / "joblog"

    def good(i):
        return (f"command: [true, '{{}}']\n"
                f"workers: {{min: 2, max: 4, stop_timeout: {5 + i % 2}s}}\n"
                f"tasks: {{joblog: {joblog}}}\n")

    conf.write_text(good(0))
    # Tasks arrive on stdin, one per reload, so the batch runs throughout.
    # (A task costs ~20 ms of fork and exec on a busy machine; more per reload
    # would prove nothing more and only lengthen the wait for the last ones.)
    p = subprocess.Popen([CORRAL, "run", "--metrics", "none", "-c", str(conf), "--tasks", "-"],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = Stream(p.stderr)
    log.pid = p.pid
    try:
        log.wait(r"batch from")   # the signals are handled from here on
        sent = 0
        warmup = min(100, RELOADS // 4)
        before = rss = None
        for i in range(RELOADS):
            reload(conf, log, good(i) if i % 2 == 0 else BROKEN, i % 2 == 0)
            sent += 1
            p.stdin.write(f"{sent}\n")
            p.stdin.flush()
            if i + 1 == warmup:
                await_joblog(joblog, sent)
                before, rss = idle_fds(p.pid), rss_kib(p.pid)
        await_joblog(joblog, sent)
        after = await_fds(p.pid, before)
        assert len(after) == len(before)
        grown = rss_kib(p.pid) - rss
        print(f"RSS after {warmup} reloads: {rss} KiB; after {RELOADS}: {rss + grown} KiB")
        if not SANITIZED:   # ASan's quarantine holds freed memory back
            assert grown < RSS_SLACK_KIB, f"RSS grew by {grown} KiB over {RELOADS - warmup} reloads"
        p.stdin.close()
        assert p.wait(TIMEOUT) == 0
        log.drain()
        with open(joblog) as f:
            rows = [line.split("\t") for line in f.read().splitlines()[1:]]
        seqs = sorted(int(r[0]) for r in rows)
        assert seqs == list(range(1, sent + 1)), "every task ran exactly once"
        assert all(r[6] == "0" and r[7] == "0" for r in rows), "and succeeded"
        assert f"{sent} ok, 0 failed" in log.text()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_reloads_never_take_a_pool_below_min(tmp_path, corral):
    conf = tmp_path / "c.yaml"

    def good(i):
        # Every other good file changes the command: a rolling replacement.
        return (f"command: [sleep, '{3600 + (i // 2) % 2}']\n"
                "workers: {min: 3, max: 4, stop_timeout: 5s}\n")

    conf.write_text(good(0))
    c = corral("run", "-c", str(conf), "--metrics", "none")
    c.started(3)
    c.log.pid = c.pid
    for i in range(1, RELOADS + 1):
        reload(conf, c.log, good(i) if i % 2 == 0 else BROKEN, i % 2 == 0)
    c.signal(signal.SIGTERM)
    assert c.wait() == 0

    # Replay the log: between the third start and the stop, never under 3.
    lines = c.log.lines
    stop = next(i for i, line in enumerate(lines) if re.search(r"stopping|received SIGTERM", line))
    counts = running_counts(lines[:stop])
    starts = sum(1 for line in lines if re.search(r"worker \d+ started", line))
    exits = sum(1 for line in lines if re.search(r"worker \d+ \(pid \d+\) (exited|was killed)", line))
    assert 3 in counts, "the pool reached its three workers before the stop"
    lowest = min(counts[counts.index(3):])
    print(f"{starts} workers started, {exits} exited over {RELOADS} reloads; fewest running: {lowest}")
    assert starts > 3, "the good files replaced workers"
    assert exits > 0, "replaced workers exited while the pool ran"
    assert lowest >= 3, f"the pool went down to {lowest} workers"
