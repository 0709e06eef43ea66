# SPDX-License-Identifier: MIT
"""Reliability of per-task batch and stream mode (issues 18 and 19): a stop
reaches the tasks, a slow or broken reader of corral's output neither hangs
corral nor loses output silently, memory stays bounded whatever tasks write,
and the joblog says "done" only for output that was written."""
import os
import signal
import subprocess
import time

from conftest import CORRAL, TIMEOUT, Stream, wait_gone
from test_batch import read_joblog, ok_seqs, write_lines

# Deadlines only catch hangs.
HANG = 60


def start(*args, stdout=subprocess.PIPE, **kwargs):
    return subprocess.Popen([CORRAL, "run", "--metrics", "none", *args], stdin=subprocess.DEVNULL,
                            stdout=stdout, stderr=subprocess.PIPE, text=True, **kwargs)


def finish(proc, timeout=HANG):
    try:
        return proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---- TERM reaches the tasks ------------------------------------------------------

def test_term_sends_stop_signal_to_running_tasks_which_can_act_on_it(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 11))
    joblog = tmp_path / "joblog"
    # A task that traps TERM writes its marker and exits 0; it would block forever otherwise.
    script = ('trap \'echo "stopped $1" > "$0/marker.$1"; exit 0\' TERM; '
              'echo "started $1" >&2; sleep 1000 & wait')
    proc = start("--max", "2", "--stop-timeout", "30s", "--tasks", tasks, "--joblog", str(joblog),
                 "--", "sh", "-c", script, str(tmp_path))
    log = Stream(proc.stderr)
    try:
        log.wait(r"^started \d+$")
        log.wait(r"^started \d+$")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert finish(proc) == 1
        # Far below the stop_timeout (30 s) a kill would take.
        assert time.monotonic() - t0 < 20
    finally:
        log.drain()
    markers = sorted(f for f in os.listdir(tmp_path) if f.startswith("marker."))
    assert len(markers) == 2, log.text()
    assert "sending TERM to 2 running" in log.text()
    assert "stopped with tasks left undone" in log.text()
    # They ended as they chose (exit 0): their joblog lines say so.
    assert sorted(ok_seqs(read_joblog(joblog))) == sorted(int(m.split(".")[1]) for m in markers)


def test_term_kills_a_task_ignoring_it_after_stop_timeout(tmp_path):
    tasks = write_lines(tmp_path / "tasks", ["1"])
    script = 'trap "" TERM; echo $$ > "$0/pid"; echo started >&2; while :; do sleep 1; done'
    proc = start("--stop-timeout", "300ms", "--tasks", tasks, "--", "sh", "-c", script, str(tmp_path))
    log = Stream(proc.stderr)
    try:
        log.wait(r"^started$")
        proc.send_signal(signal.SIGTERM)
        assert finish(proc) == 1
    finally:
        log.drain()
    assert "1 task still running 300ms after the stop, killing" in log.text()
    assert wait_gone(int(open(tmp_path / "pid").read()), TIMEOUT)


def test_a_timeout_continues_a_stopped_task_so_that_it_can_act_on_stop_signal(tmp_path):
    tasks = write_lines(tmp_path / "tasks", ["1"])
    # The task stops itself (SIGSTOP): only a SIGCONT after TERM lets its trap run.
    script = 'trap \'echo stopped > "$0/marker"; exit 0\' TERM; kill -STOP $$'
    p = subprocess.run([CORRAL, "run", "--metrics", "none", "--timeout", "200ms", "--stop-timeout", "30s",
                        "--tasks", tasks, "--", "sh", "-c", script, str(tmp_path)],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=HANG)
    assert p.returncode == 1, p.stderr
    assert (tmp_path / "marker").exists(), p.stderr
    assert b"killing" not in p.stderr
