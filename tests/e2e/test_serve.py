# SPDX-License-Identifier: MIT
"""Server pools: `listen:` sockets shared by the workers (sd_listen_fds), real
servers behind them (Python's http.server, gunicorn on LISTEN_FDS, the C
helper serve-task), and rolling replacements that drop no request.

Loopback only, on free ports; request counts are bounded, deadlines only
catch hangs."""
import http.client
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import PYTHON, TIMEOUT, http_get, metric, task, wait_gone

# A worker on the socket corral passes as fd 3 (sd_listen_fds), which finishes
# the request in hand on TERM instead of dying in the middle of it.
HTTP_SERVER = r"""
import http.server, os, signal, socket, threading
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_GET(self):
        body = f"pid {os.getpid()} python\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
assert int(os.environ["LISTEN_PID"]) == os.getpid() and os.environ["LISTEN_FDS"] == "1"
srv = http.server.HTTPServer(("", 0), H, bind_and_activate=False)
srv.socket.close()
srv.socket = socket.socket(fileno=3)
signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=srv.shutdown).start())
srv.serve_forever(poll_interval=0.05)
"""

WSGI_APP = """
import os
import shutil
def app(environ, start_response):
    body = f"pid {os.getppid()} gunicorn\\n".encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def have_gunicorn():
    return importlib.util.find_spec("gunicorn") is not None


def gunicorn(app_dir):
    # gunicorn takes LISTEN_FDS by itself; with `--bind fd://3` as well,
    # gunicorn 20.1 opens fd 3 twice and fails (EBADF).
    return [PYTHON, "-m", "gunicorn", "-w", "1", "--chdir", str(app_dir), "app:app"]


def write_config(path, command, port, extra=""):
    # JSON is YAML, and escapes the newlines of a Python worker's code.
    path.write_text(f"command: {json.dumps(command)}\nlisten: [\"127.0.0.1:{port}\"]\n{extra}")
    return str(path)


def get(port, timeout=TIMEOUT):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/")
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


class Load:
    """Clients sending requests one after another until stopped: counts the
    answers and the failures (a refused, reset or unanswered request)."""

    def __init__(self, port, clients=4):
        self.port = port
        self.ok = 0
        self.failed = []
        self.bodies = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]
        for t in self._threads:
            t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                status, body = get(self.port)
                with self._lock:
                    if status == 200:
                        self.ok += 1
                        self.bodies.append(body)
                    else:
                        self.failed.append(f"status {status}")
            except (OSError, http.client.HTTPException) as e:
                with self._lock:
                    self.failed.append(repr(e))

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(TIMEOUT)


def test_http_server_pool_answers_every_request(corral, tmp_path):
    port = free_port()
    config = write_config(tmp_path / "c.yaml", [PYTHON, "-c", HTTP_SERVER], port,
                          "workers: {min: 3, max: 3}\n")
    c = corral("run", "-c", config)
    pids = set(c.started(3).values())
    # The socket is bound before any worker starts: nothing is refused, even
    # while the workers are still importing.
    answered = {}
    errors = []

    def client(n):
        for _ in range(n):
            try:
                status, body = get(port)
                assert status == 200
                answered[body] = answered.get(body, 0) + 1
            except Exception as e:  # noqa: BLE001 (counted, then asserted)
                errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(500,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 6)
    assert errors == []
    assert sum(answered.values()) == 2000
    served = {int(body.split()[1]) for body in answered}
    assert served <= pids and len(served) >= 2, answered
    c.signal(15)
    assert c.wait() == 0


def test_workers_get_the_sockets_as_sd_listen_fds(corral, tmp_path):
    port = free_port()
    sock = tmp_path / "app.sock"
    (tmp_path / "c.yaml").write_text(
        f'command: ["{task("serve")[0]}"]\n'
        f'listen: ["127.0.0.1:{port}", "unix:{sock}"]\n'
        "workers: {min: 2, max: 2}\n")
    c = corral("run", "-c", str(tmp_path / "c.yaml"))
    pids = c.started(2)
    for pid in pids.values():
        env = dict(e.split("=", 1) for e in open(f"/proc/{pid}/environ").read().split("\0") if "=" in e)
        assert env["LISTEN_FDS"] == "2"
        assert env["LISTEN_PID"] == str(pid)
        assert env["LISTEN_FDNAMES"] == "listen0:listen1"
        fds = sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))
        assert fds == [0, 1, 2, 3, 4], fds
        assert os.readlink(f"/proc/{pid}/fd/3").startswith("socket:")
    status, body = get(port)
    assert status == 200 and int(body.split()[1]) in pids.values()
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(TIMEOUT)
        s.connect(str(sock))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    assert b"200 OK" in reply
    c.signal(15)
    assert c.wait() == 0
    assert not sock.exists(), "corral removes the unix socket it created"


def test_address_in_use_is_a_config_error(corral, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(tmp_path / "c.yaml", task("serve"), port)
        c = corral("run", "-c", config)
        assert c.wait() == 2
        assert f"c.yaml:2:10: cannot listen on 127.0.0.1:{port}: Address already in use" in c.log.text()


def test_check_points_at_a_bad_address(tmp_path):
    from conftest import CORRAL
    path = tmp_path / "c.yaml"
    path.write_text('command: [true]\nlisten: ["127.0.0.1:8080", "nohost"]\nlisten_backlog: 0\n')
    r = subprocess.run([CORRAL, "check", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode == 2
    assert f"{path}:2:28: listen[1]: expected an address" in r.stderr, r.stderr
    assert f"{path}:3:17: listen_backlog" in r.stderr, r.stderr


@pytest.mark.skipif(not have_gunicorn(), reason="python3-gunicorn is not installed")
def test_reload_to_gunicorn_drops_no_request(corral, tmp_path):
    """A HUP with a changed command replaces every worker (http.server ->
    gunicorn) while clients keep sending: not one request fails."""
    port = free_port()
    (tmp_path / "app.py").write_text(WSGI_APP)
    path = tmp_path / "c.yaml"
    write_config(path, [PYTHON, "-c", HTTP_SERVER], port, "workers: {min: 2, max: 2}\n")
    c = corral("run", "-c", str(path))
    old = set(c.started(2).values())
    assert get(port)[0] == 200
    load = Load(port)
    try:
        write_config(path, gunicorn(tmp_path), port, "workers: {min: 2, max: 2}\n")
        c.signal(1)
        c.log.wait(r"replacing workers one at a time")
        new = set(c.started(2).values())
        for pid in old:
            assert wait_gone(pid, TIMEOUT), f"old worker {pid} still runs"
        # Requests that reach the new workers only: every one from gunicorn.
        settled = load.ok
        deadline = time.monotonic() + TIMEOUT
        while load.ok < settled + 50 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        load.stop()
    assert load.failed == [], load.failed[:5]
    assert load.ok >= settled + 50
    assert load.bodies[-1].endswith("gunicorn\n")
    assert {int(b.split()[1]) for b in load.bodies[-20:]} <= new
    c.signal(15)
    assert c.wait() == 0


@pytest.mark.skipif(not shutil.which("systemd-socket-activate"), reason="systemd-socket-activate is missing")
def test_socket_activation_passes_the_sockets_on(corral, tmp_path):
    """corral started with LISTEN_FDS (as by corral@.socket) needs no listen:
    its workers get systemd's socket, under systemd's name."""
    port = free_port()
    (tmp_path / "c.yaml").write_text(f'command: ["{task("serve")[0]}"]\nworkers: {{min: 2, max: 2}}\n')
    c = corral("run", "-c", str(tmp_path / "c.yaml"),
               corral_prefix=["systemd-socket-activate", "-l", f"127.0.0.1:{port}", "--fdname=web"])
    # systemd-socket-activate starts corral at the first connection, which
    # waits in the socket's queue until a worker takes it.
    c.log.wait(rf"Listening on 127.0.0.1:{port}")
    status, body = get(port)
    assert status == 200
    pids = c.started(2)
    assert int(body.split()[1]) in pids.values()
    for pid in pids.values():
        env = dict(e.split("=", 1) for e in open(f"/proc/{pid}/environ").read().split("\0") if "=" in e)
        assert (env["LISTEN_FDS"], env["LISTEN_PID"], env["LISTEN_FDNAMES"]) == ("1", str(pid), "web")
    c.signal(15)
    assert c.wait() == 0
