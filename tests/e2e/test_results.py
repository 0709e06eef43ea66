# SPDX-License-Identifier: MIT
"""--results FILE (issue 24 item 3): one JSON object per task (per-task mode)
or per line (stream mode), read back as a program would, with Python's json."""
import json
import os
import signal
import subprocess

from conftest import CORRAL, task
from test_batch import read_joblog, run_batch, write_lines

OUTPUT_MAX = 64 * 1024
ECHO = task("line")
POISON = task("line", "--exit-on", "poison")


def read_results(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data.endswith(b"\n"), "every record ends its line"
    return [json.loads(line) for line in data.decode("utf-8").split("\n")[:-1]]


def by_seq(records):
    seqs = [r["seq"] for r in records]
    assert len(seqs) == len(set(seqs)), "each task once"
    return {r["seq"]: r for r in records}


# A task per line: "ok" exits 0, "fail" exits 3, "kill" dies of SIGKILL; each
# writes its line to stdout and "err LINE" to stderr first.
SCRIPT = ('echo "out $1"; echo "err $1" >&2; '
          'case $1 in fail*) exit 3;; kill*) kill -KILL $$;; esac')


def test_every_task_once_with_its_exit_status_signal_and_output(tmp_path):
    lines = [f"ok{i}" if i % 5 else f"fail{i}" for i in range(1, 31)]
    lines[6] = "kill7"
    tasks = write_lines(tmp_path / "tasks", lines)
    results = tmp_path / "results.jsonl"
    joblog = tmp_path / "joblog"
    p = run_batch("--tasks", tasks, "--results", str(results), "--joblog", str(joblog), "-q",
                  "--", "sh", "-c", SCRIPT, "sh")
    assert p.returncode == 1, p.stderr
    got = by_seq(read_results(results))
    assert sorted(got) == list(range(1, 31))
    for seq, line in enumerate(lines, 1):
        r = got[seq]
        assert r["task"] == line
        assert r["stdout"] == f"out {line}\n" and r["stdout_truncated"] is False
        assert r["stderr"] == f"err {line}\n" and r["stderr_truncated"] is False
        assert isinstance(r["duration"], float) and 0 <= r["duration"] < 60
        if line.startswith("kill"):
            assert (r["exit"], r["signal"]) == (None, signal.SIGKILL)
        elif line.startswith("fail"):
            assert (r["exit"], r["signal"]) == (3, 0)
        else:
            assert (r["exit"], r["signal"]) == (0, 0)
    # stderr still reaches corral's stderr, untouched (not a terminal: no prefix).
    assert all(f"err {line}\n" in p.stderr.decode() for line in lines)
    # The joblog says the same.
    assert {(s, e, g) for s, e, g, _ in read_joblog(joblog)} == \
        {(s, r["exit"] if r["exit"] is not None else 0, r["signal"]) for s, r in got.items()}


def test_a_retried_task_has_one_record_its_last_attempt(tmp_path):
    tasks = write_lines(tmp_path / "tasks", ["a", "b"])
    results = tmp_path / "results.jsonl"
    # "b" fails until the marker exists; its first attempt makes the marker.
    script = 'if [ "$1" = b ] && [ ! -e "$0/m" ]; then touch "$0/m"; echo first; exit 1; fi; echo "done $1"'
    p = run_batch("--tasks", tasks, "--results", str(results), "--retries", "2", "-q",
                  "--", "sh", "-c", script, str(tmp_path))
    assert p.returncode == 0, p.stderr
    got = by_seq(read_results(results))
    assert got[2]["exit"] == 0 and got[2]["stdout"] == "done b\n"


def test_output_is_kept_up_to_64KiB_and_marked_truncated(tmp_path):
    tasks = write_lines(tmp_path / "tasks", ["100000", "10"])
    results = tmp_path / "results.jsonl"
    script = 'head -c "$1" /dev/zero | tr "\\0" x; head -c "$1" /dev/zero | tr "\\0" y >&2'
    p = run_batch("--tasks", tasks, "--results", str(results), "-q", "--", "sh", "-c", script, "sh")
    assert p.returncode == 0, p.stderr[-500:]
    assert p.stdout.count(b"x") == 100010, "stdout itself is whole"
    got = by_seq(read_results(results))
    assert got[1]["stdout"] == "x" * OUTPUT_MAX and got[1]["stdout_truncated"] is True
    assert got[1]["stderr"] == "y" * OUTPUT_MAX and got[1]["stderr_truncated"] is True
    assert got[2]["stdout"] == "x" * 10 and got[2]["stdout_truncated"] is False


def test_bytes_that_are_not_utf8_still_make_json(tmp_path):
    tasks = write_lines(tmp_path / "tasks", ["x"])
    results = tmp_path / "results.jsonl"
    p = run_batch("--tasks", tasks, "--results", str(results), "-q",
                  "--", "printf", "caf\\303\\251 \\377 \"q\" \\\\ \\001\\n")
    assert p.returncode == 0, p.stderr
    [r] = read_results(results)
    assert r["stdout"] == 'café \ufffd "q" \\ \x01\n'


def test_tasks_results_in_the_file_and_a_symlink_refused(tmp_path):
    tasks = write_lines(tmp_path / "tasks", ["1", "2"])
    results = tmp_path / "r.jsonl"
    config = tmp_path / "corral.yaml"
    config.write_text(f"command: [echo]\ntasks:\n  from: {tasks}\n  results: {results}\n")
    p = run_batch("-c", str(config), "-q")
    assert p.returncode == 0, p.stderr
    assert sorted(r["seq"] for r in read_results(results)) == [1, 2]

    target = tmp_path / "elsewhere"
    target.write_text("keep\n")
    link = tmp_path / "link.jsonl"
    os.symlink(target, link)
    p = run_batch("--tasks", tasks, "--results", str(link), "--", "echo")
    assert p.returncode == 2
    assert f"--results {link} is a symbolic link" in p.stderr.decode()
    assert target.read_text() == "keep\n"


def test_a_line_too_long_to_run_has_a_record_saying_so(tmp_path):
    tasks = write_lines(tmp_path / "tasks", ["short", "z" * 200_000])
    results = tmp_path / "results.jsonl"
    p = run_batch("--tasks", tasks, "--results", str(results), "-q", "--", "true")
    assert p.returncode == 1
    got = by_seq(read_results(results))
    assert got[1]["exit"] == 0
    assert got[2]["exit"] is None and got[2]["error"] == "line too long"


def test_stream_mode_has_a_record_per_line_and_one_for_a_given_up_line(tmp_path):
    lines = [str(i) for i in range(1, 501)]
    lines[99] = "poison"
    results = tmp_path / "results.jsonl"
    p = subprocess.run([CORRAL, "run", "--metrics", "none", "--stream", "--tasks", "-", "--min", "2", "--max", "2",
                        "--results", str(results), "--restart-delay", "10ms", "-q", "--", *POISON],
                       input="".join(f"{x}\n" for x in lines).encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    assert p.returncode == 1, p.stderr
    got = by_seq(read_results(results))
    assert sorted(got) == list(range(1, 501))
    for seq, line in enumerate(lines, 1):
        r = got[seq]
        if line == "poison":
            assert r["exit"] is None and r["error"] == "given up"
        else:
            assert (r["task"], r["stdout"], r["exit"], r["signal"]) == (line, f"out-{line}\n", 0, 0)
            assert r["duration"] >= 0


def test_stream_mode_refuses_a_symlink_with_one_message(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("keep\n")
    link = tmp_path / "link.jsonl"
    os.symlink(target, link)
    p = subprocess.run([CORRAL, "run", "--metrics", "none", "--stream", "--tasks", "-", "--results", str(link),
                        "--", *ECHO], input=b"1\n", capture_output=True, timeout=120)
    assert p.returncode == 2
    err = p.stderr.decode()
    assert err.count(str(link)) == 1 and "symbolic link" in err, err
    assert "Failed to start the stream" not in err
    assert target.read_text() == "keep\n"
