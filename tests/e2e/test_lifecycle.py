# SPDX-License-Identifier: MIT
"""A worker's start and what a failed one costs: a reload to a command that
cannot run keeps the running workers; a replacement that cannot start is that
worker's failure (backoff, crash loop), not exit 2; a start that fails for want
of fds is retried until the pool is at its size; a worker sees fds 0-2 and its
shared segments, nothing else; `corral check` points at a command or cwd that
cannot be used. Workers are coreutils' sleep: nothing here waits for Python."""
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import CORRAL, TIMEOUT, alive

SLEEP = shutil.which("sleep")


def write_config(path, command, workers, extra=""):
    path.write_text(f"command: {command}\nworkers: {workers}\n{extra}")
    return str(path)


def await_true(what, predicate, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.02)


@pytest.mark.parametrize("kind", ["missing", "not-executable", "bad-cwd"])
def test_reload_to_a_command_that_cannot_run_keeps_the_workers(corral, tmp_path, kind):
    cfg = tmp_path / "corral.yaml"
    write_config(cfg, f"[{SLEEP}, '1000']", "{min: 2, max: 2}")
    c = corral("run", "-c", str(cfg))
    pids = c.started(2)

    noexec = tmp_path / "noexec"
    noexec.write_text("#!/bin/sh\n")
    noexec.chmod(0o644)
    if kind == "missing":
        write_config(cfg, "[/nonexistent/prog]", "{min: 2, max: 2}")
        why = "the new command cannot run: '/nonexistent/prog': No such file or directory"
    elif kind == "not-executable":
        write_config(cfg, f"[{noexec}]", "{min: 2, max: 2}")
        why = f"the new command cannot run: '{noexec}': Permission denied"
    else:
        write_config(cfg, f"[{SLEEP}, '1000']", "{min: 2, max: 2, cwd: /nonexistent}")
        why = "the new workers.cwd '/nonexistent' cannot be used: No such file or directory"
    c.signal(signal.SIGHUP)
    line = c.log.wait(r"reload failed|reloaded: ")[0]
    assert line.startswith("reload failed"), c.log.text()
    assert f"{why}; the running workers stay" in c.log.text()
    assert all(alive(pid) for pid in pids.values())
    assert c.proc.poll() is None

    # The running configuration stays: a worker that dies is replaced by the old command.
    os.kill(pids[0], signal.SIGKILL)
    replaced = c.started(1)
    assert replaced.keys() == {0}
    # The spawn returns once the exec began; its arguments appear a moment later.
    await_true("the replacement's arguments", lambda: cmdline(replaced[0]))
    assert cmdline(replaced[0])[0] == SLEEP
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline") as f:
        return f.read().split("\0")[:-1]


def vanishing_command(tmp_path, workers):
    """A config whose command is a copy of sleep that the test can take away."""
    app = tmp_path / "app"
    shutil.copy(SLEEP, app)
    cfg = write_config(tmp_path / "corral.yaml", f"[{app}, '1000']", workers)
    return app, cfg


def test_replacement_whose_binary_is_missing_backs_off_and_recovers(corral, tmp_path):
    app, cfg = vanishing_command(tmp_path, "{min: 1, max: 1, restart_backoff: {initial: 10ms, max: 100ms}}")
    c = corral("run", "-c", cfg)
    pid = c.started(1)[0]
    away = tmp_path / "app.away"
    app.rename(away)                       # a deploy, half done
    os.kill(pid, signal.SIGKILL)
    c.log.wait(rf"Failed to start worker 0: cannot run '{re.escape(str(app))}': No such file or directory")
    c.log.wait(r"restarting worker 0 in")
    assert c.proc.poll() is None, "a replacement that cannot start is no exit 2"
    away.rename(app)                       # ... and done
    c.started(1)
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_replacement_that_never_starts_is_a_crash_loop(corral, tmp_path):
    app, cfg = vanishing_command(tmp_path, "{min: 1, max: 1, restart_backoff: {initial: 1ms, max: 10ms}, "
                                           "crash_limit: {burst: 2}}")
    c = corral("run", "-c", cfg)
    pid = c.started(1)[0]
    app.unlink()
    os.kill(pid, signal.SIGKILL)
    assert c.wait() == 3
    assert ("crash loop: '%s 1000' failed 3 times in a row, the last one could not start: "
            "No such file or directory; giving up" % app) in c.log.text()


def test_replacement_that_never_starts_keeps_the_running_workers(corral, tmp_path):
    app, cfg = vanishing_command(tmp_path, "{min: 2, max: 2, restart_backoff: {initial: 1ms, max: 10ms}, "
                                           "crash_limit: {burst: 2}}")
    c = corral("run", "-c", cfg)
    workers = c.started(2)
    first, second = workers[0], workers[1]
    away = tmp_path / "app.away"
    app.rename(away)
    os.kill(first, signal.SIGKILL)
    c.log.wait(rf"could not start 3 times in a row; the 1 running worker keeps running, retrying in")
    assert c.proc.poll() is None and alive(second), "a crash loop of starts never stops running workers"
    away.rename(app)
    c.started(1)
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_bad_cwd_at_startup_is_exit_2_and_says_which(corral, tmp_path):
    cfg = write_config(tmp_path / "corral.yaml", f"[{SLEEP}, '1000']", "{min: 1, max: 1, cwd: /nonexistent}")
    c = corral("run", "-c", cfg)
    assert c.wait() == 2
    assert "cannot use workers.cwd '/nonexistent': No such file or directory" in c.log.text()


def test_start_failing_for_want_of_fds_is_retried_until_the_pool_is_full(corral, tmp_path):
    cfg = tmp_path / "corral.yaml"
    write_config(cfg, f"[{SLEEP}, '1000']", "{min: 1, max: 30, restart_backoff: {initial: 10ms, max: 200ms}}",
                 "policy: {rules: []}\nsample: {interval: 1h}\n")
    c = corral("run", "-c", str(cfg))
    c.started(1)
    # Lower corral's soft fd limit to a few more than it holds, so that 30
    # workers (a pidfd each) cannot all start ...
    soft, hard = resource.prlimit(c.pid, resource.RLIMIT_NOFILE)
    resource.prlimit(c.pid, resource.RLIMIT_NOFILE, (len(fd_table(c.pid)) + 8, hard))
    try:
        write_config(cfg, f"[{SLEEP}, '1000']", "{min: 30, max: 30, restart_backoff: {initial: 10ms, max: 200ms}}",
                     "policy: {rules: []}\nsample: {interval: 1h}\n")
        c.signal(signal.SIGHUP)
        c.log.wait(r"Failed to start worker \d+: Too many open files")
        assert len(c.children()) < 30
    finally:
        # ... until the limit is raised again, as `prlimit --pid` would.
        resource.prlimit(c.pid, resource.RLIMIT_NOFILE, (soft, hard))
    await_true("30 workers", lambda: len(c.children()) == 30, timeout=60)
    assert c.proc.poll() is None
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def environ(pid):
    with open(f"/proc/{pid}/environ") as f:
        return dict(kv.split("=", 1) for kv in f.read().split("\0") if "=" in kv)


def fd_table(pid):
    """pid's open fds and what they are; one closed while it is read is left out."""
    table = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            table[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            pass
    return table


def test_a_worker_sees_fds_0_to_2_and_its_segments_only(corral, tmp_path):
    blob = tmp_path / "blob"
    blob.write_bytes(b"x" * 4096)
    cfg = write_config(tmp_path / "corral.yaml", f"[{SLEEP}, '1000']", "{min: 1, max: 1}",
                       f"shared: {{blob: {{path: {blob}}}}}\n")
    c = corral("run", "-c", cfg)
    pid = c.started(1)[0]
    # vfork lets corral go on while the kernel still builds the new image:
    # /proc/PID/environ is empty for that moment.
    await_true("the worker's environment", lambda: "CORRAL_SHM_BLOB" in environ(pid))
    segment = int(environ(pid)["CORRAL_SHM_BLOB"])
    # The worker's own start-up (the dynamic loader's ld.so.cache) may hold an
    # fd for a moment; one corral leaked would stay, and fail the deadline.
    await_true("only fds 0-2 and the segment", lambda: set(fd_table(pid)) == {0, 1, 2, segment})
    table = fd_table(pid)
    assert "memfd:corral:blob" in table[segment]
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_check_points_at_a_command_or_cwd_that_cannot_be_used(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("command: [/nonexistent/prog]\nworkers:\n  min: 1\n")
    r = subprocess.run([CORRAL, "check", "-c", str(cfg)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == f"{cfg}:1:10: warning: command: cannot run '/nonexistent/prog' here: No such file or directory\n"

    cfg.write_text(f"command: [{SLEEP}, '1']\nworkers:\n  cwd: /nonexistent\n")
    r = subprocess.run([CORRAL, "check", "-c", str(cfg)], capture_output=True, text=True, timeout=60)
    assert r.stderr == f"{cfg}:3:8: warning: workers.cwd: cannot use '/nonexistent' here: No such file or directory\n"
