# SPDX-License-Identifier: MIT
"""Batch, part two (issue 13): task timeouts, several lines per invocation
(--batch N), and sharding one batch across machines (--shard K/N|env)."""
import json
import os
import shlex
import signal
import subprocess
import time

from conftest import CORRAL, task, wait_gone
from test_batch import BATCH_TIMEOUT, ok_seqs, read_joblog, run_batch, write_lines

# Lines an argv must carry unharmed: spaces, quotes, shell syntax, an empty one.
AWKWARD = ["a b  c", "it's", '"double" $HOME `id` ; *', "tab\there", ""]

# Prints one JSON line per invocation: its arguments and what the environment
# says (tests/tasks/args_task.c).
SHOW = task("args")


def invocations(stdout):
    return [json.loads(line) for line in stdout.decode().splitlines()]


def pids_in(directory):
    """The pids that tasks wrote into files named pid.*."""
    return [int(open(os.path.join(directory, f)).read().split()[0])
            for f in os.listdir(directory) if f.startswith("pid.")]


def test_the_summary_shows_the_first_failed_line_printable_and_cut(tmp_path):
    """A tab and an escape show as '?'; a long line is cut at 48 bytes, not
    inside a UTF-8 character, and ends in '...'."""
    long_line = "x" * 47 + "é" * 10
    tasks = tmp_path / "tasks"
    tasks.write_text(f"fine\nbad\tone\x1b[0m\n{long_line}\n")
    p = run_batch("--tasks", str(tasks), "--", "sh", "-c", '[ "$1" = fine ]', "sh")
    assert p.returncode == 1
    assert "1 ok, 2 failed; first failed: seq 2 (bad?one?[0m), 3" in p.stderr.decode()
    tasks.write_text(f"fine\n{long_line}\n")
    p = run_batch("--tasks", str(tasks), "--", "sh", "-c", '[ "$1" = fine ]', "sh")
    assert f"first failed: seq 2 ({'x' * 47}...)" in p.stderr.decode()


# ---- timeouts -----------------------------------------------------------------

def test_a_task_hanging_forever_is_stopped_logged_failed_and_retried(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 6))
    joblog = tmp_path / "joblog"
    # Task 3 hangs with a child of its own; each attempt leaves both pids behind.
    script = ('if [ "$1" = 3 ]; then sleep 1000 & echo "$$ $!" > "$0/pid.$$"; wait; fi; echo "done $1"')
    start = time.monotonic()
    # 1 s, not less: the other tasks must not be stopped while a busy machine starts them.
    p = run_batch("--tasks", tasks, "--joblog", str(joblog), "--timeout", "1s", "--retries", "2",
                  "--", "sh", "-c", script, str(tmp_path), timeout=60)
    elapsed = time.monotonic() - start
    assert p.returncode == 1, p.stderr
    # Three attempts of 1 s each, and slack for a loaded machine: far below
    # the 33 s it would take if TERM were not sent first (stop_timeout 10 s).
    assert elapsed < 20, elapsed
    assert "4 ok, 1 failed; first failed: seq 3 (3)" in p.stderr.decode()
    assert p.stderr.decode().count("ran longer than its timeout 1s") == 3
    rows = read_joblog(joblog)
    assert sorted(ok_seqs(rows)) == [1, 2, 4, 5]
    # As GNU parallel logs a job its --timeout killed: Exitval -1, Signal 15.
    assert [(r[1], r[2]) for r in rows if r[0] == 3] == [(-1, signal.SIGTERM)] * 3
    assert sorted(p.stdout.decode().splitlines()) == [f"done {i}" for i in (1, 2, 4, 5)]
    # Nothing is left: the task's shell and its child went with the group.
    pids = [int(x) for f in os.listdir(tmp_path) if f.startswith("pid.")
            for x in open(tmp_path / f).read().split()]
    assert len(pids) == 6
    assert all(wait_gone(pid, 10) for pid in pids)


def test_a_task_ignoring_the_stop_signal_is_killed_after_stop_timeout(tmp_path):
    tasks = write_lines(tmp_path / "tasks", ["1"])
    joblog = tmp_path / "joblog"
    script = 'trap "" TERM; echo $$ > "$0/pid.$$"; while :; do sleep 1; done'
    start = time.monotonic()
    p = run_batch("--tasks", tasks, "--joblog", str(joblog), "--timeout", "200ms", "--stop-timeout", "300ms",
                  "--", "sh", "-c", script, str(tmp_path), timeout=60)
    assert p.returncode == 1, p.stderr
    assert time.monotonic() - start < 8
    assert "is still running, killing" in p.stderr.decode()
    assert [(r[1], r[2]) for r in read_joblog(joblog)] == [(-1, signal.SIGKILL)]
    assert all(wait_gone(pid, 10) for pid in pids_in(tmp_path))


def test_a_task_whose_leftover_holds_its_output_does_not_hang_the_batch(tmp_path):
    tasks = write_lines(tmp_path / "tasks", ["1", "2"])
    # The task ends at once, but a process it started in a new session (out of
    # reach of the group kill) keeps the output pipe open.
    # The task waits until the leftover is in its own session (it writes its pid then).
    script = ('f="$0/pid.$$"; setsid sh -c \'echo $$ > "$0.tmp"; mv "$0.tmp" "$0"; exec sleep 1000\' "$f" '
              '2>/dev/null & while [ ! -e "$f" ]; do :; done; echo "out $1"')
    try:
        # --timeout bounds the wait for the leftover's output; 3 s, not less:
        # a task still starting when it expires would be killed as hung.
        p = run_batch("--tasks", tasks, "--timeout", "3s", "--", "sh", "-c", script, str(tmp_path),
                      timeout=60)
        assert p.returncode == 0, p.stderr
        assert sorted(p.stdout.decode().splitlines()) == ["out 1", "out 2"]
        assert "keeps its output open; not waiting for it" in p.stderr.decode()
    finally:
        for pid in pids_in(tmp_path):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# ---- several lines per invocation ---------------------------------------------

def test_batch_10_over_1000_lines_makes_100_invocations_passing_every_line_once(tmp_path):
    lines = [f"{i} {AWKWARD[i % len(AWKWARD)]}" for i in range(1, 1001)]
    tasks = write_lines(tmp_path / "tasks", lines)
    joblog = tmp_path / "joblog"
    p = run_batch("--tasks", tasks, "--batch", "10", "--joblog", str(joblog), "--keep-order",
                  "--", *SHOW, "first", "{}", "last")
    assert p.returncode == 0, p.stderr
    assert "1000 ok, 0 failed" in p.stderr.decode()
    got = invocations(p.stdout)
    assert len(got) == 100
    for k, inv in enumerate(got):
        want = lines[10 * k:10 * k + 10]
        # {} stands for the ten lines, in order, each one argument, no shell.
        assert inv["args"] == ["first", *want, "last"]
        assert inv["seq"] == str(10 * k + 1), "CORRAL_TASK_SEQ: the first line's seq"
        assert inv["task"] == "\n".join(want), "CORRAL_TASK: the lines joined by newlines"
    # One joblog line per invocation, its Seq the first line's (GNU parallel -N
    # logs a line per job, the command with all its arguments).
    rows = read_joblog(joblog)
    assert sorted(r[0] for r in rows) == list(range(1, 1001, 10))
    for seq, _, _, command in rows:
        args = shlex.split(command)
        assert args[len(SHOW):] == ["first", *lines[seq - 1:seq + 9], "last"]


def test_batch_appends_the_lines_and_ends_with_a_shorter_invocation(tmp_path):
    tasks = write_lines(tmp_path / "tasks", AWKWARD * 5)   # 25 lines
    p = run_batch("--tasks", tasks, "--batch", "10", "--keep-order", "--", *SHOW)
    assert p.returncode == 0, p.stderr
    got = invocations(p.stdout)
    assert [inv["args"] for inv in got] == [(AWKWARD * 5)[0:10], (AWKWARD * 5)[10:20], (AWKWARD * 5)[20:25]]
    assert [inv["seq"] for inv in got] == ["1", "11", "21"]


def test_batch_context_replace_and_stdin(tmp_path):
    p = run_batch("--tasks", "-", "--batch", "3", "--keep-order", "--", *SHOW, "x{}y",
                  input=b"a\nb\nc\nd\n")
    assert p.returncode == 0, p.stderr
    assert [inv["args"] for inv in invocations(p.stdout)] == [["xay", "xby", "xcy"], ["xdy"]]


def test_a_failed_invocation_fails_and_retries_all_its_lines(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 31))
    joblog = tmp_path / "joblog"
    # The invocation holding line 15 fails.
    script = 'for a; do [ "$a" = 15 ] && exit 1; done; exit 0'
    p = run_batch("--tasks", tasks, "--batch", "10", "--retries", "1", "--joblog", str(joblog),
                  "--", "sh", "-c", script, "sh")
    assert p.returncode == 1
    # The invocation's first line names it; the later ones are known by seq only.
    assert "20 ok, 10 failed; first failed: seq 11 (11), 12, 13, 14, 15, ..." in p.stderr.decode()
    rows = read_joblog(joblog)
    assert sorted((r[0], r[1]) for r in rows) == [(1, 0), (11, 1), (11, 1), (21, 0)]


def test_batch_resume_after_sigkill_every_line_succeeds_exactly_once(tmp_path):
    n = 1000
    tasks = write_lines(tmp_path / "tasks", range(1, n + 1))
    joblog = tmp_path / "joblog"
    marker = tmp_path / "killed"
    # The invocation holding line 500 kills corral (its parent) with SIGKILL, once.
    script = ('for a; do if [ "$a" = 500 ] && [ ! -e "$0" ]; then : > "$0"; kill -9 $PPID; fi; done; '
              'echo "$@"')
    cmd = ["--tasks", tasks, "--batch", "10", "--joblog", str(joblog), "--", "sh", "-c", script, str(marker)]
    first = run_batch(*cmd)
    assert first.returncode == -signal.SIGKILL

    def ok_lines():
        lines = []
        for seq, exitval, sig, command in read_joblog(joblog):
            if exitval == 0 and sig == 0:
                args = [int(a) for a in shlex.split(command)[4:]]
                assert args == list(range(seq, min(seq + 10, n + 1))), "an invocation is 10 consecutive lines"
                lines += args
        return lines

    done_first = ok_lines()
    assert 0 < len(done_first) < n
    assert 500 not in done_first
    second = run_batch("--resume", *cmd)
    assert second.returncode == 0, second.stderr
    done = ok_lines()
    assert sorted(done) == list(range(1, n + 1)), "every line succeeded exactly once"
    assert sorted(int(x) for x in second.stdout.decode().split()) == sorted(set(range(1, n + 1)) - set(done_first))


def test_resume_refuses_a_joblog_cut_with_another_batch(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 31))
    joblog = tmp_path / "joblog"
    assert run_batch("--tasks", tasks, "--batch", "10", "--joblog", str(joblog), "--", "true").returncode == 0
    p = run_batch("--tasks", tasks, "--batch", "3", "--joblog", str(joblog), "--resume", "--", "true")
    assert p.returncode == 2
    assert "Seq 11 does not start an invocation of --batch 3" in p.stderr.decode()
    same = run_batch("--tasks", tasks, "--batch", "10", "--joblog", str(joblog), "--resume", "--", "true")
    assert same.returncode == 0 and b"0 ok, 0 failed (resumed)" in same.stderr


# ---- sharding -------------------------------------------------------------------

def test_four_shards_run_every_line_exactly_once_and_their_joblogs_concatenate(tmp_path):
    n, shards = 1000, 4     # more lines would prove nothing more, only take longer
    tasks = write_lines(tmp_path / "tasks", range(1, n + 1))
    procs = []
    for k in range(shards):
        args = [CORRAL, "run", "--metrics", "none", "--tasks", tasks, "--shard", f"{k}/{shards}",
                "--joblog", str(tmp_path / f"joblog.{k}"), "--", "true"]
        procs.append(subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE))
    for k, proc in enumerate(procs):
        _, err = proc.communicate(timeout=BATCH_TIMEOUT)
        assert proc.returncode == 0, err
        assert f"{n // shards} ok, 0 failed".encode() in err
    whole = []
    for k in range(shards):
        seqs = ok_seqs(read_joblog(tmp_path / f"joblog.{k}"))
        assert all((seq - 1) % shards == k for seq in seqs), "each line by its global seq, in its shard"
        whole += seqs
    assert sorted(whole) == list(range(1, n + 1)), "the union has every seq exactly once"

    # Concatenated, the joblogs are the joblog of the whole batch: resuming it runs nothing.
    with open(tmp_path / "joblog", "w") as out:
        for k in range(shards):
            body = (tmp_path / f"joblog.{k}").read_text().split("\n", 1)
            out.write(body[1] if k else "\n".join(body))
    p = run_batch("--tasks", tasks, "--joblog", str(tmp_path / "joblog"), "--resume", "--", "false")
    assert p.returncode == 0, p.stderr
    assert b"0 ok, 0 failed (resumed)" in p.stderr


def test_a_shard_with_batch_groups_its_own_lines(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 31))
    p = run_batch("--tasks", tasks, "--shard", "1/3", "--batch", "4", "--keep-order",
                  "--", *SHOW)
    assert p.returncode == 0, p.stderr
    got = invocations(p.stdout)
    assert [inv["args"] for inv in got] == [["2", "5", "8", "11"], ["14", "17", "20", "23"], ["26", "29"]]
    assert [inv["seq"] for inv in got] == ["2", "14", "26"]


def test_shard_env_reads_the_indexed_job_variables(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 31))
    env = {**os.environ, "JOB_COMPLETION_INDEX": "2", "CORRAL_SHARDS": "3"}
    p = run_batch("--tasks", tasks, "--shard", "env", "--keep-order", "--", "echo", env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().split() == [str(i) for i in range(3, 31, 3)]


def test_bad_shards_are_usage_errors(tmp_path):
    tasks = write_lines(tmp_path / "tasks", range(1, 5))
    base = {k: v for k, v in os.environ.items() if k not in ("JOB_COMPLETION_INDEX", "CORRAL_SHARDS")}
    cases = [
        (["--shard", "4/4"], {}, "shard 4/4 does not exist"),
        (["--shard", "1/0"], {}, "shard 1/0 does not exist"),
        (["--shard", "x/y"], {}, "'x/y' is not K/N (such as 0/4) or env"),
        (["--shard", "env"], {}, "JOB_COMPLETION_INDEX is not set"),
        (["--shard", "env"], {"JOB_COMPLETION_INDEX": "1"}, "CORRAL_SHARDS is not set"),
        (["--shard", "env"], {"JOB_COMPLETION_INDEX": "a", "CORRAL_SHARDS": "4"},
         "JOB_COMPLETION_INDEX='a' is not a shard index"),
        (["--shard", "env"], {"JOB_COMPLETION_INDEX": "4", "CORRAL_SHARDS": "4"},
         "JOB_COMPLETION_INDEX=4 is not below CORRAL_SHARDS=4"),
        (["--batch", "0"], {}, "--batch: '0' is not a number of lines per invocation"),
    ]
    for flags, extra, reason in cases:
        p = run_batch("--tasks", tasks, *flags, "--", "echo", env={**base, **extra})
        assert p.returncode == 2, (flags, extra)
        assert reason in p.stderr.decode(), (flags, p.stderr)
        assert p.stdout == b""
