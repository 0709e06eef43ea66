# SPDX-License-Identifier: MIT
"""workers.recycle: workers past their age, rss or tasks (stream lines) limit
are replaced one at a time, a new one first where a slot is free; a recycled
worker's exit is not a failure; in stream mode no line is lost or answered
twice across recycles."""
import json
import re
import signal
import subprocess
import time

from conftest import CORRAL, TIMEOUT, http_get, metric, running_counts, task

# Announces itself ("ready ID PID"), then waits for its stop signal (which kills it).
SLEEPER = task("idle")

# Worker 0 holds 96 MiB of touched memory; the others hold none.
HOG = task("idle", "--hold-mib", 96, "--hold-worker", 0)

# Ends with status 1 on its stop signal: a failure, were it not asked to stop.
FAILS_ON_TERM = task("idle", "--fail-on-term")

# A stream worker: "PID N" for a line "N [PADDING]", flushed per line.
TAGGER = task("line", "--tag-pid")


def write_config(tmp_path, command, workers, extra=""):
    path = tmp_path / "corral.yaml"
    # JSON is YAML: the command's code goes through with its quotes and newlines.
    path.write_text(f"command: {json.dumps(command)}\nworkers: {workers}\nsample: {{interval: 100ms}}\n"
                    f"policy: {{rules: []}}\n{extra}")
    return str(path)


def await_at_least(port, name, labels, n, timeout=TIMEOUT):
    """Polls /metrics until name{labels} >= n; returns the text."""
    deadline = time.monotonic() + timeout
    while True:
        text = http_get(port, "/metrics")[1]
        value = metric(text, name, labels)
        if value is not None and value >= n:
            return text
        assert time.monotonic() < deadline, f"{name}{labels} never reached {n}:\n{text}"
        time.sleep(0.05)


def stop(c):
    c.signal(signal.SIGTERM)
    assert c.wait() == 0
    return c.log.lines


def test_age_replaces_workers_one_at_a_time_never_below_the_pool(corral, tmp_path):
    cfg = write_config(tmp_path, SLEEPER, "{min: 2, max: 3, stop_timeout: 5s, recycle: {age: 300ms, jitter: 0}}")
    c = corral("run", "-c", cfg)
    port = c.metrics_port()
    text = await_at_least(port, "corral_worker_recycles_total", '{reason="age"}', 4)
    assert metric(text, "corral_restarts_total") == 0
    assert metric(text, "corral_crash_loop") == 0
    lines = stop(c)

    recycled = [line for line in lines if "recycling worker" in line]
    assert all(re.search(r"recycling worker \d \(pid \d+\): age 300ms reached", line) for line in recycled)
    # The pool never dropped below its two workers: the new one started first.
    counts = running_counts(lines)
    last_recycle = max(i for i, line in enumerate(lines) if "recycling worker" in line)
    during = running_counts(lines[:last_recycle + 1])
    assert during[:2] == [1, 2] and min(during[2:]) >= 2 and max(counts) <= 3
    # Every worker is a new process; slot ids stay below max and are reused.
    starts = [re.search(r"worker (\d+) started \(pid (\d+)\)", line) for line in lines]
    starts = [(int(m[1]), int(m[2])) for m in starts if m]
    ids = [i for i, _ in starts]
    assert len({pid for _, pid in starts}) == len(starts) >= 6
    assert set(ids) <= {0, 1, 2} and len(ids) > len(set(ids))
    # Recycled workers ended by the stop signal, and were counted as such.
    text = "\n".join(lines)
    assert "crash loop" not in text and "restarting worker" not in text


def test_rss_over_the_limit_is_replaced_and_a_worker_under_it_is_not(corral, tmp_path):
    cfg = write_config(tmp_path, HOG, "{min: 2, max: 2, recycle: {rss: 48MiB, jitter: 0}}")
    c = corral("run", "-c", cfg)
    port = c.metrics_port()
    # Worker 1 holds nothing and says so. Worker 0 may be sampled (and
    # recycled) while still touching its memory, before it says "ready": on
    # a busy machine that is a fair reading, so the test does not await it.
    light = int(c.out.wait(r"ready 1 (\d+)")[1])
    text = await_at_least(port, "corral_worker_recycles_total", '{reason="rss"}', 2)
    assert metric(text, "corral_worker_recycles_total", '{reason="age"}') == 0
    assert metric(text, "corral_restarts_total") == 0
    status = http_get(port, "/status")[1]
    assert f'"pid":{light},' in status.replace(" ", "")   # worker 1 still runs, untouched
    lines = stop(c)
    recycled = [line for line in lines if "recycling worker" in line]
    assert recycled and all(re.search(r"recycling worker 0 \(pid \d+\): rss [\d.]+ MiB over 48 MiB", line)
                            for line in recycled), recycled
    # Each recycled pid was one of worker 0's, never worker 1's.
    zeros = set(re.findall(r"worker 0 started \(pid (\d+)\)", "\n".join(lines)))
    assert {re.search(r"\(pid (\d+)\)", line)[1] for line in recycled} <= zeros
    assert f"(pid {light})" not in "\n".join(recycled)


def test_a_recycled_worker_that_fails_on_its_stop_signal_is_no_crash_loop(corral, tmp_path):
    # burst 1: two quick failures in a row would be a crash loop.
    cfg = write_config(tmp_path, FAILS_ON_TERM,
                       "{min: 1, max: 2, crash_limit: {burst: 1}, recycle: {age: 500ms, jitter: 0}}")
    c = corral("run", "-c", cfg)
    port = c.metrics_port()
    text = await_at_least(port, "corral_worker_recycles_total", '{reason="age"}', 4)
    text = await_at_least(port, "corral_worker_exits_total", '{outcome="failure"}', 4)
    assert metric(text, "corral_crash_loop") == 0
    assert metric(text, "corral_restarts_total") == 0
    assert metric(text, "corral_worker_exits_total", '{outcome="signal"}') == 0
    assert c.proc.poll() is None
    stop(c)


def run_stream(tmp_path, workers, lines, delay_us=0, padding=0):
    cfg = write_config(tmp_path, [*TAGGER, "--delay-us", str(delay_us)], workers,
                       "tasks: {from: \"-\", mode: stream, keep_order: true}\n")
    pad = " " + "x" * padding if padding else ""
    data = "".join(f"{i}{pad}\n" for i in range(1, lines + 1))
    p = subprocess.run([CORRAL, "run", "-c", cfg, "--metrics", "none"], input=data, text=True,
                       capture_output=True, timeout=TIMEOUT * 3)
    assert p.returncode == 0, p.stderr
    results = [line.split(" ") for line in p.stdout.splitlines()]
    # Every line answered exactly once, in input order.
    assert [int(n) for _, n in results] == list(range(1, lines + 1)), p.stderr
    answered = {}
    for pid, _ in results:
        answered[pid] = answered.get(pid, 0) + 1
    return answered, p.stderr


def test_stream_workers_are_recycled_every_n_lines_without_losing_one(tmp_path):
    answered, log = run_stream(tmp_path, "{min: 2, max: 3, recycle: {tasks: 100, jitter: 0}}", 1000)
    # Each worker answered its 100 lines, then was replaced.
    assert max(answered.values()) <= 100 and len(answered) >= 10, answered
    assert len(re.findall(r"recycling worker \d \(pid \d+\): 100 lines answered", log)) >= 8, log
    assert "given up" not in log and "left without a result" not in log


def test_stream_workers_recycled_by_age_hand_over_their_lines(tmp_path):
    # Slow lines: a worker reaches its age with lines outstanding and answers
    # them before it goes. Long lines keep what a worker holds at a few dozen.
    answered, log = run_stream(tmp_path, "{min: 2, max: 3, recycle: {age: 300ms, jitter: 0}}", 600, 2000,
                               padding=8000)
    assert len(answered) >= 3 and "recycling worker" in log, log
    assert "given up" not in log and "left without a result" not in log


def test_check_warns_that_tasks_needs_stream_mode(tmp_path):
    cfg = write_config(tmp_path, ["true"], "{recycle: {tasks: 10}}")
    p = subprocess.run([CORRAL, "check", "-c", cfg], capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert "warning: workers.recycle.tasks counts stream-mode lines only" in p.stderr
    cfg = write_config(tmp_path, ["true"], "{recycle: {tasks: 10}}", "tasks: {from: x, mode: stream}\n")
    p = subprocess.run([CORRAL, "check", "-c", cfg], capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0 and "recycle" not in p.stderr, p.stderr
