# SPDX-License-Identifier: MIT
"""Workers that misbehave: ignore TERM, fork a burst of grandchildren, close
their output or lose its reader, flood stderr, get SIGSTOP'd. Each has a
defined, logged outcome; corral stays up, or exits with the documented status."""
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import CORRAL, SLOWDOWN, TIMEOUT, WRAPPER, Stream, py, wait_gone

STOP_MARGIN = 3.0 * SLOWDOWN   # seconds a stop may take beyond stop_timeout (slow CI, sanitizers, valgrind)

SLEEPER = py(r"""
import os, signal
os.write(1, f"ready {os.environ['CORRAL_WORKER_ID']} {os.getpid()}\n".encode())
while True: signal.pause()
""")


def scrape(port, timeout=1.0):
    """GET /metrics within timeout seconds: its status."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


def timed_stop(c):
    began = time.monotonic()
    c.signal(signal.SIGTERM)
    rc = c.wait()
    return rc, time.monotonic() - began


def test_worker_ignoring_term_in_a_pool_is_killed_after_stop_timeout(corral):
    # Worker 0 ignores TERM, the others obey: only worker 0 waits for the SIGKILL.
    worker = py(r"""
import os, signal
if os.environ["CORRAL_WORKER_ID"] == "0":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
os.write(1, f"ready {os.environ['CORRAL_WORKER_ID']} {os.getpid()}\n".encode())
while True: signal.pause()
""")
    c = corral("run", "--min", "3", "--max", "3", "--stop-timeout", "1s", "--", *worker)
    workers = c.started(3)
    for _ in range(3):
        c.out.wait("^ready")
    rc, took = timed_stop(c)
    assert rc == 0
    assert 1.0 <= took < 1.0 + STOP_MARGIN, took
    log = c.log.text()
    assert f"worker 0 (pid {workers[0]}) still running 1s after the stop signal, killing" in log
    assert f"worker 0 (pid {workers[0]}) was killed by signal KILL" in log
    assert f"worker 1 (pid {workers[1]}) was killed by signal TERM" in log
    assert "still running" not in log.replace(f"worker 0 (pid {workers[0]}) still running", "")


def test_burst_of_grandchildren_dies_with_its_worker(corral, tmp_path):
    pids_file = tmp_path / "grandchildren"
    # The first incarnation forks 100 grandchildren that ignore TERM, then fails;
    # its replacement only sleeps.
    burst = py(rf"""
import os, signal, sys
if os.path.exists({str(pids_file)!r}):
    os.write(1, b"replacement\n")
    while True: signal.pause()
pids = []
for _ in range(100):
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True: signal.pause()
    pids.append(pid)
with open({str(pids_file)!r} + ".tmp", "w") as f:
    f.write(" ".join(map(str, pids)))
os.rename({str(pids_file)!r} + ".tmp", {str(pids_file)!r})
sys.exit(1)
""")
    c = corral("run", "--restart-delay", "10ms", "--", *burst)
    first = c.started(1)[0]
    c.log.wait(rf"worker 0 \(pid {first}\) exited with status 1")
    c.log.wait(r"restarting worker 0 in 10ms")
    c.out.wait("^replacement$")
    grandchildren = [int(p) for p in pids_file.read_text().split()]
    assert len(grandchildren) == 100
    for pid in grandchildren:
        assert wait_gone(pid, 2.0), f"grandchild {pid} outlived its worker"
    assert len(c.children()) == 1
    rc, _ = timed_stop(c)
    assert rc == 0


def test_worker_closing_its_output_keeps_running(corral):
    closer = py(r"""
import os, signal
os.write(1, f"ready {os.getpid()}\n".encode())
os.close(1); os.close(2); os.close(0)
while True: signal.pause()
""")
    c = corral("run", "--min", "2", "--max", "2", "--", *closer)
    workers = c.started(2)
    c.out.wait("^ready")
    c.out.wait("^ready")
    port = c.metrics_port()
    assert scrape(port, timeout=TIMEOUT) in (200, 503)
    assert c.children() == sorted(workers.values())
    rc, _ = timed_stop(c)
    assert rc == 0
    assert "restarting" not in c.log.text()


def test_lost_reader_of_the_output_is_a_crash_loop_not_a_dead_corral(tmp_path):
    """corral's stdout has no reader: a worker writing to it dies of SIGPIPE, and
    is restarted until the crash-loop limit; corral itself ignores SIGPIPE."""
    r, w = os.pipe()
    os.close(r)
    writer = ["yes"]    # not Python, which ignores SIGPIPE and exits 1 instead
    proc = subprocess.Popen([*WRAPPER, CORRAL, "run", "--metrics", "none", "--restart-delay", "1ms",
                             "--crash-limit", "3", "--", *writer],
                            stdin=subprocess.DEVNULL, stdout=w, stderr=subprocess.PIPE, text=True)
    os.close(w)
    try:
        log = Stream(proc.stderr)
        assert proc.wait(TIMEOUT) == 3
        text = log.drain()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(re.findall(r"worker 0 \(pid \d+\) was killed by signal PIPE", text)) == 4, text
    assert "'yes' failed 4 times in a row, the last one was killed by signal PIPE; giving up" in text


def test_stderr_flood_does_not_stall_the_loop(corral, tmp_path):
    # Worker 0 writes stderr as fast as it can until told to stop (at most 10 s);
    # worker 1 sleeps. During the flood corral must restart worker 1 and serve metrics.
    enough = tmp_path / "enough"
    flood = py(rf"""
import os, signal, time
if os.environ["CORRAL_WORKER_ID"] == "0":
    line = b"f" * 1023 + b"\n"
    os.write(1, b"flooding\n")
    end = time.monotonic() + 10
    written = 0     # at least 2048 lines, whatever the machine's speed
    while written < 2048 or (not os.path.exists({str(enough)!r}) and time.monotonic() < end):
        for _ in range(256):
            os.write(2, line)
        written += 256
    os.write(1, b"flooded\n")
os.write(1, f"ready {{os.environ['CORRAL_WORKER_ID']}} {{os.getpid()}}\n".encode())
while True: signal.pause()
""")
    c = corral("run", "--min", "2", "--max", "2", "--restart-delay", "1ms", "--", *flood)
    workers = c.started(2)
    port = c.metrics_port()
    c.out.wait("^flooding$")
    os.kill(workers[1], signal.SIGKILL)
    c.log.wait(rf"worker 1 \(pid {workers[1]}\) was killed by signal KILL")
    assert list(c.started(1)) == [1]
    for _ in range(3):
        began = time.monotonic()
        assert scrape(port) in (200, 503)
        assert time.monotonic() - began < 1.0
    enough.touch()
    c.out.wait("^flooded$")
    rc, _ = timed_stop(c)
    assert rc == 0
    # Counted once the log is drained: stderr is read by its own thread.
    flood_lines = sum(1 for line in c.log.lines if line.startswith("ffff"))
    assert flood_lines >= 2048, flood_lines


STOPPABLE = py(r"""
import os, signal, sys
def drain(*_):
    os.write(1, f"draining {os.environ['CORRAL_WORKER_ID']}\n".encode())
    sys.exit(0)
if os.environ["CORRAL_WORKER_ID"] == "0" and os.environ["IGNORE_TERM"] == "1":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, drain)
os.write(1, f"ready {os.environ['CORRAL_WORKER_ID']} {os.getpid()}\n".encode())
while True: signal.pause()
""")


def test_stopped_worker_is_continued_and_drains(corral):
    """A SIGSTOP'd worker with a TERM handler is sent SIGCONT after the stop
    signal: it drains at once instead of waiting for the SIGKILL."""
    c = corral("run", "--min", "2", "--max", "2", "--stop-timeout", "10s", "--", *STOPPABLE,
               env={**os.environ, "IGNORE_TERM": "0"})
    workers = c.started(2)
    for _ in range(2):
        c.out.wait("^ready")
    port = c.metrics_port()
    os.kill(workers[0], signal.SIGSTOP)
    # A stopped worker is not an exit: nothing is restarted, metrics still answer.
    assert scrape(port, timeout=TIMEOUT) in (200, 503)
    assert c.children() == sorted(workers.values())
    rc, took = timed_stop(c)
    assert rc == 0
    assert took < STOP_MARGIN, took
    assert sorted(re.findall(r"draining (\d)", c.out.drain())) == ["0", "1"]
    log = c.log.text()
    assert f"worker 0 (pid {workers[0]}) exited with status 0" in log
    assert "still running" not in log and "restarting" not in log


def test_stopped_worker_ignoring_term_is_killed_within_stop_timeout(corral):
    c = corral("run", "--min", "2", "--max", "2", "--stop-timeout", "1s", "--", *STOPPABLE,
               env={**os.environ, "IGNORE_TERM": "1"})
    workers = c.started(2)
    for _ in range(2):
        c.out.wait("^ready")
    os.kill(workers[0], signal.SIGSTOP)
    rc, took = timed_stop(c)
    assert rc == 0
    assert 1.0 <= took < 1.0 + STOP_MARGIN, took
    log = c.log.text()
    assert f"worker 0 (pid {workers[0]}) still running 1s after the stop signal, killing" in log
    assert f"worker 0 (pid {workers[0]}) was killed by signal KILL" in log
    assert f"worker 1 (pid {workers[1]}) exited with status 0" in log


def mount_tmpfs(path, size):
    """Mounts a tmpfs of `size` on path, or skips the test if mounting is refused."""
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the full-disk test (needs root): {r.stdout.strip()}")


def joblog_rows(path):
    """[(seq, ok)] of a joblog, checking that every line is whole."""
    with open(path) as f:
        lines = f.read().split("\n")
    assert lines[0].startswith("Seq\tHost\t")
    assert lines[-1] == "", "the joblog ends with a whole line"
    rows = []
    for line in lines[1:-1]:
        f = line.split("\t", 8)
        assert len(f) == 9, line
        rows.append((int(f[0]), f[6] == "0" and f[7] == "0"))
    return rows


def test_a_full_disk_for_the_joblog_stops_the_batch_and_resume_finishes_it(tmp_path):
    # Lines of ~560 bytes: a 64 KiB tmpfs is full after about a hundred of 400.
    small = tmp_path / "small"
    mount_tmpfs(small, "64k")
    try:
        n = 400
        tasks = tmp_path / "tasks"
        tasks.write_text("".join(f"{i:04d}{'x' * 500}\n" for i in range(n)))
        joblog = small / "joblog"
        cmd = [CORRAL, "run", "--metrics", "none", "--tasks", str(tasks), "--joblog", str(joblog),
               "--max", "4", "--", "true", "{}"]
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True, timeout=120)
        assert p.returncode == 1, p.stderr
        assert re.search(r"Failed to write the joblog line of task \d+: No space left on device; "
                         r"stopping the batch \(make room, then run again with --resume\)", p.stderr), p.stderr
        assert "tasks left undone" in p.stderr
        first = joblog_rows(joblog)   # still reads: no half line at the end
        assert 0 < len(first) < n
        assert all(ok for _, ok in first)

        # With room again, --resume runs exactly the tasks the joblog does not have.
        subprocess.run(["mount", "-o", "remount,size=4m", str(small)], check=True)
        p = subprocess.run([*cmd[:-3], "--resume", "--", "true", "{}"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        rows = joblog_rows(joblog)
        assert sorted(seq for seq, ok in rows if ok) == list(range(1, n + 1))
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def test_term_while_a_shared_command_hangs_at_startup_exits_2_promptly(tmp_path, corral):
    conf = tmp_path / "corral.yaml"
    conf.write_text("command: [sleep, '3600']\n"
                    "workers: {min: 1, max: 1}\n"
                    "shared:\n"
                    "  data: {command: [sh, -c, 'echo loader $$ >&2; exec sleep 3600']}\n")
    c = corral("run", "-c", str(conf))
    loader = int(c.log.wait(r"^loader (\d+)")[1])
    rc, took = timed_stop(c)
    assert rc == 2
    assert took < STOP_MARGIN, took
    assert "shared segment 'data': stopped while loading the command's output: TERM or INT arrived" in c.log.text()
    assert "started" not in c.log.text()
    assert wait_gone(loader, TIMEOUT), "the hanging command is killed"


def test_term_while_a_shared_command_hangs_in_a_reload_stops_corral(tmp_path, corral):
    conf = tmp_path / "corral.yaml"
    head = "command: [sleep, '3600']\nworkers: {min: 1, max: 1, stop_timeout: 1s}\nshared:\n"
    conf.write_text(head + "  data: {command: [echo, one]}\n")
    c = corral("run", "-c", str(conf))
    c.started(1)
    conf.write_text(head + "  data: {command: [sh, -c, 'echo loader $$ >&2; exec sleep 3600']}\n")
    c.signal(signal.SIGHUP)
    loader = int(c.log.wait(r"^loader (\d+)")[1])
    rc, took = timed_stop(c)
    assert rc == 0
    assert took < 1.0 + STOP_MARGIN, took
    assert "stopped while loading the command's output: TERM or INT arrived" in c.log.text()
    assert "reload refused, the running configuration and segments stay" in c.log.text()
    assert wait_gone(loader, TIMEOUT), "the hanging command is killed"
