# SPDX-License-Identifier: MIT
"""Stream mode keeps its promises on sizing and alignment: every input line
has exactly one output line (a given-up line gets tasks.failed_line), and
slow lines wait in corral as a backlog that grows the pool."""
import re
import subprocess

from conftest import CORRAL, task

DEADLINE = 120    # catches a hang only

CRASH = task("line", "--exit-on", "crash")    # exits 3 on "crash": every try of it fails


def run_stream(*args, input, config=None, tmp_path=None):
    argv = [CORRAL, "run", "--metrics", "none", "--stream", "--tasks", "-"]
    if config is not None:
        path = tmp_path / "corral.yaml"
        path.write_text(config)
        argv += ["-c", str(path)]
    return subprocess.run(argv + list(args), input=input.encode(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=DEADLINE)


def lines_with(bad, n):
    lines = [str(i) for i in range(1, n + 1)]
    for i in bad:
        lines[i - 1] = "crash"
    return lines


def test_a_given_up_line_keeps_its_place_with_an_empty_line():
    lines = lines_with([7, 300], 400)
    p = run_stream("--min", "2", "--max", "2", "--keep-order", "--restart-delay", "10ms", "--", *CRASH,
                   input="".join(f"{x}\n" for x in lines))
    log = p.stderr.decode()
    assert p.returncode == 1, log
    assert "2 given up (lines 7, 300)" in log
    out = p.stdout.decode().split("\n")[:-1]
    assert len(out) == len(lines), log
    assert out == ["" if x == "crash" else f"out-{x}" for x in lines]


def test_failed_line_names_the_placeholder(tmp_path):
    lines = lines_with([1, 50], 100)
    config = "tasks:\n  failed_line: \"FAILED\"\n"
    p = run_stream("--min", "2", "--max", "2", "--keep-order", "--restart-delay", "10ms", "--", *CRASH,
                   input="".join(f"{x}\n" for x in lines), config=config, tmp_path=tmp_path)
    assert p.returncode == 1, p.stderr
    assert p.stdout.decode().split("\n")[:-1] == ["FAILED" if x == "crash" else f"out-{x}" for x in lines]


def test_without_keep_order_one_output_line_per_input_line(tmp_path):
    lines = lines_with([3, 33, 333], 1000)
    config = "tasks:\n  failed_line: \"FAILED\"\n"
    p = run_stream("--min", "2", "--max", "2", "--restart-delay", "10ms", "--", *CRASH,
                   input="".join(f"{x}\n" for x in lines), config=config, tmp_path=tmp_path)
    assert p.returncode == 1, p.stderr
    out = p.stdout.decode().split("\n")[:-1]
    assert sorted(out) == sorted("FAILED" if x == "crash" else f"out-{x}" for x in lines)


def test_a_failed_line_of_two_lines_is_refused(tmp_path):
    path = tmp_path / "corral.yaml"
    path.write_text("command: [cat]\ntasks:\n  mode: stream\n  failed_line: \"a\\nb\"\n")
    p = subprocess.run([CORRAL, "check", "-c", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=DEADLINE)
    assert p.returncode == 2
    assert f"{path}:4:16: tasks.failed_line: must be one line" in (p.stdout + p.stderr).decode()


SLOW = task("line", "--delay-us", 100000, "--tag-pid")   # "PID LINE" after 100 ms (waiting, not CPU)

BACKLOG_POLICY = """\
sample: {interval: 100ms}
workers: {min: 1, max: 4, initial: 1}
policy:
  cooldown: {up: 0s}
  rules:
    - name: backlog
      when: tasks.backlog > 0
      for: 0s
      scale: +1
"""


def test_slow_lines_wait_in_corral_and_grow_the_pool(tmp_path):
    # A worker holds what it answers in a short horizon: one 100 ms line. The
    # rest wait in corral as tasks.backlog, which the rule grows the pool on
    # (committed to the first worker at once, they would show no backlog).
    lines = [str(i) for i in range(1, 41)]
    p = run_stream("-v", "--", *SLOW, input="".join(f"{x}\n" for x in lines), config=BACKLOG_POLICY,
                   tmp_path=tmp_path)
    log = p.stderr.decode()
    assert p.returncode == 0, log
    assert "scale 1 -> 2 (rule backlog: tasks.backlog" in log, log
    assert "scale 3 -> 4 (rule backlog" in log, log
    out = [line.split() for line in p.stdout.decode().split("\n")[:-1]]
    assert sorted(int(x) for _, x in out) == list(range(1, 41))
    # Every worker the pool grew to took lines: the lines waited for it.
    started = set(re.findall(r"worker \d+ started \(pid (\d+)\)", log))
    assert len(started) == 4 and {pid for pid, _ in out} == started, log


def test_in_flight_caps_what_a_fast_worker_holds(tmp_path):
    # tasks.in_flight: 1 makes every line a round trip; the results are the same.
    lines = [str(i) for i in range(1, 2001)]
    p = run_stream("--min", "2", "--max", "2", "--keep-order", "--", *task("line"),
                   input="".join(f"{x}\n" for x in lines), config="tasks:\n  in_flight: 1\n", tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().split("\n")[:-1] == [f"out-{x}" for x in lines]
