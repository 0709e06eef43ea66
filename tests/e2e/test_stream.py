# SPDX-License-Identifier: MIT
"""`corral run --stream`: long-lived workers answer one line per line. Order,
at-least-once across a killed worker, a poison line, a hung line under
--timeout, a protocol error, endless input in bounded memory, and TERM."""
import io
import json
import os
import random
import resource
import signal
import subprocess
import threading

from conftest import CORRAL, PYTHON, TIMEOUT, Stream, task, wait_gone

STREAM_TIMEOUT = 120

# A deterministic worker: "out-LINE" per line, flushed per line. The workers
# here are C helpers (tests/tasks/line_task.c): tests that kill and replace
# workers must not measure Python's start-up on a busy machine.
ECHO = task("line")


def run_stream(*args, input=None, timeout=STREAM_TIMEOUT):
    """Runs `corral run --metrics none --stream --tasks - ARGS` to its end (bytes)."""
    return subprocess.run([CORRAL, "run", "--metrics", "none", "--stream", "--tasks", "-", *args],
                          input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


class Live:
    """corral in stream mode with its stdin ours to write, its output and log awaitable."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([CORRAL, "run", "--metrics", "none", "--stream", "--tasks", "-", *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.log = Stream(self.proc.stderr)
        self.out = Stream(self.proc.stdout)

    def send(self, lines):
        self.proc.stdin.write("".join(f"{line}\n" for line in lines))
        self.proc.stdin.flush()

    def finish(self):
        self.proc.stdin.close()
        rc = self.proc.wait(TIMEOUT)
        return rc, self.out.drain().split("\n"), self.log.drain()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def numbers(n):
    return "".join(f"{i}\n" for i in range(1, n + 1)).encode()


def test_hundred_thousand_lines_through_two_workers_in_order():
    p = run_stream("--min", "2", "--max", "2", "--keep-order", "--", "sed", "s/^/r/", input=numbers(100000))
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().split("\n")[:-1] == [f"r{i}" for i in range(1, 100001)]
    assert b"100000 lines answered" in p.stderr
    # Both workers took lines.
    assert p.stderr.count(b"started (pid") >= 2


def test_without_keep_order_the_same_results():
    p = run_stream("--min", "2", "--max", "2", "--", "sed", "s/^/r/", input=numbers(100000))
    assert p.returncode == 0, p.stderr
    assert sorted(p.stdout.decode().split("\n")[:-1]) == sorted(f"r{i}" for i in range(1, 100001))


def test_a_worker_killed_mid_stream_loses_no_line():
    # --retries: a line a worker dies on counts against it, whoever killed the worker.
    c = Live("--min", "2", "--max", "2", "--keep-order", "--retries", "3", "--restart-delay", "10ms",
             "--", *ECHO)
    try:
        m = c.log.wait(r"worker 0 started \(pid (\d+)\)")
        victim = int(m[1])
        c.send(range(1, 5001))
        c.out.wait(r"^out-100$")
        os.kill(victim, signal.SIGKILL)
        c.log.wait(rf"worker 0 \(pid {victim}\) was killed by signal KILL")
        c.send(range(5001, 10001))
        rc, out, log = c.finish()
        assert rc == 0, log
        # At-least-once, and with a deterministic worker and keep_order: exactly.
        assert out == [f"out-{i}" for i in range(1, 10001)], log
    finally:
        c.close()


POISON = task("line", "--exit-on", "poison")     # exits 3 on "poison"


def test_a_poison_line_is_given_up_after_its_retries_and_named():
    lines = [str(i) for i in range(1, 201)]
    lines[49] = "poison"
    p = run_stream("--min", "2", "--max", "2", "--keep-order", "--retries", "2", "--restart-delay", "10ms",
                   "--", *POISON, input="".join(f"{x}\n" for x in lines).encode())
    assert p.returncode == 1, p.stderr
    log = p.stderr.decode()
    assert 'line 50 ("poison") given up: it ended 3 workers' in log
    assert "1 given up (line 50)" in log
    # Its placeholder (an empty line by default) keeps the others in place.
    assert p.stdout.decode().split("\n")[:-1] == ["" if x == "poison" else f"out-{x}" for x in lines]


HANG = task("line", "--hang-on", "hang")         # never answers "hang"


def test_a_worker_hung_on_a_line_is_replaced_under_timeout():
    lines = [str(i) for i in range(1, 1001)]
    lines[500] = "hang"
    # --timeout is what is tested, not a deadline: 1 s is far above what a
    # C worker takes to answer a line even on a busy machine.
    p = run_stream("--min", "2", "--max", "2", "--timeout", "1s", "--keep-order", "--", *HANG,
                   input="".join(f"{x}\n" for x in lines).encode(), timeout=60)
    log = p.stderr.decode()
    assert p.returncode == 1, log
    assert "has had line 501 for over 1s, replacing it" in log
    assert log.count("for over 1s, replacing it") == 1, log       # no other line counted as hung
    assert 'line 501 ("hang") given up' in log
    assert p.stdout.decode().split("\n")[:-1] == ["" if x == "hang" else f"out-{x}" for x in lines]


def test_a_hung_line_retried_comes_back(tmp_path):
    hang_once = task("line", "--hang-on", "hang", "--hang-once", tmp_path / "hung-once")
    lines = [str(i) for i in range(1, 301)] + ["hang"] + [str(i) for i in range(301, 601)]
    p = run_stream("--min", "2", "--max", "2", "--timeout", "1s", "--retries", "1", "--keep-order",
                   "--", *hang_once, input="".join(f"{x}\n" for x in lines).encode(), timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().split("\n")[:-1] == [f"out-{x}" for x in lines]


# Answers "dup" twice: the second answer has no line pending.
DUP = task("line", "--dup-on", "dup")


def test_timeout_does_not_count_a_workers_start_up():
    # Each worker waits 2 s before it reads anything (a model server loading):
    # --timeout 1s bounds the work on a line, not the start-up, so no worker
    # is replaced and every line is answered.
    slow = task("line", "--start-delay-us", "2000000")
    lines = [str(i) for i in range(1, 201)]
    p = run_stream("--min", "2", "--max", "2", "--timeout", "1s", "--keep-order", "--", *slow,
                   input="".join(f"{x}\n" for x in lines).encode(), timeout=60)
    log = p.stderr.decode()
    assert p.returncode == 0, log
    assert "replacing it" not in log
    assert p.stdout.decode().split("\n")[:-1] == [f"out-{x}" for x in lines]


def test_a_slow_starting_worker_hung_on_its_first_line_is_still_replaced():
    # The clock starts once the worker has read its line: a hang after the
    # start-up is caught as ever.
    slow_hang = task("line", "--start-delay-us", "500000", "--hang-on", "hang")
    lines = ["hang"] + [str(i) for i in range(2, 51)]
    p = run_stream("--min", "1", "--max", "1", "--timeout", "1s", "--retries", "0", "--keep-order", "--",
                   *slow_hang, input="".join(f"{x}\n" for x in lines).encode(), timeout=60)
    log = p.stderr.decode()
    assert p.returncode == 1, log
    assert "has had line 1 for over 1s, replacing it" in log
    assert 'line 1 ("hang") given up' in log
    # The given-up line's place holds its placeholder, an empty line.
    assert p.stdout.decode().split("\n")[:-1] == [""] + [f"out-{x}" for x in lines[1:]]


def test_an_unsolicited_result_is_a_protocol_error_and_the_worker_is_replaced():
    c = Live("--min", "1", "--max", "1", "--keep-order", "--", *DUP)
    try:
        first = int(c.log.wait(r"worker 0 started \(pid (\d+)\)")[1])
        c.send(list(range(1, 11)) + ["dup"])
        c.out.wait(r"^out-dup$")
        c.log.wait(r"worker 0 wrote a result with no line pending \(protocol error\), replacing it")
        second = int(c.log.wait(r"worker 0 started \(pid (\d+)\)")[1])
        assert second != first
        c.send(range(11, 21))
        rc, out, log = c.finish()
        assert rc == 0, log
        assert out == [f"out-{i}" for i in list(range(1, 11)) + ["dup"] + list(range(11, 21))], log
    finally:
        c.close()


# Runs argv[2:] and writes the peak RSS (KiB) of it and its waited-for
# descendants (corral and its cats: the largest of them) to the file argv[1].
PEAK_RSS = ("import resource, subprocess, sys\nrc = subprocess.call(sys.argv[2:])\n"
            "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
            "sys.exit(rc)\n")


def test_endless_input_runs_in_bounded_memory(tmp_path):
    """256 MiB of lines through two cats: corral keeps a few MiB of them."""
    size = 17 * (256 * 1024 * 1024 // 17)   # whole lines of "0123456789abcdef\n"
    peak_file = tmp_path / "peak"
    env = dict(os.environ)
    # ASan holds freed memory in a 256 MiB quarantine by default: not corral's.
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "quarantine_size_mb=4"]))
    p = subprocess.Popen([PYTHON, "-c", PEAK_RSS, str(peak_file), CORRAL, "run", "-q", "--metrics", "none",
                          "--stream", "--tasks", "-", "--min", "2", "--max", "2", "--", "cat"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)

    def produce():
        chunk = b"0123456789abcdef\n" * 4096
        try:
            for _ in range(size // len(chunk)):
                p.stdin.write(chunk)
            p.stdin.write(chunk[:size % len(chunk)])
            p.stdin.close()
        except BrokenPipeError:
            pass        # corral ended early: its exit status says why

    producer = threading.Thread(target=produce)
    producer.start()
    total = lines = 0
    while True:
        b = p.stdout.read(1 << 20)
        if not b:
            break
        total += len(b)
        lines += b.count(b"\n")
    rc = p.wait(STREAM_TIMEOUT)
    producer.join(TIMEOUT)
    assert rc == 0, p.stderr.read()
    assert total == size and lines == size // 17
    peak = int(peak_file.read_text())
    limit = 96 * 1024 if os.environ.get("CORRAL_SANITIZED") == "1" else 24 * 1024
    assert peak < limit, f"peak RSS {peak} KiB"


def test_term_mid_stream_exits_1_with_lines_left_undone():
    producer = subprocess.Popen(["yes", "line"], stdout=subprocess.PIPE)
    p = subprocess.Popen([CORRAL, "run", "--metrics", "none", "--stream", "--tasks", "-", "--min", "2",
                          "--max", "2", "--keep-order", "--", "cat"], stdin=producer.stdout,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    producer.stdout.close()
    try:
        log = Stream(io.TextIOWrapper(p.stderr))
        seen = threading.Event()
        received = []

        def drain():
            while True:
                b = p.stdout.read(1 << 16)
                if not b:
                    return
                received.append(b)
                seen.set()

        t = threading.Thread(target=drain, daemon=True)
        t.start()
        assert seen.wait(TIMEOUT)
        p.send_signal(signal.SIGTERM)
        assert p.wait(TIMEOUT) == 1
        t.join(TIMEOUT)
        text = log.drain()
        assert "stopped with lines left undone" in text
        out = b"".join(received)
        assert out.endswith(b"\n") and set(out.split(b"\n")[:-1]) == {b"line"}
        assert wait_gone(p.pid, TIMEOUT)
    finally:
        producer.kill()
        producer.wait()
        if p.poll() is None:
            p.kill()
            p.wait()


def test_chaos_workers_killed_every_20ms_lose_and_repeat_no_line(tmp_path):
    """20,000 lines while a helper SIGKILLs a random worker every 20 ms: with
    retries, exactly one result per line, in order."""
    n = 20000
    # Every kill is a quick failure, which doubles the restart delay; capped
    # at 20 ms here, so that workers keep coming back while the killer runs
    # (with the default 30 s cap, the stream would wait on the backoff).
    cfg = tmp_path / "chaos.yaml"
    cfg.write_text(f"command: {json.dumps(ECHO)}\n"
                   "workers: {min: 3, max: 3, crash_limit: {burst: 1000},\n"
                   "          restart_backoff: {initial: 5ms, max: 20ms}}\n"
                   "tasks: {from: '-', mode: stream, keep_order: true, retries: 100}\n")
    c = Live("-c", str(cfg))
    stop = threading.Event()
    kills = []

    def killer():
        while not stop.wait(0.02):
            with open(f"/proc/{c.proc.pid}/task/{c.proc.pid}/children") as f:
                workers = f.read().split()
            if workers:
                try:
                    os.kill(int(random.choice(workers)), signal.SIGKILL)
                    kills.append(1)
                except ProcessLookupError:
                    pass

    try:
        c.log.wait(r"worker 2 started")
        t = threading.Thread(target=killer, daemon=True)
        t.start()
        c.send(range(1, n + 1))
        c.out.wait(rf"^out-{n}$", timeout=STREAM_TIMEOUT)
        stop.set()
        t.join(TIMEOUT)
        rc, out, log = c.finish()
        assert rc == 0, log
        assert out == [f"out-{i}" for i in range(1, n + 1)]
        # A fast machine may answer everything before many kills land.
        assert kills and "was killed by signal KILL" in log, log
    finally:
        stop.set()
        c.close()


def test_stream_without_tasks_reads_stdin():
    p = subprocess.run([CORRAL, "run", "--metrics", "none", "--stream", "--keep-order", "--", "cat"],
                       input=numbers(1000), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert p.stdout == numbers(1000)
