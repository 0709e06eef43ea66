# SPDX-License-Identifier: MIT
"""Invocations cut to fit execve()'s limits (issue 18 item 15): --batch over
long lines splits where the next line would not fit (as xargs does), and a
line no invocation can carry is a failed task named by its line number, while
every other line still runs."""
import json
import os
import resource

from conftest import task
from test_batch import read_joblog, run_batch, write_lines

SHOW = task("args")
PAGE = os.sysconf("SC_PAGESIZE")
# The kernel's limit on one argument or variable, its NUL included.
STRING_MAX = 32 * PAGE
# A line travels as an argument and in CORRAL_TASK=LINE.
LINE_MAX = STRING_MAX - len("CORRAL_TASK=") - 1


def invocations(stdout):
    return [json.loads(line) for line in stdout.decode().splitlines()]


def test_batch_30_over_100kB_lines_splits_invocations_and_runs_every_line(tmp_path):
    lines = [chr(ord("a") + i % 26) * 100_000 for i in range(12)]
    tasks = write_lines(tmp_path / "tasks", lines)
    joblog = tmp_path / "joblog"
    p = run_batch("--tasks", tasks, "--batch", "30", "--keep-order", "--joblog", str(joblog), "-q", "--", *SHOW)
    assert p.returncode == 0, p.stderr[-2000:]
    got = invocations(p.stdout)
    # Two 100 kB lines never fit in one CORRAL_TASK: one line per invocation.
    assert [inv["args"] for inv in got] == [[line] for line in lines]
    assert [inv["seq"] for inv in got] == [str(i) for i in range(1, 13)]
    assert sorted(r[0] for r in read_joblog(joblog)) == list(range(1, 13))


def test_batch_cuts_as_late_as_the_limit_allows(tmp_path):
    # 10 kB lines: 13 of them (and their newlines) fit in one CORRAL_TASK, 14 do not.
    lines = [f"{i:05d}" + "x" * 9995 for i in range(1, 41)]
    per = (STRING_MAX - len("CORRAL_TASK=")) // 10_001
    tasks = write_lines(tmp_path / "tasks", lines)
    p = run_batch("--tasks", tasks, "--batch", "30", "--keep-order", "-q", "--", *SHOW)
    assert p.returncode == 0, p.stderr[-2000:]
    got = invocations(p.stdout)
    # Each cell of 30 lines is cut where the next line would not fit; the
    # cells stay where --batch 30 puts them (lines 1 and 31 start one).
    want = [(start, min(per, end - start)) for cell in (range(1, 31), range(31, 41))
            for end in [cell.stop] for start in range(cell.start, end, per)]
    assert [(int(inv["seq"]), len(inv["args"])) for inv in got] == want
    assert [a for inv in got for a in inv["args"]] == lines


def test_the_total_of_argv_and_environment_is_respected(tmp_path):
    # A small stack limit: execve() then takes 128 KiB of argv and environment
    # in all, less than CORRAL_TASK alone could hold; {} twice per line.
    def small_stack():
        soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
        resource.setrlimit(resource.RLIMIT_STACK, (256 * 1024, hard))

    lines = [f"{i:04d}" + "y" * 996 for i in range(1, 201)]
    tasks = write_lines(tmp_path / "tasks", lines)
    p = run_batch("--tasks", tasks, "--batch", "200", "-q", "--", *SHOW, "{}", "--again={}",
                  preexec_fn=small_stack)
    assert p.returncode == 0, p.stderr[-2000:]
    got = invocations(p.stdout)
    assert len(got) > 1
    seen = sorted(a for inv in got for a in inv["args"] if not a.startswith("--again="))
    assert seen == lines


def test_a_line_too_long_for_execve_fails_alone_and_is_named(tmp_path):
    # The 131,065 bytes, the longest that fits, one byte more, one far
    # beyond what corral reads into memory, and short lines around them.
    lines = ["first", "a" * 131_065, "b" * LINE_MAX, "c" * (LINE_MAX + 1), "d" * 1_000_000, "last"]
    tasks = write_lines(tmp_path / "tasks", lines)
    joblog = tmp_path / "joblog"
    p = run_batch("--tasks", tasks, "--joblog", str(joblog), "--batch", "3", "--keep-order", "-q", "--", *SHOW)
    err = p.stderr.decode()
    assert p.returncode == 1, err[-2000:]
    too_long = [2, 4, 5] if LINE_MAX < 131_065 else [4, 5]
    for seq in too_long:
        assert f"{tasks}:{seq}: a task line of {len(lines[seq - 1])} bytes is too long" in err
        assert f"at most {LINE_MAX} bytes" in err
    ran = [a for inv in invocations(p.stdout) for a in inv["args"]]
    assert ran == [line for i, line in enumerate(lines, 1) if i not in too_long]
    assert f"{len(lines) - len(too_long)} ok, {len(too_long)} failed" in err
    assert "first failed: seq " + ", ".join(map(str, too_long)) in err
    # Not run, so not in the joblog: --resume tries it again (and says so again).
    assert all(r[1] == 0 for r in read_joblog(joblog))


def test_resume_follows_the_early_cuts_and_runs_every_line_once(tmp_path):
    lines = [f"{i:05d}" + "x" * 9995 for i in range(1, 41)]
    tasks = write_lines(tmp_path / "tasks", lines)
    joblog = tmp_path / "joblog"
    # Line 15 fails until the marker exists; each invocation prints its lines' numbers.
    script = ('for a; do case $a in 00015*) [ -e "$0/marker" ] || exit 1;; esac; done; '
              'for a; do echo "${a%%x*}"; done')
    cmd = ["--tasks", tasks, "--batch", "30", "--joblog", str(joblog), "-q", "--", "sh", "-c", script,
           str(tmp_path)]
    first = run_batch(*cmd)
    assert first.returncode == 1, first.stderr[-2000:]
    (tmp_path / "marker").touch()
    second = run_batch("--resume-failed", *cmd)
    assert second.returncode == 0, second.stderr[-2000:]
    printed = sorted(int(x) for x in (first.stdout + second.stdout).decode().split())
    assert printed == list(range(1, 41)), "every line ran to success exactly once"
