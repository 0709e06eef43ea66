# SPDX-License-Identifier: MIT
"""The progress bar of stream mode (issue 24 item 2): drawn on a terminal,
counting lines answered over the input file's lines; -q hides it, --bar
forces it even with -q; nothing of it goes into a pipe."""
import os
import pty
import subprocess

from conftest import CORRAL, read_terminal, task

ECHO = task("line")
DEADLINE = 120


def on_a_terminal(tmp_path, *args):
    """corral run --stream with stderr on a new pseudo-terminal, stdout a pipe:
    (exit status, stdout, what reached the terminal)."""
    lines = tmp_path / "lines"
    lines.write_text("".join(f"{i}\n" for i in range(1, 2001)))
    master, slave = pty.openpty()
    p = subprocess.Popen([CORRAL, "run", "--metrics", "none", "--stream", "--tasks", str(lines), *args,
                          "--", *ECHO], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                         start_new_session=True)
    os.close(slave)
    seen = read_terminal(master, DEADLINE, "corral")
    out = p.stdout.read()
    p.wait(DEADLINE)
    return p.returncode, out, seen.decode()


def test_stream_mode_draws_its_bar_on_a_terminal_with_the_file_total(tmp_path):
    status, out, seen = on_a_terminal(tmp_path)
    assert status == 0, seen
    assert len(out.splitlines()) == 2000
    # The last drawing: every line answered, none held, then a newline.
    assert "] 2000/2000 100% 0 failed, 0 running" in seen, seen[-500:]


def test_quiet_hides_it_and_bar_forces_it_back(tmp_path):
    status, _, seen = on_a_terminal(tmp_path, "-q")
    assert status == 0, seen
    assert "2000/2000" not in seen and "\r" not in seen.replace("\r\n", "")
    status, _, seen = on_a_terminal(tmp_path, "-q", "--bar")
    assert status == 0, seen
    assert "] 2000/2000 100%" in seen


def test_nothing_of_the_bar_goes_into_a_pipe(tmp_path):
    lines = tmp_path / "lines"
    lines.write_text("".join(f"{i}\n" for i in range(1, 101)))
    p = subprocess.run([CORRAL, "run", "--metrics", "none", "--stream", "--tasks", str(lines), "--bar",
                        "--", *ECHO], capture_output=True, timeout=DEADLINE, start_new_session=True)
    assert p.returncode == 0, p.stderr
    assert b"\r" not in p.stderr and b"100/100" not in p.stderr
