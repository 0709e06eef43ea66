# SPDX-License-Identifier: MIT
"""Shared segments through `corral run` (issue 8): workers see CORRAL_SHM_<NAME>
and _SIZE, read exactly the source's bytes, cannot write them; a bad source
stops startup with exit 2; a reload with a changed file gives new workers the
new data, and a reload with a broken one keeps the old.
"""
import gzip
import hashlib
import json
import os
import signal

import pytest

from conftest import TIMEOUT, await_metric, metric, py


# Maps the segment as DESIGN.md tells workers to, and reports its checksum;
# then tries every way of writing to it. One os.write per line: workers share
# corral's stdout.
CHECKSUM = py(r"""
import hashlib, mmap, os, signal
fd = int(os.environ['CORRAL_SHM_DATA']); size = int(os.environ['CORRAL_SHM_DATA_SIZE'])
m = mmap.mmap(fd, size, prot=mmap.PROT_READ)
digest = hashlib.sha256(m).hexdigest()
refused = []
try: os.write(fd, b'x')
except OSError: refused.append('write')
try: mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
except OSError: refused.append('mmap')
try: os.ftruncate(fd, 0)
except OSError: refused.append('ftruncate')
os.write(1, f"sum {os.environ['CORRAL_WORKER_ID']} {size} {digest} {','.join(refused)}\n".encode())
while True: signal.pause()
""")


def config(tmp_path, shared, workers=2, name="corral.yaml"):
    path = tmp_path / name
    lines = [f"command: {json.dumps(CHECKSUM)}",
             f"workers: {{min: {workers}, max: {workers}}}",
             "metrics: {listen: none}",
             "shared:",
             f"  data: {shared}"]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def data_file(tmp_path, content, name="data.bin"):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def sha(content):
    return hashlib.sha256(content).hexdigest()


def test_workers_see_the_file_byte_for_byte_and_cannot_write(tmp_path, corral):
    content = os.urandom(3 * 1024 * 1024 + 5)
    path = data_file(tmp_path, content)
    c = corral("run", "-c", config(tmp_path, f"{{path: {path}}}"))
    c.started(2)
    for _ in range(2):
        m = c.out.wait(r"^sum (\d+) (\d+) (\w+) (\S*)$")
        assert int(m[2]) == len(content)
        assert m[3] == sha(content)
        assert m[4] == "write,mmap,ftruncate"
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_a_command_source_gives_the_same_bytes(tmp_path, corral):
    content = os.urandom(1024 * 1024) * 3
    gz = tmp_path / "data.gz"
    gz.write_bytes(gzip.compress(content))
    c = corral("run", "-c", config(tmp_path, f'{{command: [gzip, -dc, "{gz}"]}}'))
    c.started(2)
    for _ in range(2):
        assert c.out.wait(r"^sum \d+ (\d+) (\w+)")[2] == sha(content)
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


@pytest.mark.parametrize("shared, message", [
    ("{path: /nonexistent/ref.bin}",
     "shared segment 'data': cannot open /nonexistent/ref.bin: No such file or directory"),
    ('{command: [sh, -c, "exit 1"]}', "shared segment 'data': 'sh -c exit 1' exited with status 1"),
    ('{command: [sh, -c, "kill -9 $$"]}', "was killed by signal KILL"),
    ("{command: [\"true\"]}", "shared segment 'data': 'true' wrote nothing"),
    ("{command: [yes], max_size: 1MiB}", "'yes' wrote more than max_size (1048576 bytes)"),
    # A hanging command is stopped at its timeout: while it writes nothing, and
    # after it closed its output but went on running.
    ('{command: [sleep, "60"], timeout: 300ms}',
     "shared segment 'data': 'sleep 60' did not finish within its timeout of 300ms; stopped it"),
    ('{command: [sh, -c, "echo data; exec >&-; sleep 60"], timeout: 300ms}',
     "did not finish within its timeout of 300ms; stopped it"),
])
def test_a_bad_source_stops_startup_with_exit_2(tmp_path, corral, shared, message):
    c = corral("run", "-c", config(tmp_path, shared))
    assert c.wait() == 2
    assert message in c.log.text()
    assert "started" not in c.log.text()


def test_reload_gives_new_workers_the_new_file_and_never_a_mix(tmp_path, corral):
    old, new = os.urandom(2 * 1024 * 1024), os.urandom(2 * 1024 * 1024)
    path = data_file(tmp_path, old)
    c = corral("run", "-c", config(tmp_path, f"{{path: {path}}}"))
    c.started(2)
    for _ in range(2):
        assert c.out.wait(r"^sum \d+ \d+ (\w+)")[1] == sha(old)
    port = c.metrics_port()
    text = await_metric(port, "corral_shared_generation", '{segment="data"}', 1)
    assert metric(text, "corral_shared_load_seconds", '{segment="data"}') >= 0

    # Replaced the way deployments do it: a new file renamed over the old.
    data_file(tmp_path, new, "data.next")
    os.rename(tmp_path / "data.next", path)
    c.signal(signal.SIGHUP)
    # Workers are replaced one at a time; each new one sees all of the new data.
    for _ in range(2):
        assert c.out.wait(r"^sum \d+ \d+ (\w+)", timeout=TIMEOUT)[1] == sha(new)
    assert {line.split()[3] for line in c.out.lines if line.startswith("sum")} == {sha(old), sha(new)}
    # A dashboard sees that the data was replaced.
    await_metric(port, "corral_shared_generation", '{segment="data"}', 2)
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_reload_with_a_broken_source_keeps_the_old_segment(tmp_path, corral):
    content = os.urandom(1024 * 1024)
    path = data_file(tmp_path, content)
    c = corral("run", "-c", config(tmp_path, f"{{path: {path}}}"))
    workers = c.started(2)
    for _ in range(2):
        c.out.wait(r"^sum ")
    os.unlink(path)
    c.signal(signal.SIGHUP)
    c.log.wait(r"shared segment 'data': cannot open .*: No such file or directory")
    # Still serving with the old segment: the same workers, nothing restarted.
    assert all(os.path.exists(f"/proc/{pid}") for pid in workers.values())
    c.signal(signal.SIGTERM)
    assert c.wait() == 0


def test_per_task_batch_tasks_get_the_segment(tmp_path):
    import subprocess
    from conftest import CORRAL, PYTHON
    content = os.urandom(1024 * 1024)
    path = data_file(tmp_path, content)
    conf = tmp_path / "batch.yaml"
    conf.write_text(f"shared:\n  data: {{path: {path}}}\nmetrics: {{listen: none}}\n")
    tasks = tmp_path / "tasks"
    tasks.write_text("".join(f"{i}\n" for i in range(1, 21)))
    task = ("import hashlib, mmap, os, sys\n"
            "fd = int(os.environ['CORRAL_SHM_DATA']); size = int(os.environ['CORRAL_SHM_DATA_SIZE'])\n"
            "print(sys.argv[1], hashlib.sha256(mmap.mmap(fd, size, prot=mmap.PROT_READ)).hexdigest())\n")
    r = subprocess.run([CORRAL, "run", "-q", "-c", str(conf), "--tasks", str(tasks), "--", PYTHON, "-c", task],
                       capture_output=True, text=True, timeout=TIMEOUT * 3)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert sorted(int(x) for x in lines[0::2]) == list(range(1, 21))
    assert set(lines[1::2]) == {sha(content)}
