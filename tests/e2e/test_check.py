# SPDX-License-Identifier: MIT
"""`corral check`: exit codes, and the exact FILE:LINE:COL messages of the
tests/conf corpus (each bad file has a sibling .expected holding its stderr)."""
import os
import re
import pathlib
import subprocess

import pytest

CORRAL = os.environ["CORRAL"]
HERE = pathlib.Path(__file__).resolve().parent
CONF = HERE.parent / "conf"
GOOD = sorted((CONF / "good").glob("*.yaml"))
BAD = sorted((CONF / "bad").glob("*.yaml"))
EXAMPLES = sorted((HERE.parent.parent / "packaging" / "examples").glob("*.yaml"))

USAGE_START = "Usage: corral check -c FILE"


@pytest.fixture
def psi_dir(tmp_path):
    """A stand-in for /proc/pressure, so results do not depend on the kernel."""
    d = tmp_path / "pressure"
    d.mkdir()
    for name in ("cpu", "memory", "io"):
        (d / name).write_text("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
    return d


def check(*args, cwd=None, psi=None):
    env = dict(os.environ)
    if psi is not None:
        env["CORRAL_PSI_DIR"] = str(psi)
    return subprocess.run([CORRAL, "check", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def elsewhere(stderr):
    """stderr without the warnings about a command or cwd missing here: the
    corpus and the examples name programs (./worker, a consumer) and
    directories of the machine they are meant for."""
    return "".join(line for line in stderr.splitlines(keepends=True)
                   if not re.search(r": warning: (command: cannot run|workers\.cwd: cannot use) '.*' here: ", line))


def test_corpus_is_big_enough():
    assert len(BAD) >= 40
    for f in BAD:
        assert f.with_suffix(".expected").exists(), f"{f.name} has no .expected"


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good(path, psi_dir):
    r = check("-c", path.name, cwd=path.parent, psi=psi_dir)
    assert r.returncode == 0, r.stderr
    assert elsewhere(r.stderr) == ""
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{path.name}: OK: ")


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad(path, psi_dir):
    r = check("-c", path.name, cwd=path.parent, psi=psi_dir)
    expected = path.with_suffix(".expected").read_text()
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr == expected


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples(path, psi_dir):
    r = check("-c", str(path), psi=psi_dir)
    assert r.returncode == 0, r.stderr
    assert elsewhere(r.stderr) == ""
    assert r.stdout.startswith(f"{path}: OK: ")


def test_examples_exist():
    names = {p.name for p in EXAMPLES}
    assert {"batch-cpu.yaml", "queue-consumer.yaml", "line-filter.yaml"} <= names


def test_missing_file(tmp_path):
    r = check("-c", "missing.yaml", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == "missing.yaml: cannot open: No such file or directory\n"


def test_directory(tmp_path):
    (tmp_path / "conf.d").mkdir()
    r = check("-c", "conf.d", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == "conf.d: is a directory, not a configuration file\n"


def test_binary_file(tmp_path):
    (tmp_path / "corral.yaml").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4)
    r = check("-c", "corral.yaml", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == "corral.yaml:1:8: binary data (a NUL byte): not a YAML text file\n"


def test_ten_megabytes(tmp_path):
    line = b"# " + b"x" * 97 + b"\n"
    (tmp_path / "big.yaml").write_bytes(b"command: [./worker]\n" + line * (10 * 1024 * 1024 // len(line)))
    r = check("-c", "big.yaml", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == "big.yaml: too large (more than 1024 KiB; a configuration is a few KiB)\n"


def test_just_under_the_limit(tmp_path, psi_dir):
    line = b"# " + b"x" * 97 + b"\n"
    (tmp_path / "big.yaml").write_bytes(b"command: [./worker]\n" + line * (1000 * 1024 // len(line)))
    r = check("-c", "big.yaml", cwd=tmp_path, psi=psi_dir)
    assert r.returncode == 0, r.stderr


def test_many_keys_stop_after_50_errors(tmp_path):
    text = "".join(f"key{i}: {i}\n" for i in range(20000))
    (tmp_path / "keys.yaml").write_text(text)
    r = check("-c", "keys.yaml", cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 51
    assert lines[0] == "keys.yaml:1:1: unknown key 'key0'"
    assert lines[-1] == "keys.yaml: too many errors, stopped after 50"


def test_deep_nesting_is_refused_at_once(tmp_path):
    """libyaml parses nesting in time quadratic in the depth: 1 MiB of '[' took
    29 minutes. The timeout only catches that hang; the answer comes at once."""
    (tmp_path / "deep.yaml").write_bytes(b"[" * (1024 * 1024))
    r = check("-c", "deep.yaml", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == "deep.yaml:1:65: nested too deeply (more than 64 levels of lists and mappings)\n"
    assert r.stdout == ""


def test_psi_missing_warns(tmp_path):
    (tmp_path / "nopsi").mkdir()
    (tmp_path / "worker").write_text("#!/bin/sh\n")
    (tmp_path / "worker").chmod(0o755)
    (tmp_path / "c.yaml").write_text(
        "command: [./worker]\n"
        "policy:\n"
        "  rules:\n"
        "    - name: neighbour\n"
        "      when: cpu.busy > 95% and psi.cpu > 20%\n"
        "      scale: -1\n")
    r = check("-c", "c.yaml", cwd=tmp_path, psi=tmp_path / "nopsi")
    assert r.returncode == 0
    assert r.stderr == ("c.yaml:5:13: warning: rule 'neighbour' reads psi.cpu, which this machine "
                        "does not provide: the rule never fires\n")
    assert r.stdout.startswith("c.yaml: OK: ")


def test_help():
    r = check("--help")
    assert r.returncode == 0
    assert r.stdout.startswith(USAGE_START)


@pytest.mark.parametrize("args, reason", [
    ([], "corral check: no file given (-c FILE)"),
    (["-c"], "corral check: option '-c' needs a value"),
    (["--bogus"], "corral check: unknown option '--bogus'"),
    (["-c", "a.yaml", "extra"], "corral check: unexpected argument 'extra'"),
])
def test_usage_errors(args, reason):
    r = check(*args)
    assert r.returncode == 2
    # One line of reason and a pointer to --help, not the whole help.
    assert r.stderr.splitlines() == [reason, "Try 'corral check --help' for more information."]


def test_doubtful_conditions_warn(tmp_path, psi_dir):
    """A ratio for a percentage, a bound no percentage reaches, an `and` that
    never holds and a task signal in a pool without tasks: valid, so exit 0,
    but each warned about at its place."""
    (tmp_path / "c.yaml").write_text(
        "policy:\n"
        "  rules:\n"
        "    - {name: grow, when: pool.cpu > 0.8 and cpu.busy < 80%, scale: +1}\n"
        "    - {name: hot, when: cpu.busy > 180, scale: -1}\n"
        "    - name: never\n"
        "      when: \"pool.cpu > 20% and (cpu.busy > 80% and cpu.busy < 50%)\"\n"
        "      scale: +1\n"
        "    - {name: backlog, when: tasks.backlog > 10, scale: +1}\n")
    r = check("-c", "c.yaml", cwd=tmp_path, psi=psi_dir)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        "c.yaml:3:26: warning: policy.rules[0].when: pool.cpu > 0.8: pool.cpu is a percentage (0-100), "
        "so 0.8 means 0.8%, not a ratio; write 80% if you meant 0.8",
        "c.yaml:4:25: warning: policy.rules[1].when: cpu.busy > 180: cpu.busy ranges over 0-100%, "
        "so this comparison never holds",
        "c.yaml:6:34: warning: policy.rules[2].when: 'cpu.busy > 80%' and 'cpu.busy < 50%' can never both "
        "hold, so this 'and' is never true",
        "c.yaml:8:29: warning: rule 'backlog' reads tasks.backlog, but a pool without tasks (no --tasks or "
        "tasks.from) has none: it is unavailable, and a comparison reading it is false",
    ]
    assert r.stdout.startswith("c.yaml: OK: ")

    # With tasks, the task signal is what a batch provides.
    (tmp_path / "b.yaml").write_text(
        "tasks: {from: t.txt}\n"
        "policy:\n"
        "  rules:\n"
        "    - {name: backlog, when: tasks.backlog > 10 and pool.cpu > 80%, scale: +1}\n")
    r = check("-c", "b.yaml", cwd=tmp_path, psi=psi_dir)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_stream_keys_outside_stream_mode_warn(tmp_path, psi_dir):
    """tasks.in_flight and tasks.failed_line are stream mode's: in a file whose
    tasks run per task they are ignored, so check says so at each key."""
    (tmp_path / "c.yaml").write_text(
        "tasks:\n"
        "  from: t.txt\n"
        "  in_flight: 4\n"
        "  failed_line: ERR\n")
    r = check("-c", "c.yaml", cwd=tmp_path, psi=psi_dir)
    assert r.returncode == 0, r.stderr
    assert elsewhere(r.stderr).splitlines() == [
        "c.yaml:3:14: warning: tasks.in_flight applies to stream mode only (tasks.mode: stream or --stream); "
        "these tasks run per task and it is ignored",
        "c.yaml:4:16: warning: tasks.failed_line applies to stream mode only (tasks.mode: stream or --stream); "
        "these tasks run per task and it is ignored",
    ]
    assert r.stdout.startswith("c.yaml: OK: ")

    (tmp_path / "s.yaml").write_text(
        "tasks:\n"
        "  from: t.txt\n"
        "  mode: stream\n"
        "  in_flight: 4\n"
        "  failed_line: ERR\n")
    r = check("-c", "s.yaml", cwd=tmp_path, psi=psi_dir)
    assert r.returncode == 0 and elsewhere(r.stderr) == "", r.stderr
