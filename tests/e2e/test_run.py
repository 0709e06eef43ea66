# SPDX-License-Identifier: MIT
"""`corral run` end to end: a fixed pool that stays full, restarts with backoff,
gives up on a crash loop, stops gracefully, and never leaves a process behind."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import CORRAL, TIMEOUT, py, alive, wait_gone

# Workers announce themselves on stdout once their signal handlers are in place,
# so a test never signals a worker before it is ready. One os.write per line:
# workers share corral's stdout pipe, and a line must arrive whole.
SLEEPER = py(r"""
import os, signal
os.write(1, f"ready {os.environ['CORRAL_WORKER_ID']} {os.environ['CORRAL_WORKERS_MAX']} {os.getpid()}\n".encode())
while True: signal.pause()
""")

DRAINER = py(r"""
import os, signal, sys
def drain(*_):
    os.write(1, f"draining {os.environ['CORRAL_WORKER_ID']}\n".encode())
    sys.exit(0)
signal.signal(signal.SIGTERM, drain)
os.write(1, f'ready {os.getpid()}\n'.encode())
while True: signal.pause()
""")

IGNORER = py(r"""
import os, signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)
os.write(1, f'ready {os.getpid()}\n'.encode())
while True: signal.pause()
""")


def forker(grandchild_ignores_term):
    return py(f"""
import os, signal
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    if {grandchild_ignores_term}:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.write(w, b'x')
    while True: signal.pause()
os.read(r, 1)
os.write(1, f'grandchild {{pid}}\\n'.encode())
os.waitpid(pid, 0)
""")


def test_pool_of_three_stays_at_three_while_workers_are_killed(corral):
    c = corral("run", "--min", "3", "--max", "3", "--", *SLEEPER)
    workers = c.started(3)
    assert sorted(workers) == [0, 1, 2]
    ready = [c.out.wait(r"^ready (\d+) (\d+) (\d+)$") for _ in range(3)]
    assert sorted(int(m[1]) for m in ready) == [0, 1, 2]
    assert {m[2] for m in ready} == {"3"}

    for victim_id in (1, 0, 1):
        victim = workers[victim_id]
        os.kill(victim, signal.SIGKILL)
        c.log.wait(rf"worker {victim_id} \(pid {victim}\) was killed by signal KILL")
        c.log.wait(rf"restarting worker {victim_id} in")
        replaced = c.started(1)
        assert list(replaced) == [victim_id], "the freed worker id is reused"
        workers.update(replaced)
        m = c.out.wait(r"^ready (\d+) (\d+) (\d+)$")
        assert int(m[1]) == victim_id
        assert c.children() == sorted(workers.values())

    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_worker_exiting_at_once_is_a_crash_loop_with_backoff(corral):
    c = corral("run", "--restart-delay", "10ms", "--crash-limit", "3", "--", "false")
    assert c.wait() == 3
    log = c.log.text()
    delays = re.findall(r"restarting worker 0 in (\S+)", log)
    assert delays == ["10ms", "20ms", "40ms"], log
    assert len(re.findall(r"worker 0 \(pid \d+\) exited with status 1", log)) == 4
    assert "crash loop: 'false' failed 4 times in a row, the last one exited with status 1; giving up" in log


def test_crash_loop_names_the_signal_that_killed_the_worker(corral):
    c = corral("run", "--restart-delay", "1ms", "--crash-limit", "1", "--",
               *py("import os; os.kill(os.getpid(), 9)"))
    assert c.wait() == 3
    assert re.search(r"crash loop: '.*' failed 2 times in a row, the last one was killed by signal KILL",
                     c.log.text())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_drains_every_worker(corral, sig):
    c = corral("run", "--min", "2", "--max", "2", "--", *DRAINER)
    c.started(2)
    c.out.wait("^ready")
    c.out.wait("^ready")
    c.signal(sig)
    assert c.wait() == 0
    out = c.out.drain()
    assert sorted(re.findall(r"draining (\d)", out)) == ["0", "1"]
    log = c.log.text()
    assert len(re.findall(r"worker \d \(pid \d+\) exited with status 0", log)) == 2
    assert len(re.findall(r"started \(pid", log)) == 2, "nothing is restarted while stopping"


def test_worker_ignoring_term_is_killed_after_stop_timeout(corral):
    c = corral("run", "--stop-timeout", "300ms", "--", *IGNORER)
    pid = c.started(1)[0]
    c.out.wait("^ready")
    began = time.monotonic()
    c.signal(signal.SIGTERM)
    assert c.wait() == 0
    assert time.monotonic() - began >= 0.3
    log = c.log.text()
    assert f"worker 0 (pid {pid}) still running 300ms after the stop signal, killing" in log
    assert f"worker 0 (pid {pid}) was killed by signal KILL" in log


def test_second_stop_signal_kills_at_once(corral):
    c = corral("run", "--stop-timeout", "1h", "--", *IGNORER)
    pid = c.started(1)[0]
    c.out.wait("^ready")
    c.signal(signal.SIGTERM)
    c.log.wait("stopping 1 worker")
    c.signal(signal.SIGINT)
    assert c.wait() == 0
    assert f"worker 0 (pid {pid}) was killed by signal KILL" in c.log.text()


def test_corral_killed_leaves_no_worker_behind(corral):
    c = corral("run", "--min", "3", "--max", "3", "--", *SLEEPER)
    pids = list(c.started(3).values())
    for _ in range(3):
        c.out.wait("^ready")
    c.proc.kill()
    c.proc.wait()
    for pid in pids:
        assert wait_gone(pid, 1.0), f"worker {pid} outlived corral by more than 1s"


@pytest.mark.parametrize("ignores_term", [False, True], ids=["grandchild-obeys", "grandchild-ignores-term"])
def test_stop_takes_the_workers_grandchildren(corral, ignores_term):
    c = corral("run", "--stop-timeout", "5s", "--", *forker(ignores_term))
    c.started(1)
    grandchild = int(c.out.wait(r"^grandchild (\d+)$")[1])
    assert alive(grandchild)
    c.signal(signal.SIGTERM)
    assert c.wait() == 0
    assert wait_gone(grandchild, 1.0)


def test_missing_command_fails_at_once_with_the_os_reason(corral):
    c = corral("run", "--", "./definitely-not-here", "arg")
    assert c.wait() == 2
    log = c.log.text()
    assert "corral: cannot run './definitely-not-here': No such file or directory" in log
    assert "started" not in log and "restarting" not in log


def test_command_that_is_not_executable_fails_with_permission_denied(corral, tmp_path):
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    c = corral("run", "--", str(script))
    assert c.wait() == 2
    assert f"corral: cannot run '{script}': Permission denied" in c.log.text()


def test_manual_resize_with_ttin_and_ttou(corral):
    c = corral("run", "--min", "1", "--max", "2", "--", *SLEEPER)
    c.started(1)
    c.out.wait("^ready")
    c.signal(signal.SIGTTIN)
    c.log.wait(r"scale 1 -> 2 \(by hand\)$")
    assert list(c.started(1)) == [1]
    c.signal(signal.SIGTTIN)
    c.log.wait(r"manual resize: already 2 workers \(max 2\)$")
    c.signal(signal.SIGTTOU)
    c.log.wait(r"scale 2 -> 1 \(by hand\)$")
    c.log.wait(r"worker 1 \(pid \d+\) was killed by signal TERM")
    c.signal(signal.SIGTTOU)
    c.log.wait(r"manual resize: already 1 worker \(min 1\)$")
    c.signal(signal.SIGTERM)
    assert c.wait() == 0
    assert len(re.findall(r"started \(pid", c.log.text())) == 2
    assert len(re.findall(r"-> 2", c.log.text())) == 1, "a change is logged once"


def test_worker_exits_are_not_restarted_while_stopping(corral):
    c = corral("run", "--min", "2", "--max", "2", "--", *SLEEPER)
    c.started(2)
    c.signal(signal.SIGTERM)
    assert c.wait() == 0
    assert "restarting" not in c.log.text()


@pytest.mark.parametrize("args, reason", [
    (["--bogus", "--", "true"], "unknown option '--bogus'"),
    (["--min", "3", "--max", "2", "--", "true"], "--min 3 is larger than --max 2"),
    (["--max", "0", "--", "true"], "--max: '0' is not a number of workers"),
    (["--min", "two", "--", "true"], "--min: 'two' is not a number of workers"),
    ([], "no COMMAND to run"),
    (["--"], "no COMMAND to run"),
])
def test_bad_command_lines_give_a_reason_and_the_usage(args, reason):
    r = subprocess.run([CORRAL, "run", *args], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 2
    first = r.stderr.splitlines()[0]
    assert first.startswith("corral run: ") and reason in first, r.stderr
    # One line of reason and a pointer to --help, not the whole help.
    assert r.stderr.splitlines()[1:] == ["Try 'corral run --help' for more information."], r.stderr


def test_version_and_help():
    r = subprocess.run([CORRAL, "version"], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0 and re.fullmatch(r"corral \d+\.\d+\.\d+\n", r.stdout)
    r = subprocess.run([CORRAL, "--help"], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0 and "Usage: corral COMMAND" in r.stdout
    r = subprocess.run([CORRAL, "run", "--help"], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0 and "Usage: corral run" in r.stdout
    r = subprocess.run([CORRAL, "frobnicate"], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr
    r = subprocess.run([CORRAL], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 2
