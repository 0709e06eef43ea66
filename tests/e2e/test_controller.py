# SPDX-License-Identifier: MIT
"""The run loop end to end: configuration files, reload on HUP (refused when
broken, applied when valid, rolling when the command changes), the metrics a
running pool serves, and what it tells systemd through NOTIFY_SOCKET."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import CORRAL, PYTHON, TIMEOUT, await_metric, metric, running_counts
from conftest import http_get as get

SLEEPER_CODE = r"""
import os, signal, sys
os.write(1, f"ready {os.environ['CORRAL_WORKER_ID']} {os.getpid()} {sys.argv[1]}\n".encode())
while True: signal.pause()
"""


def config(path, version="v1", min=2, max=3, extra=""):
    path.write_text(
        f"command: [{PYTHON}, -c, {json.dumps(SLEEPER_CODE)}, {version}]\n"
        f"workers: {{min: {min}, max: {max}, stop_timeout: 5s}}\n"
        f"policy: {{rules: []}}\n"
        + extra)
    return str(path)


def test_config_file_sets_the_pool(corral, tmp_path):
    c = corral("run", "-c", config(tmp_path / "c.yaml", min=2, max=3))
    assert sorted(c.started(2)) == [0, 1]
    assert "pool of 2-3 workers: starting 2" in c.log.text()
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_flags_override_the_file(corral, tmp_path):
    c = corral("run", "-c", config(tmp_path / "c.yaml", min=2, max=3), "--min", "1", "--max", "1")
    c.started(1)
    assert "pool of 1-1 workers: starting 1" in c.log.text()
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_broken_config_at_start_names_file_line_and_column(corral, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("command: [true]\nworkers:\n  mx: 3\n")
    c = corral("run", "-c", str(path))
    assert c.wait() == 2
    assert f"{path}:3:3: unknown key 'mx'" in c.log.text()


def test_reload_with_a_broken_file_keeps_the_running_config(corral, tmp_path):
    path = tmp_path / "c.yaml"
    c = corral("run", "-c", config(path, min=2, max=3))
    port = c.metrics_port()
    before = c.started(2)
    path.write_text(path.read_text() + "workers: {min: 5}\n  bad indentation\n")
    c.signal(signal.SIGHUP)
    c.log.wait(r"reload refused: .* has errors; the running configuration stays")
    assert re.search(rf"{re.escape(str(path))}:\d+:\d+: ", c.log.text())
    await_metric(port, "corral_config_reloads_total", '{result="failed"}', 1)
    # Still the same two workers: nothing was stopped or started.
    assert c.children() == sorted(before.values())
    c.signal(signal.SIGTTIN)    # the old bounds still apply: max 3
    c.log.wait(r"scale 2 -> 3 \(by hand\)$")
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_reload_applies_new_bounds(corral, tmp_path):
    path = tmp_path / "c.yaml"
    c = corral("run", "-c", config(path, min=1, max=2))
    port = c.metrics_port()
    c.started(1)
    config(path, min=3, max=4)
    c.signal(signal.SIGHUP)
    c.log.wait(r"reloaded: 3-4 workers")
    assert sorted(c.started(2)) == [1, 2]
    text = await_metric(port, "corral_config_reloads_total", '{result="ok"}', 1)
    await_metric(port, "corral_workers_max", "", 4)
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_reload_with_a_new_command_rolls_workers_without_going_below_min(corral, tmp_path):
    path = tmp_path / "c.yaml"
    c = corral("run", "-c", config(path, "v1", min=2, max=3))
    c.started(2)
    for _ in range(2):
        c.out.wait(r"^ready \d+ \d+ v1$")
    config(path, "v2", min=2, max=3)
    c.signal(signal.SIGHUP)
    for _ in range(2):
        c.out.wait(r"^ready \d+ \d+ v2$")
    # Both v1 workers are gone once their v2 replacements ran.
    for _ in range(2):
        c.log.wait(r"worker \d+ \(pid \d+\) was killed by signal TERM")
    c.signal(signal.SIGTERM)
    assert c.wait() == 0
    lines = c.log.lines
    stop = next(i for i, line in enumerate(lines) if "received SIGTERM" in line)
    during = running_counts(lines[:stop])
    assert min(during[1:]) >= 2, during
    assert running_counts(lines)[-1] == 0


def test_metrics_of_a_running_pool(corral, tmp_path):
    c = corral("run", "--min", "3", "--max", "3", "--",
               PYTHON, "-c", SLEEPER_CODE, "x")
    port = c.metrics_port()
    workers = c.started(3)
    text = await_metric(port, "corral_workers", '{state="running"}', 3)
    assert sorted(workers.values()) == c.children()
    deadline = time.monotonic() + TIMEOUT
    while metric(text, "corral_cpu_busy_ratio") is None:   # from the first sample on
        assert time.monotonic() < deadline, text
        time.sleep(0.05)
        text = get(port, "/metrics")[1]
    for name in ("corral_build_info", "corral_workers_desired", "corral_cpu_busy_ratio",
                 "corral_worker_exits_total", "corral_restarts_total", "corral_crash_loop",
                 "process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_start_time_seconds"):
        assert re.search(rf"^{name}\b", text, re.M), name

    os.kill(workers[2], signal.SIGKILL)
    c.log.wait(r"restarting worker 2")
    c.started(1)
    text = await_metric(port, "corral_worker_exits_total", '{outcome="signal"}', 1)
    assert metric(text, "corral_restarts_total") == 1
    await_metric(port, "corral_workers", '{state="running"}', 3)

    if shutil.which("promtool"):
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr

    status, body = get(port, "/status")
    assert status == 200
    s = json.loads(body)
    assert sorted(w["pid"] for w in s["workers"]) == c.children()
    assert get(port, "/healthz")[0] == 200
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_healthz_is_503_while_workers_are_missing(corral):
    # A worker that fails at once, with a long backoff: below min while it waits.
    c = corral("run", "--restart-delay", "1h", "--", "false")
    port = c.metrics_port()
    c.log.wait(r"restarting worker 0 in 1h")
    deadline = time.monotonic() + TIMEOUT
    while get(port, "/healthz")[0] != 503:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_crash_loop_is_in_the_textfile(corral, tmp_path):
    path = tmp_path / "c.yaml"
    prom = tmp_path / "corral.prom"
    path.write_text(f"command: [false]\nworkers: {{restart_backoff: {{initial: 1ms}}, crash_limit: {{burst: 2}}}}\n"
                    f"metrics: {{textfile: {prom}}}\n")
    c = corral("run", "-c", str(path))
    assert c.wait() == 3
    text = prom.read_text()
    assert metric(text, "corral_crash_loop") == 1
    assert metric(text, "corral_worker_exits_total", '{outcome="failure"}') == 3


def test_busy_port_is_a_clear_error(corral):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        c = corral("run", "--metrics", f"127.0.0.1:{port}", "--", "true")
        assert c.wait() == 2
        assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in c.log.text()
        assert "started" not in c.log.text()


def test_metrics_none_serves_nothing(corral):
    c = corral("run", "--metrics", "none", "--", "sleep", "1h")
    c.started(1)
    assert "metrics on port" not in c.log.text()
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_sd_notify_protocol(corral, tmp_path, abstract):
    path = tmp_path / "c.yaml"
    name = f"@corral-test-{os.getpid()}" if abstract else str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name[1:] if abstract else name)
        sock.settimeout(TIMEOUT)

        def receive(pattern):
            while True:
                msg = sock.recv(4096).decode()
                if re.search(pattern, msg, re.M):
                    return msg

        env = dict(os.environ, NOTIFY_SOCKET=name, WATCHDOG_USEC="400000")
        c = corral("run", "-c", config(path, min=2, max=2), env=env)
        receive(r"^READY=1$")
        # The workers were started (and logged) before READY was sent.
        c.started(2)
        receive(r"^STATUS=workers 2/2, cpu \d+%$")
        receive(r"^WATCHDOG=1$")
        c.signal(signal.SIGHUP)
        msg = receive(r"^RELOADING=1$")
        assert re.search(r"^MONOTONIC_USEC=\d+$", msg, re.M)
        receive(r"^READY=1$")
        c.signal(signal.SIGTERM)
        receive(r"^STOPPING=1$")
        assert c.wait() == 0
