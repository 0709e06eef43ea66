# SPDX-License-Identifier: MIT
"""`corral run --tasks`: per-task batch mode end to end. Outputs, the joblog,
{} without a shell, keep_order, grouped output, retries, resume after a
SIGKILL, a stop, chaos, and the progress bar on a terminal."""
import os
import pty
import random
import re
import signal
import subprocess
import threading

import pytest

from conftest import CORRAL, TIMEOUT, Stream

# The chaos test's size: 1,000 (a task costs 20-100 ms on a busy machine, and
# more tasks only mean more of the same kills); CORRAL_CHAOS_TASKS scales it.
CHAOS_TASKS = int(os.environ.get("CORRAL_CHAOS_TASKS") or 1000)
BATCH_TIMEOUT = 240


def run_batch(*args, input=None, stdin=subprocess.DEVNULL, timeout=BATCH_TIMEOUT, **kwargs):
    """Runs `corral run --metrics none ARGS` to its end; returns the CompletedProcess (bytes)."""
    return subprocess.run([CORRAL, "run", "--metrics", "none", *args], input=input,
                          stdin=None if input is not None else stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, **kwargs)


def read_joblog(path):
    """[(seq, exitval, signal, command)] of every attempt, after checking the header."""
    with open(path) as f:
        lines = f.read().split("\n")
    assert lines[0] == "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand"
    assert lines[-1] == "", "every line ends with a newline"
    rows = []
    for line in lines[1:-1]:
        f = line.split("\t", 8)
        assert len(f) == 9, line
        assert f[1] == ":"
        float(f[2]), float(f[3])
        rows.append((int(f[0]), int(f[6]), int(f[7]), f[8]))
    return rows


def ok_seqs(rows):
    return [seq for seq, exitval, sig, _ in rows if exitval == 0 and sig == 0]


def write_lines(path, lines):
    with open(path, "w") as f:
        f.write("".join(f"{line}\n" for line in lines))
    return str(path)


def test_thousand_tasks_give_a_thousand_joblog_lines_and_outputs(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 1001))
    joblog = tmp_path / "joblog"
    p = run_batch("--tasks", tasks, "--joblog", str(joblog), "--", "echo", "out-{}")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode().splitlines()
    assert sorted(out) == sorted(f"out-{i}" for i in range(1, 1001))
    rows = read_joblog(joblog)
    assert len(rows) == 1000
    assert sorted(r[0] for r in rows) == list(range(1, 1001))
    assert all(r[1] == 0 and r[2] == 0 for r in rows)
    assert {r[3] for r in rows if r[0] == 7} == {"echo out-7"}
    assert b"1000 ok, 0 failed" in p.stderr


def test_placeholder_takes_spaces_and_quotes_without_a_shell(tmp_path):
    lines = ["a b  c", "it's", '"double" $HOME `id` ; *', "tab\there", ""]
    tasks = write_lines(tmp_path / "tasks", lines)
    p = run_batch("--tasks", tasks, "--keep-order", "--", "printf", "[%s|%s|%s|%s]\\n", "x{}y", "{}",
                  "plain")
    assert p.returncode == 0, p.stderr
    # Appended when absent too, and CORRAL_TASK / CORRAL_TASK_SEQ in the environment.
    want = [f"[x{line}y|{line}|plain|]" for line in lines]
    assert p.stdout.decode().split("\n")[:-1] == want
    env = run_batch("--tasks", tasks, "--keep-order", "--", "sh", "-c",
                    'printf "%s|%s|%s|%s\\n" "$CORRAL_TASK_SEQ" "$CORRAL_TASK" "$1" "$CORRAL_WORKERS_MAX"', "sh")
    assert env.returncode == 0, env.stderr
    got = env.stdout.decode().split("\n")[:-1]
    assert [g.split("|")[:3] for g in got] == [[str(i + 1), line, line] for i, line in enumerate(lines)]


def test_keep_order_prints_in_input_order(tmp_path):
    # Later lines end first: each task sleeps less than the one before it.
    n = 16
    tasks = write_lines(tmp_path / "tasks", (f"{i} 0.{n - i:02d}" for i in range(1, n + 1)))
    cmd = ["sh", "-c", 'set -- $1; sleep "$2"; echo "$1"', "sh"]
    p = run_batch("--tasks", tasks, "--max", "8", "--keep-order", "--", *cmd)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().split() == [str(i) for i in range(1, n + 1)]


def test_outputs_of_concurrent_tasks_never_interleave(tmp_path):
    # 8 tasks at once, each writing 1 MiB of its own letter in 1 KiB writes.
    letters = "ABCDEFGH"
    tasks = write_lines(tmp_path / "tasks", letters)
    # yes(1) writes in many chunks; no Python: 8 interpreters starting at once
    # on a busy machine took half a minute.
    writer = 'yes "$(printf "%1023s" "" | tr " " "$1")" | head -n 1024'
    p = run_batch("--tasks", tasks, "--max", "8", "--", "sh", "-c", writer, "sh")
    assert p.returncode == 0, p.stderr
    assert len(p.stdout) == len(letters) * 1024 * 1024
    blocks = re.findall(rb"(([A-H])\2{1022}\n)\1{1023}", p.stdout)
    assert sorted(b[1].decode() for b in blocks) == list(letters), "each task's output is one whole block"


def test_a_task_failing_after_its_retries_gives_exit_1_and_a_summary(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 11))
    joblog = tmp_path / "joblog"
    p = run_batch("--tasks", tasks, "--joblog", str(joblog), "--retries", "2", "--",
                  "sh", "-c", 'echo "try $1"; [ "$1" != 3 ] && [ "$1" != 7 ]', "sh")
    assert p.returncode == 1
    assert "8 ok, 2 failed; first failed: seq 3 (3), 7" in p.stderr.decode()
    rows = read_joblog(joblog)
    assert sorted(r[0] for r in rows if r[1] != 0) == [3, 3, 3, 7, 7, 7], "one line per attempt"
    assert sorted(ok_seqs(rows)) == [1, 2, 4, 5, 6, 8, 9, 10]
    # The output of a task that failed for good is printed once, of its last attempt.
    assert sorted(p.stdout.decode().splitlines()) == sorted(f"try {i}" for i in range(1, 11))


def test_retries_run_a_failing_task_again_until_it_succeeds(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 21))
    joblog = tmp_path / "joblog"
    # Each task fails its first attempt (it leaves a marker) and succeeds the second.
    script = 'm="$0/m.$1"; if [ -e "$m" ]; then echo "ok $1"; else : > "$m"; echo "first $1"; exit 1; fi'
    p = run_batch("--tasks", tasks, "--joblog", str(joblog), "--retries", "1", "--",
                  "sh", "-c", script, str(tmp_path), "{}")
    assert p.returncode == 0, p.stderr
    assert sorted(p.stdout.decode().splitlines()) == sorted(f"ok {i}" for i in range(1, 21))
    rows = read_joblog(joblog)
    assert len(rows) == 40
    for seq in range(1, 21):
        assert [r[1] for r in rows if r[0] == seq] == [1, 0]


def test_resume_after_sigkill_runs_exactly_what_is_missing(tmp_path):
    n = 200
    tasks = write_lines(tmp_path / "tasks", range(1, n + 1))
    joblog = tmp_path / "joblog"
    marker = tmp_path / "killed"
    # Task 100 kills corral (its parent) with SIGKILL, once.
    script = ('if [ "$1" = 100 ] && [ ! -e "$0" ]; then : > "$0"; kill -9 $PPID; fi; echo "$1"')
    cmd = ["--tasks", tasks, "--joblog", str(joblog), "--", "sh", "-c", script, str(marker)]
    first = run_batch(*cmd)
    assert first.returncode == -signal.SIGKILL
    done_first = ok_seqs(read_joblog(joblog))
    assert 0 < len(done_first) < n
    assert len(set(done_first)) == len(done_first)
    assert 100 not in done_first

    second = run_batch("--resume", *cmd)
    assert second.returncode == 0, second.stderr
    ran = sorted(int(x) for x in second.stdout.decode().split())
    assert ran == sorted(set(range(1, n + 1)) - set(done_first)), "exactly the tasks not yet done"
    assert sorted(ok_seqs(read_joblog(joblog))) == list(range(1, n + 1))


def test_resume_failed_reruns_the_failed_tasks(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 21))
    joblog = tmp_path / "joblog"
    fixed = tmp_path / "fixed"
    script = 'if [ $(($1 % 5)) = 0 ] && [ ! -e "$0" ]; then exit 1; fi; echo "$1"'
    cmd = ["--tasks", tasks, "--joblog", str(joblog), "--", "sh", "-c", script, str(fixed)]
    assert run_batch(*cmd).returncode == 1

    # --resume: as GNU parallel, a task that ended (failed) is done; nothing runs.
    again = run_batch("--resume", *cmd)
    assert again.returncode == 0, again.stderr
    assert again.stdout == b""

    fixed.write_text("")
    p = run_batch("--resume-failed", *cmd)
    assert p.returncode == 0, p.stderr
    assert sorted(int(x) for x in p.stdout.decode().split()) == [5, 10, 15, 20]
    assert sorted(set(ok_seqs(read_joblog(joblog)))) == list(range(1, 21))


def test_a_broken_joblog_is_refused_with_file_and_line(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 4))
    joblog = tmp_path / "joblog"
    joblog.write_text("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"
                      "1\t:\t1.0\t0.1\t0\t0\t0\t0\ttrue 1\n"
                      "2\t:\t1.0\t0.1\t0\t0\n")
    p = run_batch("--tasks", tasks, "--joblog", str(joblog), "--resume", "--", "true")
    assert p.returncode == 2
    assert f"{joblog}:3: 6 fields where 9 are expected" in p.stderr.decode()
    assert joblog.read_text().count("\n") == 3, "the refused joblog is left alone"


def test_term_lets_running_tasks_that_ignore_it_finish_and_exits_1_with_tasks_undone(tmp_path):
    n = 200
    tasks = write_lines(tmp_path / "tasks", range(1, n + 1))
    joblog = tmp_path / "joblog"
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    # Each task ignores TERM, says it started on stderr, then waits until the
    # test lets it end: within stop_timeout, it may finish.
    script = 'trap "" TERM; echo "started $1" >&2; read x < "$0"; echo "$1"'
    proc = subprocess.Popen([CORRAL, "run", "--metrics", "none", "--max", "2", "--tasks", tasks,
                             "--joblog", str(joblog), "--", "sh", "-c", script, str(fifo)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        log = Stream(proc.stderr)
        log.wait(r"^started \d+$")
        log.wait(r"^started \d+$")
        proc.send_signal(signal.SIGTERM)
        log.wait(r"stopping: no new tasks; sending TERM to 2 running")
        # Let the two running tasks end: each reads one line from the FIFO. The
        # FIFO stays open until corral ends, so a task that opens it late still
        # finds its line.
        fd = os.open(fifo, os.O_RDWR)
        try:
            os.write(fd, b"x\nx\n")
            assert proc.wait(TIMEOUT) == 1
        finally:
            os.close(fd)
        out = proc.stdout.read().split()
        log.drain()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "2 ok, 0 failed; stopped with tasks left undone" in log.text()
    assert len(out) == 2
    assert sorted(ok_seqs(read_joblog(joblog))) == sorted(int(x) for x in out)


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def test_chaos_every_task_succeeds_exactly_once(tmp_path):
    n = CHAOS_TASKS
    tasks = write_lines(tmp_path / "tasks", range(1, n + 1))
    joblog = tmp_path / "joblog"
    proc = subprocess.Popen([CORRAL, "run", "--metrics", "none", "--tasks", tasks, "--joblog", str(joblog),
                             "--retries", "20", "--", "echo", "{}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stop = threading.Event()
    kills = [0]

    def joblog_lines():
        try:
            with open(joblog, "rb") as f:
                return f.read().count(b"\n")
        except FileNotFoundError:
            return 0

    def chaos():
        rng = random.Random(9)
        children = f"/proc/{proc.pid}/task/{proc.pid}/children"
        # Paces the chaos: a kill every 20 ms at most, and only once three more
        # attempts have ended since the last kill. Time alone would kill every
        # attempt of a task on a machine slow enough for a task to outlast
        # several kills (~100 ms under a load of 25), and its retries would
        # run out: a test of the machine's speed, not of corral.
        last = 0
        while not stop.wait(0.02):
            done = joblog_lines()
            if done < last + 3:
                continue
            try:
                with open(children) as f:
                    pids = f.read().split()
            except OSError:
                return
            # Only the tasks: under the sanitizers corral's own helper at exit
            # (LeakSanitizer's tracer, a clone of corral) is a child too.
            pids = [p for p in pids if comm(p) == "echo"]
            if pids:
                try:
                    os.kill(int(rng.choice(pids)), signal.SIGKILL)
                    kills[0] += 1
                    last = done
                except ProcessLookupError:
                    pass

    t = threading.Thread(target=chaos, daemon=True)
    t.start()
    try:
        out, err = proc.communicate(timeout=BATCH_TIMEOUT)
    finally:
        stop.set()
        t.join()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    rows = read_joblog(joblog)
    ok = ok_seqs(rows)
    assert sorted(ok) == list(range(1, n + 1)), "every task succeeded exactly once"
    assert sorted(int(x) for x in out.split()) == list(range(1, n + 1)), "and printed once"
    assert kills[0] > 0


def spawn_on_pty(args):
    """corral with stderr on a pseudo-terminal and stdout on a pipe; returns (rc, terminal bytes, stdout)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([CORRAL, "run", "--metrics", "none", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)   # EIO once corral and its tasks closed the terminal
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    out = proc.stdout.read()
    return proc.wait(TIMEOUT), seen, out


def test_the_bar_appears_on_a_terminal(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 51))
    rc, tty, out = spawn_on_pty(["--tasks", tasks, "--", "echo"])
    assert rc == 0
    assert re.search(rb"\r\[#+\] 50/50 100% 0 failed, \d+ running, .*ETA 0:00", tty), tty
    assert len(out.split()) == 50, "task output goes to stdout, not the terminal"
    # -q hides it.
    rc, tty, out = spawn_on_pty(["-q", "--tasks", tasks, "--", "echo"])
    assert rc == 0
    assert b"50/50" not in tty


# One write of "warn N\npartial N", the last line without a newline.
STDERR_TASK = ["sh", "-c", 'printf "warn %s\\npartial %s" "$1" "$1" >&2', "sh"]


def test_task_stderr_lines_carry_their_task_number_on_a_terminal(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 21))
    rc, tty, out = spawn_on_pty(["-q", "--tasks", tasks, "--", *STDERR_TASK])
    assert rc == 0
    lines = tty.replace(b"\r\n", b"\n").decode().splitlines()
    for n in range(1, 21):
        assert f"[{n}] warn {n}" in lines, tty
        assert f"[{n}] partial {n}" in lines, "a last line without newline is ended"
    # In a pipe, stderr passes through untouched.
    p = run_batch("--tasks", tasks, "--", *STDERR_TASK)
    assert p.returncode == 0
    assert b"warn 7\npartial 7" in p.stderr and b"[7]" not in p.stderr


def test_the_bar_is_never_drawn_into_a_pipe(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 51))
    # A new session has no controlling terminal: --bar has nowhere to draw but the pipe, and does not.
    for extra in ([], ["--bar"]):
        p = run_batch(*extra, "--tasks", tasks, "--", "echo", start_new_session=True)
        assert p.returncode == 0
        assert b"\r" not in p.stderr and b"50/50" not in p.stderr
        assert b"\r" not in p.stdout


def test_stdin_tasks_and_unknown_total(tmp_path):
    p = run_batch("--tasks", "-", "--keep-order", "--", "echo", "line", input=b"a\nb\nc")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"line a\nline b\nline c\n"


def test_a_command_that_cannot_run_exits_2(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 4))
    p = run_batch("--tasks", tasks, "--", str(tmp_path / "missing"))
    assert p.returncode == 2
    assert "cannot run" in p.stderr.decode()
    assert "No such file or directory" in p.stderr.decode()
