# SPDX-License-Identifier: MIT
"""workers.user and workers.group: workers, batch tasks and stream workers run
as the configured user and groups (names or numbers), still read the shared
segments, roll over when a reload changes the user; an unknown name, or another
user while corral is not root, stops startup with exit 2 and the key's place.
Needs root (the test machine runs as root); the rest is skipped.
"""
import hashlib
import json
import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import tempfile

import pytest

from conftest import CORRAL, PYTHON, TIMEOUT, py, wait_gone

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing a worker's user needs root")

try:
    NOBODY = pwd.getpwnam("nobody")
except KeyError:
    NOBODY = None
needs_nobody = pytest.mark.skipif(NOBODY is None, reason="no user 'nobody' on this machine")

# Says who it is, and the checksum of the shared segment when there is one.
WHO = py(r"""
import hashlib, mmap, os, signal
digest = '-'
if 'CORRAL_SHM_DATA' in os.environ:
    fd = int(os.environ['CORRAL_SHM_DATA']); size = int(os.environ['CORRAL_SHM_DATA_SIZE'])
    digest = hashlib.sha256(mmap.mmap(fd, size, prot=mmap.PROT_READ)).hexdigest()
groups = ','.join(str(g) for g in sorted(os.getgroups())) or 'none'
os.write(1, f"who {os.environ['CORRAL_WORKER_ID']} {os.getuid()} {os.getgid()} {groups} {digest}\n".encode())
while True: signal.pause()
""")

WHO_RX = r"^who (\d+) (\d+) (\d+) (\S+) (\S+)$"


def write_config(path, workers, extra=(), command=WHO):
    """A pool of two: `workers` are more keys of workers: (user:, group:)."""
    lines = [f"command: {json.dumps(command)}" if command else "",
             "workers:", "  min: 2", "  max: 2", *(f"  {line}" for line in workers),
             "metrics: {listen: none}", *extra]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def groups_of(user, gid):
    return ",".join(str(g) for g in sorted(set(os.getgrouplist(user, gid))))


def proc_ids(pid):
    """The real uid, real gid and groups of a running process, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f.read().splitlines())
    return (int(fields["Uid"].split()[0]), int(fields["Gid"].split()[0]),
            ",".join(sorted(fields["Groups"].split(), key=int)))


@needs_nobody
def test_workers_run_as_the_user_and_still_read_the_shared_segment(corral, tmp_path):
    content = os.urandom(256 * 1024)
    data = tmp_path / "data.bin"
    data.write_bytes(content)
    c = corral("run", "-c", write_config(tmp_path / "c.yaml", ["user: nobody"],
                                        ["shared:", f"  data: {{path: {data}}}"]))
    pids = c.started(2)
    expected_groups = groups_of("nobody", NOBODY.pw_gid)
    for _ in range(2):
        m = c.out.wait(WHO_RX)
        assert (int(m[2]), int(m[3]), m[4]) == (NOBODY.pw_uid, NOBODY.pw_gid, expected_groups)
        assert m[5] == hashlib.sha256(content).hexdigest()
    # The processes corral started are the ones that answered, as the kernel sees them.
    for pid in pids.values():
        assert proc_ids(pid) == (NOBODY.pw_uid, NOBODY.pw_gid, expected_groups)
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


@needs_nobody
def test_workers_of_another_user_still_die_with_corral(corral, tmp_path):
    # A change of ids clears the parent-death signal: it must be set after.
    c = corral("run", "-c", write_config(tmp_path / "c.yaml", ["user: nobody"]))
    pids = list(c.started(2).values())
    for _ in range(2):
        c.out.wait(WHO_RX)
    c.proc.kill()
    c.proc.wait()
    for pid in pids:
        assert wait_gone(pid, TIMEOUT), f"worker {pid} outlived corral"


@needs_nobody
@pytest.mark.parametrize("keys, uid, gid, groups", [
    # a group replaces the user's primary group, supplementary ones follow it
    (["user: nobody", "group: root"], "nobody", 0, lambda: groups_of("nobody", 0)),
    # numbers, a gid that has no name included
    ([f"user: {NOBODY.pw_uid if NOBODY else 0}", "group: 4242"], "nobody", 4242,
     lambda: groups_of("nobody", 4242)),
    # a group alone changes the group only: corral's uid and groups stay
    (["group: 4242"], "root", 4242, lambda: ",".join(str(g) for g in sorted(os.getgroups())) or "none"),
])
def test_group_override_numbers_and_group_alone(corral, tmp_path, keys, uid, gid, groups):
    c = corral("run", "-c", write_config(tmp_path / "c.yaml", keys))
    c.started(2)
    for _ in range(2):
        m = c.out.wait(WHO_RX)
        assert (int(m[2]), int(m[3]), m[4]) == (pwd.getpwnam(uid).pw_uid, gid, groups())
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_an_unknown_user_or_group_is_a_configuration_error(corral, tmp_path):
    path = write_config(tmp_path / "c.yaml", ["user: no-such-user-here", "group: no-such-group-here"])
    expected = [f"{path}:5:9: workers.user: no user 'no-such-user-here' on this machine",
                f"{path}:6:10: workers.group: no group 'no-such-group-here' on this machine"]
    c = corral("run", "-c", path)
    assert c.wait() == 2
    for line in expected:
        assert line in c.log.text()
    assert "started" not in c.log.text()

    p = subprocess.run([CORRAL, "check", "-c", path], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.splitlines() == expected


@needs_nobody
@pytest.mark.parametrize("mode", ["--tasks", "--stream"])
def test_batch_tasks_and_stream_workers_run_as_the_user(tmp_path, mode):
    path = write_config(tmp_path / "c.yaml", ["user: nobody"], command=None)
    tasks = tmp_path / "tasks"
    tasks.write_text("a\nb\nc\n")
    if mode == "--tasks":
        argv = ["--tasks", str(tasks), "--", PYTHON, "-c", "import os, sys; print(sys.argv[1], os.getuid(), os.getgid())", "{}"]
    else:
        argv = ["--stream", "--tasks", str(tasks), "--", PYTHON, "-c",
                "import os, sys\nfor line in sys.stdin: print(line.strip(), os.getuid(), os.getgid(), flush=True)"]
    p = subprocess.run([CORRAL, "run", "-c", path, *argv], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert sorted(p.stdout.splitlines()) == [f"{t} {NOBODY.pw_uid} {NOBODY.pw_gid}" for t in "abc"]


@needs_nobody
def test_a_command_the_user_may_not_run_names_the_user(tmp_path):
    # Root may run it; nobody may not: the refusal is nobody's.
    script = tmp_path / "only-root"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o700)
    path = write_config(tmp_path / "c.yaml", ["user: nobody"], command=[str(script)])
    p = subprocess.run([CORRAL, "run", "-c", path], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert f"cannot run '{script}' as user nobody: Permission denied" in p.stderr


@needs_nobody
@pytest.mark.skipif(not shutil.which("setpriv"), reason="setpriv (util-linux) is not installed")
def test_root_without_the_capabilities_says_so_and_exits_2(tmp_path):
    # uid 0 passes the startup check; the kernel refuses the change in the child.
    path = write_config(tmp_path / "c.yaml", ["user: nobody"])
    p = subprocess.run(["setpriv", "--inh-caps=-all", "--bounding-set=-setuid,-setgid", CORRAL, "run", "-c", path],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    assert f"cannot run '{PYTHON}' as user nobody: Operation not permitted" in p.stderr


@needs_nobody
def test_reload_with_a_new_user_rolls_the_workers(corral, tmp_path):
    path = tmp_path / "c.yaml"
    c = corral("run", "-c", write_config(path, []))
    c.started(2)
    for _ in range(2):
        assert int(c.out.wait(WHO_RX)[2]) == 0
    write_config(path, ["user: nobody"])
    c.signal(signal.SIGHUP)
    c.log.wait(r"its user changed: replacing workers one at a time")
    for _ in range(2):
        assert int(c.out.wait(WHO_RX)[2]) == NOBODY.pw_uid
    for _ in range(2):
        c.log.wait(r"worker \d+ \(pid \d+\) was killed by signal TERM")
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


@needs_nobody
@pytest.mark.skipif(not shutil.which("setpriv"), reason="setpriv (util-linux) is not installed")
def test_not_root_may_only_start_workers_as_itself(corral):
    # corral runs as nobody; the file must be readable by nobody.
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        as_nobody = ("setpriv", f"--reuid={NOBODY.pw_uid}", f"--regid={NOBODY.pw_gid}", "--clear-groups")

        other = write_config(pathlib.Path(d) / "root.yaml", ["user: root"])
        os.chmod(other, 0o644)
        c = corral("run", "-c", other, corral_prefix=as_nobody)
        assert c.wait() == 2
        assert (f"{other}:5:9: workers.user: corral runs as uid {NOBODY.pw_uid}, not root: "
                "cannot start workers as 'root'") in c.log.text()

        same = write_config(pathlib.Path(d) / "self.yaml", ["user: nobody"])
        os.chmod(same, 0o644)
        c = corral("run", "-c", same, corral_prefix=as_nobody)
        c.started(2)
        for _ in range(2):
            assert int(c.out.wait(WHO_RX)[2]) == NOBODY.pw_uid
        c.signal(signal.SIGTERM)
        assert c.wait() == 0
