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


# ---- a slow reader (issue 18, item 6) ----------------------------------------------

def pipe_filled(fd, timeout=HANG):
    """Awaits the pipe whose read end is fd being full: half of its 64 KiB or
    more, and no more coming. How many bytes a full pipe holds depends on how
    the writes fell into its pages (a write that finds too little room in the
    last page takes a new one), so no byte count says "full" by itself."""
    import fcntl
    import termios
    import array

    def held():
        buf = array.array("i", [0])
        fcntl.ioctl(fd, termios.FIONREAD, buf)
        return buf[0]

    deadline = time.monotonic() + timeout
    last, same = -1, 0
    while True:
        now = held()
        same = same + 1 if now == last else 0
        last = now
        if now >= 32768 and same >= 10:
            return
        assert time.monotonic() < deadline, f"the pipe holds only {now} bytes"
        time.sleep(0.02)


def test_term_is_acted_on_within_stop_timeout_while_nobody_reads_the_output(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 21))
    joblog = tmp_path / "joblog"
    r, w = os.pipe()
    try:
        proc = start("--stop-timeout", "1s", "--tasks", tasks, "--joblog", str(joblog),
                     "--", "head", "-c", "100000", "/dev/zero", stdout=w)
        os.close(w)
        log = Stream(proc.stderr)
        # Nobody reads: corral's stdout fills up, and it must not block on it.
        pipe_filled(r)
        proc.send_signal(signal.SIGTERM)
        # Before the fix: blocked in write() until the reader reads, forever.
        assert finish(proc) == 1
        log.drain()
    finally:
        os.close(r)
    assert "output not taken by the reader, dropping them" in log.text()
    assert "stopped with tasks left undone" in log.text()
    # A task whose output did not go out whole is not done: at most the one
    # 64 KiB of the pipe went out, so no task's 100000 bytes did.
    assert ok_seqs(read_joblog(joblog)) == []


def test_stream_term_is_acted_on_within_stop_timeout_while_nobody_reads_the_output(tmp_path):
    tasks = write_lines(tmp_path / "tasks", ("x" * 1000 for _ in range(5000)))
    r, w = os.pipe()
    try:
        proc = start("--stream", "--min", "1", "--max", "1", "--stop-timeout", "1s", "--tasks", tasks,
                     "--", "cat", stdout=w)
        os.close(w)
        log = Stream(proc.stderr)
        pipe_filled(r)
        proc.send_signal(signal.SIGTERM)
        assert finish(proc) == 1
        log.drain()
    finally:
        os.close(r)


# ---- a failed write of results (issue 18, item 11) ---------------------------------

import pytest  # noqa: E402


def run_to(stdout, *args):
    return subprocess.run([CORRAL, "run", "--metrics", "none", *args], stdin=subprocess.DEVNULL,
                          stdout=stdout, stderr=subprocess.PIPE, timeout=HANG)


@pytest.mark.parametrize("mode", [[], ["--line-buffer"]], ids=["group", "line-buffer"])
def test_a_closed_pipe_stops_the_batch_with_exit_1_and_nothing_done(tmp_path, mode):
    tasks = write_lines(tmp_path / "tasks", range(1, 6))
    joblog = tmp_path / "joblog"
    r, w = os.pipe()
    os.close(r)   # as `| head -1` once head has gone
    try:
        p = run_to(w, *mode, "--max", "1", "--tasks", tasks, "--joblog", str(joblog),
                   "--", "echo", "result")
    finally:
        os.close(w)
    assert p.returncode == 1, p.stderr
    assert b"Failed to write the output: Broken pipe; stopping the batch" in p.stderr
    assert ok_seqs(read_joblog(joblog)) == []
    # --resume with a reader runs every task: none was recorded as done.
    again = run_to(subprocess.PIPE, "--resume", *mode, "--tasks", tasks, "--joblog", str(joblog),
                   "--", "echo", "result")
    assert again.returncode == 0, again.stderr
    assert sorted(again.stdout.decode().splitlines()) == [f"result {i}" for i in range(1, 6)]


@pytest.mark.parametrize("mode", [[], ["--line-buffer"]], ids=["group", "line-buffer"])
def test_a_full_disk_stops_the_batch_with_exit_1(tmp_path, mode):
    tasks = write_lines(tmp_path / "tasks", range(1, 6))
    joblog = tmp_path / "joblog"
    with open("/dev/full", "w") as full:
        p = run_to(full, *mode, "--tasks", tasks, "--joblog", str(joblog), "--", "echo", "result")
    assert p.returncode == 1, p.stderr
    assert b"Failed to write the output: No space left on device" in p.stderr
    assert ok_seqs(read_joblog(joblog)) == []


def test_a_closed_stdout_stops_the_batch_with_exit_1(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 6))
    joblog = tmp_path / "joblog"
    p = subprocess.run([CORRAL, "run", "--metrics", "none", "--tasks", tasks, "--joblog", str(joblog),
                        "--", "echo", "result"], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=HANG, preexec_fn=lambda: os.close(1))
    assert p.returncode == 1, p.stderr
    assert b"Failed to write the output" in p.stderr
    assert ok_seqs(read_joblog(joblog)) == []
    assert b"result" not in open(joblog, "rb").read()


# ---- the joblog says done only for output written (issue 18, item 10) ----------------

def test_keep_order_resume_after_sigkill_yields_every_output_exactly_once(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 6))
    joblog = tmp_path / "joblog"
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    # Task 1 waits for the test; 2-5 end at once, their output held behind 1's.
    script = 'if [ "$1" = 1 ]; then read x < "$0"; fi; echo "result $1"'
    args = ["--keep-order", "--max", "5", "--tasks", tasks, "--joblog", str(joblog), "--", "sh", "-c", script,
            str(fifo)]
    out1 = tmp_path / "out1"
    with open(out1, "w") as f:
        proc = start("-v", *args, stdout=f)
        log = Stream(proc.stderr)
        try:
            for seq in (2, 3, 4, 5):
                log.wait(rf"task {seq} \(pid \d+\) exited with status 0")
            proc.kill()   # SIGKILL: output 2-5 was never written
            proc.wait(HANG)
        finally:
            finish(proc)
            log.drain()
    # Task 1 may read the FIFO in this second run.
    fd = os.open(fifo, os.O_RDWR)
    try:
        os.write(fd, b"x\n")
        p = run_to(subprocess.PIPE, "--resume", *args)
    finally:
        os.close(fd)
    assert p.returncode == 0, p.stderr
    outputs = open(out1).read().splitlines() + p.stdout.decode().splitlines()
    assert sorted(outputs) == [f"result {i}" for i in range(1, 6)]


# ---- bounded memory (issue 18, item 12) ----------------------------------------------

SANITIZED = os.environ.get("CORRAL_SANITIZED") == "1"
# DESIGN: peak RSS with one task writing 200 MB (group mode) <= 64 MiB. The
# sanitizers' shadow memory and quarantine add their own share.
MEMORY_BOUND_KIB = (192 if SANITIZED else 64) * 1024


def vm_hwm_probe(directory):
    """A task that records its parent's (corral's) peak memory."""
    return ('if [ "$1" = probe ]; then grep VmHWM /proc/$PPID/status > "$0/hwm"; '
            'else head -c 200000000 /dev/zero; fi')


@pytest.mark.parametrize("extra", [[], ["--keep-order"]])
def test_a_task_writing_200_mb_in_group_mode_keeps_corral_under_64_mib(tmp_path, extra):
    # "big" writes 200 MB; "probe" runs after it (one task at once) and reads
    # corral's peak RSS once big's output has gone out.
    tasks = write_lines(tmp_path / "tasks", ["big", "probe"])
    with open("/dev/null", "w") as null:
        p = run_to(null, "--max", "1", *extra, "--tasks", tasks, "--", "sh", "-c", vm_hwm_probe(tmp_path),
                   str(tmp_path))
    assert p.returncode == 0, p.stderr
    hwm = int(open(tmp_path / "hwm").read().split()[1])
    assert hwm < MEMORY_BOUND_KIB, f"corral's peak RSS {hwm} KiB"


def test_a_stderr_line_without_end_is_passed_on_in_pieces(tmp_path):
    # On a terminal, stderr lines get their task's number; a 20 MB line with
    # no newline must not be held whole.
    import pty
    tasks = write_lines(tmp_path / "tasks", ["big", "probe"])
    script = ('if [ "$1" = probe ]; then grep VmHWM /proc/$PPID/status > "$0/hwm"; '
              'else head -c 20000000 /dev/zero | tr "\\0" x >&2; fi')
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([CORRAL, "run", "--metrics", "none", "-q", "--max", "1", "--tasks", tasks,
                                 "--", "sh", "-c", script, str(tmp_path)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        got = 0
        while True:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            got += chunk.count(b"x")
        assert proc.wait(HANG) == 0
    finally:
        os.close(master)
    assert got == 20000000
    hwm = int(open(tmp_path / "hwm").read().split()[1])
    assert hwm < MEMORY_BOUND_KIB // 4 * (2 if SANITIZED else 1), f"corral's peak RSS {hwm} KiB"


def test_stream_lines_longer_than_8_mib_are_an_error_for_that_line_only(tmp_path):
    tasks = tmp_path / "tasks"
    with open(tasks, "w") as f:
        f.write("a\n" + "x" * 20_000_000 + "\nbig\nb\n")
    # The worker answers "big" with a 20 MB line, the others with out-LINE;
    # at the last line ("b": the long lines are behind corral) it records
    # corral's peak memory.
    script = ('while read -r l; do if [ "$l" = big ]; then head -c 20000000 /dev/zero | tr "\\0" y; echo; '
              'else [ "$l" = b ] && grep VmHWM /proc/$PPID/status > "$0/hwm"; echo "out-$l"; fi; done')
    p = run_to(subprocess.PIPE, "--stream", "--keep-order", "--min", "1", "--max", "1", "--tasks", str(tasks),
               "--", "sh", "-c", script, str(tmp_path))
    log = p.stderr.decode()
    assert p.returncode == 1, log
    assert "line 2 given up: longer than 8388608 bytes" in log
    assert "line 3 given up: its result is longer than 8388608 bytes" in log
    assert p.stdout.decode().splitlines() == ["out-a", "", "", "out-b"]   # placeholders in place
    hwm = int(open(tmp_path / "hwm").read().split()[1])
    assert hwm < MEMORY_BOUND_KIB // 2, f"corral's peak RSS {hwm} KiB"
